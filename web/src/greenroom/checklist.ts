// The preflight checklist: steps a browser can check for itself, each passed, failed (with
// what to do) or still running, and a summary read out when it changes.

import { clear, h, type Action } from '../ui';

export type StepState = 'pending' | 'running' | 'pass' | 'warn' | 'fail';

/** A link or button under a step's fix ("Sign in", "Reconnect"). */
export type StepAction = Action;

interface Step {
  id: string;
  label: string;
  state: StepState;
  item: HTMLLIElement;
  badge: HTMLElement;
  detail: HTMLElement;
  fix: HTMLElement;
}

const BADGES: Record<StepState, [string, string]> = {
  pending: ['Not yet', ''],
  running: ['Checking…', ''],
  pass: ['Passed', 'ok'],
  warn: ['Passed, with a warning', 'warn'],
  fail: ['Failed', 'bad'],
};

const MARKS: Record<StepState, string> = { pending: '○', running: '…', pass: '✓', warn: '!', fail: '✗' };

export class Checklist {
  readonly element: HTMLElement;
  private readonly list: HTMLOListElement;
  private readonly summary: HTMLElement;
  private readonly steps = new Map<string, Step>();

  constructor(steps: Array<[string, string]>, again: () => void) {
    this.list = h('ol', { class: 'gr-checks', 'data-testid': 'preflight' });
    for (const [id, label] of steps) {
      const badge = h('span', { class: 'badge' });
      const detail = h('p', { class: 'gr-detail muted' });
      const fix = h('p', { class: 'gr-fix' });
      const item = h('li', { 'data-step': id, 'data-state': 'pending' },
        h('span', { class: 'gr-mark', 'aria-hidden': 'true' }),
        h('div', { class: 'gr-step' },
          h('div', { class: 'gr-step-head' }, h('strong', {}, label), badge),
          detail,
          fix));
      const step: Step = { id, label, state: 'pending', item, badge, detail, fix };
      this.steps.set(id, step);
      this.list.appendChild(item);
      this.paint(step);
    }
    this.summary = h('p', { class: 'gr-summary', role: 'status', 'data-testid': 'preflight-summary' });
    this.element = h('section', { class: 'card gr-checklist', 'aria-labelledby': 'gr-checks-title' },
      h('h2', { id: 'gr-checks-title' }, 'Checks'),
      this.list,
      this.summary,
      h('p', {}, h('button', { type: 'button', class: 'secondary', onclick: again }, 'Run the checks again')));
    this.updateSummary();
  }

  state(id: string): StepState {
    return this.steps.get(id)?.state ?? 'pending';
  }

  /** `detail` says what was found; `fix` (for a failure or warning) what to do about it. */
  set(id: string, state: StepState, detail = '', fix = '', action?: StepAction): void {
    const step = this.steps.get(id);
    if (!step) return;
    step.state = state;
    step.detail.textContent = detail;
    clear(step.fix);
    if (fix) step.fix.append(h('span', { class: 'gr-fix-label' }, 'What to do: '), fix);
    if (action) {
      step.fix.append(' ', action.href
        ? h('a', { href: action.href }, action.label)
        : h('button', { type: 'button', class: 'link', onclick: () => action.onClick?.() }, action.label));
    }
    this.paint(step);
    this.updateSummary();
  }

  /** Every step back to "not yet", from `from` on (all of them without it). */
  reset(from?: string): void {
    let resetting = from === undefined;
    for (const step of this.steps.values()) {
      if (step.id === from) resetting = true;
      if (resetting) this.set(step.id, 'pending');
    }
  }

  private paint(step: Step): void {
    const [text, tone] = BADGES[step.state];
    step.item.dataset.state = step.state;
    step.badge.textContent = text;
    step.badge.className = tone ? `badge ${tone}` : 'badge';
    const mark = step.item.querySelector('.gr-mark');
    if (mark) mark.textContent = MARKS[step.state];
  }

  private updateSummary(): void {
    const all = [...this.steps.values()];
    const failed = all.filter((s) => s.state === 'fail');
    const open = all.filter((s) => s.state === 'pending' || s.state === 'running');
    const warned = all.filter((s) => s.state === 'warn');
    let text: string;
    if (failed.length) {
      text = `${failed.length} of ${all.length} checks failed: see what to do under each.`;
    } else if (open.length) {
      text = `Checking… ${all.length - open.length} of ${all.length} done.`;
    } else if (warned.length) {
      text = `All ${all.length} checks passed, ${warned.length} with a warning.`;
    } else {
      text = `All ${all.length} checks passed.`;
    }
    if (this.summary.textContent !== text) this.summary.textContent = text;
    this.summary.dataset.state = failed.length ? 'fail' : open.length ? 'running' : 'pass';
  }
}
