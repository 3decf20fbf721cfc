// /app/host/{id}: the host console: the meeting as a guest sees it, with the host's controls
// beside it (host/panel.ts), then the captions and the chat. Someone who is not a host or
// co-host is told so, before any knock, with a way to the guest page.

import { meetingIdFromPath } from '../api';
import { CaptionsPanel } from '../captions';
import { ChatPanel } from '../chat';
import { hostGate } from '../host/gate';
import { HostPanel } from '../host/panel';
import { MeetingPage } from '../meeting_view';

const id = meetingIdFromPath();

void new MeetingPage(id, {
  title: 'Host console',
  panels: [new HostPanel(id), new CaptionsPanel(), new ChatPanel()],
  gate: (_meeting, main) => hostGate(id, main),
}).run();
