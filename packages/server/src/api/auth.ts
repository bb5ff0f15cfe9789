import { hash, timingSafeEqual } from 'node:crypto';
import { type Clock, systemClock } from '../core/clock.js';

/**
 * What a call needs: `client` (newGid, prepare, submit, abort, registerBranch, query of a gid, prepareWorkflow),
 * `admin` (everything else: /all, forceStop, the cron resets, topics, KV, the UI's API), `metrics` (GET /api/metrics:
 * a metrics token or an admin token, or nothing with `Auth.MetricsOpen`), `open` (/api/ping, the UI's static files).
 */
export type Role = 'open' | 'client' | 'admin' | 'metrics';

/** The transports that report an authentication failure (the label of dtx_auth_failures_total). */
export type AuthTransport = 'http' | 'grpc' | 'jsonrpc';

/** The outcome of a check: let it through, 401 / UNAUTHENTICATED, 403 / PERMISSION_DENIED, 429 / RESOURCE_EXHAUSTED. */
export const AuthOutcome = { Ok: 0, Unauthenticated: 1, Forbidden: 2, Limited: 3 } as const;
export type AuthOutcome = (typeof AuthOutcome)[keyof typeof AuthOutcome];

export interface AuthOptions {
  /** Client-role tokens (`Auth.Token`); several for rotation. */
  tokens: readonly string[];
  /** Admin-role tokens (`Auth.AdminToken`); an admin token also grants every client call. */
  adminTokens: readonly string[];
  /** Tokens for GET /api/metrics only (`Auth.MetricsToken`); an admin token grants it too. */
  metricsTokens?: readonly string[];
  /** GET /api/metrics without a token (`Auth.MetricsOpen`), as Prometheus setups expect. */
  metricsOpen?: boolean;
  /** Failed attempts from one address within `failureWindow` s before that address is refused (`Auth.MaxFailures`). */
  maxFailures?: number;
  /** Seconds over which failures are counted (`Auth.FailureWindow`). */
  failureWindow?: number;
  /** Seconds an address is refused once over the limit (`Auth.BlockSeconds`). */
  blockSeconds?: number;
  /** Addresses tracked at once (`Auth.MaxTrackedAddresses`); the oldest entry is evicted beyond it. */
  maxTracked?: number;
  /** Called on every refused call (wrong or missing token, wrong role, rate-limited). */
  onAuthFailure?: (transport: AuthTransport) => void;
  clock?: Pick<Clock, 'now'>;
}

/** Bits of what a token grants. */
const CLIENT = 1;
const ADMIN = 2;
const METRICS = 4;

/** The failures of one source address: count in the current window, and until when it is refused. */
interface Failures {
  count: number;
  windowStart: number;
  blockedUntil: number;
}

/** A token's fixed-length digest: every comparison is of 32 bytes against 32 bytes, whatever the token lengths. */
const digest = (token: string): Buffer => hash('sha256', token, 'buffer') as unknown as Buffer;

/** Split a configured list: comma-separated, blanks dropped. */
export function tokenList(value: string): string[] {
  return value
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
}

/**
 * The token check of every API. The configured tokens are hashed once here; a presented token is hashed and
 * compared with each of them by crypto.timingSafeEqual (no early exit), so the time taken says nothing about
 * how much of a token was right. Failed attempts are counted per source address in a bounded table: past
 * `maxFailures` within the window the address is refused (any token, even a right one, so that the refusal does
 * not reveal guesses) for `blockSeconds`.
 */
export class Authenticator {
  /** Whether any client or admin token is configured; otherwise every API is open (as DTM). */
  readonly enabled: boolean;
  private readonly digests: Buffer[];
  private readonly grants: number[];
  private readonly metricsOpen: boolean;
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly blockMs: number;
  private readonly maxTracked: number;
  private readonly failures = new Map<string, Failures>();
  private readonly onFailure: ((transport: AuthTransport) => void) | undefined;
  private readonly clock: Pick<Clock, 'now'>;

  constructor(o: AuthOptions) {
    this.enabled = o.tokens.length > 0 || o.adminTokens.length > 0;
    const grant = new Map<string, number>();
    const add = (list: readonly string[] | undefined, bit: number) => {
      for (const t of list ?? []) grant.set(t, (grant.get(t) ?? 0) | bit);
    };
    add(o.tokens, CLIENT);
    add(o.adminTokens, ADMIN | CLIENT | METRICS);
    add(o.metricsTokens, METRICS);
    this.digests = [...grant.keys()].map(digest);
    this.grants = [...grant.values()];
    this.metricsOpen = o.metricsOpen === true;
    this.maxFailures = o.maxFailures ?? 10;
    this.windowMs = (o.failureWindow ?? 60) * 1000;
    this.blockMs = (o.blockSeconds ?? 60) * 1000;
    this.maxTracked = o.maxTracked ?? 10_000;
    this.onFailure = o.onAuthFailure;
    this.clock = o.clock ?? systemClock;
  }

  /**
   * Check a call. `authorization` is the header / metadata value (`Bearer <token>`); `addressOf(ctx)` gives the
   * caller's address, asked only when there is something to count or look up (no closure per call).
   */
  check<C>(
    authorization: string | undefined,
    need: Role,
    transport: AuthTransport,
    addressOf: (ctx: C) => string,
    ctx: C,
  ): AuthOutcome {
    if (!this.enabled || need === 'open' || (need === 'metrics' && this.metricsOpen)) return AuthOutcome.Ok;
    let address: string | undefined;
    if (this.failures.size > 0) {
      address = addressOf(ctx);
      const f = this.failures.get(address);
      if (f !== undefined && f.blockedUntil > this.clock.now()) {
        this.onFailure?.(transport);
        return AuthOutcome.Limited;
      }
    }
    const granted = this.grantOf(authorization);
    const bit = need === 'client' ? CLIENT : need === 'admin' ? ADMIN : METRICS;
    if ((granted & bit) !== 0) return AuthOutcome.Ok;
    this.onFailure?.(transport);
    if (granted !== 0) return AuthOutcome.Forbidden; // a right token for another role is no guess
    return this.fail(address ?? addressOf(ctx)) ? AuthOutcome.Limited : AuthOutcome.Unauthenticated;
  }

  /** What the header's token grants (bits); 0 for none, a malformed header or an unknown token. */
  private grantOf(authorization: string | undefined): number {
    if (authorization === undefined || authorization.length < 8) return 0;
    // the scheme is case-insensitive (RFC 9110 §11.1)
    const c = authorization.charCodeAt(0) | 0x20;
    if (c !== 0x62 || authorization.slice(0, 7).toLowerCase() !== 'bearer ') return 0;
    const presented = digest(authorization.slice(7).trim());
    let granted = 0;
    for (let i = 0; i < this.digests.length; i++) {
      if (timingSafeEqual(presented, this.digests[i]!)) granted |= this.grants[i]!;
    }
    return granted;
  }

  /** Count a failed attempt of `address`; true when it is now refused. */
  private fail(address: string): boolean {
    const now = this.clock.now();
    let f = this.failures.get(address);
    if (f === undefined || now - f.windowStart >= this.windowMs) {
      if (f !== undefined) this.failures.delete(address);
      else if (this.failures.size >= this.maxTracked) this.evict(now);
      f = { count: 0, windowStart: now, blockedUntil: 0 };
      // re-inserted last: the Map's order is then the order windows started, oldest first
      this.failures.set(address, f);
    }
    f.count++;
    if (f.count >= this.maxFailures) {
      f.blockedUntil = now + this.blockMs;
      return f.count > this.maxFailures;
    }
    return false;
  }

  /** Make room for one entry: drop expired entries from the oldest on, and the oldest one when none expired. */
  private evict(now: number): void {
    for (const [address, f] of this.failures) {
      if (this.failures.size < this.maxTracked) return;
      if (now - f.windowStart >= this.windowMs && f.blockedUntil <= now) this.failures.delete(address);
      else break;
    }
    if (this.failures.size >= this.maxTracked) {
      const oldest = this.failures.keys().next();
      if (!oldest.done) this.failures.delete(oldest.value);
    }
  }

  /** Addresses tracked now (tests, bounded by maxTracked). */
  get trackedAddresses(): number {
    return this.failures.size;
  }

  /** Seconds a refused address should wait (the Retry-After header). */
  get retryAfterSeconds(): number {
    return Math.ceil(this.blockMs / 1000);
  }
}

/** An Authenticator that lets everything through (no token configured). */
export const OPEN_AUTH = new Authenticator({ tokens: [], adminTokens: [] });
