// A host's failed REST call (service/moderation_routes.py, run_routes.py) in words a host can
// act on. The service's own messages are written for logs, so each status gets advice of its
// own; `what` names the action ("Removing Ann"), since the words stand next to its button.

import { ApiError } from '../api';
import { errorText } from '../errors';

export function failureText(err: unknown, what: string): string {
  if (!(err instanceof ApiError)) return `${what} failed: ${errorText(err)}`;
  switch (err.status) {
    case 0:
      return `${what} failed: the service cannot be reached. Check your network, then try again.`;
    case 401:
      return `${what} failed: your sign-in has expired. Reload the page and sign in again.`;
    case 403:
      return /only the host/i.test(err.message)
        ? `${what} failed: only the host can do this, and you are a co-host.`
        : `${what} failed: only a host or co-host can do this, and you are not one (any more).`;
    case 404:
      return `${what} failed: ${err.message.includes('waiting') ? 'they are no longer waiting' : err.message.includes('meeting not found') ? 'this meeting no longer exists' : 'they are no longer in the meeting'}.`;
    case 409:
      return `${what} failed: ${err.message}.`;
    case 410:
      return `${what} failed: the meeting has ended.`;
    case 429:
      return `${what} failed: too many actions in a row. Wait a few seconds, then try again.`;
    case 502:
      return `${what} failed: the media server refused it. Try again.`;
    case 503:
      return `${what} failed: the media server or the database is not answering. Try again in a moment.`;
    default:
      return `${what} failed: ${err.message}`;
  }
}
