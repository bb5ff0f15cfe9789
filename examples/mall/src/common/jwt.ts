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

/** Base64url without padding, the only alphabet golang-jwt decodes (Node's decoder would skip other characters). */
const SEGMENT = /^[A-Za-z0-9_-]*$/;

/**
 * The claims of a valid token: HS256 signature, and the time claims golang-jwt v4's `MapClaims.Valid` checks —
 * `exp` after now, `iat` and `nbf` not after now — each only when it is a non-zero number (absent, 0 or another
 * type: not checked, as there). `undefined` for anything else — go-zero answers all of these the same way, 401.
 */
export function verifyToken(secret: string, token: string, nowSeconds: number): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((part) => SEGMENT.test(part))) return undefined;
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
  const time = (v: unknown) => (typeof v === 'number' && v !== 0 ? v : undefined);
  const exp = time(c.exp);
  const iat = time(c.iat);
  const nbf = time(c.nbf);
  if (exp !== undefined && !(nowSeconds < exp)) return undefined;
  if (iat !== undefined && nowSeconds < iat) return undefined;
  if (nbf !== undefined && nowSeconds < nbf) return undefined;
  return c;
}

/**
 * The token of an `Authorization` header, as golang-jwt's `AuthorizationHeaderExtractor` (go-zero's): a `Bearer `
 * prefix, matched case-insensitively (Postman sends `bearer`), is removed; a header without it is the token itself.
 */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const token = header.length > 6 && header.slice(0, 7).toUpperCase() === 'BEARER ' ? header.slice(7) : header;
  return token === '' ? undefined : token;
}
