// The checks that need the network: the service, the sign-in and the media server's status,
// then the green room's token, the connection and the sending of the tracks. Each failure is
// said in the checklist with what to do about it, since a person at this page is about to
// join a meeting and needs the fix, not the error. `stale` says a newer run of the checks has
// begun: a stale step says nothing, so that it cannot overwrite the newer run's words.

import type { Room } from 'livekit-client';

import { ApiError, api, call, type Claims, type TokenResponse } from '../api';
import { errorText } from '../errors';
import { signInAgain, time } from '../ui';
import type { Checklist } from './checklist';
import type { Devices } from './devices';
import type { ButtonAction, GreenRoomView } from './view';

interface ConnectionInfo {
  wsUrl: string;
  iceServers: Array<{ urls: string[]; username?: string | null; credential?: string | null }>;
  server: 'ok' | 'degraded' | 'unreachable';
  serverDetail: string;
}

export function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

export async function checkService(checks: Checklist): Promise<void> {
  checks.set('service', 'running');
  try {
    const health = await call<{ status: string; database: string }>('GET', '/healthz');
    checks.set('service', 'pass', `It answers (database ${health.database}).`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 503) {
      checks.set('service', 'warn', 'It answers, but its database is unreachable.',
        'Your green room still works; meetings may not start until the database is back. Try again in a few minutes.');
    } else {
      checks.set('service', 'fail', `It does not answer (${errorText(err)}).`,
        'Check your internet connection (or VPN), then run the checks again.');
    }
  }
}

/** Signed in, and the media server's status; 'signin' when the sign-in is refused. */
export async function checkServer(view: GreenRoomView, user: Claims): Promise<ConnectionInfo | 'signin' | null> {
  const checks = view.checklist;
  checks.set('signin', 'running');
  checks.set('livekit', 'running');
  let info: ConnectionInfo;
  try {
    info = await call<ConnectionInfo>('GET', '/api/v1/livekit/connection-info');
  } catch (err) {
    if (err instanceof ApiError && err.needsSignIn) {
      checks.set('signin', 'fail', 'Your sign-in has expired or was refused.', 'Sign in again.', signInAgain());
      checks.set('livekit', 'fail', 'Not checked: it needs you signed in.', 'Sign in, then come back here.');
      view.status('Please sign in again: your sign-in has expired.', 'bad');
      return 'signin';
    }
    checks.set('signin', 'pass', `As ${user.name ?? user.sub}.`);
    checks.set('livekit', 'fail', `Its status could not be read: ${errorText(err)}`,
      'Check your internet connection, then run the checks again.');
    return null;
  }
  checks.set('signin', 'pass', `As ${user.name ?? user.sub}, until ${time(user.exp * 1000)}.`);
  const urls = info.iceServers.flatMap((server) => server.urls);
  const relay = urls.some((url) => url.startsWith('turn:') || url.startsWith('turns:'))
    ? 'A relay (TURN) is offered for strict networks.'
    : 'No relay (TURN) is offered: a strict firewall may block media.';
  const detail = info.serverDetail ? ` (${info.serverDetail})` : '';
  const host = hostOf(info.wsUrl);
  if (info.server === 'ok') {
    checks.set('livekit', 'pass', `${host} answers${detail}. ${relay}`);
  } else if (info.server === 'degraded') {
    checks.set('livekit', 'warn', `${host} answers with a problem${detail}. ${relay}`,
      'Meetings may fail to start: try again in a few minutes, or tell your administrator.');
  } else {
    checks.set('livekit', 'fail', `${host} does not answer${detail}.`,
      'Meetings cannot start until it is back: try again in a few minutes, or tell your administrator.');
  }
  return info;
}

/** The green room's token; null if refused (said in the checks) or stale. */
export async function requestRoom(view: GreenRoomView, stale: () => boolean): Promise<TokenResponse | null> {
  const checks = view.checklist;
  checks.set('connect', 'running', 'Asking for your green room…');
  view.status('Connecting to your green room…');
  let token: TokenResponse;
  try {
    token = await api.greenroomToken();
  } catch (err) {
    if (stale()) return null;
    if (err instanceof ApiError && err.needsSignIn) {
      checks.set('connect', 'fail', 'Your sign-in has expired.', 'Sign in again.', signInAgain());
    } else if (err instanceof ApiError && err.status === 429) {
      checks.set('connect', 'fail', 'Too many attempts in a short time.', 'Wait a minute, then run the checks again.');
    } else {
      checks.set('connect', 'fail', `No green room: ${errorText(err)}`, 'Run the checks again in a moment.');
    }
    view.status('Your green room could not be opened: see the checks.', 'bad');
    return null;
  }
  return stale() ? null : token;
}

/** Connects `room`; false if it failed (said in the checks, unless stale). */
export async function joinRoom(
  view: GreenRoomView,
  room: Room,
  token: TokenResponse,
  stale: () => boolean,
  reconnect: ButtonAction,
): Promise<boolean> {
  const checks = view.checklist;
  const host = hostOf(token.wsUrl);
  checks.set('connect', 'running', `Connecting to ${host}…`);
  try {
    await room.connect(token.wsUrl, token.token);
  } catch (err) {
    if (stale()) return false;
    checks.set('connect', 'fail', `${host} could not be reached: ${errorText(err)}`,
      'A firewall or VPN may block it: try another network, or ask your administrator to allow WebSocket and UDP traffic to it.',
      reconnect);
    view.status('Could not connect to the media server: see the checks.', 'bad', reconnect);
    return false;
  }
  if (!stale()) checks.set('connect', 'pass', `Connected to ${host}.`);
  return true;
}

/** Sends the camera and microphone; a missing one is a warning, both missing a failure. */
export async function publish(
  checks: Checklist,
  room: Room,
  devices: Devices,
  stale: () => boolean,
  reconnect: ButtonAction,
): Promise<void> {
  checks.set('publish', 'running');
  const sent: string[] = [];
  try {
    if (devices.audio) {
      await room.localParticipant.publishTrack(devices.audio);
      sent.push('microphone');
    }
    if (devices.video) {
      await room.localParticipant.publishTrack(devices.video);
      sent.push('camera');
    }
  } catch (err) {
    if (stale()) return;
    checks.set('publish', 'fail', `Sending failed: ${errorText(err)}`,
      'A firewall may block media (UDP): try another network, then reconnect.', reconnect);
    return;
  }
  if (stale()) return;
  if (sent.length === 2) checks.set('publish', 'pass', 'Your microphone and camera are sent.');
  else if (sent.length === 1) {
    checks.set('publish', 'warn', `Only your ${sent[0]} is sent.`,
      `Fix the ${sent[0] === 'camera' ? 'microphone' : 'camera'} (see above), then run the checks again.`);
  } else {
    checks.set('publish', 'fail', 'Nothing is sent: no camera and no microphone.',
      'Allow or connect a camera and a microphone, then run the checks again.');
  }
}
