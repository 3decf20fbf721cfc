// The console's controls. Each runs its REST call once at a time (a double click must not
// admit or remove twice) and says a failure next to itself, where the host is looking. The
// drastic or wordy ones (remove, pass host, end; deny, message) open in place of the row's
// buttons, so that the question stays next to the person it is about.

import { h } from '../ui';
import { failureText, type Doing } from './errors';

/** Runs `action` with `button` disabled; its failure is said in `error`. */
export async function runAction(
  button: HTMLButtonElement,
  error: HTMLElement,
  what: string | Doing,
  action: () => Promise<unknown>,
): Promise<void> {
  error.textContent = '';
  button.disabled = true;
  try {
    await action();
  } catch (err) {
    error.textContent = failureText(err, what);
  } finally {
    button.disabled = false;
  }
}

/** A button for `action`; `done` runs after it, worked or not (to redraw what it changed). */
export function actionButton(
  label: string,
  ariaLabel: string,
  error: HTMLElement,
  what: string | Doing,
  action: () => Promise<unknown>,
  cls = 'secondary',
  done?: () => void,
): HTMLButtonElement {
  const button = h('button', { type: 'button', class: cls, 'aria-label': ariaLabel }, label);
  button.addEventListener('click', () => {
    void runAction(button, error, what, action).then(() => done?.());
  });
  return button;
}

/** Hides `actions`' buttons while the box `make` builds (given a Cancel button and the way
 * back) stands in for them; focus goes to the box's first control. */
function standIn(
  actions: HTMLElement,
  make: (cancel: HTMLButtonElement, restore: () => void) => HTMLElement,
): void {
  const hidden = [...actions.children] as HTMLElement[];
  for (const child of hidden) child.hidden = true;
  const restore = (): void => {
    box.remove();
    for (const child of hidden) child.hidden = false;
  };
  const cancel = h('button', { type: 'button', class: 'secondary', onclick: () => {
    restore();
    hidden[0]?.focus();
  } }, 'Cancel');
  const box = make(cancel, restore);
  actions.appendChild(box);
  box.querySelector<HTMLElement>('input, button')?.focus();
}

export interface ConfirmOptions {
  question: string;
  yes: string;
  yesAria: string;
  what: string | Doing;
}

/** In place of `actions`: the question, a confirming button and Cancel. */
export function confirmStep(
  actions: HTMLElement,
  error: HTMLElement,
  opts: ConfirmOptions,
  action: () => Promise<unknown>,
): void {
  standIn(actions, (cancel, restore) => {
    const confirm = actionButton(opts.yes, opts.yesAria, error, opts.what, async () => {
      await action();
      restore();
    }, 'danger');
    return h('div', { class: 'confirm', role: 'group', 'aria-label': opts.question },
      h('p', {}, opts.question), h('div', { class: 'row' }, confirm, cancel));
  });
}

export interface FormOptions {
  label: string;
  placeholder: string;
  submit: string;
  submitAria: string;
  required: boolean;
  what: string | Doing;
  cls?: string;
}

/** In place of `actions`: a one-line form (a deny's reason, a message). */
export function inlineForm(
  actions: HTMLElement,
  error: HTMLElement,
  opts: FormOptions,
  action: (text: string) => Promise<unknown>,
): void {
  standIn(actions, (cancel, restore) => {
    const input = h('input', { type: 'text', maxlength: 500, placeholder: opts.placeholder, 'aria-label': opts.label, required: opts.required });
    const submit = h('button', { type: 'submit', class: opts.cls ?? '', 'aria-label': opts.submitAria }, opts.submit);
    const form = h('form', { class: 'inline-form' }, input, h('div', { class: 'row' }, submit, cancel));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (opts.required && !text) return;
      void runAction(submit, error, opts.what, () => action(text).then(restore));
    });
    return form;
  });
}
