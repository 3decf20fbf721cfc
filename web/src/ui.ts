// Small DOM helpers shared by the pages: an element builder, the page frame, a problem
// panel that always offers a way forward, and a polite live region for screen readers.

import { acceptHandedToken, currentUser, handedToken, signInUrl, signOut, type Claims, type HandedToken } from './api';
import { errorText } from './errors';

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

/** `h('button', {type: 'button', onclick: fn}, 'Admit')`: attributes starting with `on` are
 * listeners; `true` sets a boolean attribute, `false`/`null` leaves it out. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
  }
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function mainElement(): HTMLElement {
  const main = document.getElementById('main');
  if (!main) throw new Error('page shell has no <main id="main">');
  return main;
}

let liveRegion: HTMLElement | null = null;

/** Say something to screen readers (and show it in the status line). */
export function announce(text: string): void {
  if (!liveRegion) {
    liveRegion = h('div', { class: 'status-line', role: 'status', 'aria-live': 'polite' });
    document.body.appendChild(liveRegion);
  }
  liveRegion.textContent = text;
}

/** The page frame: a header with the page's title and who is signed in, then `content`. */
export function frame(title: string, user: Claims | null, ...content: Child[]): HTMLElement {
  const main = mainElement();
  clear(main);
  document.title = `${title} · TalkPlatform`;
  const who = user
    ? h(
        'span',
        { class: 'who' },
        `Signed in as ${user.name ?? user.sub} `,
        h(
          'button',
          {
            type: 'button',
            class: 'link',
            onclick: () => {
              signOut();
              location.assign(signInUrl());
            },
          },
          'Sign out',
        ),
      )
    : h('a', { href: signInUrl() }, 'Sign in');
  const header = h(
    'header',
    { class: 'top' },
    h('a', { class: 'brand', href: '/app/' }, 'TalkPlatform'),
    h('h1', {}, title),
    who,
  );
  document.querySelector('header.top')?.remove();
  document.body.insertBefore(header, main);
  append(main, ...content);
  return main;
}

export interface Action {
  label: string;
  href?: string;
  onClick?: () => void;
}

/** A problem, said plainly, with what the person can do next. Replaces the page's content
 * (`into`, the main element by default). */
export function showProblem(title: string, message: string, actions: Action[] = [], into?: HTMLElement): HTMLElement {
  const target = into ?? mainElement();
  clear(target);
  const buttons = actions.map((action) =>
    action.href
      ? h('a', { class: 'button', href: action.href }, action.label)
      : h('button', { type: 'button', onclick: () => action.onClick?.() }, action.label),
  );
  const panel = h(
    'section',
    { class: 'problem', role: 'alert', 'data-testid': 'problem' },
    h('h2', {}, title),
    h('p', {}, message),
    buttons.length ? h('p', { class: 'actions' }, ...buttons) : null,
  );
  target.appendChild(panel);
  const first = panel.querySelector<HTMLElement>('a, button');
  first?.focus();
  return panel;
}

export const HOME: Action = { label: 'Back to start', href: '/app/' };

/** To the sign-in page and back here; a function, as the way back is this page's address. */
export function signInAgain(): Action {
  return { label: 'Sign in', href: signInUrl('expired') };
}

/** The signed-in user, or a problem panel that sends them to sign in (null). */
export function requireUser(): Claims | null {
  const offered = handedToken();
  if (offered) {
    askWhoToBe(offered);
    return null;
  }
  const user = currentUser();
  if (user) return user;
  frame('Sign in needed', null);
  showProblem(
    'Please sign in',
    'You are not signed in, or your sign-in has expired.',
    [signInAgain(), HOME],
  );
  return null;
}

function askWhoToBe(offered: HandedToken): void {
  const theirs = offered.claims.name ?? offered.claims.sub;
  const mine = offered.current.name ?? offered.current.sub;
  frame('Which account?', offered.current);
  const choose = (accept: boolean) => {
    acceptHandedToken(accept);
    location.reload();
  };
  const panel = showProblem(
    'This link signs you in as someone else',
    `You are signed in here as ${mine}. The link you followed would sign you in as ${theirs} instead.`,
    [
      { label: `Continue as ${theirs}`, onClick: () => choose(true) },
      { label: `Stay ${mine}`, onClick: () => choose(false) },
    ],
  );
  panel.dataset.testid = 'which-account';
}

/** A page that fails before it shows anything says so, rather than "Loading…" for ever. */
function showUnexpected(reason: unknown): void {
  const main = document.getElementById('main');
  if (!main || !main.querySelector(':scope > .loading')) return; // the page is up: it copes
  showProblem('This page could not start', `Something went wrong: ${errorText(reason)}. Reload the page to try again.`, [
    { label: 'Reload', onClick: () => location.reload() },
    HOME,
  ], main);
}

window.addEventListener('error', (event) => showUnexpected(event.error ?? event.message));
// A link to this very page with a login in its fragment changes only the fragment, which
// loads nothing: start the page again so that it reads the login.
window.addEventListener('hashchange', () => {
  if (new URLSearchParams(location.hash.slice(1)).has('token')) location.reload();
});
window.addEventListener('unhandledrejection', (event) => showUnexpected(event.reason));

/** Seconds or minutes, for "waiting for 3 min". */
export function since(iso: string): string {
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s`;
  return `${Math.round(seconds / 60)} min`;
}

export function time(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}
