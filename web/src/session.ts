// A person's way into a meeting: the token request, the lobby while the waiting room holds
// them (lk/waiting.py's tp.waiting.* topics), the move into the meeting when admitted, and
// why they left. The guest page and the host console both use it.

import {
  ConnectionState,
  DisconnectReason,
  Room,
  RoomEvent,
  type RemoteParticipant,
  type RoomOptions,
} from 'livekit-client';

import { api, ApiError, type TokenResponse } from './api';
import { errorText } from './errors';

export const TOPIC_STATUS = 'tp.waiting.status';
export const TOPIC_LOBBY_MESSAGE = 'tp.waiting.message';
export const TOPIC_LOBBY_CHAT = 'tp.waiting.chat';
export const AGENT_NAME_ATTRIBUTE = 'lk.agent.name';
export const ACTIVE_ATTRIBUTE = 'tp.bot.active';
export const CHAT_AGENT = 'chat-relay';

/** Why a person is no longer in the meeting, in words they can act on. */
export interface Left {
  kind: 'removed' | 'ended' | 'denied' | 'locked' | 'lost' | 'replaced' | 'left' | 'unknown' | 'gone' | 'signin';
  title: string;
  message: string;
  /** Whether joining again may work (a "Rejoin" button). */
  canRejoin: boolean;
}

export interface WaitingStatus {
  status: 'waiting_for_host' | 'waiting' | string;
}

export interface SessionHandlers {
  /** In the lobby: the latest status (`waiting_for_host`, `waiting`). */
  waiting(status: string, room: Room): void;
  /** A host's message to those waiting. */
  hostMessage(from: string, text: string): void;
  /** In the meeting room, connected. Called again after a return to the lobby and a new admission. */
  joined(room: Room, token: TokenResponse): void;
  /** Out for good (until a rejoin). */
  left(why: Left): void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const ROOM_OPTIONS: RoomOptions = {
  adaptiveStream: true,
  dynacast: true,
  publishDefaults: { simulcast: true },
};

/** The bot in `room` whose agent name is `agentName` (the active one if there are two). */
export function findBot(room: Room, agentName: string): RemoteParticipant | undefined {
  let found: RemoteParticipant | undefined;
  for (const participant of room.remoteParticipants.values()) {
    if (participant.attributes[AGENT_NAME_ATTRIBUTE] !== agentName) continue;
    if (participant.attributes[ACTIVE_ATTRIBUTE] === '1') return participant;
    found ??= participant;
  }
  return found;
}

export function sendJson(room: Room, topic: string, body: unknown, to?: string[]): Promise<void> {
  const payload = encoder.encode(JSON.stringify(body));
  return room.localParticipant.publishData(payload, {
    reliable: true,
    topic,
    destinationIdentities: to,
  });
}

export function parseJson(payload: Uint8Array): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(decoder.decode(payload));
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export function leftForTokenError(err: unknown): Left {
  if (err instanceof ApiError) {
    const reason = (err.body as { error?: { reason?: string } } | null)?.error?.reason;
    if (err.status === 401) {
      return { kind: 'signin', title: 'Please sign in again', message: err.message, canRejoin: false };
    }
    if (err.status === 404) {
      return { kind: 'unknown', title: 'No such meeting', message: 'This meeting does not exist. Check the link you were given.', canRejoin: false };
    }
    if (err.status === 410) {
      return { kind: 'gone', title: 'This meeting has ended', message: 'The host has ended this meeting.', canRejoin: false };
    }
    if (err.status === 403 && reason === 'locked') {
      return { kind: 'locked', title: 'The meeting is locked', message: 'A host has locked this meeting. Ask them to unlock it, then try again.', canRejoin: true };
    }
    if (err.status === 403 && reason === 'denied') {
      return { kind: 'denied', title: 'You were not let in', message: 'A host declined your request to join this meeting.', canRejoin: false };
    }
    if (err.status === 403 && reason === 'removed') {
      return { kind: 'removed', title: 'You were removed from this meeting', message: 'A host removed you from this meeting, so you cannot join it again.', canRejoin: false };
    }
    if (err.status === 429) {
      return { kind: 'lost', title: 'Too many attempts', message: 'Please wait a moment, then try again.', canRejoin: true };
    }
    return { kind: 'lost', title: 'Could not join', message: err.message, canRejoin: true };
  }
  return { kind: 'lost', title: 'Could not join', message: String(err), canRejoin: true };
}

function leftForDisconnect(reason: DisconnectReason | undefined): Left {
  switch (reason) {
    case DisconnectReason.PARTICIPANT_REMOVED:
      return { kind: 'removed', title: 'You were removed from the meeting', message: 'A host removed you from this meeting.', canRejoin: false };
    case DisconnectReason.ROOM_DELETED:
    case DisconnectReason.ROOM_CLOSED:
      return { kind: 'ended', title: 'The meeting has ended', message: 'The host ended this meeting. Thank you for joining.', canRejoin: false };
    case DisconnectReason.DUPLICATE_IDENTITY:
      return { kind: 'replaced', title: 'You joined somewhere else', message: 'You joined this meeting from another tab or device, so this one left.', canRejoin: true };
    case DisconnectReason.CLIENT_INITIATED:
      return { kind: 'left', title: 'You left the meeting', message: 'You can join again while the meeting goes on.', canRejoin: true };
    default:
      return { kind: 'lost', title: 'The connection was lost', message: 'Your connection to the meeting dropped. Check your network, then rejoin.', canRejoin: true };
  }
}

/** One person's visit to a meeting: `start()` asks for a token and follows the door. */
export class MeetingSession {
  room: Room | null = null;
  token: TokenResponse | null = null;
  private moving = false;
  // The lobby's latest word, which may come while the room is still connecting.
  private lobbyStatus: string | null = null;
  private stopped = false;

  constructor(
    readonly meetingId: string,
    private readonly handlers: SessionHandlers,
    private readonly options: RoomOptions = ROOM_OPTIONS,
  ) {}

  async start(): Promise<void> {
    this.stopped = false;
    let token: TokenResponse;
    try {
      token = await api.meetingToken(this.meetingId);
    } catch (err) {
      this.handlers.left(leftForTokenError(err));
      return;
    }
    await this.enter(token);
  }

  /** Leave on purpose (the "Leave" button, the page closing). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.room?.disconnect();
  }

  /** Send a waiting participant's note to the hosts: how many hosts it reached. The
   * service relays it and says whether it went, whichever bot serves the lobby (a
   * duplicate about to leave would have taken a note sent to it along). */
  async sendToHosts(text: string): Promise<number> {
    if (!this.room) throw new Error('not connected');
    return (await api.noteToHosts(this.meetingId, text)).hostsReached;
  }

  private async enter(token: TokenResponse): Promise<void> {
    this.token = token;
    this.lobbyStatus = null;
    const room = new Room(this.options);
    this.room = room;
    const inLobby = token.status === 'waiting';
    room.on(RoomEvent.DataReceived, (payload, participant, _kind, topic) => {
      // The door speaks through the server API, so its packets come from no participant.
      // Any participant may publish data on these topics: one that could would otherwise
      // send everyone out of the meeting, or into a room of its choosing.
      if (participant !== undefined) return;
      if (topic === TOPIC_STATUS) this.onStatus(room, parseJson(payload), inLobby);
      else if (topic === TOPIC_LOBBY_MESSAGE && inLobby) {
        const body = parseJson(payload);
        if (body && typeof body.text === 'string') {
          this.handlers.hostMessage(typeof body.from === 'string' ? body.from : 'Host', body.text);
        }
      }
    });
    room.on(RoomEvent.Disconnected, (reason) => {
      if (this.room !== room || this.moving) return;
      this.room = null;
      this.handlers.left(this.stopped ? leftForDisconnect(DisconnectReason.CLIENT_INITIATED) : leftForDisconnect(reason));
    });
    try {
      await room.connect(token.wsUrl, token.token);
    } catch (err) {
      if (this.room !== room) return; // left on purpose, or moved on, while connecting
      this.room = null;
      this.handlers.left({ kind: 'lost', title: 'Could not connect', message: `The media server could not be reached: ${errorText(err)}`, canRejoin: true });
      return;
    }
    if (this.room !== room) return; // moved on (admitted, denied) while connecting
    if (inLobby) this.handlers.waiting(this.lobbyStatus ?? 'waiting', room);
    else this.handlers.joined(room, token);
  }

  private onStatus(room: Room, body: Record<string, unknown> | null, inLobby: boolean): void {
    if (!body || typeof body.status !== 'string') return;
    const status = body.status;
    if ((status === 'admitted' && inLobby) || (status === 'returned' && !inLobby)) {
      const next = this.nextToken(body, status === 'admitted' ? 'joined' : 'waiting');
      if (next) void this.move(room, next);
      return;
    }
    if (!inLobby) return;
    if (status === 'denied') {
      const reason = typeof body.reason === 'string' && body.reason ? ` The host said: “${body.reason}”` : '';
      void this.leaveWith(room, { kind: 'denied', title: 'You were not let in', message: `A host declined your request to join.${reason}`, canRejoin: false });
    } else if (status === 'ended') {
      void this.leaveWith(room, { kind: 'ended', title: 'The meeting has ended', message: 'The meeting ended before you were let in.', canRejoin: false });
    } else {
      this.lobbyStatus = status;
      if (room.state === ConnectionState.Connected) this.handlers.waiting(status, room);
    }
  }

  private nextToken(body: Record<string, unknown>, status: 'joined' | 'waiting'): TokenResponse | null {
    const { token, wsUrl, room } = body;
    if (typeof token !== 'string' || typeof wsUrl !== 'string' || typeof room !== 'string') return null;
    const previous = this.token;
    // Only ever this meeting's own rooms, on the server this page already uses.
    const expected = `meeting-${this.meetingId}` + (status === 'waiting' ? '-lobby' : '');
    if (room !== expected || (previous && wsUrl !== previous.wsUrl)) return null;
    return {
      status,
      token,
      wsUrl,
      room,
      identity: previous?.identity ?? '',
      name: previous?.name ?? '',
      expiresAt: previous?.expiresAt ?? '',
      metadata: previous?.metadata ?? { role: 'participant', permissions: {} },
    };
  }

  private async move(from: Room, next: TokenResponse): Promise<void> {
    this.moving = true;
    try {
      await from.disconnect();
    } finally {
      this.moving = false;
    }
    if (this.room === from) this.room = null;
    await this.enter(next);
  }

  private async leaveWith(room: Room, why: Left): Promise<void> {
    this.moving = true;
    try {
      await room.disconnect();
    } finally {
      this.moving = false;
    }
    this.room = null;
    this.handlers.left(why);
  }
}
