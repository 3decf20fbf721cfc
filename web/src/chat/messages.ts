// The chat's list of messages: one copy per id (the same id again is an edit, when from the
// same sender), history from before this person arrived kept in time order between its
// dividers, live messages after it, and lines from the chat itself among them.

import { h } from '../ui';
import type { MessageFields } from './protocol';
import { messageElement, systemLineElement, type Parts } from './view';

/** A message of mine: not yet sent, sent (the bot's receipt came), or refused. */
export type Status = 'none' | 'pending' | 'sent' | 'failed';

export interface Message extends MessageFields {
  /** Whom I sent a private message to (known for my own messages of this visit). */
  to: string[];
  deleted: boolean;
  status: Status;
  reason: string;
  el: HTMLLIElement;
  parts?: Parts;
  /** A long text shown whole (else its first lines). */
  expanded?: boolean;
}

/** Shows a message: `render` its state, `renderActions` its buttons (once on the list). */
export interface MessageRenderer {
  render(message: Message): void;
  renderActions(message: Message): void;
}

export class MessageList {
  readonly log: HTMLOListElement;
  /** The line shown while there is nothing on the log; placed beside it, not in it. */
  readonly empty: HTMLElement;
  private readonly historyStart: HTMLLIElement;
  private readonly historyEnd: HTMLLIElement;
  private readonly messages = new Map<string, Message>();

  constructor(titleId: string, private readonly view: MessageRenderer) {
    this.empty = h('p', { class: 'chat-empty muted' }, 'No messages yet. Say hello!');
    this.historyStart = h('li', { class: 'chat-divider', hidden: true }, 'Earlier messages');
    this.historyEnd = h('li', { class: 'chat-divider', hidden: true }, 'Since you joined');
    this.log = h('ol', {
      class: 'chat-log', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions',
      'aria-labelledby': titleId, tabindex: 0, 'data-testid': 'chat-log',
    }, this.historyStart, this.historyEnd);
  }

  get(id: string): Message | undefined {
    return this.messages.get(id);
  }

  values(): IterableIterator<Message> {
    return this.messages.values();
  }

  upsert(fields: MessageFields): Message | null {
    const existing = this.messages.get(fields.id);
    if (existing) {
      // The same id from the same sender is an edit; from someone else, not theirs to change.
      if (existing.sender !== fields.sender) return null;
      if (existing.text !== fields.text) {
        existing.edited = existing.edited || fields.edited || !fields.history;
        existing.text = fields.text;
      } else if (fields.edited) {
        existing.edited = true;
      }
      if (fields.private) existing.private = true;
      this.view.render(existing);
      return existing;
    }
    const message: Message = {
      ...fields,
      to: [],
      deleted: false,
      status: 'none',
      reason: '',
      el: messageElement(fields.id),
    };
    this.messages.set(message.id, message);
    this.view.render(message);
    this.place(message);
    return message;
  }

  /** Off the list, as if it never came. */
  remove(message: Message): void {
    message.el.remove();
    this.messages.delete(message.id);
    this.renderEmpty();
  }

  /** A line from the chat itself (a notice, someone muted), not a message. */
  systemLine(text: string, tone: 'notice' | 'info', code = ''): void {
    const stick = this.atBottom();
    this.log.appendChild(systemLineElement(text, tone, code));
    this.renderEmpty();
    if (stick) this.log.scrollTop = this.log.scrollHeight;
  }

  private place(message: Message): void {
    const stick = this.atBottom();
    if (message.history) {
      this.historyStart.hidden = false;
      this.historyEnd.hidden = false;
      // Oldest first: before the first later history message, else at the history's end.
      let before: Element = this.historyEnd;
      for (let el = this.historyStart.nextElementSibling; el && el !== this.historyEnd; el = el.nextElementSibling) {
        const other = this.messages.get((el as HTMLElement).dataset.id ?? '');
        if (other && other.timestamp > message.timestamp) {
          before = el;
          break;
        }
      }
      this.log.insertBefore(message.el, before);
    } else {
      this.log.appendChild(message.el);
    }
    this.view.renderActions(message);
    this.renderEmpty();
    if (stick) this.log.scrollTop = this.log.scrollHeight;
  }

  private atBottom(): boolean {
    return this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 40;
  }

  private renderEmpty(): void {
    this.empty.hidden = this.messages.size > 0 || this.log.querySelector('.chat-system') !== null;
  }
}
