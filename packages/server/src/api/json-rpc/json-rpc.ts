import { JsonRpcCode } from '@dtx/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type DtxErrorCode, errorCodeOf, InputError } from '../../core/errors.js';
import type { TransService } from '../../core/service.js';
import type { Logger } from '../../observe/logger.js';
import { type TraceContext, traceContextOfHeaders } from '../../observe/trace-context.js';
import { errorMessage } from '../../util/error-message.js';
import { type Authenticator, AuthOutcome, OPEN_AUTH } from '../auth.js';
import { DEFAULT_EDGE_LIMITS, decodeBranch, decodeTrans, type EdgeLimits } from '../decode.js';
import { drainRequest, sendAfterBody } from '../http/drain-request.js';
import { renderTrans, workflowReply } from '../render.js';

/** JSON-RPC 2.0 error codes of DTM's API (spec §3); FAILURE and ONGOING are in @dtx/protocol. */
export const JsonRpcError = {
  Parse: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  Internal: -32603,
  /** Implementation-defined server error (-32000 to -32099): the store cannot be reached; retry later. */
  Unavailable: -32000,
  /** dtx: no or a wrong token (`Auth.*`). */
  Unauthorized: -32001,
  /** dtx: a token of another role. */
  Forbidden: -32003,
  /** dtx: too many failed attempts from this address; retry later. */
  RateLimited: -32029,
  /** dtx: a workflow record refused (HTTP 422): it contradicts what is stored. */
  Refused: -32022,
} as const;

/**
 * The JSON-RPC error code of each error code, the one place the JSON-RPC API maps errors. FAILURE and ONGOING
 * keep DTM's codes, and bad input keeps DTM's -32603 (its message names the field); the store being unreachable
 * is the server error -32000, so a client can tell a call worth retrying.
 */
const JSON_RPC_CODE: Record<DtxErrorCode, number> = {
  FAILURE: JsonRpcCode.Failure,
  ONGOING: JsonRpcCode.Ongoing,
  INVALID_INPUT: JsonRpcError.Internal,
  TOO_LARGE: JsonRpcError.Internal,
  NOT_FOUND: JsonRpcError.Internal,
  CONFLICT: JsonRpcError.Internal,
  REFUSED: JsonRpcError.Refused,
  UNAVAILABLE: JsonRpcError.Unavailable,
  INTERNAL: JsonRpcError.Internal,
};

/** The JSON-RPC error code of a failed method call. */
export function jsonRpcErrorOf(err: unknown): number {
  return JSON_RPC_CODE[errorCodeOf(err)];
}

const remoteAddress = (req: FastifyRequest): string => req.socket.remoteAddress ?? '';

/** A JSON-RPC reply; DTM always answers HTTP 200 with this object. */
export interface JsonRpcReply {
  jsonrpc: '2.0';
  id: string | null;
  error: { code: number; message: string } | null;
  result: unknown;
}

function fail(id: string | null, code: number, message: string): JsonRpcReply {
  return { jsonrpc: '2.0', id, error: { code, message }, result: null };
}

function typeOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

const REFUSED_UNAUTHORIZED = fail(null, JsonRpcError.Unauthorized, 'unauthorized');
const REFUSED_FORBIDDEN = fail(null, JsonRpcError.Forbidden, 'forbidden');
const REFUSED_LIMITED = fail(null, JsonRpcError.RateLimited, 'too many failed authentication attempts: retry later');

/** The same error with the shared validation's `body` spelled `params`, as JSON-RPC callers know it. */
function asParams(err: unknown): unknown {
  if (err instanceof InputError && err.field === 'body')
    return new InputError('params', err.message.slice(6), err.code as 'INVALID_INPUT' | 'TOO_LARGE');
  return err;
}

/** A method's result; undefined (prepare, submit, ...) is sent as null. `trace`: the request's trace context. */
type Method = (params: unknown, trace: TraceContext | undefined) => Promise<unknown>;

/** The input with `trace` set when there is one. */
function withTrace<T extends { trace?: TraceContext }>(input: T, trace: TraceContext | undefined): T {
  if (trace) input.trace = trace;
  return input;
}

/**
 * DTM's JSON-RPC API (spec §3): one POST route, each method a thin call of the same service function
 * as its HTTP route. Error codes: -32700 the body is not a JSON request object (a non-string `id`
 * included, as in DTM), -32600 `id` empty or `jsonrpc` not "2.0", -32601 unknown method, -32901 a
 * FAILURE, -32902 an ONGOING, -32000 the store unreachable (retry later), -32603 anything else (bad params
 * included, with the field named).
 */
export class JsonRpcApi {
  private readonly methods: Record<string, Method>;

  constructor(
    service: TransService,
    private readonly log: Logger,
    limits: EdgeLimits = DEFAULT_EDGE_LIMITS,
    private readonly auth: Authenticator = OPEN_AUTH,
  ) {
    const s = service;
    // Go clients send escaped gids already; like gRPC, the JSON-RPC API does not strip \n \r ;
    const trans = (p: unknown, trace: TraceContext | undefined) =>
      withTrace(decodeTrans(p, { escapeGid: false, limits }), trace);
    this.methods = {
      newGid: async () => ({ gid: s.newGid() }),
      prepare: (p, trace) => s.prepare(trans(p, trace)),
      submit: (p, trace) => s.submit(trans(p, trace)),
      abort: (p, trace) => s.abort(trans(p, trace)),
      registerBranch: (p, trace) => s.registerBranch(withTrace(decodeBranch(p, { escapeGid: false, limits }), trace)),
      // dtx: DTM's JSON-RPC API has no prepareWorkflow; the result is what the HTTP route answers
      prepareWorkflow: async (p, trace) => {
        const { trans: t, branches } = await s.prepareWorkflow(trans(p, trace));
        return workflowReply(renderTrans(t, s.stuckRule()), branches);
      },
    };
  }

  /**
   * Answer one request body. Never throws.
   * @param trace the W3C trace context of the HTTP request's headers, when it carried one
   */
  async handle(
    body: Buffer | undefined,
    trace?: TraceContext,
    /** Told the gid the params name, when they name one (the access log). */
    noteGid?: (gid: string) => void,
  ): Promise<JsonRpcReply> {
    let req: unknown;
    try {
      req = JSON.parse(body ? body.toString('utf8') : '');
    } catch (err) {
      return fail(null, JsonRpcError.Parse, `Parse json error: ${errorMessage(err)}`);
    }
    if (!req || typeof req !== 'object' || Array.isArray(req)) {
      return fail(null, JsonRpcError.Parse, `Parse json error: expected a request object, got ${typeOf(req)}`);
    }
    const { id, jsonrpc, method, params } = req as Record<string, unknown>;
    for (const [key, v] of [
      ['id', id],
      ['jsonrpc', jsonrpc],
      ['method', method],
    ] as const) {
      if (v !== undefined && v !== null && typeof v !== 'string') {
        return fail(null, JsonRpcError.Parse, `Parse json error: ${key}: expected a string, got ${typeOf(v)}`);
      }
    }
    const rid = (id as string | undefined) ?? '';
    if (rid === '' || jsonrpc !== '2.0') {
      const echo = JSON.stringify({ method: method ?? '', jsonrpc: jsonrpc ?? '', params: params ?? null, id: rid });
      return fail(rid, JsonRpcError.InvalidRequest, `Bad json request: ${echo.slice(0, 1000)}`);
    }
    const gid = (params as { gid?: unknown } | null | undefined)?.gid;
    if (noteGid && typeof gid === 'string') noteGid(gid.slice(0, 128));
    const m = typeof method === 'string' && Object.hasOwn(this.methods, method) ? this.methods[method] : undefined;
    if (!m) return fail(rid, JsonRpcError.MethodNotFound, `Method not found: ${method ?? ''}`);
    try {
      return { jsonrpc: '2.0', id: rid, error: null, result: (await m(params, trace)) ?? null };
    } catch (e) {
      const err = asParams(e);
      if (errorCodeOf(err) === 'INTERNAL') this.log.error('json-rpc call failed', { method, error: errorMessage(err) });
      return fail(rid, jsonRpcErrorOf(err), errorMessage(err));
    }
  }

  /**
   * Mount `POST /api/json-rpc` on the HTTP app. Every reply is HTTP 200, an oversized body included. Every method is
   * a client call (newGid, prepare, submit, abort, registerBranch), so with tokens configured the request's token is
   * checked once, before its body is parsed: -32001 without a client or admin token.
   */
  register(app: FastifyInstance): void {
    const auth = this.auth;
    app.post('/api/json-rpc', {
      config: { auth: 'open' }, // checked here, answered in JSON-RPC's own shape
      ...(auth.enabled && {
        onRequest: (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
          const outcome = auth.check(req.headers.authorization, 'client', 'jsonrpc', remoteAddress, req);
          if (outcome === AuthOutcome.Ok) return done();
          const refusal =
            outcome === AuthOutcome.Unauthenticated
              ? REFUSED_UNAUTHORIZED
              : outcome === AuthOutcome.Forbidden
                ? REFUSED_FORBIDDEN
                : REFUSED_LIMITED;
          // read a small body first so that the client sees the answer, not EPIPE
          drainRequest(req.raw, 64 * 1024).then((drained) => {
            if (!drained) reply.header('connection', 'close');
            reply.code(200).send(refusal);
          });
        },
      }),
      errorHandler: async (err, req, reply) => {
        const fe = err as { code?: string };
        if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
          const message = `Bad json request: request body is larger than HttpBodyLimit (${app.initialConfig.bodyLimit} bytes)`;
          return sendAfterBody(req, reply, 200, fail(null, JsonRpcError.InvalidRequest, message));
        }
        return reply.code(200).send(fail(null, JsonRpcError.InvalidRequest, `Bad json request: ${errorMessage(err)}`));
      },
      handler: async (req) =>
        this.handle(req.body as Buffer | undefined, traceContextOfHeaders(req.headers), (gid) => {
          req.dtxGid = gid;
        }),
    });
  }
}
