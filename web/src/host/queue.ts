// The waiting room as a host sees it. The queue comes live from the moderator bot
// (lk/waiting.py, tp.waiting.queue) and is read from the service after each action, so that
// the list is right even when the bot is slow to speak; what those waiting say comes on
// tp.waiting.chat and stays under their name, next to Admit, Deny and Message.

import { parseJson, TOPIC_LOBBY_CHAT } from '../session';
import { announce, append, clear, h, since } from '../ui';
import { actionButton, inlineForm, runAction } from './actions';
import type { HostContext } from './context';
import { failureText } from './errors';

export const TOPIC_QUEUE = 'tp.waiting.queue';

interface Waiting {
  identity: string;
  name: string;
  since: string;
}

function waitingList(value: unknown): Waiting[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((item): Waiting[] => {
    const entry = item as Partial<Waiting> | null;
    if (!entry || typeof entry.identity !== 'string') return [];
    return [{
      identity: entry.identity,
      name: typeof entry.name === 'string' && entry.name ? entry.name : entry.identity,
      since: typeof entry.since === 'string' ? entry.since : new Date().toISOString(),
    }];
  });
}

class WaitingRow {
  readonly element: HTMLLIElement;
  private readonly nameEl = h('strong', {});
  private readonly sinceEl = h('span', { class: 'muted' });
  private readonly chat = h('ul', { class: 'lobby-chat' });
  private readonly error = h('p', { class: 'form-error', role: 'alert' });
  private entry: Waiting;

  constructor(entry: Waiting, host: HostContext, refresh: () => Promise<void>) {
    this.entry = entry;
    const name = entry.name;
    const id = encodeURIComponent(entry.identity);
    const error = this.error;
    const actions = h('div', { class: 'row actions' });
    const gone = 'they are no longer waiting';
    const admit = actionButton('Admit', `Admit ${name}`, error, { what: `Admitting ${name}`, gone },
      () => host.post(`waiting-room/${id}/admit`).then(() => {
        announce(`${name} was let in.`);
        return refresh();
      }), '');
    const deny = h('button', { type: 'button', class: 'secondary', 'aria-label': `Deny ${name}`, onclick: () => inlineForm(actions, error,
      { label: `Reason for denying ${name} (optional)`, placeholder: 'Reason (optional)', submit: 'Deny', submitAria: `Confirm: deny ${name}`, required: false, cls: 'danger', what: { what: `Denying ${name}`, gone } },
      (reason) => host.post(`waiting-room/${id}/deny`, reason ? { reason } : {}).then(() => {
        announce(`${name} was not let in.`);
        return refresh();
      })) }, 'Deny');
    const message = h('button', { type: 'button', class: 'secondary', 'aria-label': `Message ${name}`, onclick: () => inlineForm(actions, error,
      { label: `Message to ${name}`, placeholder: 'Your message', submit: 'Send', submitAria: `Send the message to ${name}`, required: true, what: { what: `The message to ${name}`, gone } },
      (text) => host.post('waiting-room/message', { text, identity: entry.identity }).then(() => {
        this.said('You', text);
        announce(`Message sent to ${name}.`);
      })) }, 'Message');
    append(actions, admit, deny, message);
    this.element = h('li', { class: 'host-item', 'data-identity': entry.identity, 'data-testid': 'waiting-entry' },
      h('div', { class: 'who-line' }, this.nameEl, this.sinceEl),
      this.chat, actions, error);
    this.update(entry);
  }

  update(entry: Waiting): void {
    this.entry = entry;
    this.nameEl.textContent = entry.name;
    this.tick();
  }

  tick(): void {
    this.sinceEl.textContent = `waiting ${since(this.entry.since)}`;
  }

  /** The last few lines only: a chatty guest must not push the queue off the screen. */
  said(from: string, text: string): void {
    append(this.chat, h('li', {}, h('span', { class: 'from' }, `${from}: `), text));
    while (this.chat.children.length > 5) this.chat.firstElementChild?.remove();
  }
}

export class WaitingQueue {
  private readonly title = h('h3', { id: 'host-waiting-title' }, 'Waiting');
  private readonly list = h('ul', { class: 'host-list', 'aria-labelledby': 'host-waiting-title', 'data-testid': 'waiting-queue' });
  private readonly empty = h('p', { class: 'muted' }, 'Nobody is waiting.');
  private readonly error = h('p', { class: 'form-error', role: 'alert' });
  private readonly tools = h('div', { class: 'row' });
  private readonly rows = new Map<string, WaitingRow>();
  private messageAll: HTMLElement = h('form', {});
  private seq = 0; // bumped by each queue from the bot or the service: the latest one wins

  constructor(private readonly host: HostContext) {}

  /** The section, anew for each attach; the rows are kept by the queue itself. */
  build(): HTMLElement {
    const text = h('input', { id: 'host-message-all', maxlength: 2000, placeholder: 'Your message' });
    const error = h('p', { class: 'form-error', role: 'alert' });
    const send = h('button', { type: 'submit', class: 'secondary' }, 'Send to all waiting');
    const everyone = this.messageAll = h('form', { class: 'host-message-all' },
      h('label', { for: 'host-message-all' }, 'Message everyone waiting'),
      h('div', { class: 'row' }, text, send), error);
    everyone.addEventListener('submit', (event) => {
      event.preventDefault();
      const said = text.value.trim();
      if (!said) return;
      void runAction(send, error, 'The message to everyone waiting',
        () => this.host.post('waiting-room/message', { text: said }).then(() => {
          text.value = '';
          for (const row of this.rows.values()) row.said('You (to all)', said);
          announce('Your message was sent to everyone waiting.');
        }));
    });
    clear(this.tools);
    this.tools.appendChild(actionButton('Admit all', 'Admit everyone waiting', this.error, 'Admitting everyone',
      () => this.host.post('waiting-room/admit-all').then((result) => {
        const count = ((result as { admitted?: unknown[] } | null)?.admitted ?? []).length;
        announce(count ? `${count} ${count === 1 ? 'person was' : 'people were'} let in.` : 'Nobody was waiting.');
        return this.refresh();
      }), ''));
    const section = h('section', { class: 'host-section', 'aria-labelledby': 'host-waiting-title' },
      h('div', { class: 'section-head' }, this.title, this.tools),
      this.error, this.list, this.empty, everyone);
    this.render([]);
    return section;
  }

  /** Detached: no rows until the next attach reads the queue again. */
  reset(): void {
    this.rows.clear();
    clear(this.list);
  }

  tick(): void {
    for (const row of this.rows.values()) row.tick();
  }

  onData(payload: Uint8Array, topic: string | undefined): void {
    if (topic === TOPIC_QUEUE) {
      const body = parseJson(payload);
      if (!body) return;
      this.seq++;
      const list = waitingList(body.waiting);
      this.render(list);
      if (body.event === 'knock' && typeof body.identity === 'string') {
        const who = list.find((entry) => entry.identity === body.identity);
        announce(`${who?.name ?? body.identity} is waiting to be let in.`);
      }
    } else if (topic === TOPIC_LOBBY_CHAT) {
      const body = parseJson(payload);
      if (!body || typeof body.text !== 'string' || typeof body.identity !== 'string') return;
      const name = typeof body.name === 'string' && body.name ? body.name : body.identity;
      this.rows.get(body.identity)?.said(name, body.text);
      announce(`${name} (waiting) says: ${body.text}`);
    }
  }

  /** The queue from the service (on attach, after an action): unless the bot spoke since. */
  async refresh(): Promise<void> {
    const seq = ++this.seq;
    try {
      const answer = (await this.host.get('waiting-room')) as { waiting?: unknown } | null;
      if (seq === this.seq && this.host.room) this.render(waitingList(answer?.waiting));
      this.error.textContent = '';
    } catch (err) {
      this.error.textContent = failureText(err, 'Reading the waiting room');
    }
  }

  private render(list: Waiting[]): void {
    const seen = new Set<string>();
    for (const entry of list) {
      seen.add(entry.identity);
      let row = this.rows.get(entry.identity);
      if (!row) {
        row = new WaitingRow(entry, this.host, () => this.refresh());
        this.rows.set(entry.identity, row);
      } else {
        row.update(entry);
      }
      this.list.appendChild(row.element); // in the queue's order
    }
    for (const [identity, row] of this.rows) {
      if (!seen.has(identity)) {
        row.element.remove();
        this.rows.delete(identity);
      }
    }
    this.title.textContent = list.length ? `Waiting (${list.length})` : 'Waiting';
    this.empty.hidden = list.length > 0;
    this.list.hidden = list.length === 0;
    this.tools.hidden = list.length === 0;
    this.messageAll.hidden = list.length === 0;
  }
}
