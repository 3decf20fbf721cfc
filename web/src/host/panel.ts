// The host console's side panel, for a meeting's hosts and co-hosts: who is waiting
// (queue.ts), who is in the meeting (people.ts), and the meeting's lock, recording,
// transcription and end (meeting_controls.ts). This module follows the room for them and
// follows my own role, both ways, while the room is attached: a co-host made host gets the
// host's controls at once, someone who stops being a moderator loses them, and gets them back
// when made one again.

import { Room, RoomEvent, type LocalParticipant, type RemoteParticipant } from 'livekit-client';

import { call, type TokenResponse } from '../api';
import type { Panel } from '../meeting_view';
import { announce, append, clear, h } from '../ui';
import { MODERATORS, ROLE_ATTRIBUTE, type HostContext } from './context';
import { showNotHost } from './gate';
import { MeetingControls } from './meeting_controls';
import { PeopleList } from './people';
import { WaitingQueue } from './queue';

const TICK_MS = 5000;

export class HostPanel implements Panel, HostContext {
  readonly element: HTMLElement;
  myRole = 'participant';
  room: Room | null = null;
  private readonly body = h('div', { class: 'host-body' });
  private readonly roleLine = h('p', { class: 'muted host-role' });
  private readonly queue = new WaitingQueue(this);
  private readonly people = new PeopleList(this);
  private readonly meeting = new MeetingControls(this);
  private timer: number | undefined;
  private readonly listeners: Array<[RoomEvent, (...args: never[]) => void]> = [];
  private roleListener: ((changed: Record<string, string>, participant: RemoteParticipant | LocalParticipant) => void) | null = null;

  constructor(readonly meetingId: string) {
    this.element = h('section', { class: 'card host-panel', 'aria-labelledby': 'host-panel-title', 'data-testid': 'host-panel' },
      h('h2', { id: 'host-panel-title' }, 'Host controls'),
      this.body);
  }

  post(path: string, body?: unknown): Promise<unknown> {
    return call('POST', `/api/v1/meetings/${encodeURIComponent(this.meetingId)}/${path}`, body);
  }

  get(path: string): Promise<unknown> {
    return call('GET', `/api/v1/meetings/${encodeURIComponent(this.meetingId)}/${path}`);
  }

  attach(room: Room, token: TokenResponse): void {
    this.detach();
    this.room = room;
    this.myRole = room.localParticipant.attributes[ROLE_ATTRIBUTE] ?? token.metadata.role;
    // My role is followed for as long as the room is attached, controls shown or not: a
    // moderator who loses the role and is given it back gets the controls back.
    this.roleListener = (changed: Record<string, string>, participant: RemoteParticipant | LocalParticipant) => {
      if (participant === room.localParticipant && changed[ROLE_ATTRIBUTE]) this.roleChanged(changed[ROLE_ATTRIBUTE]);
    };
    room.on(RoomEvent.ParticipantAttributesChanged, this.roleListener);
    if (MODERATORS.has(this.myRole)) {
      this.showControls(room);
    } else {
      clear(this.body);
      showNotHost(this.meetingId, this.body);
    }
  }

  detach(): void {
    if (this.room && this.roleListener) this.room.off(RoomEvent.ParticipantAttributesChanged, this.roleListener);
    this.roleListener = null;
    this.hideControls();
    this.room = null;
  }

  /** The sections, live: their room events and the clock. */
  private showControls(room: Room): void {
    this.hideControls();
    clear(this.body);
    append(this.body, this.roleLine, this.queue.build(), this.people.build(), this.meeting.build());
    this.renderRole();
    // The queue and the guests' notes come from the service (no participant): a participant
    // could otherwise hide real knocks behind a forged snapshot (session.ts says more).
    this.on(room, RoomEvent.DataReceived, (payload: Uint8Array, from?: RemoteParticipant, _k?: unknown, topic?: string) => {
      if (from === undefined) this.queue.onData(payload, topic);
    });
    const people = () => this.people.render();
    this.on(room, RoomEvent.ParticipantConnected, people);
    this.on(room, RoomEvent.ParticipantDisconnected, people);
    this.on(room, RoomEvent.TrackPublished, people);
    this.on(room, RoomEvent.TrackUnpublished, people);
    this.on(room, RoomEvent.TrackMuted, people);
    this.on(room, RoomEvent.TrackUnmuted, people);
    this.on(room, RoomEvent.ParticipantNameChanged, people);
    this.on(room, RoomEvent.ParticipantAttributesChanged, (changed: Record<string, string>) => {
      if ('tp.recording' in changed || 'tp.transcribing' in changed) void this.meeting.refreshRuns();
      this.people.render();
    });
    this.people.render();
    void this.queue.refresh();
    void this.meeting.refreshLock();
    void this.meeting.refreshRuns();
    this.timer = window.setInterval(() => this.tick(), TICK_MS);
  }

  /** The sections' room events and clock stopped (the role listener stays). */
  private hideControls(): void {
    if (this.room) for (const [event, fn] of this.listeners) this.room.off(event, fn as never);
    this.listeners.length = 0;
    window.clearInterval(this.timer);
    this.timer = undefined;
    this.queue.reset();
    this.people.reset();
  }

  private on<E extends RoomEvent>(room: Room, event: E, fn: (...args: never[]) => void): void {
    room.on(event, fn as never);
    this.listeners.push([event, fn]);
  }

  private roleChanged(role: string): void {
    if (role === this.myRole) return;
    const was = MODERATORS.has(this.myRole);
    this.myRole = role;
    const room = this.room;
    if (!room) return;
    if (!MODERATORS.has(role)) {
      if (!was) return;
      this.hideControls();
      clear(this.body);
      append(this.body, h('p', { role: 'status' }, 'You are no longer a host or co-host of this meeting, so the host controls are gone.'));
      return;
    }
    announce(role === 'host' ? 'You are now the host.' : 'You are now a co-host.');
    if (!was) {
      this.showControls(room);
      return;
    }
    this.renderRole();
    this.people.render();
    this.meeting.render();
  }

  private renderRole(): void {
    this.roleLine.textContent = this.myRole === 'host'
      ? 'You are the host.'
      : 'You are a co-host: the host alone can pass host, name co-hosts and end the meeting.';
  }

  private tick(): void {
    this.queue.tick();
    this.meeting.tick();
  }
}
