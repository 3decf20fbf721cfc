// A host's failed REST call (service/moderation_routes.py, run_routes.py) in words a host can
// act on. The service answers `{"error": {"code", "message", ...context}}`
// (talkplatform_agents/errors.py): the advice is chosen by the code and the context (which
// meeting, person or run the failure is about; when to try again), never by the message's
// words, which are written for logs. `doing` names the action ("Removing Ann"), since the
// words stand next to its button, and may say what the action's 404 and 403 mean for it.

import { ApiError } from '../api';
import { errorText } from '../errors';

/** What a control does, for the words of its failure. */
export interface Doing {
  /** The action: "Removing Ann". */
  what: string;
  /** What a "not found" about the person means here: "they are no longer waiting". */
  gone?: string;
  /** Only the host may do it, not a co-host. */
  hostOnly?: boolean;
}

type Context = Record<string, unknown>;

/** The codes of talkplatform_agents/errors.py by status, for an answer without the
 * service's body (a proxy's 502 page): api.ts calls those `http_<status>`. */
const CODE_BY_STATUS: Record<number, string> = {
  0: 'network', 400: 'invalid_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found',
  409: 'conflict', 410: 'gone', 422: 'invalid_request', 429: 'rate_limited', 500: 'internal',
  502: 'bad_gateway', 503: 'unavailable',
};

/** The error body's fields besides its code and message. */
function contextOf(err: ApiError): Context {
  const error = (err.body as { error?: unknown } | null)?.error;
  return error && typeof error === 'object' ? (error as Context) : {};
}

/** A run's noun and id from the context (`recordingId`: "recording"), if it names one. */
function runOf(context: Context): { noun: string; id: string } | null {
  for (const [key, value] of Object.entries(context)) {
    if (key !== 'meetingId' && key.endsWith('Id') && typeof value === 'string') {
      return { noun: key.slice(0, -2), id: value };
    }
  }
  return null;
}

function advice(err: ApiError, doing: Doing): string {
  const context = contextOf(err);
  const code = err.code.startsWith('http_') ? CODE_BY_STATUS[err.status] ?? err.code : err.code;
  switch (code) {
    case 'network':
      return 'the service cannot be reached. Check your network, then try again.';
    case 'unauthorized':
      return 'your sign-in has expired. Reload the page and sign in again.';
    case 'forbidden':
      return doing.hostOnly
        ? 'only the host can do this, and you are not the host (any more).'
        : 'only a host or co-host can do this, and you are not one (any more).';
    case 'not_found': {
      const run = runOf(context);
      if (run) return `this ${run.noun} is no longer known to the service. Reload the page to see the meeting as it is.`;
      if (typeof context.identity === 'string') return `${doing.gone ?? 'they are no longer in the meeting'}.`;
      if (typeof context.meetingId === 'string') return 'this meeting no longer exists.';
      return `${err.message}.`;
    }
    case 'conflict': {
      const run = runOf(context);
      if (run && typeof context.status === 'string') {
        return `a ${run.noun} of this meeting is ${context.status === 'active' ? 'on' : context.status} already (another host may have started it).`;
      }
      return `${err.message}.`; // the service's own words: "the host cannot be removed; pass host first"
    }
    case 'gone':
      return 'the meeting has ended.';
    case 'rate_limited': {
      const wait = typeof context.retryAfter === 'number' ? context.retryAfter : 0;
      return `too many actions in a row. Wait ${wait > 1 ? `${wait} seconds` : 'a second'}, then try again.`;
    }
    case 'invalid_request':
      return `the service did not accept the request (${err.message}).`;
    case 'bad_gateway':
      return 'the media server refused it. Try again.';
    case 'unavailable':
      return 'the media server or the database is not answering. Try again in a moment.';
    case 'internal':
      return 'the service failed on its side. Try again; if it keeps failing, reload the page.';
    default:
      return err.message;
  }
}

export function failureText(err: unknown, doing: string | Doing): string {
  const action = typeof doing === 'string' ? { what: doing } : doing;
  const text = err instanceof ApiError ? advice(err, action) : errorText(err);
  return `${action.what} failed: ${text}`;
}
