import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Cron } from '../../core/cron.js';
import { errorMessage, FailureError, InputError, OngoingError } from '../../core/errors.js';
import type { TransService } from '../../core/service.js';
import type { Logger } from '../../observe/logger.js';
import { type TraceContext, traceContextOfHeaders } from '../../observe/trace-context.js';
import type { Store } from '../../store/store.js';
import { checkGid, cleanGid, decodeBranch, decodeGidBody, decodeTrans, parseJson } from '../decode.js';
import { JsonRpcApi } from '../json-rpc/json-rpc.js';
import { renderBranch, renderKV, renderTrans } from '../render.js';

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
}

const SUCCESS = { dtm_result: 'SUCCESS' } as const;

type Query = Record<string, string | undefined>;

function intParam(q: Query, key: string, def: number, min = 0): number {
  const raw = q[key];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new InputError(key, `expected an integer >= ${min}, got '${raw}'`);
  return n;
}

/** Map an error to DTM's reply (spec §2.1), plus 400 / 413 for bad input. */
function sendError(err: unknown, reply: FastifyReply, log: Logger, req: FastifyRequest): void {
  if (err instanceof FailureError) {
    reply.code(409).send({ dtm_result: 'FAILURE', message: err.message });
  } else if (err instanceof OngoingError) {
    reply.code(425).send({ dtm_result: 'ONGOING', message: err.message });
  } else if (err instanceof InputError) {
    reply.code(400).send({ message: err.message });
  } else {
    const fe = err as { code?: string; statusCode?: number };
    if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      reply.code(413).send({
        message: `body: request body is larger than HttpBodyLimit (${reply.server.initialConfig.bodyLimit} bytes)`,
      });
    } else if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
      reply.code(fe.statusCode).send({ message: errorMessage(err) });
    } else {
      log.error('request failed', { url: req.url, error: errorMessage(err) });
      reply.code(500).send({ message: errorMessage(err) });
    }
  }
}

/**
 * DTM's HTTP API (spec §2) as thin routes over the service functions. Bodies arrive as bytes and are
 * parsed once, whatever the content type (curl's default form type included).
 */
export function buildHttpApi(o: HttpApiOptions): FastifyInstance {
  const app = Fastify({ bodyLimit: o.bodyLimit, logger: false, return503OnClosing: true });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err, req, reply) => sendError(err, reply, o.log, req));
  app.setNotFoundHandler((_req, reply) => {
    reply.code(404).type('text/plain').send('404 page not found');
  });

  const s = o.service;
  const body = (req: FastifyRequest) => parseJson(req.body as Buffer | undefined);
  /** The input with the request's W3C trace context, when its headers carry a valid one. */
  const traced = <T extends { trace?: TraceContext }>(req: FastifyRequest, input: T): T => {
    const trace = traceContextOfHeaders(req.headers);
    if (trace) input.trace = trace;
    return input;
  };
  const q = (req: FastifyRequest) => req.query as Query;
  const base = '/api/dtmsvr';

  app.get(`${base}/version`, async () => ({ version: o.version }));
  app.get(`${base}/newGid`, async () => ({ gid: s.newGid(), dtm_result: 'SUCCESS' }));
  app.post(`${base}/prepare`, async (req) => {
    await s.prepare(traced(req, decodeTrans(body(req))));
    return SUCCESS;
  });
  app.post(`${base}/submit`, async (req) => {
    await s.submit(traced(req, decodeTrans(body(req))));
    return SUCCESS;
  });
  app.post(`${base}/abort`, async (req) => {
    await s.abort(traced(req, decodeTrans(body(req))));
    return SUCCESS;
  });
  app.post(`${base}/forceStop`, async (req) => {
    await s.forceStop(decodeGidBody(body(req)), traceContextOfHeaders(req.headers));
    return SUCCESS;
  });
  for (const route of ['registerBranch', 'registerXaBranch', 'registerTccBranch']) {
    app.post(`${base}/${route}`, async (req) => {
      await s.registerBranch(traced(req, decodeBranch(body(req))));
      return SUCCESS;
    });
  }
  app.post(`${base}/prepareWorkflow`, async () => {
    throw new InputError('trans_type', 'workflow is not supported by this dtx version yet');
  });
  app.get(`${base}/query`, async (req) => {
    const gid = checkGid(cleanGid(q(req).gid ?? ''));
    const { trans, branches } = await s.query(gid);
    return { transaction: trans ? renderTrans(trans) : null, branches: branches.map(renderBranch) };
  });
  app.get(`${base}/all`, async (req) => {
    const p = q(req);
    if (p.gid) {
      const { trans } = await s.query(p.gid);
      return { transactions: trans ? [renderTrans(trans)] : null, next_position: p.position ?? '' };
    }
    const ms = (key: string) => {
      const v = p[key];
      if (v === undefined || v === '') return undefined;
      const n = Number(v);
      if (!Number.isFinite(n)) throw new InputError(key, `expected milliseconds since the epoch, got '${v}'`);
      return Math.floor(n / 1000) * 1000;
    };
    const position = p.position ?? '';
    if (position !== '' && !/^\d+$/.test(position))
      throw new InputError('position', `not a cursor returned by this API: '${position}'`);
    const page = await s.scan({
      position,
      limit: intParam(p, 'limit', 100, 1),
      status: p.status || undefined,
      transType: p.transType || undefined,
      createTimeStart: ms('createTimeStart'),
      createTimeEnd: ms('createTimeEnd'),
    });
    return { transactions: page.trans.map(renderTrans), next_position: page.nextPosition };
  });
  app.get(`${base}/resetCronTime`, async (req) => {
    const p = q(req);
    const r = await s.resetCronTime(intParam(p, 'timeout', o.resetTimeout), intParam(p, 'limit', 100, 1));
    return { has_remaining: r.hasRemaining, succeed_count: r.count };
  });
  app.post(`${base}/resetNextCronTime`, async (req) => {
    await s.resetNextCronTime(decodeGidBody(body(req)));
    return SUCCESS;
  });
  app.get(`${base}/subscribe`, async (req) => {
    const p = q(req);
    await s.topics.subscribe(p.topic ?? '', p.url ?? '', p.remark ?? '');
    return SUCCESS;
  });
  app.get(`${base}/unsubscribe`, async (req) => {
    const p = q(req);
    await s.topics.unsubscribe(p.topic ?? '', p.url ?? '');
    return SUCCESS;
  });
  app.delete(`${base}/topic/:topicName`, async (req) => {
    await s.topics.deleteTopic((req.params as { topicName: string }).topicName);
    return SUCCESS;
  });
  app.get(`${base}/scanKV`, async (req) => {
    const p = q(req);
    const position = p.position ?? '';
    if (position !== '' && !/^\d+$/.test(position))
      throw new InputError('position', `not a cursor returned by this API: '${position}'`);
    const page = await s.scanKV(p.cat ?? '', position, intParam(p, 'limit', 100, 1));
    return { kv: page.kv.map(renderKV), next_position: page.nextPosition };
  });
  app.get(`${base}/queryKV`, async (req) => {
    const p = q(req);
    return { kv: (await s.queryKV(p.cat ?? '', p.key ?? '')).map(renderKV) };
  });
  // DTM's JSON-RPC API (spec §3) on the same port
  new JsonRpcApi(s, o.log).register(app);
  app.all('/api/ping', async (_req, reply) => {
    try {
      await o.store.ping();
    } catch (err) {
      reply.code(503);
      return { msg: 'store unavailable', error: errorMessage(err) };
    }
    return { msg: 'pong' };
  });

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
