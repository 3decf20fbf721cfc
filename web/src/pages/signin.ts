// /app/signin: the development sign-in (DEV_SIGN_IN=1, which `up` sets) mints an app JWT for
// a chosen user id; elsewhere the platform's own login hands the pages a token instead.

import { ApiError, call, currentUser, storeToken } from '../api';
import { errorText } from '../errors';
import { frame, h, HOME, showProblem } from '../ui';

interface SignedIn {
  token: string;
  userId: string;
  name: string;
}

function nextPage(): string {
  const next = new URLSearchParams(location.search).get('next') ?? '/app/';
  // Only our own pages: never an open redirect.
  return next.startsWith('/app/') && !next.startsWith('//') ? next : '/app/';
}

/** The service's shell says whether its development sign-in exists (DEV_SIGN_IN). */
function devSignInOffered(): boolean {
  return document.getElementById('main')?.dataset.devSignIn === '1';
}

function showPlatformLogin(): void {
  showProblem(
    'Sign in through TalkPlatform',
    'This service has no sign-in of its own: TalkPlatform signs you in and opens these pages for you. Open your meeting link from TalkPlatform again.',
    [HOME],
  );
}

function render(): void {
  if (!devSignInOffered()) {
    frame('Sign in', currentUser());
    showPlatformLogin();
    return;
  }
  const reason = new URLSearchParams(location.search).get('reason');
  const user = currentUser();
  const error = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'signin-error' });
  const userId = h('input', {
    id: 'user-id', name: 'userId', required: true, autocomplete: 'username',
    pattern: '[A-Za-z0-9_.@:+\\-]{1,128}', value: user?.sub ?? '',
    'aria-describedby': 'user-id-help',
  });
  const name = h('input', { id: 'name', name: 'name', autocomplete: 'name', maxlength: 200, value: user?.name ?? '' });
  const submit = h('button', { type: 'submit' }, 'Sign in');
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'signin-title' },
    h('h2', { id: 'signin-title' }, 'Development sign-in'),
    reason === 'expired' ? h('p', { class: 'muted' }, 'Your sign-in has expired or is missing: please sign in again.') : null,
    h('label', { for: 'user-id' }, 'User id'),
    userId,
    h('p', { id: 'user-id-help', class: 'muted' }, 'Letters, digits and _ . @ : + - (up to 128).'),
    h('label', { for: 'name' }, 'Display name (optional)'),
    name,
    h('p', {}, submit),
    error,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    error.textContent = '';
    submit.disabled = true;
    const body = { userId: userId.value.trim(), name: name.value.trim() || null };
    call<SignedIn>('POST', '/api/v1/dev/sign-in', body)
      .then((signed) => {
        storeToken(signed.token);
        location.assign(nextPage());
      })
      .catch((err: unknown) => {
        submit.disabled = false;
        if (err instanceof ApiError && err.status === 404) {
          showPlatformLogin(); // turned off since this page was served
          return;
        }
        error.textContent = err instanceof ApiError && err.status === 422
          ? 'That user id is not valid: use letters, digits and _ . @ : + - only.'
          : `Sign-in failed: ${errorText(err)}`;
      });
  });
  frame('Sign in', user, form);
  userId.focus();
}

render();
