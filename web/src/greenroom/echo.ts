// What the echo bot sends back: the echo of my voice, played (so that I hear it) and measured
// in the page (so that the "comes back" check passes on its own), and the preview video.
// Browsers keep sound off until the person acts, so "Turn on sound" shows while it is off.

import { Track, type RemoteTrack, type Room } from 'livekit-client';

import { errorText } from '../errors';
import type { EchoBot } from './bot';
import { audioContext, TrackLevel } from './meter';
import { PREVIEW_TRACK } from './protocol';
import type { GreenRoomView } from './view';

/** Above this, the echo counts as heard (a voice at arm's length is around -30 dBFS). */
const ECHO_HEARD_DBFS = -40;
const METER_MS = 100;

export class EchoPlayer {
  private echo: { track: RemoteTrack; element: HTMLMediaElement; level: TrackLevel } | null = null;
  private meterTimer = 0;

  constructor(
    private readonly view: GreenRoomView,
    private readonly bot: EchoBot,
    private readonly room: () => Room | null,
  ) {}

  /** A track of the bot's: the echo, or the preview (an unnamed video is the preview too). */
  subscribed(track: RemoteTrack, trackName: string): void {
    if (track.kind === Track.Kind.Audio) this.attachEcho(track);
    else if (track.kind === Track.Kind.Video && (trackName === PREVIEW_TRACK || !trackName)) this.attachPreview(track);
  }

  unsubscribed(track: RemoteTrack): void {
    if (this.echo?.track === track) this.detach();
    if (track.kind === Track.Kind.Video) {
      track.detach();
      this.view.previewOff();
    }
  }

  detach(): void {
    window.clearInterval(this.meterTimer);
    if (!this.echo) return;
    this.echo.level.close();
    this.echo.track.detach(this.echo.element);
    this.echo.element.remove();
    this.echo = null;
    this.view.echo.idle('no echo');
  }

  /** The echo has not come back in time: the likeliest reason, as a fix. */
  slow(): void {
    if (this.view.checklist.state('echo') === 'pass') return;
    let fix: string;
    if (audioContext().state !== 'running') fix = 'Press “Turn on sound” so that the page can play the echo, then speak.';
    else if (this.bot.level === null || this.bot.level < -55) fix = 'The echo bot hears silence: unmute your microphone or turn it up (or choose another one in your system settings), then speak.';
    else if (this.bot.state?.mode === 'playback') fix = 'In playback mode the echo comes after the recording: wait for “Playing back”, or choose “Live echo”.';
    else fix = 'Your voice reaches the echo bot but does not come back: reconnect, or try another network.';
    this.view.checklist.set('echo', 'fail', 'Nothing has come back yet (still listening).', fix);
  }

  checkSound(): void {
    const room = this.room();
    const suspended = audioContext().state !== 'running';
    const blocked = room ? !room.canPlaybackAudio : false;
    this.view.soundButton.hidden = !(suspended || blocked);
    if (suspended) void audioContext().resume().then(() => this.checkSound(), () => undefined);
  }

  async startSound(): Promise<void> {
    try {
      await audioContext().resume();
      await this.room()?.startAudio();
    } catch (err) {
      this.view.audioError.textContent = `The browser would not play sound: ${errorText(err)}`;
    }
    this.checkSound();
  }

  private attachEcho(track: RemoteTrack): void {
    this.detach();
    // Playing it in an element is what makes Chrome feed it to WebAudio, too.
    const element = track.attach();
    element.dataset.testid = 'echo-audio';
    this.view.audioSink.appendChild(element);
    this.echo = { track, element, level: new TrackLevel(track.mediaStreamTrack) };
    this.meterTimer = window.setInterval(() => this.read(), METER_MS);
    audioContext().onstatechange = () => this.checkSound();
    this.checkSound();
  }

  private attachPreview(track: RemoteTrack): void {
    const tile = this.view.previewTile;
    const video = track.attach() as HTMLVideoElement;
    video.muted = true;
    video.setAttribute('aria-label', 'What others will see: your camera as the green room sends it back');
    video.addEventListener('resize', () => { tile.dataset.state = 'showing'; });
    video.addEventListener('loadeddata', () => { tile.dataset.state = 'showing'; });
    this.view.showVideo(tile, video, '');
    tile.dataset.state = 'starting';
  }

  private read(): void {
    if (!this.echo) return;
    const dbfs = this.echo.level.dbfs();
    this.view.echo.set(dbfs);
    // The bot's own meter goes quiet when its readings stop: say so rather than freeze.
    if (performance.now() - this.bot.levelAt > 1500 && this.bot.ready) this.view.level.idle('no reading');
    if (dbfs !== null && dbfs > ECHO_HEARD_DBFS && this.view.checklist.state('echo') !== 'pass') {
      this.view.checklist.set('echo', 'pass', `Your voice came back at ${Math.round(dbfs)} dBFS.`);
    }
  }
}
