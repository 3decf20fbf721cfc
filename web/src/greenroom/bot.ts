// The echo bot in the green room (lk/greenroom.py): finding it, reading its topics, and the
// RPCs that switch the echo's mode, the preview and the blur, or ask for the report. The
// switches show what the bot answers, not what was clicked, so that they never claim a
// blur the server cannot do.

import { ConnectionState, RpcError, Track, type RemoteParticipant, type Room } from 'livekit-client';

import { AGENT_NAME_ATTRIBUTE, findBot, parseJson } from '../session';
import {
  ECHO_AGENT,
  RPC_GET_REPORT,
  RPC_SET_AUDIO_MODE,
  RPC_SET_BLUR,
  RPC_SET_PREVIEW,
  TOPIC_LEVEL,
  TOPIC_REPORT,
  TOPIC_STATE,
  UNAVAILABLE,
  readLevel,
  readReport,
  readState,
  rpcProblem,
  type GreenRoomState,
} from './protocol';
import type { GreenRoomView } from './view';

const EARLY_REPORT_MS = 5_000;
const RPC_TIMEOUT_MS = 10_000;

export interface BotEvents {
  /** The bot answers RPCs from now on. */
  ready(room: Room): void;
  /** Its mode, phase or switches changed. */
  stateChanged(): void;
}

function readAnswer(answer: string): Record<string, unknown> | null {
  return parseJson(new TextEncoder().encode(answer));
}

export class EchoBot {
  participant: RemoteParticipant | null = null;
  ready = false;
  state: GreenRoomState | null = null;
  /** Its latest reading of my microphone (dBFS), and when it came. */
  level: number | null = null;
  levelAt = 0;
  // Once the bot says it cannot blur, the switch stays off, after a reconnect too.
  private blurAvailable = true;
  private readyAt = 0;
  private readonly calls = new Map<string, number>(); // per RPC method: the latest call

  constructor(
    private readonly view: GreenRoomView,
    private readonly room: () => Room | null,
    private readonly events: BotEvents,
  ) {}

  get canBlur(): boolean {
    return this.blurAvailable;
  }

  look(): void {
    const room = this.room();
    if (!room || room.state !== ConnectionState.Connected) return;
    const bot = findBot(room, ECHO_AGENT);
    if (!bot) return;
    if (bot !== this.participant) {
      this.participant = bot;
      this.ready = false;
    }
    // It answers RPCs once its echo track is published (the protocol).
    const published = [...bot.trackPublications.values()].some((p) => p.kind === Track.Kind.Audio);
    if (published && !this.ready) {
      this.ready = true;
      void this.onReady(room);
    }
  }

  forget(): void {
    this.participant = null;
    this.ready = false;
    this.state = null;
  }

  /** A report from the bot's first seconds: its checks have barely started. */
  early(): boolean {
    return performance.now() - this.readyAt < EARLY_REPORT_MS;
  }

  onData(payload: Uint8Array, from: RemoteParticipant | undefined, topic: string | undefined): void {
    if (from && from.attributes[AGENT_NAME_ATTRIBUTE] !== ECHO_AGENT) return;
    if (topic === TOPIC_LEVEL) {
      const level = readLevel(parseJson(payload));
      if (!level) return;
      this.levelAt = performance.now();
      this.level = level.rmsDbfs;
      this.view.level.set(level.rmsDbfs);
    } else if (topic === TOPIC_STATE) {
      const state = readState(parseJson(payload));
      if (state) this.applyState(state);
    } else if (topic === TOPIC_REPORT) {
      const report = readReport(parseJson(payload));
      if (report) this.view.report.show(report, this.early());
    }
  }

  async setMode(fromSeconds: boolean): Promise<void> {
    if (fromSeconds && this.view.mode() === 'live') return; // used by the next playback
    const seconds = this.secondsWanted();
    if (seconds === null) {
      this.view.audioError.textContent = 'Choose between 1 and 30 seconds to record.';
      return;
    }
    await this.rpcState(RPC_SET_AUDIO_MODE, { mode: this.view.mode(), seconds }, this.view.audioError, 'the echo');
  }

  async setPreview(enabled: boolean): Promise<void> {
    await this.rpcState(RPC_SET_PREVIEW, { enabled }, this.view.videoError, 'the preview');
  }

  async setBlur(enabled: boolean): Promise<void> {
    const ok = await this.rpcState(RPC_SET_BLUR, { enabled }, this.view.videoError, 'background blur');
    if (!ok && !this.blurAvailable) this.view.blurToggle.disabled = true;
  }

  async refreshReport(): Promise<void> {
    try {
      const report = readReport(readAnswer(await this.rpc(RPC_GET_REPORT, {})));
      if (report) this.view.report.show(report, this.early());
    } catch (err) {
      this.view.report.error.textContent = rpcProblem(err, 'the report');
    }
  }

  private async onReady(room: Room): Promise<void> {
    this.readyAt = performance.now();
    this.events.ready(room);
    // The page's choice of mode wins (it matters after a reconnect); the answer says the phase.
    // The report comes by itself every 2 s, once the bot has something to say.
    await this.rpcState(RPC_SET_AUDIO_MODE, { mode: this.view.mode(), seconds: this.secondsWanted() ?? 6 }, this.view.audioError, 'the echo');
  }

  private applyState(state: GreenRoomState): void {
    this.state = state;
    this.view.showMode(state.mode, state.seconds);
    this.view.showPhase(state.phase, state.seconds);
    this.view.previewToggle.checked = state.preview;
    this.view.blurToggle.checked = state.blur;
    this.events.stateChanged();
  }

  private secondsWanted(): number | null {
    const value = Number(this.view.seconds.value);
    return Number.isFinite(value) && value >= 1 && value <= 30 ? value : null;
  }

  /** Calls the bot with a request that answers with its state; false if it failed. */
  private async rpcState(method: string, body: unknown, errorAt: HTMLElement, feature: string): Promise<boolean> {
    const call = (this.calls.get(method) ?? 0) + 1;
    this.calls.set(method, call);
    try {
      const answer = await this.rpc(method, body);
      if (this.calls.get(method) !== call) return true; // a later call's answer decides
      const state = readState(readAnswer(answer));
      if (state) this.applyState(state);
      errorAt.textContent = '';
      return true;
    } catch (err) {
      if (err instanceof RpcError && err.code === UNAVAILABLE && method === RPC_SET_BLUR) this.blurAvailable = false;
      errorAt.textContent = rpcProblem(err, feature);
      if (this.state) this.applyState(this.state); // the switches back to what the bot does
      else this.view.showMode('live', this.secondsWanted() ?? 6);
      return false;
    }
  }

  private async rpc(method: string, body: unknown): Promise<string> {
    const room = this.room();
    const bot = this.participant;
    if (!room || !bot || !this.ready) throw new Error('the echo bot is not here yet; wait for it to join');
    const call = (): Promise<string> => room.localParticipant.performRpc({
      destinationIdentity: bot.identity,
      method,
      payload: JSON.stringify(body),
      responseTimeout: RPC_TIMEOUT_MS,
    });
    try {
      return await call();
    } catch (err) {
      // Just published, the bot may not have its methods yet: once more, a moment later.
      if (!(err instanceof RpcError) || err.code !== RpcError.ErrorCode.UNSUPPORTED_METHOD) throw err;
      await new Promise((resolve) => window.setTimeout(resolve, 1000));
      return call();
    }
  }
}
