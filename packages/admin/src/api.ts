/** The dtx HTTP API as the UI calls it: every call carries the admin token once one was given. */
const TOKEN_KEY = 'dtx-admin-token';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(t: string | null): void {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * What the server says of a token before the UI keeps it: the status of an admin route called with it
 * (200 admin, 401 not accepted, 403 a client token, 429 this address failed too often).
 */
export async function checkToken(t: string): Promise<number> {
  const r = await fetch(`${API}/info`, {
    headers: { authorization: `Bearer ${t}` },
    signal: AbortSignal.timeout(30_000),
  });
  await r.body?.cancel();
  return r.status;
}

/** Called on a 401 (the UI shows its login form). */
let onUnauthorized: () => void = () => {};
export function whenUnauthorized(f: () => void): void {
  onUnauthorized = f;
}

async function request(method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = {};
  const t = token();
  if (t) headers.authorization = `Bearer ${t}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(path, {
    method,
    headers,
    body: body === undefined ? null : JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  });
  if (r.status === 401) {
    onUnauthorized();
    throw new HttpError(401, 'Log in with an admin token to see this page.');
  }
  if (r.status === 403) throw new HttpError(403, 'Forbidden: this token is not an admin token.');
  if (!r.ok) {
    const text = await r.text();
    let message = text;
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? text;
    } catch {}
    throw new HttpError(r.status, `${method} ${path.split('?')[0]}: ${r.status} ${message}`.trim());
  }
  return r;
}

export async function getJson<T>(path: string, params: Record<string, string | undefined> = {}): Promise<T> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, v);
  const qs = q.toString();
  return (await request('GET', qs ? `${path}?${qs}` : path)).json() as Promise<T>;
}

export async function postJson<T>(path: string, body: unknown): Promise<T> {
  return (await request('POST', path, body)).json() as Promise<T>;
}

export async function del(path: string): Promise<void> {
  await request('DELETE', path);
}

export async function getText(path: string): Promise<string> {
  return (await request('GET', path)).text();
}

export const API = '/api/dtmsvr';

/** The transaction object of /query, /all and /stuck (fields omitted when empty, as DTM does). */
export interface Trans {
  gid: string;
  trans_type?: string;
  status?: string;
  protocol?: string;
  create_time?: string | null;
  update_time?: string | null;
  finish_time?: string;
  rollback_time?: string;
  rollback_reason?: string;
  /** A workflow's result: the base64 of the bytes it was submitted with. */
  result?: string;
  next_cron_interval?: number;
  next_cron_time?: string;
  custom_data?: string;
  branch_headers?: Record<string, string>;
  wait_result?: boolean;
  timeout_to_fail?: number;
  retry_interval?: number;
  retry_limit?: number;
  failed_attempts?: number;
  last_error?: string;
  stuck?: boolean;
  stuck_reason?: string;
  /** dtx: saga only, seconds each step's compensation waits after the rollback began (0: none). */
  compensate_delays?: number[];
  /** dtx: while a saga with delays is aborting, when each step's compensation may run (null: no delay). */
  compensate_due?: (string | null)[];
}

export interface Branch {
  branch_id?: string;
  op?: string;
  status?: string;
  url?: string;
  bin_data?: string;
  create_time?: string | null;
  update_time?: string | null;
  finish_time?: string;
  rollback_time?: string;
  attempts?: number;
  last_attempt_time?: string;
  last_result?: string;
  last_error?: string;
}

export interface KV {
  k: string;
  v: string;
  version: number;
}
