// The chat's writing form: to everyone or privately to one person, a new message, a reply, or
// an edit of one of mine. Enter sends, Shift+Enter starts a new line, Escape drops a reply
// or an edit.

import type { Room } from 'livekit-client';

import { displayName, isBot } from '../tiles';
import { announce, append, clear, h } from '../ui';
import type { Message } from './messages';
import { clip } from './view';

/** What the form asks of the panel. */
export interface ComposerContext {
  me(): string;
  muted(): boolean;
  nameOf(identity: string): string;
  message(id: string): Message | undefined;
  send(text: string, to: string[], replyTo: string): void;
  edit(id: string, text: string): void;
}

export class Composer {
  readonly element: HTMLFormElement;
  private readonly context: HTMLElement;
  private readonly picker: HTMLSelectElement;
  private readonly input: HTMLTextAreaElement;
  private readonly sendButton: HTMLButtonElement;
  private readonly formError: HTMLElement;
  private editing: string | null = null;
  private replyTo: string | null = null;

  constructor(ids: { to: string; input: string }, private readonly ctx: ComposerContext) {
    this.context = h('div', { class: 'chat-context', hidden: true });
    this.picker = h('select', { id: ids.to, class: 'chat-to' }, h('option', { value: '' }, 'Everyone'));
    this.picker.addEventListener('change', () => this.render());
    this.input = h('textarea', { id: ids.input, rows: 2, class: 'chat-input', placeholder: 'Write a message to everyone', autocomplete: 'off' });
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      } else if (event.key === 'Escape' && (this.editing || this.replyTo)) {
        event.preventDefault();
        this.cancel();
      }
    });
    this.sendButton = h('button', { type: 'submit' }, 'Send');
    this.formError = h('p', { class: 'form-error', role: 'alert' });
    this.element = h('form', { class: 'chat-form', 'aria-label': 'Write a message' },
      this.context,
      h('div', { class: 'chat-to-row' }, h('label', { for: ids.to }, 'To'), this.picker),
      h('label', { for: ids.input, class: 'visually-hidden' }, 'Message'),
      h('div', { class: 'chat-compose' }, this.input, this.sendButton),
      this.formError);
    this.element.addEventListener('submit', (event) => {
      event.preventDefault();
      this.submit();
    });
  }

  /** The people one can write to privately: everyone in the room but the bots. */
  renderPicker(room: Room): void {
    const chosen = this.picker.value;
    const people = [...room.remoteParticipants.values()]
      .filter((p) => !isBot(p))
      .sort((a, b) => displayName(a).localeCompare(displayName(b)));
    const options = [h('option', { value: '' }, 'Everyone'),
      ...people.map((p) => h('option', { value: p.identity }, displayName(p)))];
    const same = options.length === this.picker.options.length &&
      options.every((o, i) => o.value === this.picker.options[i]!.value && o.textContent === this.picker.options[i]!.textContent);
    if (same) return;
    clear(this.picker);
    append(this.picker, ...options);
    if (chosen && !people.some((p) => p.identity === chosen)) {
      this.picker.value = '';
      announce('The person you were writing to privately has left; your next message goes to everyone.');
    } else {
      this.picker.value = chosen;
    }
    this.render();
  }

  render(): void {
    const to = this.picker.value;
    this.input.placeholder = this.editing
      ? 'Edit your message'
      : to ? `Write privately to ${this.ctx.nameOf(to)}` : 'Write a message to everyone';
    this.sendButton.textContent = this.editing ? 'Save' : 'Send';
    this.sendButton.disabled = this.ctx.muted();
    this.picker.disabled = this.editing !== null;
    const editing = this.editing ? this.ctx.message(this.editing) : undefined;
    const replying = this.replyTo ? this.ctx.message(this.replyTo) : undefined;
    clear(this.context);
    if (editing || replying) {
      const what = editing
        ? 'Editing your message'
        : `Replying to ${replying!.sender === this.ctx.me() ? 'yourself' : replying!.senderName}: “${clip(replying!.text, 40)}”`;
      append(this.context, h('span', {}, what), ' ',
        h('button', { type: 'button', class: 'link', onclick: () => this.cancel() }, editing ? 'Cancel edit' : 'Cancel reply'));
    }
    this.context.hidden = !editing && !replying;
  }

  /** The message being edited or replied to is gone (deleted): drop the edit or reply. */
  forget(id: string): void {
    if (this.editing === id || this.replyTo === id) this.cancel();
  }

  startEdit(id: string): void {
    const message = this.ctx.message(id);
    if (!message) return;
    this.editing = id;
    this.replyTo = null;
    this.input.value = message.text;
    this.render();
    this.input.focus();
  }

  startReply(id: string): void {
    const message = this.ctx.message(id);
    if (!message) return;
    if (this.editing) this.input.value = '';
    this.editing = null;
    this.replyTo = id;
    // A reply to a private message stays private, to its sender.
    if (message.private && message.sender !== this.ctx.me() &&
      [...this.picker.options].some((o) => o.value === message.sender)) this.picker.value = message.sender;
    this.render();
    this.input.focus();
  }

  private cancel(): void {
    if (this.editing) this.input.value = '';
    this.editing = null;
    this.replyTo = null;
    this.render();
    this.input.focus();
  }

  private submit(): void {
    const text = this.input.value;
    this.formError.textContent = '';
    if (!text.trim()) {
      this.formError.textContent = 'Write something first.';
      this.input.focus();
      return;
    }
    if (this.ctx.muted()) {
      this.formError.textContent = 'A host has muted your chat, so you cannot send messages for now.';
      return;
    }
    if (this.editing) {
      this.ctx.edit(this.editing, text);
    } else {
      const to = this.picker.value ? [this.picker.value] : [];
      this.ctx.send(text, to, this.replyTo ?? '');
    }
    this.input.value = '';
    this.editing = null;
    this.replyTo = null;
    this.render();
    this.input.focus();
  }
}
