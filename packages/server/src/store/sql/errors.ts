import { StoreUnavailableError, UniqueConflictError } from '../../core/errors.js';
import { errorMessage } from '../../util/error-message.js';

/** Socket-level codes of Node and both drivers that mean "the server cannot be reached / went away". */
const NET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  // mysql2
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR',
  'PROTOCOL_ENQUEUE_AFTER_QUIT',
  'ER_SERVER_SHUTDOWN',
  'ER_CON_COUNT_ERROR',
  'ER_TOO_MANY_USER_CONNECTIONS',
]);

/** PostgreSQL SQLSTATEs of a server that is down, starting, shutting down or full (class 08, 57P0x, 53300). */
const PG_UNAVAILABLE = /^(08...|57P0[1-4]|53300)$/;

const PG_CONNECTION_MESSAGES = [
  'Connection terminated',
  'connection error and is not queryable',
  'timeout exceeded when trying to connect',
  'Query read timeout',
  'Client was closed',
  'Cannot use a pool after calling end',
];

/**
 * True when an error says the database cannot be reached or dropped the connection, as opposed to an
 * answer of a reachable server (a constraint, a syntax or permission error). Connection errors are the ones
 * worth waiting out; the others are reported as they are.
 */
export function isConnectionError(err: unknown): boolean {
  if (err instanceof StoreUnavailableError) return true;
  if (!err || typeof err !== 'object') return false;
  const e = err as { code?: unknown; fatal?: unknown; message?: unknown; errors?: unknown };
  if (typeof e.code === 'string' && (NET_CODES.has(e.code) || PG_UNAVAILABLE.test(e.code))) return true;
  if (e.fatal === true) return true; // mysql2: the connection is unusable
  const msg = typeof e.message === 'string' ? e.message : '';
  if (PG_CONNECTION_MESSAGES.some((m) => msg.includes(m))) return true;
  // AggregateError of a host that resolves to several addresses (IPv4 + IPv6), each refused
  if (Array.isArray(e.errors) && e.errors.length > 0) return e.errors.every(isConnectionError);
  return false;
}

/** PostgreSQL 23505 / MySQL 1062: a unique key already holds the value. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: unknown; errno?: unknown } | null;
  return !!e && (e.code === '23505' || e.code === 'ER_DUP_ENTRY' || e.errno === 1062);
}

/** PostgreSQL 40P01 / 40001, MySQL 1213: the transaction was chosen as a deadlock victim and rolled back. */
export function isDeadlock(err: unknown): boolean {
  const e = err as { code?: unknown; errno?: unknown } | null;
  return !!e && (e.code === '40P01' || e.code === '40001' || e.errno === 1213 || e.code === 'ER_LOCK_DEADLOCK');
}

/**
 * What a store operation rejects with: a connection problem becomes StoreUnavailableError (the API answers
 * 5xx and the cron retries later; nothing is reported as done), a unique violation UniqueConflictError, and
 * anything else stays as the driver reported it.
 */
export function storeError(driver: string, err: unknown): unknown {
  if (err instanceof StoreUnavailableError || err instanceof UniqueConflictError) return err;
  if (isConnectionError(err)) {
    return new StoreUnavailableError(
      `store unavailable (${driver}): ${errorMessage(err) || String((err as { code?: string }).code)}`,
      {
        cause: err,
      },
    );
  }
  if (isUniqueViolation(err)) return new UniqueConflictError();
  return err;
}

/** A hint to append to a failed open when the server refused the credentials. */
export function authHint(err: unknown): string {
  const e = err as { code?: unknown; errno?: unknown } | null;
  const denied = !!e && (e.code === '28P01' || e.code === '28000' || e.errno === 1045 || e.errno === 1044);
  return denied ? ' (check Store.User and Store.Password, env STORE_USER / STORE_PASSWORD)' : '';
}
