import {
  DTM_GRPC_SERVICE,
  DTMGIMP_PROTO,
  type DtmBranchRequest,
  type DtmRequest,
  type DtmTopicRequest,
  GrpcStatus,
  grpcCodeName,
  PROTO_LOADER_OPTIONS,
} from '@dtx/protocol';
import {
  type handleUnaryCall,
  type Metadata,
  type MethodDefinition,
  Server,
  ServerCredentials,
  ServerInterceptingCall,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  type ServerMethodDefinition,
  type ServiceDefinition,
  type StatusObject,
} from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import type { TransService } from '../../core/service.js';
import type { Logger } from '../../observe/logger.js';
import type { DtxMetrics } from '../../observe/metrics.js';
import { parseTraceContext, TRACEPARENT, TRACESTATE, type TraceContext } from '../../observe/trace-context.js';
import { errorMessage } from '../../util/error-message.js';
import { type Authenticator, AuthOutcome, OPEN_AUTH, type Role } from '../auth.js';
import { checkSubscriberUrl, type EdgeLimits } from '../decode.js';
import { wellFormed } from '../well-formed.js';
import { branchCall, topicCall, transCall, workflowCall } from './requests.js';
import { grpcStatusOf } from './status.js';
import { type WireCheck, wireCheckOf } from './wire-check.js';

export interface GrpcApiOptions {
  service: TransService;
  log: Logger;
  /** Address to listen on (the HTTP server's, HttpHost). */
  host: string;
  /** GrpcPort; 0 picks a free port. */
  port: number;
  /** Largest accepted request message in bytes (HttpBodyLimit); larger ones get RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
  /** Steps and branch_headers limits (config `Limits.*`), as on HTTP. Default {@link DEFAULT_EDGE_LIMITS}. */
  limits?: EdgeLimits;
  /** The token check (config `Auth.*`), of the `authorization` metadata. Default: open, as DTM. */
  auth?: Authenticator;
  /** gRPC over TLS (config `GrpcTls.*`, else `HttpTls.*`); with `ca`, client certificates are required (mTLS). */
  tls?: { key: Buffer; cert: Buffer; ca?: Buffer };
  /** Counts and times each call (dtm_server_process_total / dtm_server_response_duration, type grpc). */
  metrics?: Pick<DtxMetrics, 'route'> | undefined;
  /** One info line per call (Log.AccessLog). */
  accessLog?: boolean | undefined;
}

/** Told of each call's end: the request's gid ('' when none or undecodable), its status code and duration. */
type CallDone = (gid: string, code: number, ms: number) => void;

/** The end-of-call hook of one method: metrics and the access log line; undefined when neither is on. */
function callDone(o: GrpcApiOptions, path: string, name: string): CallDone | undefined {
  const api = name.toLowerCase();
  const record = o.metrics?.route('grpc', api);
  const log = o.accessLog === true ? o.log : undefined;
  if (!record && !log) return undefined;
  return (gid, code, ms) => {
    record?.(code === GrpcStatus.OK, ms / 1000);
    if (log) {
      const fields: Record<string, unknown> = {
        transport: 'grpc',
        method: path,
        route: api,
        status: grpcCodeName(code),
        duration_ms: Math.round(ms * 1000) / 1000,
      };
      if (gid) fields.gid = gid;
      log.info('request', fields);
    }
  };
}

/** What each method needs: the client role for a transaction's calls, admin for the topic calls. */
const METHOD_ROLES: Record<string, Role> = {
  NewGid: 'client',
  Submit: 'client',
  Prepare: 'client',
  Abort: 'client',
  RegisterBranch: 'client',
  PrepareWorkflow: 'client',
  Subscribe: 'admin',
  Unsubscribe: 'admin',
  DeleteTopic: 'admin',
};

export interface GrpcApi {
  /** The port actually bound. */
  port: number;
  /** Stop accepting calls, let running ones finish for up to `graceMs`, then cut them. */
  close(graceMs?: number): Promise<void>;
}

type Reply = Record<string, unknown>;
/** A method: takes its decoded request message (each its own type) and the call's trace context. */
type Impl = (request: never, trace: TraceContext | undefined) => Promise<unknown>;

const EMPTY: Reply = {};

/**
 * The coordinator's service, `dtmgimp.Dtm` (spec §4), loaded from packages/protocol/proto at start.
 * Requests arrive as bytes and are decoded in the handler, so that a malformed message gets
 * INVALID_ARGUMENT (grpc-js would answer INTERNAL).
 */
function loadDtmService(): { pkg: PackageDefinition; service: ServiceDefinition } {
  const pkg = loadSync(DTMGIMP_PROTO, PROTO_LOADER_OPTIONS);
  const svc = pkg[DTM_GRPC_SERVICE];
  if (!svc || !('NewGid' in svc)) throw new Error(`${DTMGIMP_PROTO} does not define ${DTM_GRPC_SERVICE}`);
  return { pkg, service: svc as ServiceDefinition };
}

/** The package of a fully qualified name: `dtmgimp` of `dtmgimp.Dtm`. */
const packageOf = (name: string): string => name.slice(0, Math.max(0, name.lastIndexOf('.')));

/** Bytes in: each handler decodes its request itself. */
const raw = (b: Buffer): Buffer => b;

/**
 * DTM's gRPC API (spec §4) over the same service functions as HTTP; nothing here knows a transaction
 * mode. Statuses: FAILURE → ABORTED, ONGOING → FAILED_PRECONDITION, bad input → INVALID_ARGUMENT,
 * other errors → UNKNOWN, bugs → INTERNAL; a malformed message → INVALID_ARGUMENT, an unknown method →
 * UNIMPLEMENTED, a message over `maxMessageBytes` → RESOURCE_EXHAUSTED. Every non-OK status is logged.
 */
export async function startGrpcApi(o: GrpcApiOptions): Promise<GrpcApi> {
  const s = o.service;
  // each method: the service function, its reply message (undefined: google.protobuf.Empty)
  const impls: Record<string, Impl> = {
    NewGid: async () => ({ Gid: s.newGid() }),
    Submit: (r: DtmRequest, trace) => transCall(r, trace, (t) => s.submit(t), o.limits),
    Prepare: (r: DtmRequest, trace) => transCall(r, trace, (t) => s.prepare(t), o.limits),
    Abort: (r: DtmRequest, trace) => transCall(r, trace, (t) => s.abort(t), o.limits),
    RegisterBranch: (r: DtmBranchRequest, trace) => branchCall(r, trace, (b) => s.registerBranch(b), o.limits),
    PrepareWorkflow: (r: DtmRequest, trace) => workflowCall(r, trace, (t) => s.prepareWorkflow(t), o.limits),
    Subscribe: (r: DtmTopicRequest) =>
      topicCall(r, (t) => s.topics.subscribe(t.Topic, checkSubscriberUrl(t.URL, o.limits?.urlPolicy), t.Remark)),
    Unsubscribe: (r: DtmTopicRequest) => topicCall(r, (t) => s.topics.unsubscribe(t.Topic, t.URL)),
    DeleteTopic: (r: DtmTopicRequest) => topicCall(r, (t) => s.topics.deleteTopic(t.Topic)),
  };

  const { pkg, service: proto } = loadDtmService();
  const definition: Record<string, MethodDefinition<Buffer, Reply>> = {};
  const handlers: Record<string, handleUnaryCall<Buffer, Reply>> = {};
  for (const [name, def] of Object.entries(proto)) {
    const impl = impls[name];
    if (!impl) throw new Error(`no handler for ${def.path}`);
    definition[name] = { ...(def as MethodDefinition<Buffer, Reply>), requestDeserialize: raw };
    const requestType = (def as { requestType?: { type?: { name?: string } } }).requestType?.type?.name;
    if (!requestType) throw new Error(`no request type for ${def.path}`);
    handlers[name] = unary(
      def,
      wireCheckOf(pkg, packageOf(DTM_GRPC_SERVICE), requestType),
      impl,
      o.auth ?? OPEN_AUTH,
      METHOD_ROLES[name] ?? 'admin',
      callDone(o, def.path, name),
    );
  }

  const server = new Server({
    'grpc.max_receive_message_length': o.maxMessageBytes,
    interceptors: [logStatuses(o.log)],
  });
  logUnknownMethods(server, o.log);
  server.addService(definition, handlers);
  const address = o.host.includes(':') ? `[${o.host}]:${o.port}` : `${o.host}:${o.port}`;
  const port = await new Promise<number>((resolve, reject) => {
    const credentials = o.tls
      ? ServerCredentials.createSsl(o.tls.ca ?? null, [{ private_key: o.tls.key, cert_chain: o.tls.cert }], !!o.tls.ca)
      : ServerCredentials.createInsecure();
    server.bindAsync(address, credentials, (err, bound) => {
      if (err) {
        const inUse = /EADDRINUSE|address already in use/i.test(err.message);
        reject(
          new Error(
            inUse
              ? `GrpcPort ${o.port} is already in use on ${o.host}: set GrpcPort (GRPC_PORT) to a free port, or 0 for any`
              : `cannot listen for gRPC on ${address}: ${err.message}`,
          ),
        );
      } else resolve(bound);
    });
  });

  let closing: Promise<void> | undefined;
  return {
    port,
    close(graceMs = 10_000) {
      closing ??= new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), graceMs);
        force.unref();
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      return closing;
    },
  };
}

/**
 * One unary method: check and decode the bytes, run the service function, answer its reply or its status. The
 * check refuses what protobufjs would decode silently (invalid UTF-8 in a string, a known field with another
 * wire type), naming the field.
 */
function unary(
  def: MethodDefinition<object, object>,
  check: WireCheck,
  impl: Impl,
  auth: Authenticator,
  role: Role,
  done?: CallDone,
): handleUnaryCall<Buffer, Reply> {
  const typeName = def.path.slice(def.path.lastIndexOf('/') + 1);
  return (call, callback) => {
    if (auth.enabled) {
      const given = call.metadata.get('authorization');
      const header = given.length === 1 && typeof given[0] === 'string' ? given[0] : undefined;
      const outcome = auth.check(header, role, 'grpc', peerAddress, call);
      if (outcome !== AuthOutcome.Ok) {
        callback(AUTH_REFUSALS[outcome]!);
        return;
      }
    }
    const started = done ? performance.now() : 0;
    let request: unknown;
    try {
      // a plain Uint8Array view: protobufjs then checks every length (its Buffer reader would silently
      // cut a truncated string short)
      const b = call.request;
      const bytes = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
      check(bytes);
      request = def.requestDeserialize(bytes as Buffer);
    } catch (err) {
      callback({
        code: GrpcStatus.INVALID_ARGUMENT,
        details: `malformed ${typeName} request message: ${errorMessage(err)}`,
      });
      done?.('', GrpcStatus.INVALID_ARGUMENT, performance.now() - started);
      return;
    }
    impl(request as never, traceContextOfMetadata(call.metadata)).then(
      (reply) => {
        callback(null, (reply as Reply | undefined) ?? EMPTY);
        done?.(gidOf(request), GrpcStatus.OK, performance.now() - started);
      },
      (err: unknown) => {
        const status = grpcStatusOf(err);
        callback(status);
        done?.(gidOf(request), status.code ?? GrpcStatus.UNKNOWN, performance.now() - started);
      },
    );
  };
}

/** The refusal of each failed check: no detail on why. */
const AUTH_REFUSALS: Record<number, Partial<StatusObject>> = {
  [AuthOutcome.Unauthenticated]: { code: GrpcStatus.UNAUTHENTICATED, details: 'unauthorized' },
  [AuthOutcome.Forbidden]: { code: GrpcStatus.PERMISSION_DENIED, details: 'forbidden' },
  [AuthOutcome.Limited]: {
    code: GrpcStatus.RESOURCE_EXHAUSTED,
    details: 'too many failed authentication attempts: retry later',
  },
};

/** The caller's address without its port: `127.0.0.1` of `127.0.0.1:5000`, `[::1]` of `[::1]:5000`. */
const peerAddress = (call: { getPeer(): string }): string => {
  const peer = call.getPeer();
  const colon = peer.lastIndexOf(':');
  return colon > 0 && !peer.endsWith(']') ? peer.slice(0, colon) : peer;
};
/** The gid of a decoded request (DtmRequest, DtmBranchRequest), '' when it has none. */
function gidOf(request: unknown): string {
  const gid = (request as { Gid?: unknown } | null)?.Gid;
  return typeof gid === 'string' ? gid.slice(0, 128) : '';
}

/** The W3C trace context of a call's metadata (`traceparent`, `tracestate`), when it carries a valid one. */
function traceContextOfMetadata(md: Metadata): TraceContext | undefined {
  const tp = md.get(TRACEPARENT);
  return tp.length === 0 ? undefined : parseTraceContext(tp, md.get(TRACESTATE));
}

/** Log level of a non-OK status: bugs and unknown failures are errors; refusals of input are warnings. */
function levelOf(code: number): 'error' | 'warn' | 'debug' {
  if (code === GrpcStatus.INTERNAL || code === GrpcStatus.UNKNOWN) return 'error';
  if (
    code === GrpcStatus.INVALID_ARGUMENT ||
    code === GrpcStatus.RESOURCE_EXHAUSTED ||
    code === GrpcStatus.UNIMPLEMENTED
  ) {
    return 'warn';
  }
  return 'debug'; // ABORTED / FAILED_PRECONDITION are answers; CANCELLED / DEADLINE_EXCEEDED the client's
}

/**
 * Logs every non-OK status, including those grpc-js sends by itself before a handler runs (a message
 * over the size limit), and makes its text well-formed: the interceptor wraps `sendStatus` of the innermost
 * call, which grpc-js also uses for its own refusals.
 */
function logStatuses(log: Logger): ServerInterceptor {
  return (method: ServerMethodDefinition<unknown, unknown>, call: ServerInterceptingCallInterface) => {
    const send = call.sendStatus.bind(call);
    call.sendStatus = (given: Partial<StatusObject> & Pick<StatusObject, 'code' | 'details'>) => {
      // grpc-js percent-encodes the text with encodeURI, which throws on a lone surrogate (outside any
      // handler, so the process would exit): every status text leaves well-formed
      const status = { ...given, details: wellFormed(given.details) };
      if (status.code !== GrpcStatus.OK) {
        log[levelOf(status.code)]('grpc call failed', {
          method: method.path,
          code: grpcCodeName(status.code),
          error: status.details,
        });
      }
      send(status);
    };
    return new ServerInterceptingCall(call);
  };
}

/**
 * grpc-js answers a method it does not know with UNIMPLEMENTED before any interceptor runs and offers
 * no hook; its handler lookup is wrapped (when present) so that such calls are logged too.
 */
function logUnknownMethods(server: Server, log: Logger): void {
  const s = server as unknown as { _retrieveHandler?: (path: string) => unknown };
  const lookup = s._retrieveHandler;
  if (typeof lookup !== 'function') return;
  s._retrieveHandler = (path: string) => {
    const handler = lookup.call(server, path);
    if (!handler) log.warn('grpc call failed', { method: path, code: 'Unimplemented', error: 'unknown method' });
    return handler;
  };
}
