// What the console's sections share: the meeting they act on, its REST calls, and the
// signed-in person's role in it, which decides the controls each section offers.

import type { Participant, Room } from 'livekit-client';

export const ROLE_ATTRIBUTE = 'role';
export const MODERATORS = new Set(['host', 'cohost']);

export function roleOf(participant: Participant): string {
  return participant.attributes[ROLE_ATTRIBUTE] ?? 'participant';
}

export interface HostContext {
  readonly meetingId: string;
  /** 'host' or 'cohost' while the console shows (anything else hides it). */
  readonly myRole: string;
  /** The meeting room; null while detached, so that late answers are not drawn. */
  readonly room: Room | null;
  /** `POST /api/v1/meetings/{id}/<path>`. */
  post(path: string, body?: unknown): Promise<unknown>;
  /** `GET /api/v1/meetings/{id}/<path>`. */
  get(path: string): Promise<unknown>;
}
