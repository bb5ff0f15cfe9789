/**
 * The tutorial's JWT (`common/jwtx`, go-zero `rest.WithJwt`): HS256, claims `{exp, iat, uid}` in seconds.
 *
 * @module
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');

/** Signs `{exp: iat + expireSeconds, iat, uid}`. */
export function signToken(secret: string, iat: number, expireSeconds: number, uid: number): string {
  const payload = Buffer.from(JSON.stringify({ exp: iat + expireSeconds, iat, uid })).toString('base64url');
  const sig = createHmac('sha256', secret).update(`${HEADER}.${payload}`).digest('base64url');
  return `${HEADER}.${payload}.${sig}`;
}

/**
 * The claims of a valid token: HS256 signature, `exp` in the future (if present), `nbf`/`iat` not in the future.
 * `undefined` for anything else — go-zero answers all of these the same way, 401.
 */
export function verifyToken(secret: string, token: string, nowSeconds: number): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const [h = '', p = '', s = ''] = parts;
  let header: unknown;
  let claims: unknown;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof header !== 'object' || header === null || (header as { alg?: unknown }).alg !== 'HS256') return undefined;
  const expected = createHmac('sha256', secret).update(`${h}.${p}`).digest();
  const given = Buffer.from(s, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) return undefined;
  const c = claims as Record<string, unknown>;
  if (typeof c.exp === 'number' && c.exp <= nowSeconds) return undefined;
  if (typeof c.nbf === 'number' && c.nbf > nowSeconds) return undefined;
  return c;
}

/** The token of an `Authorization: Bearer <jwt>` header; the prefix is matched case-insensitively, as go-zero. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}
