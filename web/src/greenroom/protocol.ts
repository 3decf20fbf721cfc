// The green room's wire protocol as the page speaks it (talkplatform_agents/lk/greenroom.py):
// the bot's topics and RPC methods, their payloads read defensively, and RPC errors in words.

import { RpcError } from 'livekit-client';

import { errorText } from '../errors';

export const ECHO_AGENT = 'greenroom-echo';
export const ECHO_TRACK = 'echo';
export const PREVIEW_TRACK = 'preview';

export const TOPIC_LEVEL = 'tp.greenroom.level';
export const TOPIC_STATE = 'tp.greenroom.state';
export const TOPIC_REPORT = 'tp.greenroom.report';

export const RPC_SET_AUDIO_MODE = 'greenroom.set_audio_mode';
export const RPC_SET_PREVIEW = 'greenroom.set_preview';
export const RPC_SET_BLUR = 'greenroom.set_blur';
export const RPC_GET_REPORT = 'greenroom.get_report';

export const INVALID_PAYLOAD = 2400;
export const FORBIDDEN = 2403;
export const TOO_MANY_REQUESTS = 2429;
export const UNAVAILABLE = 2503;

export type Mode = 'live' | 'playback';
export type Phase = 'live' | 'recording' | 'playing';

export interface GreenRoomState {
  mode: Mode;
  phase: Phase;
  seconds: number;
  preview: boolean;
  blur: boolean;
}

export interface Level {
  rmsDbfs: number | null;
  peakDbfs: number | null;
}

export interface MicReport {
  status: string | null;
  rms_dbfs: number | null;
  peak_dbfs: number | null;
}

export interface CameraReport {
  status: string | null;
  width: number | null;
  height: number | null;
  fps: number | null;
  analysed_fps: number | null;
}

export interface NetworkFigures {
  rtt_ms: number | null;
  jitter_ms: number | null;
  loss_pct: number | null;
  bitrate_kbps: number | null;
}

export interface Spread {
  min: number | null;
  avg: number | null;
  max: number | null;
  samples: number;
}

export type Verdict = 'good' | 'fair' | 'poor';

/** The bot's report as read: every part that is missing or malformed is null (or left out),
 * so that the page shows what is valid and never trips over the rest. */
export interface Report {
  verdict: Verdict | null;
  reasons: string[];
  microphone: MicReport | null;
  camera: CameraReport | null;
  network: NetworkFigures | null;
  network_summary: Partial<Record<keyof NetworkFigures, Spread>>;
  audio_mode?: Mode;
  preview?: boolean;
  blur?: boolean;
}

const FIGURES: Array<keyof NetworkFigures> = ['rtt_ms', 'jitter_ms', 'loss_pct', 'bitrate_kbps'];

function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function str(value: unknown): string | null {
  return typeof value === 'string' && value ? value : null;
}

function record(value: unknown): Record<string, unknown> | null {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

export function readLevel(body: Record<string, unknown> | null): Level | null {
  if (!body) return null;
  return { rmsDbfs: num(body.rms_dbfs), peakDbfs: num(body.peak_dbfs) };
}

export function readState(body: Record<string, unknown> | null): GreenRoomState | null {
  if (!body) return null;
  const { mode, phase, seconds, preview, blur } = body;
  if (mode !== 'live' && mode !== 'playback') return null;
  if (phase !== 'live' && phase !== 'recording' && phase !== 'playing') return null;
  return {
    mode,
    phase,
    seconds: num(seconds) ?? 6,
    preview: preview === true,
    blur: blur === true,
  };
}

function readMic(value: unknown): MicReport | null {
  const mic = record(value);
  if (!mic) return null;
  const read = { status: str(mic.status), rms_dbfs: num(mic.rms_dbfs), peak_dbfs: num(mic.peak_dbfs) };
  return read.status === null && read.rms_dbfs === null ? null : read;
}

function readCamera(value: unknown): CameraReport | null {
  const cam = record(value);
  if (!cam) return null;
  const read = {
    status: str(cam.status),
    width: num(cam.width),
    height: num(cam.height),
    fps: num(cam.fps),
    analysed_fps: num(cam.analysed_fps),
  };
  return read.status === null && read.width === null ? null : read;
}

function readNetwork(value: unknown): NetworkFigures | null {
  const net = record(value);
  if (!net) return null;
  return { rtt_ms: num(net.rtt_ms), jitter_ms: num(net.jitter_ms), loss_pct: num(net.loss_pct), bitrate_kbps: num(net.bitrate_kbps) };
}

function readSummary(value: unknown): Report['network_summary'] {
  const summary = record(value);
  const read: Report['network_summary'] = {};
  if (!summary) return read;
  for (const figure of FIGURES) {
    const spread = record(summary[figure]);
    if (!spread) continue;
    read[figure] = { min: num(spread.min), avg: num(spread.avg), max: num(spread.max), samples: num(spread.samples) ?? 0 };
  }
  return read;
}

/** The report (`greenroom.get_report`, `tp.greenroom.report`), each field checked for its
 * type; null when nothing in it is usable. */
export function readReport(body: Record<string, unknown> | null): Report | null {
  if (!body) return null;
  const { verdict, audio_mode: mode, preview, blur } = body;
  const report: Report = {
    verdict: verdict === 'good' || verdict === 'fair' || verdict === 'poor' ? verdict : null,
    reasons: Array.isArray(body.reasons) ? body.reasons.filter((r): r is string => typeof r === 'string' && r !== '') : [],
    microphone: readMic(body.microphone),
    camera: readCamera(body.camera),
    network: readNetwork(body.network),
    network_summary: readSummary(body.network_summary),
  };
  if (mode === 'live' || mode === 'playback') report.audio_mode = mode;
  if (typeof preview === 'boolean') report.preview = preview;
  if (typeof blur === 'boolean') report.blur = blur;
  const usable = report.verdict !== null || report.microphone !== null || report.camera !== null || report.network !== null;
  return usable ? report : null;
}

/** What went wrong with a call to the bot, in words a person can act on. `feature` names
 * what the call was for ("background blur"), for the 2503 answer. */
export function rpcProblem(err: unknown, feature = 'this feature'): string {
  if (!(err instanceof RpcError)) return `The green room could not do that: ${errorText(err)}`;
  switch (err.code) {
    case TOO_MANY_REQUESTS:
      return 'Too many requests at once: wait a moment, then try again.';
    case INVALID_PAYLOAD:
      return `The green room did not accept that request (${err.message}).`;
    case FORBIDDEN:
      return 'Only the owner of this green room can change it. Sign in as yourself and open your own green room.';
    case UNAVAILABLE:
      return feature === 'background blur'
        ? 'Background blur is not available on this server (it has no blur model). Your camera works without it.'
        : `${capital(feature)} is not available on this server (${err.message}).`;
    case RpcError.ErrorCode.UNSUPPORTED_METHOD:
      return 'The echo bot is still starting: try again in a moment.';
    case RpcError.ErrorCode.RECIPIENT_NOT_FOUND:
    case RpcError.ErrorCode.RECIPIENT_DISCONNECTED:
      return 'The echo bot is not in your green room right now: wait for it to come back, or reconnect.';
    case RpcError.ErrorCode.CONNECTION_TIMEOUT:
    case RpcError.ErrorCode.RESPONSE_TIMEOUT:
      return 'The echo bot did not answer in time: try again.';
    default:
      return `The green room could not do that: ${err.message} (code ${err.code}).`;
  }
}

export function capital(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
