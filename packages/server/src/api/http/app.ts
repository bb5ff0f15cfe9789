import type { SecureContextOptions } from 'node:tls';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Cron } from '../../core/cron.js';
import { type DtxErrorCode, DtxServerError, InputError } from '../../core/errors.js';
import type { TransGlobal } from '../../core/model.js';
import { DEFAULT_REDACTOR, type HeaderRedactor } from '../../core/redact.js';
import type { TransService } from '../../core/service.js';
import { checkStoredText } from '../../core/stored-text.js';
import type { Logger } from '../../observe/logger.js';
import { apiLabelOf, type DtxMetrics } from '../../observe/metrics.js';
import { type TraceContext, traceContextOfHeaders } from '../../observe/trace-context.js';
import type { Store } from '../../store/store.js';
import { errorMessage } from '../../util/error-message.js';
import { type Authenticator, OPEN_AUTH } from '../auth.js';
import {
  checkGid,
  checkSubscriberUrl,
  cleanGid,
  DEFAULT_EDGE_LIMITS,
  decodeBranch,
  decodeGidBody,
  decodeTrans,
  type EdgeLimits,
  parseJson,
} from '../decode.js';
import { JsonRpcApi } from '../json-rpc/json-rpc.js';
import { renderBranch, renderKV, renderTrans, workflowReply } from '../render.js';
import { registerAdminUi } from './admin-ui.js';
import { sendAfterBody } from './drain-request.js';
import { installHttpAuth } from './http-auth.js';

export interface HttpApiOptions {
  service: TransService;
  store: Store;
  cron: Cron;
  log: Logger;
  version: string;
  bodyLimit: number;
  testMode: boolean;
  /** resetCronTime's default timeout (s): 3 × TimeoutToFail. */
  resetTimeout: number;
  /** Steps and branch_headers limits (config `Limits.*`). Default {@link DEFAULT_EDGE_LIMITS}. */
  limits?: EdgeLimits;
  /** Masks secret header values in query / all (config `Redact.Headers`). Default: the always-masked names. */
  redact?: HeaderRedactor;
  /** Seconds to receive a whole request, headers and body (HttpRequestTimeout). Default 60. */
  requestTimeout?: number;
  /** Seconds to receive a request's headers (HttpHeadersTimeout); at most requestTimeout. Default 20. */
  headersTimeout?: number;
  /** Seconds an idle keep-alive connection is kept open (HttpKeepAliveTimeout). Default 72. */
  keepAliveTimeout?: number;
  /** AdminBasePath: where the admin UI is served ('' or '/' for the root). Default ''. */
  adminBasePath?: string;
  /** The admin UI package's directory (tests); default: `@dtx/admin` beside this package. */
  adminDir?: string;
  /** What `GET /api/dtmsvr/info` answers besides the version (store, ports, start time). */
  info?: () => ServerInfo;
  /** The token check (config `Auth.*`). Default: open, as DTM. */
  auth?: Authenticator;
  /**
   * HTTPS on HttpPort (config `HttpTls.*`): key and certificate, and with `ca` client certificates required and
   * verified against it (mTLS). Default: plain HTTP.
   */
  tls?: HttpTlsOptions;
  /** Serve `GET /api/metrics` and count and time every request; neither when undefined (Metrics.Enabled). */
  metrics?: Pick<DtxMetrics, 'route' | 'text' | 'contentType'> | undefined;
  /** One info line per request: method, route, status, duration_ms, gid (Log.AccessLog). */
  accessLog?: boolean | undefined;
}

/** `GET /api/dtmsvr/info`: what an operator (and the admin UI) wants to know about this server. */
export interface ServerInfo {
  store: string;
  http_port: number;
  grpc_port: number;
  /** RFC 3339. */
  started_at: string;
  /** This instance's id when it has one (omitted otherwise). */
  owner?: string;
}

/** The TLS side of the HTTP server: `ca` set means mTLS. */
export interface HttpTlsOptions {
  key: SecureContextOptions['key'];
  cert: SecureContextOptions['cert'];
  ca?: SecureContextOptions['ca'];
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The gid the request names, once a route decoded it ('' otherwise); for the access log. */
    dtxGid: string;
  }
}

/** Longest gid kept for the access log (the gid column's size). */
const MAX_LOGGED_GID = 128;

const SUCCESS = { dtm_result: 'SUCCESS' } as const;

/** What Fastify's query string parser gives: a repeated parameter is an array. */
type RawQuery = Record<string, string | string[] | undefined>;

/** Largest page of `all` and `scanKV`, and batch of resetCronTime. */
const MAX_PAGE = 10_000;
/** resetCronTime's timeout: ten years in seconds, the largest that still yields representable times. */
const MAX_SECONDS = 10 * 365 * 24 * 3600;
/** `all`'s createTimeStart / createTimeEnd: up to 9999-12-31, the last time every store can compare. */
const MAX_EPOCH_MS = 253_402_300_799_999;

/**
 * The query parameters of a request, read one by one: each must be given at most once and be storable text
 * (no NUL, no unpaired surrogate), or an InputError names it.
 */
class Params {
  constructor(private readonly raw: RawQuery) {}

  /** The parameter's value; undefined when absent. */
  get(key: string): string | undefined {
    const v = this.raw[key];
    if (Array.isArray(v)) throw new InputError(key, `given ${v.length} times: give it at most once`);
    return v === undefined ? undefined : checkStoredText(v, key);
  }

  /** An integer in [min, max]; `def` when absent or empty. */
  int(key: string, def: number, min: number, max: number): number {
    const raw = this.get(key);
    if (raw === undefined || raw === '') return def;
    const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InputError(key, `expected an integer from ${min} to ${max}, got '${raw.slice(0, 100)}'`);
    }
    return n;
  }

  /** A cursor returned by this API (a row id), or '' for the start. */
  position(): string {
    const position = this.get('position') ?? '';
    if (position !== '' && !(/^\d+$/.test(position) && Number.isSafeInteger(Number(position)))) {
      throw new InputError('position', `not a cursor returned by this API: '${position.slice(0, 100)}'`);
    }
    return position;
  }
}

/** The HTTP status of each error code: DTM's 409 FAILURE and 425 ONGOING, 4xx for a caller's mistake. */
const HTTP_STATUS: Record<DtxErrorCode, number> = {
  FAILURE: 409,
  ONGOING: 425,
  INVALID_INPUT: 400,
  TOO_LARGE: 413,
  NOT_FOUND: 404,
  CONFLICT: 400,
  REFUSED: 422,
  UNAVAILABLE: 503,
  INTERNAL: 500,
};

/**
 * The reply to a failed request, the one place the HTTP API maps errors (spec §2.1): FAILURE → 409
 * `{"dtm_result":"FAILURE","message":...}`, ONGOING → 425 likewise, the store unreachable → 503, any other
 * DtxServerError by its code with `{"message":...}`, Fastify's own 4xx (a malformed request) as they are, and
 * anything else → 500.
 */
export function httpErrorReply(err: unknown): { status: number; body: Record<string, string> } {
  const message = errorMessage(err);
  if (err instanceof DtxServerError) {
    const status = HTTP_STATUS[err.code];
    if (err.code === 'FAILURE' || err.code === 'ONGOING') return { status, body: { dtm_result: err.code, message } };
    return { status, body: { message } };
  }
  const fe = err as { statusCode?: unknown };
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { status: fe.statusCode, body: { message } };
  }
  return { status: 500, body: { message } };
}

/** Fastify's error for a body over bodyLimit. */
function isBodyTooLarge(err: unknown): boolean {
  return (err as { code?: unknown }).code === 'FST_ERR_CTP_BODY_TOO_LARGE';
}

async function sendError(err: unknown, reply: FastifyReply, log: Logger, req: FastifyRequest): Promise<FastifyReply> {
  if (isBodyTooLarge(err)) {
    return sendAfterBody(req, reply, 413, {
      message: `body: request body is larger than HttpBodyLimit (${reply.server.initialConfig.bodyLimit} bytes)`,
    });
  }
  const r = httpErrorReply(err);
  if (r.status >= 500) log.error('request failed', { url: req.url.slice(0, 300), error: errorMessage(err) });
  if (r.status === 503) reply.header('retry-after', '3');
  return reply.code(r.status).send(r.body);
}

/** `all`'s gidPrefix: a gid's beginning (at most 128 characters, no control characters); undefined when empty. */
function gidPrefixOf(v: string | undefined): string | undefined {
  if (v === undefined || v === '') return undefined;
  if (v.length > 128) throw new InputError('gidPrefix', `longer than a gid can be (128 characters): ${v.length}`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f]/.test(v)) throw new InputError('gidPrefix', 'must not contain control characters');
  return v;
}

/**
 * Per request, once it is answered: DTM's request counter and duration (type http, `api` the last segment of the
 * route's pattern, never of the URL) and the access log line. Each route's recorder is resolved once.
 */
function observeRequests(app: FastifyInstance, o: HttpApiOptions): void {
  const metrics = o.metrics;
  const log = o.accessLog === true ? o.log : undefined;
  if (!metrics && !log) return;
  app.decorateRequest('dtxGid', '');
  const recorders = new Map<string | undefined, ((ok: boolean, seconds: number) => void) | undefined>();
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url;
    const ms = reply.elapsedTime;
    const status = reply.statusCode;
    if (metrics) {
      let record = recorders.get(route);
      if (record === undefined) {
        record = metrics.route('http', apiLabelOf(route));
        recorders.set(route, record);
      }
      record(status < 400, ms / 1000);
    }
    if (log) {
      const fields: Record<string, unknown> = {
        transport: 'http',
        method: req.method,
        route: route ?? '',
        status,
        duration_ms: Math.round(ms * 1000) / 1000,
      };
      const gid = req.dtxGid || queryGid(req);
      if (gid) fields.gid = gid;
      log.info('request', fields);
    }
    done();
  });
}

/** The gid of a query string (`all`, `query` refused before the route noted it), cut to a gid's length. */
function queryGid(req: FastifyRequest): string {
  const g = (req.query as RawQuery | undefined)?.gid;
  return typeof g === 'string' ? g.slice(0, MAX_LOGGED_GID) : '';
}

/**
 * DTM's HTTP API (spec §2) as thin routes over the service functions. Bodies arrive as bytes and are
 * parsed once, whatever the content type (curl's default form type included).
 */
export function buildHttpApi(o: HttpApiOptions): FastifyInstance {
  const limits = o.limits ?? DEFAULT_EDGE_LIMITS;
  const redact = o.redact ?? DEFAULT_REDACTOR;
  const shown = (t: TransGlobal) => renderTrans(t, o.service.stuckRule(), redact);
  const requestMs = (o.requestTimeout ?? 60) * 1000;
  const headersMs = (o.headersTimeout ?? 20) * 1000;
  const serverOptions = {
    headersTimeout: headersMs,
    // how often Node looks for requests over those timeouts (default 30 s, longer than a short timeout)
    connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.min(requestMs, headersMs) / 4)),
  };
  const auth = o.auth ?? OPEN_AUTH;
  const app = Fastify({
    ...(o.tls
      ? {
          https: {
            ...serverOptions,
            key: o.tls.key,
            cert: o.tls.cert,
            ...(o.tls.ca ? { ca: o.tls.ca, requestCert: true, rejectUnauthorized: true } : {}),
          },
        }
      : { http: serverOptions }),
    bodyLimit: o.bodyLimit,
    logger: false,
    return503OnClosing: true,
    // a client that never finishes its request is cut (408) instead of holding a socket forever
    requestTimeout: requestMs,
    keepAliveTimeout: (o.keepAliveTimeout ?? 72) * 1000,
  });
  // before the routes: each gets its role as it is added
  installHttpAuth(app, auth);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err, req, reply) => sendError(err, reply, o.log, req));
  app.setNotFoundHandler((_req, reply) => {
    reply.code(404).type('text/plain').send('404 page not found');
  });
  observeRequests(app, o);

  const s = o.service;
  const body = (req: FastifyRequest) => parseJson(req.body as Buffer | undefined);
  /** The input with the request's W3C trace context, when its headers carry a valid one. */
  const traced = <T extends { trace?: TraceContext }>(req: FastifyRequest, input: T): T => {
    const trace = traceContextOfHeaders(req.headers);
    if (trace) input.trace = trace;
    return input;
  };
  const q = (req: FastifyRequest) => new Params(req.query as RawQuery);
  const trans = (req: FastifyRequest) => named(req, decodeTrans(body(req), { escapeGid: true, limits }));
  /** Notes the gid for the access log. */
  const named = <T extends { gid: string }>(req: FastifyRequest, input: T): T => {
    req.dtxGid = input.gid;
    return input;
  };
  const gidBody = (req: FastifyRequest) => {
    const gid = decodeGidBody(body(req));
    req.dtxGid = gid;
    return gid;
  };
  const base = '/api/dtmsvr';

  app.get(`${base}/version`, async () => ({ version: o.version }));
  app.get(`${base}/info`, async () => ({ version: o.version, ...o.info?.() }));
  app.get(`${base}/newGid`, async () => ({ gid: s.newGid(), dtm_result: 'SUCCESS' }));
  app.post(`${base}/prepare`, async (req) => {
    await s.prepare(traced(req, trans(req)));
    return SUCCESS;
  });
  app.post(`${base}/submit`, async (req) => {
    await s.submit(traced(req, trans(req)));
    return SUCCESS;
  });
  app.post(`${base}/abort`, async (req) => {
    await s.abort(traced(req, trans(req)));
    return SUCCESS;
  });
  app.post(`${base}/forceStop`, async (req) => {
    await s.forceStop(gidBody(req), traceContextOfHeaders(req.headers));
    return SUCCESS;
  });
  for (const route of ['registerBranch', 'registerXaBranch', 'registerTccBranch']) {
    app.post(`${base}/${route}`, async (req) => {
      await s.registerBranch(traced(req, named(req, decodeBranch(body(req), { escapeGid: true, limits }))));
      return SUCCESS;
    });
  }
  app.post(`${base}/prepareWorkflow`, async (req) => {
    const { trans: t, branches } = await s.prepareWorkflow(traced(req, trans(req)));
    return workflowReply(shown(t), branches);
  });
  app.get(`${base}/query`, async (req) => {
    const gid = checkGid(cleanGid(q(req).get('gid') ?? ''));
    req.dtxGid = gid;
    const { trans, branches } = await s.query(gid);
    return { transaction: trans ? shown(trans) : null, branches: branches.map(renderBranch) };
  });
  app.get(`${base}/all`, async (req) => {
    const p = q(req);
    const gid = p.get('gid');
    if (gid) {
      // as DTM: the gid as given, not stripped of \n \r ; (the way to find a gid stored over gRPC)
      const { trans } = await s.query(checkGid(gid));
      return { transactions: trans ? [shown(trans)] : null, next_position: p.get('position') ?? '' };
    }
    const ms = (key: string) => {
      const v = p.get(key);
      if (v === undefined || v === '') return undefined;
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0 || n > MAX_EPOCH_MS) {
        throw new InputError(
          key,
          `expected milliseconds since the epoch up to ${MAX_EPOCH_MS}, got '${v.slice(0, 100)}'`,
        );
      }
      return Math.floor(n / 1000) * 1000;
    };
    const page = await s.scan({
      position: p.position(),
      limit: p.int('limit', 100, 1, MAX_PAGE),
      status: p.get('status') || undefined,
      transType: p.get('transType') || undefined,
      createTimeStart: ms('createTimeStart'),
      createTimeEnd: ms('createTimeEnd'),
      gidPrefix: gidPrefixOf(p.get('gidPrefix')),
    });
    return { transactions: page.trans.map(shown), next_position: page.nextPosition };
  });
  app.get(`${base}/stuck`, async (req) => {
    const p = q(req);
    const page = await s.stuck(p.position(), p.int('limit', 100, 1, MAX_PAGE));
    return { transactions: page.trans.map(shown), next_position: page.nextPosition };
  });
  app.get(`${base}/resetCronTime`, async (req) => {
    const p = q(req);
    const timeout = p.int('timeout', o.resetTimeout, 0, MAX_SECONDS);
    const r = await s.resetCronTime(timeout, p.int('limit', 100, 1, MAX_PAGE));
    return { has_remaining: r.hasRemaining, succeed_count: r.count };
  });
  app.post(`${base}/resetNextCronTime`, async (req) => {
    await s.resetNextCronTime(gidBody(req));
    return SUCCESS;
  });
  app.get(`${base}/subscribe`, async (req) => {
    const p = q(req);
    await s.topics.subscribe(
      p.get('topic') ?? '',
      checkSubscriberUrl(p.get('url') ?? '', limits.urlPolicy),
      p.get('remark') ?? '',
    );
    return SUCCESS;
  });
  app.get(`${base}/unsubscribe`, async (req) => {
    const p = q(req);
    await s.topics.unsubscribe(p.get('topic') ?? '', p.get('url') ?? '');
    return SUCCESS;
  });
  app.delete(`${base}/topic/:topicName`, async (req) => {
    await s.topics.deleteTopic((req.params as { topicName: string }).topicName);
    return SUCCESS;
  });
  app.get(`${base}/scanKV`, async (req) => {
    const p = q(req);
    const page = await s.scanKV(p.get('cat') ?? '', p.position(), p.int('limit', 100, 1, MAX_PAGE));
    return { kv: page.kv.map(renderKV), next_position: page.nextPosition };
  });
  app.get(`${base}/queryKV`, async (req) => {
    const p = q(req);
    return { kv: (await s.queryKV(p.get('cat') ?? '', p.get('key') ?? '')).map(renderKV) };
  });
  // DTM's JSON-RPC API (spec §3) on the same port
  new JsonRpcApi(s, o.log, limits, auth).register(app);
  const metrics = o.metrics;
  if (metrics) {
    app.get('/api/metrics', async (_req, reply) => {
      const text = await metrics.text();
      return reply.type(metrics.contentType).send(text);
    });
  }
  app.all('/api/ping', async (_req, reply) => {
    try {
      await o.store.ping();
    } catch (err) {
      reply.code(503);
      return { msg: 'store unavailable', error: errorMessage(err) };
    }
    return { msg: 'pong' };
  });

  registerAdminUi(app, { basePath: o.adminBasePath ?? '', ...(o.adminDir ? { dir: o.adminDir } : {}) });

  if (o.testMode) {
    // Test-only: run exactly one cron step, with the clock forwarded for decisions and a wider window.
    app.post('/api/dtx-test/cronOnce', async (req) => {
      const b = (req.body as Buffer | undefined)?.length
        ? (parseJson(req.body as Buffer) as Record<string, unknown>)
        : {};
      const num = (k: string) => {
        const v = b[k] ?? 0;
        if (typeof v !== 'number' || v < 0) throw new InputError(k, 'expected a number of seconds >= 0');
        return v * 1000;
      };
      const gids = await o.cron.step({ forwardMs: num('now_forward'), windowMs: num('cron_forward'), limit: 1 });
      return { gid: gids[0] ?? '' };
    });
  }
  return app;
}
