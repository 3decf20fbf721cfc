// The chat's wire, as talkplatform_agents/lk/chat.py says it goes: the topics, the tp.*
// attributes of text streams on `lk.chat` (from the chat bot: messages, history, notices,
// deletions; from stock clients that broadcast), legacy packets on `lk-chat-topic`, the bot's
// events and reactions; and what the bot's notice codes mean in words.

import type { Participant, TextStreamInfo } from 'livekit-client';

import { AGENT_NAME_ATTRIBUTE, CHAT_AGENT } from '../session';
import { displayName } from '../tiles';

export const TOPIC_CHAT = 'lk.chat';
export const TOPIC_LEGACY_CHAT = 'lk-chat-topic';
export const TOPIC_REACTION = 'tp.chat.reaction';
export const TOPIC_EVENT = 'tp.chat.event';
export const RPC_REACTIONS = 'chat.reactions';

const ATTR_RELAY = 'tp.relay';
const ATTR_TO = 'tp.to';
const ATTR_REPLY_TO = 'tp.replyTo';
const ATTR_KIND = 'tp.kind';
const ATTR_SENDER = 'tp.sender';
const ATTR_SENDER_NAME = 'tp.senderName';
const ATTR_TIMESTAMP = 'tp.timestamp';
const ATTR_EDITED = 'tp.edited';
const ATTR_PRIVATE = 'tp.private';
const ATTR_CODE = 'tp.code';
const ATTR_REF = 'tp.ref';

/** What the bot's notice codes mean, in words: the line shown when a notice carries no text
 * of its own, and the reason shown on the message concerned. */
const NOTICES: Record<string, { line: string; reason: string }> = {
  muted: { line: 'A host has muted your chat: your message was not sent.', reason: 'your chat is muted' },
  too_large: { line: 'Your message was not sent: it is too long.', reason: 'it is too long' },
  rate_limited: { line: 'Your message was not sent: you are sending too fast. Wait a moment.', reason: 'you sent too fast' },
  blocked_word: { line: 'Your message was not sent: it contains a blocked word.', reason: 'it contains a blocked word' },
  empty: { line: 'Your message was not sent: it is empty.', reason: 'it is empty' },
  invalid: { line: 'Your message could not be read by the chat.', reason: 'the chat could not read it' },
  not_yours: { line: 'You cannot edit someone else’s message.', reason: 'it is not yours' },
  deleted: { line: 'That message was deleted by a host and cannot be edited.', reason: 'a host deleted it' },
  unknown_message: { line: 'Your reaction was not sent: that message is unknown.', reason: 'unknown message' },
  unavailable: { line: 'Your message could not be stored, so it was not sent. Please resend it.', reason: 'the chat could not store it' },
};

export function noticeLine(code: string, text: string): string {
  return text.trim() || NOTICES[code]?.line || 'The chat could not handle your last action.';
}

/** Why a message of mine was refused, as shown on it. */
export function noticeReason(code: string): string {
  return NOTICES[code]?.reason ?? 'the chat refused it';
}

/** A chat message as the wire tells it. */
export interface MessageFields {
  id: string;
  sender: string;
  senderName: string;
  text: string;
  timestamp: number;
  edited: boolean;
  private: boolean;
  replyTo: string;
  history: boolean;
}

/** What one text stream on `lk.chat` carries. */
export type StreamItem =
  | { kind: 'notice'; code: string; text: string; ref: string }
  | { kind: 'message'; fields: MessageFields; deleted: boolean };

/** The bot's events on `tp.chat.event`. */
export type ChatEvent =
  | { type: 'stored'; id: string }
  | { type: 'deleted'; id: string; by: string }
  | { type: 'edited'; id: string; text: string }
  | { type: 'rejected'; id: string; sender: string | null }
  | { type: 'muted'; identity: string; muted: boolean };

/** A reaction on `tp.chat.reaction`: the message's new totals, and who reacted with what. */
export interface ReactionUpdate {
  messageId: string;
  counts: Record<string, number> | null;
  sender: string | null;
  emoji: string | null;
}

function attr(attrs: Record<string, string>, key: string): string {
  return attrs[key] ?? '';
}

function number(value: unknown, fallback: number): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : NaN;
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

function text(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

export function newId(): string {
  return typeof crypto.randomUUID === 'function'
    ? crypto.randomUUID()
    : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}

export function isChatBot(participant: Participant | undefined): boolean {
  return participant?.attributes[AGENT_NAME_ATTRIBUTE] === CHAT_AGENT;
}

export function cleanCounts(raw: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [emoji, n] of Object.entries(raw)) if (typeof n === 'number' && n > 0) out[emoji] = n;
  return out;
}

/** A text stream from `from` (its participant, if still here); `nameOf` names a sender the
 * bot sent no name for. */
export function parseStream(
  info: TextStreamInfo, body: string, from: string, participant: Participant | undefined,
  nameOf: (identity: string) => string,
): StreamItem | null {
  const attrs = info.attributes ?? {};
  const kind = attr(attrs, ATTR_KIND);
  if (isChatBot(participant) && kind) return fromBot(info.id, kind, body, attrs, nameOf);
  // A stock client broadcast it: the sender is the stream's participant.
  return {
    kind: 'message',
    deleted: false,
    fields: {
      id: info.id,
      sender: from,
      senderName: participant ? displayName(participant) : from,
      text: body,
      timestamp: number(info.timestamp, Date.now()),
      edited: false,
      private: false,
      replyTo: '',
      history: false,
    },
  };
}

function fromBot(
  id: string, kind: string, body: string, attrs: Record<string, string>, nameOf: (identity: string) => string,
): StreamItem | null {
  if (kind === 'notice') return { kind: 'notice', code: attr(attrs, ATTR_CODE), text: body, ref: attr(attrs, ATTR_REF) };
  if (kind !== 'message' && kind !== 'history' && kind !== 'deleted') return null;
  const sender = attr(attrs, ATTR_SENDER);
  if (!sender) return null;
  return {
    kind: 'message',
    deleted: kind === 'deleted',
    fields: {
      id,
      sender,
      senderName: attr(attrs, ATTR_SENDER_NAME) || nameOf(sender),
      text: body,
      timestamp: number(attrs[ATTR_TIMESTAMP], Date.now()),
      edited: Boolean(attrs[ATTR_EDITED]),
      private: attrs[ATTR_PRIVATE] === '1',
      replyTo: attr(attrs, ATTR_REPLY_TO),
      history: kind === 'history',
    },
  };
}

/** A packet on `lk-chat-topic`, or null for one not to show. */
export function parseLegacy(body: Record<string, unknown>, participant: Participant): MessageFields | null {
  // The bot's copies, and stock clients' copies of a text stream they also sent.
  if (body.ignoreLegacy === true || isChatBot(participant)) return null;
  if (typeof body.id !== 'string' || !body.id || typeof body.message !== 'string') return null;
  return {
    id: body.id,
    sender: participant.identity,
    senderName: displayName(participant),
    text: body.message,
    timestamp: number(body.timestamp, Date.now()),
    edited: body.editTimestamp !== undefined && body.editTimestamp !== null,
    private: false,
    replyTo: '',
    history: false,
  };
}

/** An event from the bot, or null for one that concerns no message this page can know. */
export function parseEvent(body: Record<string, unknown>): ChatEvent | null {
  const id = text(body.id) ?? '';
  if (body.type === 'muted') return { type: 'muted', identity: text(body.identity) ?? '', muted: body.muted === true };
  if (!id) return null;
  switch (body.type) {
    case 'stored':
      return { type: 'stored', id };
    case 'deleted':
      return { type: 'deleted', id, by: text(body.by) ?? '' };
    case 'edited': {
      const message = text(body.message);
      return message === null ? null : { type: 'edited', id, text: message };
    }
    case 'rejected':
      return { type: 'rejected', id, sender: text(body.sender) };
    default:
      return null;
  }
}

export function parseReaction(body: Record<string, unknown>): ReactionUpdate | null {
  const messageId = text(body.messageId) ?? '';
  if (!messageId) return null;
  const counts = body.counts;
  return {
    messageId,
    counts: counts && typeof counts === 'object' && !Array.isArray(counts)
      ? cleanCounts(counts as Record<string, unknown>)
      : null,
    sender: text(body.sender),
    emoji: text(body.emoji),
  };
}

/** The attributes of a message of mine sent to the bot: private to some, or for everyone. */
export function outgoingAttributes(to: string[], replyTo: string): Record<string, string> {
  const attributes: Record<string, string> = to.length ? { [ATTR_TO]: to.join(',') } : { [ATTR_RELAY]: '1' };
  if (replyTo) attributes[ATTR_REPLY_TO] = replyTo;
  return attributes;
}
