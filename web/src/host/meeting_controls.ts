// The meeting as a whole: its lock, its recording and transcription, and its end. The lock
// and the runs are read from the service (api.meeting, run_routes.py) rather than kept from
// this page's own actions, because another host may change them; a run is re-read while it
// starts or stops, since that takes the recorder or the transcriber some seconds.

import { api } from '../api';
import { announce, append, clear, h } from '../ui';
import { actionButton, confirmStep } from './actions';
import type { HostContext } from './context';

const RUNNING = new Set(['starting', 'active', 'stopping']);

interface Run {
  id: string;
  status: string;
  error: string | null;
}

type Kind = 'recordings' | 'transcriptions';
const KINDS: Kind[] = ['recordings', 'transcriptions'];

interface RunLine {
  state: HTMLElement;
  button: HTMLButtonElement;
  title: string;
  noun: string;
}

export class MeetingControls {
  private readonly box = h('div', { class: 'host-meeting' });
  private locked: boolean | null = null;
  private runs: Record<Kind, Run | null> = { recordings: null, transcriptions: null };
  private lockLine: { state: HTMLElement; button: HTMLButtonElement } | null = null;
  private runLines: Partial<Record<Kind, RunLine>> = {};
  private endLine: HTMLElement | null = null;

  constructor(private readonly host: HostContext) {}

  /** The section, anew for each attach. */
  build(): HTMLElement {
    const section = h('section', { class: 'host-section', 'aria-labelledby': 'host-meeting-title' },
      h('h3', { id: 'host-meeting-title' }, 'Meeting'),
      this.box);
    const box = this.box;
    clear(box);
    const lockError = h('p', { class: 'form-error', role: 'alert' });
    const lockButton = actionButton('Lock', 'Lock the meeting', lockError, 'Locking or unlocking the meeting', () => {
      const locking = !this.locked;
      return this.host.post(locking ? 'lock' : 'unlock').then((result) => {
        this.locked = (result as { locked?: boolean } | null)?.locked ?? locking;
        announce(this.locked ? 'The meeting is locked: nobody new can join.' : 'The meeting is unlocked.');
        this.render();
      });
    });
    const lockState = h('span', { class: 'control-state', 'data-testid': 'lock-state' });
    this.lockLine = { state: lockState, button: lockButton };
    append(box, h('div', { class: 'row control-line' }, lockState, lockButton), lockError);
    for (const [kind, title, noun] of [['recordings', 'Recording', 'recording'], ['transcriptions', 'Transcription', 'transcription']] as const) {
      const error = h('p', { class: 'form-error', role: 'alert' });
      const state = h('span', { class: 'control-state', 'data-testid': `${noun}-state` });
      const button = actionButton(`Start ${noun}`, `Start a ${noun}`, error, `Starting or stopping the ${noun}`, () => {
        const run = this.runs[kind];
        const action = run && RUNNING.has(run.status)
          ? this.host.post(`${kind}/${encodeURIComponent(run.id)}/stop`)
          : this.host.post(kind);
        return action.then((answer) => {
          this.runs[kind] = answer as Run;
          announce(RUNNING.has(this.runs[kind]!.status) && this.runs[kind]!.status !== 'stopping'
            ? `A ${noun} is starting.` : `The ${noun} is stopping.`);
        });
      }, 'secondary', () => this.render());
      this.runLines[kind] = { state, button, title, noun };
      append(box, h('div', { class: 'row control-line' }, state, button), error);
    }
    const endError = h('p', { class: 'form-error', role: 'alert' });
    const endActions = h('div', { class: 'row control-line' });
    endActions.appendChild(h('button', { type: 'button', class: 'danger', onclick: () => confirmStep(endActions, endError,
      { question: 'End the meeting for everyone? Those waiting are sent away too.', yes: 'End for everyone', yesAria: 'Confirm: end the meeting for everyone', what: { what: 'Ending the meeting', hostOnly: true } },
      () => this.host.post('end')) }, 'End meeting'));
    this.endLine = h('div', { class: 'end-line' }, endActions, endError);
    box.appendChild(this.endLine);
    this.render();
    return section;
  }

  tick(): void {
    if (Object.values(this.runs).some((run) => run && run.status !== 'active' && RUNNING.has(run.status))) void this.refreshRuns();
  }

  async refreshLock(): Promise<void> {
    try {
      const meeting = await api.meeting(this.host.meetingId);
      this.locked = meeting.settings.locked === true;
    } catch {
      this.locked = null;
    }
    this.render();
  }

  async refreshRuns(): Promise<void> {
    await Promise.all(KINDS.map(async (kind) => {
      try {
        const answer = (await this.host.get(kind)) as Record<string, Run[] | undefined> | null;
        const runs = answer?.[kind] ?? [];
        this.runs[kind] = runs.length ? runs[runs.length - 1]! : null;
      } catch {
        // Kept as it was: the controls say a failure when used.
      }
    }));
    this.render();
  }

  render(): void {
    if (this.lockLine) {
      const { state, button } = this.lockLine;
      state.textContent = this.locked === null ? 'Lock: unknown' : this.locked ? 'Locked: nobody new can join' : 'Open to new guests';
      button.textContent = this.locked ? 'Unlock' : 'Lock';
      button.setAttribute('aria-label', this.locked ? 'Unlock the meeting' : 'Lock the meeting');
    }
    for (const kind of KINDS) {
      const line = this.runLines[kind];
      if (!line) continue;
      const run = this.runs[kind];
      const running = run !== null && RUNNING.has(run.status);
      line.state.textContent = !run || !running
        ? `${line.title}: off${run?.status === 'failed' ? ` (the last one failed${run.error ? `: ${run.error}` : ''})` : ''}`
        : run.status === 'starting' ? `${line.title}: starting…` : run.status === 'stopping' ? `${line.title}: stopping…` : `${line.title}: on`;
      line.state.classList.toggle('on', running);
      line.button.textContent = running ? `Stop ${line.noun}` : `Start ${line.noun}`;
      line.button.setAttribute('aria-label', running ? `Stop the ${line.noun}` : `Start a ${line.noun}`);
      line.button.disabled = run?.status === 'stopping';
    }
    // A co-host may not end the meeting, so is not offered it.
    if (this.endLine) this.endLine.hidden = this.host.myRole !== 'host';
  }
}
