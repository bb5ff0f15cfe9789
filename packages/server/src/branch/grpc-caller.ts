import { isIP } from 'node:net';
import { classifyGrpcStatus, DtmMetadata, GrpcStatus, grpcErrorText, parseGrpcUrl } from '@dtx/protocol';
import { credentials, Client as GrpcClient, Metadata, type ServiceError } from '@grpc/grpc-js';
import { TRACEPARENT, TRACESTATE } from '../observe/trace-context.js';
import { errorMessage } from '../util/error-message.js';
import {
  type BranchCall,
  type BranchCaller,
  type BranchOutcome,
  extraHeaders,
  MAX_MESSAGE,
  type ReplyOptions,
} from './caller.js';
import type { TargetResolver } from './target-resolver.js';
import { DEFAULT_URL_POLICY, hostOf, type LookupAll, systemLookup, type UrlPolicy } from './url-policy.js';

/** DTM's default service config for branch channels (spec §5.5; config key GrpcServiceConfig). */
export const DEFAULT_GRPC_SERVICE_CONFIG = '{"loadBalancingConfig":[{"round_robin":{}}]}';

export interface GrpcCallerOptions extends ReplyOptions {
  /** Resolves discovery targets (`etcd://…`, `discov://…`, `discovery://…`) to `host:port`. */
  resolver: TargetResolver;
  /** JSON service config of every channel. Default {@link DEFAULT_GRPC_SERVICE_CONFIG}. */
  serviceConfig?: string;
  /** The branch-URL policy checked against every address dialled. Default: the default deny list. */
  policy?: UrlPolicy;
  /** Resolves host names (tests inject one). Default: the system resolver. */
  lookup?: LookupAll;
}

/**
 * The longest wait of a channel between two connection attempts to a target that is down (grpc-js default: 120 s,
 * growing from 1 s). A call to a channel in that wait fails at once (UNAVAILABLE), so a branch or workflow host that
 * comes back would get no call for up to that long whatever the cron's own backoff: capped, it is reached within
 * this many ms of the next attempt after it is up.
 */
const MAX_RECONNECT_BACKOFF_MS = 5000;

/** How long the checked addresses of a host name are dialled before the name is resolved again. */
const RESOLVED_TTL_MS = 5000;

/** The checked addresses of a name: the channel target that dials exactly them. */
interface Resolved {
  /** `ipv4:a:port,b:port` or `ipv6:[a]:port,…`. */
  dial: string;
  until: number;
}

/** Bytes in, bytes out: the payload is sent as the request message unchanged; the reply is ignored. */
const raw = (b: Buffer): Buffer => b;

function error(message: string): BranchOutcome {
  return { result: 'ERROR', message: message.length > MAX_MESSAGE ? message.slice(0, MAX_MESSAGE) : message };
}

/**
 * gRPC branches (spec §5.5), called without knowing their proto: the stored payload bytes are the
 * request message, sent with plain `application/grpc`; the transaction travels as `dtm-*` metadata,
 * followed by ext_data.headers, branch_headers and the trace context; the deadline is the call's timeout. One channel
 * per target address, created on first use and kept until close. The final status is read by
 * {@link classifyGrpcStatus}: OK, Aborted (FAILURE, or ONGOING by its message) and FailedPrecondition
 * (ONGOING); any other code is an error that the cron retries with backoff.
 */
export class GrpcBranchCaller implements BranchCaller {
  private readonly clients = new Map<string, { dial: string; client: GrpcClient }>();
  private readonly resolved = new Map<string, Resolved>();
  private readonly resolver: TargetResolver;
  private readonly serviceConfig: string;
  private readonly policy: UrlPolicy;
  private readonly lookup: LookupAll;
  private readonly hideReplies: boolean;
  private closed = false;

  constructor(o: GrpcCallerOptions) {
    this.resolver = o.resolver;
    this.serviceConfig = o.serviceConfig || DEFAULT_GRPC_SERVICE_CONFIG;
    this.policy = o.policy ?? DEFAULT_URL_POLICY;
    this.lookup = o.lookup ?? systemLookup;
    this.hideReplies = o.hideReplies === true;
  }

  async call(c: BranchCall): Promise<BranchOutcome> {
    const url = parseGrpcUrl(c.url);
    if (typeof url === 'string') return error(`bad url: '${c.url}'. ${url}`);
    let address = url.target;
    if (url.scheme !== undefined) {
      try {
        address = await this.resolver.resolve(url.target);
      } catch (err) {
        return error(`cannot resolve '${url.target}': ${errorMessage(err)}`);
      }
    }
    let dial: string;
    try {
      dial = await this.checkedDial(url.scheme === undefined ? 'grpc' : url.scheme, address);
    } catch (err) {
      return error(`cannot call '${c.url}': ${errorMessage(err)}`);
    }
    let client: GrpcClient;
    let md: Metadata;
    try {
      client = this.client(address, dial);
      md = metadataOf(c);
    } catch (err) {
      return error(`cannot call '${c.url}': ${errorMessage(err)}`);
    }
    const p = c.payload;
    const request = Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
    return new Promise<BranchOutcome>((resolve) => {
      client.makeUnaryRequest(
        url.method,
        raw,
        raw,
        request,
        md,
        { deadline: Date.now() + c.timeoutMs },
        (err: ServiceError | null) => {
          if (!err) {
            resolve({ result: 'SUCCESS', message: '' });
            return;
          }
          const code = typeof err.code === 'number' ? err.code : GrpcStatus.UNKNOWN;
          const details = (err.details ?? err.message ?? '').slice(0, MAX_MESSAGE);
          const result = classifyGrpcStatus(code, details);
          if (this.hideReplies) {
            const out = { result, message: grpcErrorText(code, '') };
            resolve(code === GrpcStatus.DEADLINE_EXCEEDED ? { ...out, timeout: true } : out);
            return;
          }
          if (result !== 'ERROR') resolve({ result, message: details });
          else if (code === GrpcStatus.DEADLINE_EXCEEDED)
            resolve({ ...error(grpcErrorText(code, details)), timeout: true });
          else resolve(error(grpcErrorText(code, details)));
        },
      );
    });
  }

  /**
   * The channel target for `host:port` once the branch-URL policy allowed it: an IP literal as it is; a name
   * resolved here, every address checked, and then dialled as exactly those addresses (`ipv4:…` / `ipv6:…`,
   * the name kept as the authority), so a later DNS answer cannot reach a denied address. The checked addresses
   * are reused for {@link RESOLVED_TTL_MS}.
   */
  private async checkedDial(scheme: string, address: string): Promise<string> {
    const host = hostOf(address);
    if (isIP(host) !== 0) {
      const problem = this.policy.checkAddress(scheme, host, host);
      if (problem !== undefined) throw new Error(`refused by the branch-URL policy: ${problem}`);
      return address;
    }
    const key = `${scheme} ${address}`;
    const now = Date.now();
    const hit = this.resolved.get(key);
    if (hit !== undefined && hit.until > now) return hit.dial;
    const port = address.slice(address.lastIndexOf(':') + 1);
    const addresses = await new Promise<{ address: string; family: number }[]>((resolve, reject) =>
      this.lookup(host, (err, a) => (err ? reject(err) : resolve(a))),
    );
    for (const a of addresses) {
      const problem = this.policy.checkAddress(scheme, host, a.address);
      if (problem !== undefined) throw new Error(`refused by the branch-URL policy: ${problem}`);
    }
    const v4 = addresses.filter((a) => a.family === 4);
    const list = v4.length > 0 ? v4 : addresses;
    if (list.length === 0) throw new Error(`${host} resolves to no address`);
    const dial =
      v4.length > 0
        ? `ipv4:${list.map((a) => `${a.address}:${port}`).join(',')}`
        : `ipv6:${list.map((a) => `[${a.address}]:${port}`).join(',')}`;
    if (this.resolved.size >= 4096) this.resolved.clear();
    this.resolved.set(key, { dial, until: now + RESOLVED_TTL_MS });
    return dial;
  }

  /** The channel of an address, created once, and again when the addresses it dials change. */
  private client(address: string, dial: string): GrpcClient {
    if (this.closed) throw new Error('the coordinator is shutting down');
    const had = this.clients.get(address);
    if (had !== undefined && had.dial === dial) return had.client;
    // the old channel's calls in flight finish; it takes no new ones
    had?.client.close();
    const client = new GrpcClient(dial, credentials.createInsecure(), {
      'grpc.service_config': this.serviceConfig,
      'grpc.max_reconnect_backoff_ms': MAX_RECONNECT_BACKOFF_MS,
      ...(dial === address ? {} : { 'grpc.default_authority': address }),
    });
    this.clients.set(address, { dial, client });
    return client;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.clients.values()) c.client.close();
    this.clients.clear();
  }
}

/**
 * `dtm-*` keys, then ext_data.headers, then branch_headers (the later wins on a clash), then the W3C trace
 * context (`traceparent`, `tracestate`), which replaces any of those names.
 */
function metadataOf(c: BranchCall): Metadata {
  const t = c.trans;
  const md = new Metadata();
  md.set(DtmMetadata.Gid, t.gid);
  md.set(DtmMetadata.TransType, t.transType);
  md.set(DtmMetadata.BranchId, c.branchId);
  md.set(DtmMetadata.Op, c.op);
  md.set(DtmMetadata.Dtm, '');
  for (const [k, v] of Object.entries(extraHeaders(t))) md.set(k.toLowerCase(), v);
  if (c.trace) {
    md.set(TRACEPARENT, c.trace.traceparent);
    if (c.trace.tracestate) md.set(TRACESTATE, c.trace.tracestate);
    else md.remove(TRACESTATE);
  }
  return md;
}
