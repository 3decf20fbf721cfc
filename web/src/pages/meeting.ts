// /app/meeting/{id}: a guest's view of a meeting, with its captions and chat.

import { meetingIdFromPath } from '../api';
import { CaptionsPanel } from '../captions';
import { ChatPanel } from '../chat';
import { MeetingPage } from '../meeting_view';

void new MeetingPage(meetingIdFromPath(), { title: 'Meeting', panels: [new CaptionsPanel(), new ChatPanel()] }).run();
