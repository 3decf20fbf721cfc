// /app/: where a person starts: the green room, joining a meeting, or starting one.

import { ApiError, api, currentUser, handedToken, signInUrl } from '../api';
import { errorText } from '../errors';
import { frame, h, requireUser } from '../ui';

function meetingIdOf(text: string): string {
  // A pasted link (…/app/meeting/abc) or a bare id.
  const trimmed = text.trim();
  const match = /\/app\/(?:meeting|host)\/([A-Za-z0-9_-]+)/.exec(trimmed);
  return match ? match[1]! : trimmed;
}

function render(): void {
  if (handedToken()) {
    requireUser(); // asks whether to switch to the account the link carries
    return;
  }
  const user = currentUser();
  if (!user) {
    frame('Welcome', null, h('section', { class: 'card' },
      h('h2', {}, 'Welcome to TalkPlatform'),
      h('p', {}, 'Sign in to check your camera and microphone, and to join or host meetings.'),
      h('p', {}, h('a', { class: 'button', href: signInUrl() }, 'Sign in'))));
    return;
  }
  const joinId = h('input', { id: 'join-id', required: true, placeholder: 'Meeting id or link' });
  const joinError = h('p', { role: 'alert', class: 'form-error' });
  const join = h('form', { class: 'card', 'aria-labelledby': 'join-title' },
    h('h2', { id: 'join-title' }, 'Join a meeting'),
    h('label', { for: 'join-id' }, 'Meeting id or link'),
    h('div', { class: 'row' }, joinId, h('button', { type: 'submit' }, 'Join')),
    joinError);
  join.addEventListener('submit', (event) => {
    event.preventDefault();
    const id = meetingIdOf(joinId.value);
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
      joinError.textContent = 'That is not a meeting id: use the id or the link you were given.';
      return;
    }
    location.assign(`/app/meeting/${id}`);
  });
  const title = h('input', { id: 'new-title', required: true, maxlength: 200, placeholder: 'Weekly sync' });
  const waiting = h('input', { id: 'new-waiting', type: 'checkbox', checked: true });
  const createError = h('p', { role: 'alert', class: 'form-error' });
  const create = h('form', { class: 'card', 'aria-labelledby': 'create-title' },
    h('h2', { id: 'create-title' }, 'Start a meeting'),
    h('label', { for: 'new-title' }, 'Title'),
    title,
    h('p', { class: 'row' }, waiting, h('label', { for: 'new-waiting', class: 'inline' }, 'Waiting room: I admit guests')),
    h('p', {}, h('button', { type: 'submit' }, 'Create and open the host console')),
    createError);
  create.addEventListener('submit', (event) => {
    event.preventDefault();
    createError.textContent = '';
    api.createMeeting(title.value.trim(), { waiting_room: waiting.checked })
      .then((meeting) => location.assign(`/app/host/${meeting.id}`))
      .catch((err: unknown) => {
        createError.textContent = err instanceof ApiError && err.needsSignIn
          ? 'Your sign-in has expired: sign in again.'
          : `The meeting was not created: ${errorText(err)}`;
      });
  });
  frame('Start', user,
    h('section', { class: 'card' },
      h('h2', {}, 'Check your devices'),
      h('p', {}, 'The green room plays your microphone back to you, shows your camera, and checks your network.'),
      h('p', {}, h('a', { class: 'button', href: '/app/greenroom' }, 'Open the green room'))),
    join,
    create);
}

render();
