import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { type Authenticator, AuthOutcome, type Role } from '../auth.js';
import { drainRequest } from './drain-request.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * What the route needs (issue 11 §1). Set when the route is added by {@link roleOfRoute}, unless the route sets
     * it itself: e.g. `{ config: { auth: 'open' } }` for the admin UI's static files.
     */
    auth?: Role;
  }
}

/** The client role's routes (issue 11 §1): what a transaction's participants call. */
const CLIENT_ROUTES: ReadonlySet<string> = new Set(
  [
    'version',
    'newGid',
    'prepare',
    'submit',
    'abort',
    'registerBranch',
    'registerXaBranch',
    'registerTccBranch',
    'prepareWorkflow',
    'query',
  ].map((r) => `/api/dtmsvr/${r}`),
);

/**
 * What a route needs: the client routes above, /api/ping open, /api/metrics its own role, JSON-RPC checked per
 * method by its handler, and every other route (those added later included) admin — failing safe.
 */
export function roleOfRoute(url: string): Role {
  if (CLIENT_ROUTES.has(url)) return 'client';
  if (url === '/api/ping' || url === '/api/json-rpc') return 'open';
  if (url === '/api/metrics') return 'metrics';
  return 'admin';
}

const UNAUTHORIZED = JSON.stringify({ message: 'unauthorized' });
const FORBIDDEN = JSON.stringify({ message: 'forbidden' });
const LIMITED = JSON.stringify({ message: 'too many failed authentication attempts: retry later' });

/** Bytes of a refused request's body read before answering. */
const REFUSED_BODY_BYTES = 64 * 1024;

const remoteAddress = (req: FastifyRequest): string => req.socket.remoteAddress ?? '';

/**
 * Install the token check: each route gets its role once, when it is added (`config.auth`); a request is then
 * checked by one property read and the Authenticator. Not installed at all when no token is configured.
 * Must be called before the routes are added.
 */
export function installHttpAuth(app: FastifyInstance, auth: Authenticator): void {
  if (!auth.enabled) return;
  app.addHook('onRoute', (route: RouteOptions) => {
    if (route.config?.auth === undefined) route.config = { ...route.config, auth: roleOfRoute(route.url) };
  });
  const retryAfter = String(auth.retryAfterSeconds);
  app.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    // no route (404): nothing to protect, the not-found reply says nothing
    const need = req.routeOptions.config?.auth;
    if (need === undefined || need === 'open') return done();
    const outcome = auth.check(req.headers.authorization, need, 'http', remoteAddress, req);
    if (outcome === AuthOutcome.Ok) return done();
    reply.type('application/json; charset=utf-8');
    if (outcome === AuthOutcome.Unauthenticated) reply.code(401).header('www-authenticate', 'Bearer');
    else if (outcome === AuthOutcome.Forbidden) reply.code(403);
    else reply.code(429).header('retry-after', retryAfter);
    const text =
      outcome === AuthOutcome.Unauthenticated ? UNAUTHORIZED : outcome === AuthOutcome.Forbidden ? FORBIDDEN : LIMITED;
    // a small body is read first so that the client sees the answer, not EPIPE; a larger one is not worth
    // reading for a refused caller: the connection is closed after the answer
    drainRequest(req.raw, REFUSED_BODY_BYTES).then((drained) => {
      if (!drained) reply.header('connection', 'close');
      reply.send(text);
    });
  });
}
