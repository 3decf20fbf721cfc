// Who is in the meeting, as a host sees them: each person's role and microphone, and the
// actions the signed-in role may take on them (only the host names co-hosts and passes host;
// hosts are not removed, moderators not sent back to the waiting room).

import type { RemoteParticipant } from 'livekit-client';

import { displayName, isBot } from '../tiles';
import { announce, clear, h } from '../ui';
import { actionButton, confirmStep } from './actions';
import { MODERATORS, roleOf, type HostContext } from './context';

class PersonRow {
  readonly element: HTMLLIElement;
  private readonly nameEl = h('strong', {});
  private readonly state = h('span', { class: 'muted' });
  private readonly actions = h('div', { class: 'row actions' });
  private readonly error = h('p', { class: 'form-error', role: 'alert' });
  private shape = '';

  constructor(private readonly participant: RemoteParticipant, private readonly host: HostContext) {
    this.element = h('li', { class: 'host-item', 'data-identity': participant.identity, 'data-testid': 'participant-entry' },
      h('div', { class: 'who-line' }, this.nameEl, this.state), this.actions, this.error);
    this.update();
  }

  update(): void {
    const p = this.participant;
    const name = displayName(p);
    const role = roleOf(p);
    const micOn = p.isMicrophoneEnabled;
    this.nameEl.textContent = name;
    const roleText = role === 'host' ? 'host' : role === 'cohost' ? 'co-host' : '';
    this.state.textContent = [roleText, micOn ? 'microphone on' : 'microphone off'].filter(Boolean).join(' · ');
    // The buttons change only with what they may do: an open confirm step survives updates.
    const shape = [name, role, micOn, this.host.myRole].join('|');
    if (shape === this.shape) return;
    this.shape = shape;
    this.render(name, role, micOn);
  }

  private render(name: string, role: string, micOn: boolean): void {
    const host = this.host;
    const identity = this.participant.identity;
    const id = encodeURIComponent(identity);
    const { error, actions } = this;
    clear(actions);
    const amHost = host.myRole === 'host';
    const isModerator = MODERATORS.has(role);
    if (micOn) {
      actions.appendChild(actionButton('Mute', `Mute ${name}`, error,
        { what: `Muting ${name}`, gone: 'they have left, or their microphone is off already' },
        () => host.post(`participants/${id}/mute`, { source: 'microphone' }).then(() => announce(`${name} was muted.`))));
    }
    if (role !== 'host') {
      actions.appendChild(h('button', { type: 'button', class: 'secondary', 'aria-label': `Remove ${name}`, onclick: () => confirmStep(actions, error,
        { question: `Remove ${name}? They cannot come back to this meeting.`, yes: 'Remove', yesAria: `Confirm: remove ${name}`, what: `Removing ${name}` },
        () => host.post(`participants/${id}/remove`).then(() => announce(`${name} was removed.`))) }, 'Remove'));
    }
    if (!isModerator) {
      actions.appendChild(actionButton('To waiting room', `Return ${name} to the waiting room`, error,
        `Returning ${name} to the waiting room`,
        () => host.post(`participants/${id}/return-to-waiting`).then(() => announce(`${name} is back in the waiting room.`))));
    }
    if (amHost && !isModerator) {
      actions.appendChild(actionButton('Make co-host', `Make ${name} a co-host`, error, { what: `Making ${name} a co-host`, hostOnly: true },
        () => host.post('cohosts', { identity }).then(() => announce(`${name} is now a co-host.`))));
    }
    if (amHost && role !== 'host') {
      actions.appendChild(h('button', { type: 'button', class: 'secondary', 'aria-label': `Pass host to ${name}`, onclick: () => confirmStep(actions, error,
        { question: `Make ${name} the host? You become a co-host.`, yes: 'Pass host', yesAria: `Confirm: pass host to ${name}`, what: { what: `Passing host to ${name}`, hostOnly: true } },
        () => host.post('host', { identity }).then(() => announce(`${name} is now the host.`))) }, 'Pass host'));
    }
    if (!actions.children.length) actions.appendChild(h('span', { class: 'muted' }, 'No actions'));
  }
}

export class PeopleList {
  private readonly title = h('h3', { id: 'host-people-title' }, 'In the meeting');
  private readonly list = h('ul', { class: 'host-list', 'aria-labelledby': 'host-people-title', 'data-testid': 'participants' });
  private readonly error = h('p', { class: 'form-error', role: 'alert' });
  private readonly rows = new Map<string, PersonRow>();

  constructor(private readonly host: HostContext) {}

  /** The section, anew for each attach. */
  build(): HTMLElement {
    const muteAll = actionButton('Mute all', 'Mute everyone but the hosts', this.error, 'Muting everyone',
      () => this.host.post('mute-all').then((result) => {
        const count = ((result as { muted?: unknown[] } | null)?.muted ?? []).length;
        announce(count ? `${count} ${count === 1 ? 'microphone was' : 'microphones were'} muted.` : 'No microphone was on.');
      }));
    return h('section', { class: 'host-section', 'aria-labelledby': 'host-people-title' },
      h('div', { class: 'section-head' }, this.title, muteAll),
      this.error, this.list);
  }

  reset(): void {
    this.rows.clear();
    clear(this.list);
  }

  /** Everyone but the bots (and me), in the order they came; rows kept so that a redraw keeps an open confirm step. */
  render(): void {
    const room = this.host.room;
    if (!room) return;
    const people = [...room.remoteParticipants.values()].filter((p) => !isBot(p));
    const seen = new Set<string>();
    for (const participant of people) {
      seen.add(participant.identity);
      let row = this.rows.get(participant.identity);
      if (!row) {
        row = new PersonRow(participant, this.host);
        this.rows.set(participant.identity, row);
        this.list.appendChild(row.element);
      } else {
        row.update();
      }
    }
    for (const [identity, row] of this.rows) {
      if (!seen.has(identity)) {
        row.element.remove();
        this.rows.delete(identity);
      }
    }
    this.title.textContent = `In the meeting (${people.length + 1})`;
    if (!people.length && !this.list.querySelector('.empty')) {
      this.list.appendChild(h('li', { class: 'muted empty' }, 'Only you so far.'));
    } else if (people.length) {
      this.list.querySelector('.empty')?.remove();
    }
  }
}
