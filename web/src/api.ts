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

// Site data may be blocked (a browser setting, some private modes): reading localStorage
// then throws, and a page that let it would never get past "Loading". The login is then
// kept for this page only.
let memoryToken: string | null = null;

function readToken(): string | null {
  try {
    return localStorage.getItem(TOKEN_KEY) ?? memoryToken;
  } catch {
    return memoryToken;
  }
}

function writeToken(token: string | null): void {
  memoryToken = token;
  try {
    if (token === null) localStorage.removeItem(TOKEN_KEY);
    else localStorage.setItem(TOKEN_KEY, token);
  } catch {
    // kept in memory only
  }
}

/** A login that a link handed over (`#token=...`) for someone other than the person signed
 * in here: it waits for their yes (`acceptHandedToken`), since a link anyone can craft must
 * not silently swap whose account this browser uses. */
export interface HandedToken {
  token: string;
  claims: Claims;
  current: Claims;
}

let handed: HandedToken | null = null;

/** A token in the address's fragment (`#token=...`, never sent to a server) is how the
 * platform's own login opens these pages: kept when nobody (or the same person) is signed
 * in, held for a yes otherwise; the fragment is removed either way. */
function adoptFragmentToken(): void {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get('token');
  if (!token) return;
  history.replaceState(null, '', location.pathname + location.search);
  const claims = claimsOf(token);
  if (!claims) return; // not a login at all: ignored
  const stored = readToken();
  const current = stored ? claimsOf(stored) : null;
  if (current && current.sub !== claims.sub && current.exp * 1000 > Date.now()) {
    handed = { token, claims, current };
    return;
  }
  writeToken(token);
}

/** The login a link handed over, if it waits for a yes (see `HandedToken`). */
export function handedToken(): HandedToken | null {
  currentUser();
  return handed;
}

export function acceptHandedToken(accept: boolean): void {
  if (handed && accept) writeToken(handed.token);
  handed = null;
}

export function claimsOf(token: string): Claims | null {
  try {
    const part = token.split('.')[1] ?? '';
    const binary = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    // atob gives bytes as characters: a name such as "José" is UTF-8 inside.
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes)) as Partial<Claims>;
    if (typeof claims.sub !== 'string' || typeof claims.exp !== 'number') return null;
    return claims as Claims;
  } catch {
    return null;
  }
}

/** The stored login, if it is still valid for a while. */
export function currentUser(): Claims | null {
  adoptFragmentToken();
  const token = readToken();
  if (!token) return null;
  const claims = claimsOf(token);
  if (!claims || claims.exp * 1000 < Date.now() + 5000) return null;
  return claims;
}

export function storeToken(token: string): void {
  writeToken(token);
}

export function signOut(): void {
  writeToken(null);
}

/** Where to sign in, coming back here afterwards. */
export function signInUrl(reason?: string): string {
  const query = new URLSearchParams({ next: location.pathname + location.search });
  if (reason) query.set('reason', reason);
  return `/app/signin?${query.toString()}`;
}

export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  const token = readToken();
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
  /** A waiting guest's note to the hosts: how many hosts it reached (0: none is in yet). */
  noteToHosts: (meetingId: string, text: string) =>
    call<{ sent: boolean; hostsReached: number }>(
      'POST', `/api/v1/meetings/${encodeURIComponent(meetingId)}/waiting-room/note`, { text }),
};

/** The meeting id in this page's address (`/app/meeting/{id}`, `/app/host/{id}`). */
export function meetingIdFromPath(): string {
  const parts = location.pathname.split('/').filter(Boolean);
  return decodeURIComponent(parts[parts.length - 1] ?? '');
}
