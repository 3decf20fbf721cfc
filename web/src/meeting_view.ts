// The in-meeting screen shared by the guest page and the host console: the waiting screen
// while the waiting room holds the person, then the video tiles, the recording and
// transcription indicators, the microphone and camera buttons, and side panels (chat, the
// host's controls) that the pages add. Leaving, removal and the meeting's end are said
// plainly, with a way forward.

import { Participant, Room, RoomEvent } from 'livekit-client';

import { api, signInUrl, type Meeting, type TokenResponse } from './api';
import { errorText } from './errors';
import { leftForTokenError, MeetingSession, type Left } from './session';
import { Tiles } from './tiles';
import { announce, append, clear, frame, h, HOME, requireUser, showProblem, type Action } from './ui';

export const ATTR_RECORDING = 'tp.recording';
export const ATTR_TRANSCRIBING = 'tp.transcribing';

/** A side panel of the meeting screen (chat, host controls), attached once per room. */
export interface Panel {
  readonly element: HTMLElement;
  /** The meeting room is connected (again, after a return to the lobby and a new admission). */
  attach(room: Room, token: TokenResponse): void;
  /** The room is gone. */
  detach(): void;
}

export interface MeetingPageOptions {
  title: string; // "Meeting", "Host console"
  panels: Panel[];
  /** Whether to publish the camera and microphone on joining. */
  publish?: boolean;
  /** Asked once the meeting is known, before joining: false when it showed something else
   * in `main` instead (the host console, to someone who is not a host). */
  gate?: (meeting: Meeting, main: HTMLElement) => Promise<boolean>;
}

function anyoneWith(room: Room, attribute: string): boolean {
  for (const participant of room.remoteParticipants.values()) {
    if (participant.attributes[attribute] === '1') return true;
  }
  return false;
}

export class MeetingPage {
  readonly meetingId: string;
  meeting: Meeting | null = null;
  session: MeetingSession | null = null;
  private main: HTMLElement | null = null;
  private readonly stage = h('div', { class: 'stage', 'data-testid': 'stage' });
  private readonly indicators = h('div', { class: 'indicators row', 'aria-live': 'polite' });
  private readonly controls = h('div', { class: 'controls row' });
  private tiles: Tiles | null = null;
  private reconnecting = false;

  constructor(meetingId: string, private readonly options: MeetingPageOptions) {
    this.meetingId = meetingId;
  }

  async run(): Promise<void> {
    const user = requireUser();
    if (!user) return;
    this.main = frame(this.options.title, user, h('p', { class: 'loading' }, 'Joining the meeting…'));
    try {
      this.meeting = await api.meeting(this.meetingId);
    } catch (err) {
      this.showLeft(leftForTokenError(err)); // the same answers as the token request's
      return;
    }
    document.title = `${this.meeting.title} · ${this.options.title} · TalkPlatform`;
    const heading = document.querySelector('header.top h1');
    if (heading) heading.textContent = `${this.meeting.title} · ${this.options.title}`;
    if (this.meeting.endedAt) {
      this.showLeft({ kind: 'gone', title: 'This meeting has ended', message: 'The host has ended this meeting.', canRejoin: false });
      return;
    }
    if (this.options.gate && !(await this.options.gate(this.meeting, this.main))) return;
    await this.join();
  }

  private async join(): Promise<void> {
    const main = this.main!;
    clear(main);
    append(main, h('p', { class: 'loading' }, 'Joining the meeting…'));
    this.session = new MeetingSession(this.meetingId, {
      waiting: (status, room) => this.showWaiting(status, room),
      hostMessage: (from, text) => this.showHostMessage(from, text),
      joined: (room, token) => void this.showMeeting(room, token),
      left: (why) => this.showLeft(why),
    });
    window.addEventListener('pagehide', () => void this.session?.stop(), { once: true });
    await this.session.start();
  }

  // The waiting screen: what the lobby says, the host's messages, and a note to the hosts.

  private waitingBox: HTMLElement | null = null;
  private waitingStatus: HTMLElement | null = null;
  private hostMessages: HTMLElement | null = null;

  private showWaiting(status: string, _room: Room): void {
    this.detachPanels();
    if (!this.waitingBox) {
      const main = this.main!;
      clear(main);
      this.waitingStatus = h('p', { class: 'waiting-status', role: 'status', 'data-testid': 'waiting-status' });
      this.hostMessages = h('ul', { class: 'host-messages', 'aria-label': 'Messages from the host', 'aria-live': 'polite' });
      const note = h('input', { id: 'note-to-host', maxlength: 2000, placeholder: 'Say who you are' });
      const noteError = h('p', { role: 'alert', class: 'form-error' });
      const send = h('button', { type: 'submit', class: 'secondary' }, 'Send to the host');
      const form = h('form', { class: 'row' }, note, send);
      form.addEventListener('submit', (event) => {
        event.preventDefault();
        const text = note.value.trim();
        if (!text || send.disabled) return;
        noteError.textContent = '';
        send.disabled = true;
        this.session!.sendToHosts(text)
          .then((reached) => {
            if (reached > 0) {
              note.value = '';
              announce('Your message was sent to the host.');
            } else {
              noteError.textContent = 'No host is in the meeting yet, so nobody got your message. Send it again once a host is there.';
            }
          })
          .catch((err: unknown) => {
            noteError.textContent = `Not sent: ${errorText(err)}`;
          })
          .finally(() => {
            send.disabled = false;
          });
      });
      this.waitingBox = h('section', { class: 'card waiting', 'aria-labelledby': 'waiting-title', 'data-testid': 'waiting' },
        h('h2', { id: 'waiting-title' }, 'Waiting to be let in'),
        this.waitingStatus,
        this.hostMessages,
        h('label', { for: 'note-to-host' }, 'A note to the host (optional)'),
        form,
        noteError,
        h('p', {}, h('button', { type: 'button', class: 'secondary', onclick: () => void this.session?.stop() }, 'Leave')));
      append(main, this.waitingBox);
    }
    this.waitingStatus!.textContent =
      status === 'waiting_for_host'
        ? 'The host has not joined yet. You will be let in once they arrive.'
        : 'The host knows you are here and will let you in soon.';
  }

  private showHostMessage(from: string, text: string): void {
    if (!this.hostMessages) return;
    append(this.hostMessages, h('li', {}, h('strong', {}, `${from}: `), text));
    announce(`Message from ${from}: ${text}`);
  }

  // The meeting itself.

  private async showMeeting(room: Room, token: TokenResponse): Promise<void> {
    this.waitingBox = null;
    this.reconnecting = false;
    const main = this.main!;
    clear(main);
    clear(this.stage);
    this.tiles = new Tiles(room);
    const side = h('aside', { class: 'side', 'aria-label': 'Meeting panels' });
    for (const panel of this.options.panels) {
      side.appendChild(panel.element);
      panel.attach(room, token);
    }
    append(this.stage, this.tiles.element);
    append(main, h('div', { class: 'meeting-bar' }, this.indicators, this.controls), h('div', { class: 'meeting grid' }, this.stage, side));
    const refresh = () => this.renderIndicators(room);
    room
      .on(RoomEvent.Reconnecting, () => {
        this.reconnecting = true;
        refresh();
        announce('The connection dropped: reconnecting…');
      })
      .on(RoomEvent.Reconnected, () => {
        this.reconnecting = false;
        refresh();
        announce('Reconnected.');
      })
      // A browser that allows no sound without a click (a guest who came by link and has
      // clicked nothing) must be asked for one, or they hear nobody and are never told.
      .on(RoomEvent.AudioPlaybackStatusChanged, refresh)
      .on(RoomEvent.ParticipantAttributesChanged, refresh)
      .on(RoomEvent.ParticipantConnected, refresh)
      .on(RoomEvent.ParticipantDisconnected, refresh)
      .on(RoomEvent.LocalTrackPublished, () => this.renderControls(room))
      .on(RoomEvent.TrackMuted, (_pub, participant: Participant) => {
        if (participant === room.localParticipant) this.renderControls(room);
      })
      .on(RoomEvent.TrackUnmuted, (_pub, participant: Participant) => {
        if (participant === room.localParticipant) this.renderControls(room);
      });
    this.renderIndicators(room);
    this.renderControls(room);
    announce(token.status === 'joined' ? 'You are in the meeting.' : '');
    if (this.options.publish !== false) await this.publish(room);
  }

  private async publish(room: Room): Promise<void> {
    try {
      await room.localParticipant.enableCameraAndMicrophone();
    } catch (err) {
      announce(`Your camera or microphone could not be started (${errorText(err)}). Allow them in the browser's site settings; others can still see and hear you once you do.`);
    }
    this.tiles?.render();
    this.renderControls(room);
  }

  private renderIndicators(room: Room): void {
    clear(this.indicators);
    if (!room.canPlaybackAudio) {
      this.indicators.appendChild(h('button', { type: 'button', 'data-testid': 'start-audio',
        onclick: () => void room.startAudio().then(() => this.renderIndicators(room)).catch((err: unknown) => announce(`Sound could not be turned on: ${errorText(err)}`)) },
        'Turn on sound'));
    }
    if (this.reconnecting) {
      this.indicators.appendChild(h('span', { class: 'badge bad', 'data-testid': 'reconnecting-indicator' }, 'Reconnecting…'));
    }
    if (anyoneWith(room, ATTR_RECORDING)) {
      this.indicators.appendChild(h('span', { class: 'badge rec', 'data-testid': 'recording-indicator' }, '● Recording'));
    }
    if (anyoneWith(room, ATTR_TRANSCRIBING)) {
      this.indicators.appendChild(h('span', { class: 'badge warn', 'data-testid': 'transcribing-indicator' }, 'Transcribing'));
    }
  }

  private renderControls(room: Room): void {
    clear(this.controls);
    const local = room.localParticipant;
    const mic = local.isMicrophoneEnabled;
    const cam = local.isCameraEnabled;
    append(this.controls,
      h('button', { type: 'button', class: 'secondary', 'aria-pressed': String(!mic),
        onclick: () => this.toggle(room, 'microphone', local.setMicrophoneEnabled(!mic)) },
        mic ? 'Mute microphone' : 'Unmute microphone'),
      h('button', { type: 'button', class: 'secondary', 'aria-pressed': String(!cam),
        onclick: () => this.toggle(room, 'camera', local.setCameraEnabled(!cam)) },
        cam ? 'Stop camera' : 'Start camera'),
      h('button', { type: 'button', class: 'danger', onclick: () => void this.session?.stop() }, 'Leave'));
  }

  private toggle(room: Room, what: string, change: Promise<unknown>): void {
    change
      .catch((err: unknown) => announce(`Your ${what} could not be changed: ${errorText(err)}. Check the browser's site settings.`))
      .finally(() => this.renderControls(room));
  }

    private detachPanels(): void {
    for (const panel of this.options.panels) panel.detach();
  }

  private showLeft(why: Left): void {
    this.detachPanels();
    this.reconnecting = false;
    this.waitingBox = null;
    this.tiles = null;
    const actions: Action[] = [];
    if (why.kind === 'signin') actions.push({ label: 'Sign in', href: signInUrl('expired') });
    if (why.canRejoin) actions.push({ label: 'Rejoin', onClick: () => void this.join() });
    actions.push(HOME);
    const panel = showProblem(why.title, why.message, actions, this.main ?? undefined);
    panel.dataset.left = why.kind;
    announce(why.title);
  }
}
