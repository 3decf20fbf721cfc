// /app/greenroom: the device check before a meeting. The person sees their camera, hears
// themselves come back through the echo bot (live, or recorded then played back), reads the
// bot's level meter and report, and runs the checks a browser can run on its own.
// Protocol: talkplatform_agents/lk/greenroom.py. This module runs the checks in order and
// follows the room; the steps are in greenroom/preflight.ts and devices.ts, the bot in
// bot.ts, what it sends back in echo.ts.

import { DisconnectReason, Room, RoomEvent } from 'livekit-client';

import type { Claims } from '../api';
import { errorText } from '../errors';
import { EchoBot } from '../greenroom/bot';
import { closeDevices, devicesEnded, openDevices, type Devices } from '../greenroom/devices';
import { EchoPlayer } from '../greenroom/echo';
import { checkServer, checkService, joinRoom, publish, requestRoom } from '../greenroom/preflight';
import { ECHO_AGENT } from '../greenroom/protocol';
import { GreenRoomView, type ButtonAction } from '../greenroom/view';
import { AGENT_NAME_ATTRIBUTE, ROOM_OPTIONS } from '../session';
import { frame, requireUser } from '../ui';

const BOT_SLOW_MS = 15_000;
const BOT_MISSING_MS = 45_000;
const ECHO_SLOW_MS = 15_000;

class GreenRoomPage {
  private readonly view: GreenRoomView;
  private readonly bot: EchoBot;
  private readonly echo: EchoPlayer;
  private run = 0; // bumped by every (re)start: a stale run's callbacks do nothing
  private room: Room | null = null;
  private devices: Devices = { audio: null, video: null };
  private timers: number[] = [];
  private readonly reconnectAction: ButtonAction = { label: 'Reconnect', onClick: () => void this.reconnect() };

  constructor(private readonly user: Claims) {
    this.view = new GreenRoomView({
      again: () => void this.start(),
      reconnect: () => void this.reconnect(),
      startSound: () => void this.echo.startSound(),
      setMode: (fromSeconds) => void this.bot.setMode(fromSeconds),
      setPreview: (enabled) => void this.bot.setPreview(enabled),
      setBlur: (enabled) => void this.bot.setBlur(enabled),
      refreshReport: () => void this.bot.refreshReport(),
    });
    const room = (): Room | null => this.room;
    this.bot = new EchoBot(this.view, room, {
      ready: (ready) => this.botReady(ready),
      stateChanged: () => {
        if (this.bot.ready && this.room) this.showReady();
      },
    });
    this.echo = new EchoPlayer(this.view, this.bot, room);
    frame('Green room', user, ...this.view.content);
    window.addEventListener('pagehide', () => void this.room?.disconnect());
  }

  // -- the checks, in order --------------------------------------------------------------

  async start(): Promise<void> {
    const run = ++this.run;
    const stale = (): boolean => run !== this.run;
    await this.leaveRoom();
    this.stopDevices();
    this.view.checklist.reset();
    this.view.deviceProblem(null);
    this.view.connectionLost(null);
    this.view.status('Checking the service…');
    await checkService(this.view.checklist);
    if (stale()) return;
    const info = await checkServer(this.view, this.user);
    if (stale() || info === 'signin') return;
    this.view.status('Asking for your camera and microphone…');
    const devices = await openDevices(this.view, stale);
    if (stale()) return;
    this.devices = devices;
    await this.connect(run);
  }

  private async connect(run: number): Promise<void> {
    const stale = (): boolean => run !== this.run;
    const token = await requestRoom(this.view, stale);
    if (!token) return;
    // The camera and microphone outlive a lost connection: a reconnect sends them again.
    const room = new Room({ ...ROOM_OPTIONS, stopLocalTrackOnUnpublish: false });
    this.room = room;
    this.listen(room);
    if (!(await joinRoom(this.view, room, token, stale, this.reconnectAction))) {
      if (!stale()) this.room = null;
      return;
    }
    if (stale()) {
      await room.disconnect(false);
      return;
    }
    await publish(this.view.checklist, room, this.devices, stale, this.reconnectAction);
    if (stale()) return;
    this.waitForBot(room);
  }

  private waitForBot(room: Room): void {
    const checks = this.view.checklist;
    this.view.status('Waiting for the echo bot…');
    this.view.showPhase(null);
    this.view.echo.idle('no bot yet');
    this.view.level.idle('no bot yet');
    if (this.devices.audio) checks.set('echo', 'running', 'Waiting for the echo bot to join…');
    else checks.set('echo', 'fail', 'No microphone, so nothing can come back.', 'Allow or connect a microphone, then run the checks again.');
    this.after(BOT_SLOW_MS, () => {
      if (this.bot.ready || this.room !== room) return;
      this.view.status('Still waiting for the echo bot… It can take a few seconds more when the service is busy.', 'warn');
      checks.set('echo', 'running', 'The echo bot has not joined yet: still waiting…');
    });
    this.after(BOT_MISSING_MS, () => {
      if (this.bot.ready || this.room !== room) return;
      this.view.status('The echo bot did not come. Reconnect to call it again.', 'bad', this.reconnectAction);
      checks.set('echo', 'fail', 'The echo bot did not join your green room.',
        'The service may be busy: reconnect, or try again in a few minutes.', this.reconnectAction);
    });
    this.bot.look();
  }

  // -- the room ----------------------------------------------------------------------------

  private listen(room: Room): void {
    const mine = (): boolean => this.room === room;
    room.on(RoomEvent.ParticipantConnected, () => mine() && this.bot.look());
    room.on(RoomEvent.ParticipantAttributesChanged, () => mine() && this.bot.look());
    room.on(RoomEvent.TrackPublished, () => mine() && this.bot.look());
    room.on(RoomEvent.TrackSubscribed, (track, publication, participant) => {
      if (!mine() || participant.attributes[AGENT_NAME_ATTRIBUTE] !== ECHO_AGENT) return;
      this.echo.subscribed(track, publication.trackName);
      this.bot.look();
    });
    room.on(RoomEvent.TrackUnsubscribed, (track) => mine() && this.echo.unsubscribed(track));
    room.on(RoomEvent.ParticipantDisconnected, (participant) => {
      if (!mine() || participant !== this.bot.participant) return;
      this.botGone();
      this.bot.look(); // a second bot may already be there
    });
    room.on(RoomEvent.DataReceived, (payload, participant, _kind, topic) => mine() && this.bot.onData(payload, participant, topic));
    room.on(RoomEvent.Reconnecting, () => mine() && this.view.status('The connection was interrupted: reconnecting…', 'warn'));
    room.on(RoomEvent.Reconnected, () => {
      if (!mine()) return;
      if (this.bot.ready) this.showReady();
      else this.view.status('Waiting for the echo bot…');
    });
    room.on(RoomEvent.AudioPlaybackStatusChanged, () => mine() && this.echo.checkSound());
    room.on(RoomEvent.MediaDevicesError, (err) => {
      if (!mine()) return;
      this.view.videoError.textContent = `A device stopped working: ${errorText(err)}. Run the checks again.`;
    });
    room.on(RoomEvent.Disconnected, (reason) => {
      if (!mine()) return;
      this.room = null;
      this.lost(reason);
    });
  }

  private lost(reason: DisconnectReason | undefined): void {
    this.clearTimers();
    this.botGone();
    this.view.controls(false);
    let text = 'The connection to your green room was lost.';
    if (reason === DisconnectReason.DUPLICATE_IDENTITY) {
      text = 'You opened the green room in another tab or on another device, so this one stopped.';
    } else if (reason === DisconnectReason.ROOM_DELETED || reason === DisconnectReason.ROOM_CLOSED) {
      text = 'Your green room was closed.';
    } else if (reason === DisconnectReason.PARTICIPANT_REMOVED) {
      text = 'The server ended your connection to the green room.';
    }
    this.view.connectionLost(`${text} Press “Reconnect” to open it again.`);
    this.view.status('Not connected.', 'bad');
    this.view.checklist.set('connect', 'fail', text, 'Press “Reconnect”. If it keeps happening, check your network.', this.reconnectAction);
    if (this.view.checklist.state('echo') !== 'pass') this.view.checklist.set('echo', 'pending');
  }

  /** A new connection with the same camera and microphone (or new ones if they ended). */
  async reconnect(): Promise<void> {
    if (devicesEnded(this.devices) || (!this.devices.audio && !this.devices.video)) {
      await this.start();
      return;
    }
    const run = ++this.run;
    await this.leaveRoom();
    this.view.connectionLost(null);
    this.view.checklist.reset('connect');
    await this.connect(run);
  }

  private async leaveRoom(): Promise<void> {
    this.clearTimers();
    const room = this.room;
    this.room = null;
    this.botGone();
    this.view.controls(false);
    if (room) await room.disconnect(false);
  }

  private stopDevices(): void {
    closeDevices(this.devices, this.view);
    this.devices = { audio: null, video: null };
  }

  // -- the bot -----------------------------------------------------------------------------

  private botReady(room: Room): void {
    this.view.controls(true, this.bot.canBlur);
    this.showReady();
    this.echo.checkSound();
    if (this.devices.audio && this.view.checklist.state('echo') !== 'pass') {
      this.view.checklist.set('echo', 'running', 'Listening: say something, and it should come back.');
    }
    this.after(ECHO_SLOW_MS, () => {
      if (this.room === room && this.devices.audio) this.echo.slow();
    });
  }

  private botGone(): void {
    if (this.bot.participant && this.room) {
      this.view.status('The echo bot left. Waiting for it to come back…', 'warn', this.reconnectAction);
    }
    this.bot.forget();
    this.echo.detach();
    this.view.controls(false);
    this.view.showPhase(null);
    this.view.level.idle('no bot');
    this.view.previewOff();
  }

  private showReady(): void {
    this.view.status(this.readyText(), this.devices.audio ? 'ok' : 'warn');
  }

  private readyText(): string {
    if (!this.devices.audio) return 'Connected, but without a microphone there is nothing to echo.';
    return this.bot.state?.mode === 'playback'
      ? 'Ready: speak, and you will hear the recording played back.'
      : 'Ready: speak, and you will hear yourself.';
  }

  // -- timers ----------------------------------------------------------------------------

  private after(ms: number, then: () => void): void {
    this.timers.push(window.setTimeout(then, ms));
  }

  private clearTimers(): void {
    for (const timer of this.timers) window.clearTimeout(timer);
    this.timers = [];
  }
}

function main(): void {
  const user = requireUser();
  if (!user) return;
  const page = new GreenRoomPage(user);
  void page.start();
}

main();
