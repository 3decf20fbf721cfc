// The token service's HTTP API, as the pages use it: an app JWT from storage (the platform's
// login, or the development sign-in), JSON in and out, and one error type that carries the
// service's `{"error": {"code", "message"}}` answer.

const TOKEN_KEY = 'tp.appToken';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: unknown = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The login is missing, expired or refused: sign in again. */
  get needsSignIn(): boolean {
    return this.status === 401;
  }
}

export interface Claims {
  sub: string;
  name?: string;
  exp: number;
}

/** A token handed over in the address's fragment (`#token=...`, never sent to a server) is
 * kept, and the fragment removed, so that the platform's own login can open these pages. */
function adoptFragmentToken(): void {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get('token');
  if (!token) return;
  localStorage.setItem(TOKEN_KEY, token);
  history.replaceState(null, '', location.pathname + location.search);
}

export function claimsOf(token: string): Claims | null {
  try {
    const part = token.split('.')[1] ?? '';
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const claims = JSON.parse(json) as Partial<Claims>;
    if (typeof claims.sub !== 'string' || typeof claims.exp !== 'number') return null;
    return claims as Claims;
  } catch {
    return null;
  }
}

/** The stored login, if it is still valid for a while. */
export function currentUser(): Claims | null {
  adoptFragmentToken();
  const token = localStorage.getItem(TOKEN_KEY);
  if (!token) return null;
  const claims = claimsOf(token);
  if (!claims || claims.exp * 1000 < Date.now() + 5000) return null;
  return claims;
}

export function storeToken(token: string): void {
  localStorage.setItem(TOKEN_KEY, token);
}

export function signOut(): void {
  localStorage.removeItem(TOKEN_KEY);
}

/** Where to sign in, coming back here afterwards. */
export function signInUrl(reason?: string): string {
  const query = new URLSearchParams({ next: location.pathname + location.search });
  if (reason) query.set('reason', reason);
  return `/app/signin?${query.toString()}`;
}

export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let reply: Response;
  try {
    reply = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, 'network', `The service cannot be reached (${String(err)}).`);
  }
  const text = await reply.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!reply.ok) {
    const error = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    const message = error?.message ?? `The service answered ${reply.status}.`;
    throw new ApiError(reply.status, error?.code ?? `http_${reply.status}`, message, parsed);
  }
  return parsed as T;
}

// The service's answers the pages read.

export interface TokenResponse {
  status: 'joined' | 'waiting';
  token: string;
  wsUrl: string;
  identity: string;
  name: string;
  room: string;
  expiresAt: string;
  metadata: { role: string; permissions: Record<string, unknown> };
}

export interface Meeting {
  id: string;
  title: string;
  settings: Record<string, unknown>;
  hostId: string;
  room: string;
  createdAt: string;
  endedAt: string | null;
}

export const api = {
  meetingToken: (meetingId: string) =>
    call<TokenResponse>('POST', '/api/v1/livekit/token', { meetingId }),
  greenroomToken: () => call<TokenResponse>('POST', '/api/v1/greenroom/token'),
  meeting: (meetingId: string) =>
    call<Meeting>('GET', `/api/v1/meetings/${encodeURIComponent(meetingId)}`),
  createMeeting: (title: string, settings: Record<string, unknown> = {}) =>
    call<Meeting>('POST', '/api/v1/meetings', { title, settings }),
};

/** The meeting id in this page's address (`/app/meeting/{id}`, `/app/host/{id}`). */
export function meetingIdFromPath(): string {
  const parts = location.pathname.split('/').filter(Boolean);
  return decodeURIComponent(parts[parts.length - 1] ?? '');
}
