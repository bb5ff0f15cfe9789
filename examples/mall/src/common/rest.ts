/**
 * The api processes' HTTP conventions, those of go-zero's `rest` (v1.3.2) that the tutorial's Postman collection
 * sees: every route is a POST with a JSON body; the body is read only when its Content-Type names JSON; a missing
 * required field answers 400 `field <name> is not set` (text/plain); a logic error answers 400 with its text
 * (`rpc error: code = Code(100) desc = …` for rpc errors); a JWT route answers 401 with an empty body when the
 * token is missing or invalid; a {@link StatusReply} answers with its own status. Each request is counted and timed in the service's metrics and traced as a server
 * span continuing the caller's W3C trace context.
 *
 * @module
 */
import { context } from '@opentelemetry/api';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { ApiConf } from './config.js';
import { bearerToken, verifyToken } from './jwt.js';
import type { ServiceMetrics } from './metrics.js';
import { goErrorText } from './rpc-error.js';
import { endSpan, type ServiceTracing } from './tracing.js';

/** A field of a request: an integer (Go int64) or a string. */
export type FieldType = 'int' | 'string';

/** A request's fields: name → type, `?` after the type for `optional` ones. */
export type Fields = Record<string, FieldType | `${FieldType}?`>;

/** A 400 with a text body, as go-zero's `httpx.Error`. */
export class BadRequest extends Error {
  override name = 'BadRequest';
}

/**
 * A reply other than go-zero's two (200 with the JSON, 400 with the error's text): a handler returns
 * `new StatusReply(202, {...})` for another JSON status, or throws `new StatusReply(503, 'text')` for a text one.
 */
export class StatusReply extends Error {
  override name = 'StatusReply';
  constructor(
    /** The HTTP status. */
    readonly status: number,
    /** A JSON value (returned), or the text of an error (thrown). */
    readonly body: unknown,
  ) {
    super(typeof body === 'string' ? body : `HTTP ${status}`);
  }
}

/** What a route handler receives. */
export interface RouteContext<Req> {
  body: Req;
  /** The `uid` claim of the token, on JWT routes. */
  uid?: number;
}

/** The route table of one api. */
export interface ApiRoute {
  path: string;
  fields: Fields;
  jwt: boolean;
  // biome-ignore lint/suspicious/noExplicitAny: each route declares its own request type through `route`.
  handler: (ctx: RouteContext<any>) => Promise<unknown>;
}

/** Declares a route: its fields, whether it needs the JWT, and the logic returning the JSON reply. */
export function route<Req>(
  path: string,
  fields: Fields,
  jwt: boolean,
  handler: (ctx: RouteContext<Req>) => Promise<unknown>,
): ApiRoute {
  return { path, fields, jwt, handler };
}

/**
 * go-zero's parse of a JSON body into the route's fields: required ones must be present, every present one must
 * have its type (an int must be an integer). Returns the body with absent optional fields at their zero value.
 * @throws {@link BadRequest} naming the field.
 */
export function parseFields(fields: Fields, body: unknown): Record<string, number | string> {
  const src =
    body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  const out: Record<string, number | string> = {};
  for (const [name, spec] of Object.entries(fields)) {
    const optional = spec.endsWith('?');
    const type = (optional ? spec.slice(0, -1) : spec) as FieldType;
    const v = src[name];
    if (v === undefined || v === null) {
      if (!optional) throw new BadRequest(`field ${name} is not set`);
      out[name] = type === 'int' ? 0 : '';
      continue;
    }
    if (type === 'int') {
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
        throw new BadRequest(`error: type mismatch for field ${name}: expected an integer, got ${JSON.stringify(v)}`);
      }
    } else if (typeof v !== 'string') {
      throw new BadRequest(`error: type mismatch for field ${name}: expected a string, got ${JSON.stringify(v)}`);
    }
    out[name] = v;
  }
  return out;
}

/** Options of {@link startApi}. */
export interface ApiDeps {
  conf: ApiConf;
  metrics: ServiceMetrics;
  tracing: ServiceTracing;
  /** Seconds since the epoch; tests may move it. Default: the system clock. */
  now?: () => number;
}

/** A JSON body that did not parse, kept for the route to refuse — after the JWT check, as go-zero's order. */
class InvalidJson {
  constructor(readonly message: string) {}
}

/** A request path as go-zero's router matches it (`path.Clean`): no doubled slashes, no trailing one. */
function cleanPath(url: string): string {
  const p = (url.split('?')[0] ?? '').replace(/\/{2,}/g, '/');
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

/** Builds the Fastify app of an api with its routes (not listening yet). */
export function buildApi(routes: ApiRoute[], deps: ApiDeps): FastifyInstance {
  const { conf, metrics, tracing } = deps;
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  // go-zero's router matches the cleaned path: `/api/user/login/` and `/api//user/login` are the route.
  const app = Fastify({
    bodyLimit: conf.MaxBytes,
    logger: false,
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true },
  });
  app.removeAllContentTypeParsers();
  // The body is JSON only when the Content-Type says so (go-zero reads it only then); anything else reads as empty.
  app.addContentTypeParser('*', { parseAs: 'string' }, (req, text, done) => {
    const type = String(req.headers['content-type'] ?? '');
    if (!type.includes('application/json') || text === '') {
      done(null, undefined);
      return;
    }
    try {
      done(null, JSON.parse(text as string));
    } catch (err) {
      done(null, new InvalidJson(`invalid JSON body: ${(err as Error).message}`));
    }
  });
  // Only routes are measured, labelled with their path: go-zero's metrics handler is in each route's chain, so
  // its router's 404 and 405 are not counted (nor does every scanned URL become a label value).
  app.addHook('onResponse', async (req, reply) => {
    const path = req.routeOptions.url;
    if (req.is404 || path === undefined) return;
    metrics.observeHttp(path, reply.statusCode, reply.elapsedTime);
  });
  app.setErrorHandler((err, _req, reply) => {
    const status = err instanceof BadRequest ? 400 : ((err as { statusCode?: number }).statusCode ?? 500);
    // go-zero's MaxBytesHandler: a body over MaxBytes is refused with the status alone, before the JWT check.
    if (status === 413) return reply.code(413).send();
    return reply
      .code(status >= 400 && status < 600 ? status : 500)
      .type('text/plain; charset=utf-8')
      .send(`${goErrorText(err)}\n`);
  });
  // go-zero's router: a route's path asked with another method is 405 with `Allow` and no body; else 404.
  const paths = new Set(routes.map((r) => cleanPath(r.path)));
  app.setNotFoundHandler((req, reply) => {
    if (paths.has(cleanPath(req.url))) {
      reply.code(405).header('allow', 'POST').send();
      return;
    }
    reply.code(404).type('text/plain; charset=utf-8').send('404 page not found\n');
  });
  for (const r of routes) {
    app.post(r.path, async (req: FastifyRequest, reply: FastifyReply) => {
      let uid: number | undefined;
      if (r.jwt) {
        const claims = verifyToken(conf.Auth.AccessSecret, bearerToken(req.headers.authorization) ?? '', now());
        // go-zero's `unauthorized`: the status alone, no body and no Content-Type.
        if (claims === undefined) return reply.code(401).send();
        uid = typeof claims.uid === 'number' ? claims.uid : Number(claims.uid);
      }
      if (req.body instanceof InvalidJson) throw new BadRequest(req.body.message);
      const body = parseFields(r.fields, req.body);
      const { span, ctx } = tracing.serverSpan(r.path, req.headers as Record<string, unknown>);
      try {
        const out = await context.with(ctx, () => r.handler({ body, ...(uid === undefined ? {} : { uid }) }));
        const [status, json] = out instanceof StatusReply ? [out.status, out.body] : [200, out];
        span.setAttribute('http.status_code', status);
        endSpan(span);
        return reply.code(status).type('application/json; charset=utf-8').send(JSON.stringify(json));
      } catch (err) {
        const text = err instanceof StatusReply ? String(err.body) : goErrorText(err);
        const status = err instanceof StatusReply ? err.status : 400;
        span.setAttribute('http.status_code', status);
        endSpan(span, text);
        return reply.code(status).type('text/plain; charset=utf-8').send(`${text}\n`);
      }
    });
  }
  return app;
}
