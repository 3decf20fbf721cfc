// How one chat message looks: who wrote it and when, whether it is private, earlier, edited,
// or (when mine) sending, sent or refused; what it replies to; its text; and its buttons
// (reactions, reply, edit, try again, remove, show all).

import { append, clear, h, time } from '../ui';
import type { Message } from './messages';

/** Texts longer than this show their first lines, and a "Show all" button. */
const LONG_TEXT = 600;

/** The reactions offered on each message. */
export const REACTIONS = ['👍', '🎉', '😂'] as const;

export interface Parts {
  name: HTMLElement;
  tag: HTMLElement;
  time: HTMLTimeElement;
  earlier: HTMLElement;
  edited: HTMLElement;
  state: HTMLElement;
  quote: HTMLElement;
  text: HTMLElement;
  actions: HTMLElement;
}

/** What the view asks of the panel: who is who, what else is known, and what buttons do. */
export interface ViewContext {
  me(): string;
  /** The chat bot now here, if any. */
  bot(): string;
  nameOf(identity: string): string;
  message(id: string): Message | undefined;
  counts(messageId: string): Record<string, number>;
  reacted(messageId: string, emoji: string): boolean;
  react(messageId: string, emoji: string): void;
  reply(messageId: string): void;
  edit(messageId: string): void;
  retry(messageId: string): void;
  remove(messageId: string): void;
}

export function clip(text: string, length = 60): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > length ? `${flat.slice(0, length - 1)}…` : flat;
}

export function messageElement(id: string): HTMLLIElement {
  return h('li', { class: 'chat-msg', 'data-testid': 'chat-message', 'data-id': id });
}

export function systemLineElement(text: string, tone: 'notice' | 'info', code: string): HTMLLIElement {
  return h('li', { class: `chat-system ${tone}`, 'data-testid': 'chat-notice', 'data-code': code || null },
    h('span', { class: 'visually-hidden' }, 'Chat: '), text);
}

export class MessageView {
  constructor(private readonly ctx: ViewContext) {}

  render(message: Message): void {
    const el = message.el;
    const mine = message.sender === this.ctx.me();
    el.className = 'chat-msg';
    el.classList.toggle('mine', mine);
    el.classList.toggle('private', message.private);
    el.classList.toggle('history', message.history);
    el.classList.toggle('deleted', message.deleted);
    el.dataset.status = message.status;
    // Built once, then updated in place: the log announces what is added to it, and a
    // message's state changing ("Sent", a reaction count) is not a new message.
    let parts = message.parts;
    if (!parts) {
      parts = {
        name: h('strong', { class: 'chat-name' }),
        tag: h('span', { class: 'chat-private', 'data-testid': 'chat-private' }),
        time: h('time', {}),
        earlier: h('span', { class: 'visually-hidden' }, ', earlier message'),
        edited: h('span', { class: 'chat-edited' }, '(edited)'),
        state: h('span', { class: 'chat-state', 'data-testid': 'chat-state' }),
        quote: h('p', { class: 'chat-quote' }),
        text: h('p', { class: 'chat-text' }),
        actions: h('div', { class: 'chat-actions', 'aria-live': 'off' }),
      };
      message.parts = parts;
      append(el,
        h('div', { class: 'chat-meta' }, parts.name, parts.tag, parts.time, parts.earlier, parts.edited, parts.state),
        parts.quote, parts.text, parts.actions);
    }
    parts.name.textContent = mine ? 'You' : message.senderName;
    parts.tag.textContent = this.privateLabel(message);
    parts.tag.hidden = !message.private;
    parts.time.dateTime = new Date(message.timestamp).toISOString();
    parts.time.textContent = time(message.timestamp);
    parts.earlier.hidden = !message.history;
    parts.edited.hidden = !message.edited || message.deleted;
    const [stateText, stateClass] = this.stateOf(message);
    parts.state.textContent = stateText;
    parts.state.className = `chat-state ${stateClass}`;
    parts.state.hidden = !stateText;
    const quoted = message.replyTo ? this.ctx.message(message.replyTo) : undefined;
    parts.quote.textContent = !message.replyTo ? '' : quoted
      ? `↪ Replying to ${quoted.sender === this.ctx.me() ? 'you' : quoted.senderName}: “${clip(quoted.text)}”`
      : '↪ Replying to an earlier message';
    parts.quote.hidden = !message.replyTo || message.deleted;
    parts.text.textContent = message.text;
    parts.text.classList.toggle('long', message.text.length > LONG_TEXT && !message.expanded);
    // A new message's buttons come once it is on the list, inside a part the log does not
    // announce: a screen reader hears who wrote what, not "React 👍, Reply" each time.
    if (el.isConnected) this.renderActions(message);
  }

  renderActions(message: Message): void {
    const actions = message.parts?.actions;
    if (!actions) return;
    const mine = message.sender === this.ctx.me();
    // Keyboard focus survives the rebuild: the same button gets it back.
    const active = document.activeElement;
    const focused = active instanceof HTMLElement && actions.contains(active) ? active.dataset.key : undefined;
    clear(actions);
    if (message.text.length > LONG_TEXT && !message.deleted) {
      append(actions, this.action(message.expanded ? 'Show less' : 'Show all', 'more', () => {
        message.expanded = !message.expanded;
        this.render(message);
      }));
    }
    if (!message.deleted) {
      const counts = this.ctx.counts(message.id);
      const stored = !mine || message.status === 'sent' || message.status === 'none';
      if (stored) {
        const extra = Object.keys(counts).filter((e) => !(REACTIONS as readonly string[]).includes(e));
        for (const emoji of [...REACTIONS, ...extra]) {
          const n = counts[emoji] ?? 0;
          append(actions, h('button', {
            type: 'button', class: `chat-react${n ? ' counted' : ''}`, 'data-key': `react ${emoji}`,
            'aria-pressed': String(this.ctx.reacted(message.id, emoji)),
            'aria-label': `React ${emoji}` + (n ? `, ${n} so far` : ''),
            onclick: () => this.ctx.react(message.id, emoji),
          }, emoji, n ? h('span', { class: 'chat-count', 'aria-hidden': 'true' }, String(n)) : null));
        }
        append(actions, this.action('Reply', 'reply', () => this.ctx.reply(message.id)));
      }
      if (mine) {
        append(actions, this.action('Edit', 'edit', () => this.ctx.edit(message.id)));
        if (message.status === 'failed') {
          append(actions,
            this.action('Try again', 'retry', () => this.ctx.retry(message.id)),
            this.action('Remove', 'remove', () => this.ctx.remove(message.id)));
        }
      }
    }
    actions.hidden = !actions.firstChild;
    if (focused) actions.querySelector<HTMLElement>(`[data-key="${CSS.escape(focused)}"]`)?.focus();
  }

  private action(label: string, key: string, onclick: () => void): HTMLButtonElement {
    return h('button', { type: 'button', class: 'chat-action', 'data-key': key, onclick }, label);
  }

  private privateLabel(message: Message): string {
    if (!message.private) return '';
    if (message.sender === this.ctx.me()) {
      return message.to.length ? `Private to ${message.to.map((i) => this.ctx.nameOf(i)).join(', ')}` : 'Private';
    }
    return 'Private message';
  }

  private stateOf(message: Message): [string, string] {
    if (message.sender !== this.ctx.me()) return ['', ''];
    switch (message.status) {
      case 'pending':
        return [this.ctx.bot() ? 'Sending…' : 'Waiting for the chat…', 'pending'];
      case 'sent':
        return ['Sent', 'sent'];
      case 'failed':
        return [`Not sent: ${message.reason}`, 'failed'];
      default:
        return ['', ''];
    }
  }
}
