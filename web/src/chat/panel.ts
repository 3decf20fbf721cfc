// The meeting chat, as talkplatform_agents/lk/chat.py says it goes: what arrives on `lk.chat`
// (from the chat bot, with tp.* attributes: messages, history, notices, deletions; from stock
// clients that broadcast), legacy packets on `lk-chat-topic`, the bot's events and reactions.
// What this person writes goes through the bot (so moderation comes first): shown at once as
// pending, "sent" on the bot's receipt, sent again (same id) should no receipt come or the
// bot change. Edits of one's own messages, replies, reactions, private messages.

import {
  Room,
  RoomEvent,
  type RemoteParticipant,
  type TextStreamReader,
} from 'livekit-client';

import type { TokenResponse } from '../api';
import type { Panel } from '../meeting_view';
import { CHAT_AGENT, findBot, parseJson } from '../session';
import { handleTextStreams } from '../streams';
import { displayName } from '../tiles';
import { announce, h } from '../ui';
import { Composer } from './composer';
import { MessageList, type Message, type Status } from './messages';
import { Outbox } from './outbox';
import {
  isChatBot, newId, noticeLine, noticeReason, parseEvent, parseLegacy, parseReaction, parseStream,
  TOPIC_CHAT, TOPIC_EVENT, TOPIC_LEGACY_CHAT, TOPIC_REACTION, type ChatEvent,
} from './protocol';
import { Reactions } from './reactions';
import { MessageView } from './view';

let panels = 0;

export class ChatPanel implements Panel {
  readonly element: HTMLElement;
  private readonly status: HTMLElement;
  private readonly view: MessageView;
  private readonly list: MessageList;
  private readonly composer: Composer;
  private readonly outbox = new Outbox();
  private readonly reactions = new Reactions();

  private room: Room | null = null;
  private me = '';
  private bot = '';
  private muted = false;
  private timer: number | undefined;
  private readonly unbind: Array<() => void> = [];

  constructor() {
    const n = ++panels;
    const ids = { title: `chat-title-${n}`, to: `chat-to-${n}`, input: `chat-input-${n}` };
    this.view = new MessageView({
      me: () => this.me,
      bot: () => this.bot,
      nameOf: (identity) => this.nameOf(identity),
      message: (id) => this.list.get(id),
      counts: (id) => this.reactions.countsOf(id),
      reacted: (id, emoji) => this.reactions.pressed(id, emoji),
      react: (id, emoji) => this.react(id, emoji),
      reply: (id) => this.composer.startReply(id),
      edit: (id) => this.composer.startEdit(id),
      retry: (id) => this.retry(id),
      remove: (id) => this.remove(id),
    });
    this.list = new MessageList(ids.title, this.view);
    this.status = h('p', { class: 'chat-status', role: 'status', 'data-testid': 'chat-status' });
    this.composer = new Composer(ids, {
      me: () => this.me,
      muted: () => this.muted,
      nameOf: (identity) => this.nameOf(identity),
      message: (id) => this.list.get(id),
      send: (text, to, replyTo) => this.send(text, to, replyTo),
      edit: (id, text) => this.edit(id, text),
    });
    this.element = h('section', { class: 'card chat', 'aria-labelledby': ids.title, 'data-testid': 'chat' },
      h('h2', { id: ids.title }, 'Chat'),
      this.status,
      this.list.empty,
      this.list.log,
      this.composer.element);
  }

  // -- the room ----------------------------------------------------------------------------

  attach(room: Room, _token: TokenResponse): void {
    if (this.room === room) return;
    this.detach();
    this.room = room;
    this.me = room.localParticipant.identity;
    this.bot = '';
    this.unbind.push(handleTextStreams(room, TOPIC_CHAT, (reader, from) => void this.onStream(reader, from.identity)));
    const onData = (payload: Uint8Array, participant?: RemoteParticipant, _kind?: unknown, topic?: string) =>
      this.onData(payload, participant, topic);
    const onRoster = () => this.onRoster();
    room
      .on(RoomEvent.DataReceived, onData)
      .on(RoomEvent.ParticipantConnected, onRoster)
      .on(RoomEvent.ParticipantDisconnected, onRoster)
      .on(RoomEvent.ParticipantAttributesChanged, onRoster)
      .on(RoomEvent.ParticipantNameChanged, onRoster);
    this.unbind.push(() => {
      room
        .off(RoomEvent.DataReceived, onData)
        .off(RoomEvent.ParticipantConnected, onRoster)
        .off(RoomEvent.ParticipantDisconnected, onRoster)
        .off(RoomEvent.ParticipantAttributesChanged, onRoster)
        .off(RoomEvent.ParticipantNameChanged, onRoster);
    });
    this.timer = window.setInterval(() => this.flush(), 1000);
    this.unbind.push(() => window.clearInterval(this.timer));
    this.onRoster();
    this.composer.render();
  }

  detach(): void {
    for (const undo of this.unbind.splice(0)) undo();
    this.room = null;
    this.bot = '';
    // What has no receipt stays in the outbox, to go to the next room's bot.
    this.outbox.forgetBot();
    this.renderStatus();
  }

  private onRoster(): void {
    const room = this.room;
    if (!room) return;
    this.composer.renderPicker(room);
    const bot = findBot(room, CHAT_AGENT)?.identity ?? '';
    if (bot !== this.bot) {
      this.bot = bot;
      if (bot) void this.reactions.load(room, bot, (id) => this.rerender(id));
      this.flush();
      for (const message of this.list.values()) if (message.status === 'pending') this.view.render(message);
    }
    this.renderStatus();
  }

  private renderStatus(): void {
    let text = '';
    if (!this.room) text = '';
    else if (!this.bot) text = this.outbox.size
      ? 'The chat is starting: your messages will be sent as soon as it is ready.'
      : 'The chat is starting…';
    else if (this.muted) text = 'A host has muted your chat.';
    this.status.textContent = text;
    this.status.hidden = !text;
  }

  private nameOf(identity: string): string {
    if (identity === this.me) return 'You';
    const participant = this.room?.remoteParticipants.get(identity);
    return participant ? displayName(participant) : identity;
  }

  private rerender(id: string): void {
    const message = this.list.get(id);
    if (message) this.view.render(message);
  }

  // -- receiving ---------------------------------------------------------------------------

  private async onStream(reader: TextStreamReader, from: string): Promise<void> {
    const info = reader.info;
    let text: string;
    try {
      text = await reader.readAll();
    } catch {
      return; // cut off (the sender left): nothing to show
    }
    const participant = this.room?.remoteParticipants.get(from);
    const item = parseStream(info, text, from, participant, (identity) => this.nameOf(identity));
    if (!item) return;
    if (item.kind === 'notice') {
      this.notice(item.code, item.text, item.ref);
      return;
    }
    const message = this.list.upsert(item.fields);
    if (message && item.deleted) this.markDeleted(message, '');
  }

  private onData(payload: Uint8Array, participant: RemoteParticipant | undefined, topic: string | undefined): void {
    if (topic !== TOPIC_LEGACY_CHAT && topic !== TOPIC_EVENT && topic !== TOPIC_REACTION) return;
    const body = parseJson(payload);
    if (!body || !participant) return;
    if (topic === TOPIC_LEGACY_CHAT) {
      const fields = parseLegacy(body, participant);
      if (fields) this.list.upsert(fields);
      return;
    }
    if (!isChatBot(participant)) return; // events and reactions count from the bot only
    if (topic === TOPIC_EVENT) {
      const event = parseEvent(body);
      if (event) this.onEvent(event);
      return;
    }
    const reaction = parseReaction(body);
    if (!reaction) return;
    this.reactions.update(reaction, this.me);
    this.rerender(reaction.messageId);
  }

  private onEvent(event: ChatEvent): void {
    if (event.type === 'muted') {
      this.onMuted(event.identity, event.muted);
      return;
    }
    const message = this.list.get(event.id);
    switch (event.type) {
      case 'stored':
        this.outbox.delete(event.id);
        if (message && message.sender === this.me) this.setStatus(message, 'sent', '');
        this.renderStatus();
        return;
      case 'deleted':
        if (message) this.markDeleted(message, event.by);
        return;
      case 'edited':
        if (message) {
          message.text = event.text;
          message.edited = true;
          this.view.render(message);
        }
        return;
      case 'rejected':
        // A broadcast message the moderation refused: everyone had it from the SFU.
        if (message && message.sender !== this.me && event.sender === message.sender) this.list.remove(message);
        return;
    }
  }

  private onMuted(who: string, on: boolean): void {
    if (who === this.me) {
      this.muted = on;
      this.renderStatus();
      this.composer.render();
      // Muting comes with the bot's notice to me; unmuting with nothing else.
      if (!on) this.list.systemLine('A host has let you chat again.', 'info');
    } else if (who) {
      this.list.systemLine(on ? `A host muted ${this.nameOf(who)}’s chat.` : `A host let ${this.nameOf(who)} chat again.`, 'info');
    }
  }

  private notice(code: string, text: string, ref: string): void {
    const line = noticeLine(code, text);
    const reactedOn = this.reactions.refused(ref);
    if (reactedOn !== undefined) this.rerender(reactedOn);
    const message = ref ? this.list.get(ref) : undefined;
    if (message && message.sender === this.me && message.status !== 'sent') {
      this.outbox.delete(ref);
      this.setStatus(message, 'failed', noticeReason(code));
    }
    if (code === 'muted') {
      this.muted = true;
      this.renderStatus();
      this.composer.render();
    }
    this.list.systemLine(line, 'notice', code);
  }

  private setStatus(message: Message, status: Status, reason: string): void {
    message.status = status;
    message.reason = reason;
    this.view.render(message);
  }

  private markDeleted(message: Message, by: string): void {
    message.deleted = true;
    message.text = by && by !== this.me ? `This message was deleted by ${this.nameOf(by)}.` : 'This message was deleted.';
    this.outbox.delete(message.id);
    this.composer.forget(message.id);
    this.view.render(message);
  }

  // -- writing -----------------------------------------------------------------------------

  /** A new message of mine: on the list at once, pending until the bot's receipt. */
  send(text: string, to: string[] = [], replyTo = ''): string {
    const id = newId();
    const message = this.list.upsert({
      id, sender: this.me, senderName: 'You', text, timestamp: Date.now(), edited: false,
      private: to.length > 0, replyTo, history: false,
    })!;
    message.to = to;
    this.queue(message, text);
    return id;
  }

  private edit(id: string, text: string): void {
    const message = this.list.get(id);
    if (!message || message.deleted) return;
    if (text === message.text && message.status !== 'failed') return;
    // Still pending or refused: the store has no earlier text, so this is no edit.
    if (message.status === 'sent' || message.status === 'none') message.edited = true;
    message.text = text;
    this.queue(message, text);
  }

  private retry(id: string): void {
    const message = this.list.get(id);
    if (message) this.queue(message, message.text);
  }

  private remove(id: string): void {
    const message = this.list.get(id);
    if (!message) return;
    this.outbox.delete(id);
    this.list.remove(message);
  }

  private queue(message: Message, text: string): void {
    this.outbox.queue(message.id, text, message.to, message.replyTo);
    this.setStatus(message, 'pending', '');
    this.flush();
    this.renderStatus();
  }

  /** Send what has no receipt, once the room has its chat bot. */
  private flush(): void {
    const room = this.room;
    if (!room) return;
    if (!this.bot) {
      this.renderStatus();
      return;
    }
    this.outbox.flush(room, this.bot);
  }

  private react(messageId: string, emoji: string): void {
    const room = this.room;
    if (!room || this.reactions.pressed(messageId, emoji)) return;
    if (!this.bot) {
      announce('The chat is starting; react again in a moment.');
      return;
    }
    const message = this.list.get(messageId);
    this.reactions.send(room, this.bot, messageId, emoji, () => {
      if (message) this.view.render(message);
    });
  }
}
