import { DTMGIMP_PROTO, DtmMetadata, GrpcStatus, PROTO_LOADER_OPTIONS } from '@dtx/protocol';
import {
  type ChannelCredentials,
  Client,
  credentials,
  loadPackageDefinition,
  Metadata,
  type MethodDefinition,
  Server,
  ServerCredentials,
  type ServiceClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

/** What a gRPC busi handler answers: a result word, or a status code and its message. */
export type GrpcBusiResult = 'SUCCESS' | 'FAILURE' | 'ONGOING' | 'ERROR' | { code: number; details: string };

/** One call received by the gRPC busi. */
export interface GrpcBusiCall {
  /** The method name, e.g. `TransOut`. */
  name: string;
  /** Full path, e.g. `/busi.Busi/TransOut`. */
  path: string;
  /** The request message's bytes as received. */
  body: Buffer;
  /** Every metadata pair (the last value of a repeated key). */
  metadata: Record<string, string>;
  gid: string;
  transType: string;
  branchId: string;
  op: string;
  /** Milliseconds left until the call's deadline when it arrived; Infinity without a deadline. */
  msLeft: number;
}

/** The methods of DTM's busi.Busi the scenarios call. */
export const BUSI_METHODS = [
  'TransOut',
  'TransIn',
  'TransOutRevert',
  'TransInRevert',
  'TransOutConfirm',
  'TransInConfirm',
  'TransOutTcc',
  'TransInTcc',
  'TransOutXa',
  'TransInXa',
  'XaNotify',
  'QueryPrepared',
];

const raw = (b: Buffer): Buffer => b;
const EMPTY = Buffer.alloc(0);

/**
 * A real gRPC branch service for tests, like DTM's busi.Busi on :58081, but without any proto: each
 * method takes and answers raw bytes (the coordinator sends the stored payload unchanged). Calls are
 * recorded with their metadata and bytes; `setOnce` / `setAlways` script the answers per method.
 */
export class GrpcBusi {
  readonly calls: GrpcBusiCall[] = [];
  private readonly queued = new Map<string, GrpcBusiResult[]>();
  private readonly sticky = new Map<string, GrpcBusiResult>();
  /** Runs before the answer (e.g. to hold a call until a test releases it). */
  onCall: ((c: GrpcBusiCall) => void | Promise<void>) | undefined;
  private readonly server = new Server();
  /** `127.0.0.1:<port>` once started. */
  address = '';

  constructor(
    readonly service = 'busi.Busi',
    private readonly methods = BUSI_METHODS,
  ) {}

  async start(): Promise<this> {
    const definition: Record<string, MethodDefinition<Buffer, Buffer>> = {};
    const handlers: Record<string, (call: any, cb: (err: any, reply?: Buffer) => void) => void> = {};
    for (const name of this.methods) {
      const path = `/${this.service}/${name}`;
      definition[name] = {
        path,
        requestStream: false,
        responseStream: false,
        requestSerialize: raw,
        requestDeserialize: raw,
        responseSerialize: raw,
        responseDeserialize: raw,
      };
      handlers[name] = (call: { request: Buffer; metadata: Metadata; getDeadline(): Date | number }, cb) => {
        const md: Record<string, string> = {};
        for (const [k, v] of Object.entries(call.metadata.getMap())) md[k] = String(v);
        const deadline = call.getDeadline();
        const at = deadline instanceof Date ? deadline.getTime() : deadline;
        const c: GrpcBusiCall = {
          name,
          path,
          body: call.request,
          metadata: md,
          gid: md[DtmMetadata.Gid] ?? '',
          transType: md[DtmMetadata.TransType] ?? '',
          branchId: md[DtmMetadata.BranchId] ?? '',
          op: md[DtmMetadata.Op] ?? '',
          msLeft: Number.isFinite(at) ? at - Date.now() : Number.POSITIVE_INFINITY,
        };
        this.calls.push(c);
        void (async () => {
          if (this.onCall) await this.onCall(c);
          const r = this.queued.get(name)?.shift() ?? this.sticky.get(name) ?? 'SUCCESS';
          if (r === 'SUCCESS') cb(null, EMPTY);
          else if (r === 'FAILURE') cb({ code: GrpcStatus.ABORTED, details: `reason:${name} refused` });
          else if (r === 'ONGOING') cb({ code: GrpcStatus.FAILED_PRECONDITION, details: 'ONGOING' });
          else if (r === 'ERROR') cb({ code: GrpcStatus.INTERNAL, details: 'busi internal error' });
          else cb({ code: r.code, details: r.details });
        })();
      };
    }
    this.server.addService(definition, handlers);
    const port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    this.address = `127.0.0.1:${port}`;
    return this;
  }

  /** The branch URL of a method: `127.0.0.1:<port>/busi.Busi/<name>`. */
  url(name: string): string {
    return `${this.address}/${this.service}/${name}`;
  }

  setOnce(name: string, ...results: GrpcBusiResult[]): void {
    this.queued.set(name, [...(this.queued.get(name) ?? []), ...results]);
  }

  setAlways(name: string, result: GrpcBusiResult | undefined): void {
    if (result === undefined) this.sticky.delete(name);
    else this.sticky.set(name, result);
  }

  reset(): void {
    this.queued.clear();
    this.sticky.clear();
    this.onCall = undefined;
  }

  /** Calls for one gid, as "name op" strings in arrival order. */
  callsOf(gid: string): string[] {
    return this.calls.filter((c) => c.gid === gid).map((c) => `${c.name} ${c.op}`);
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.tryShutdown(() => resolve()));
  }
}

/**
 * A busi request message as DTM's busi.proto has it (`BusiReq { int64 Amount = 1; string
 * TransOutResult = 2; string TransInResult = 3; }`), encoded by hand: the coordinator never decodes it.
 */
export function busiReq(amount: number, transOutResult = '', transInResult = ''): Buffer {
  const out: number[] = [];
  const varint = (n: number) => {
    let v = n;
    while (v > 0x7f) {
      out.push((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    out.push(v);
  };
  if (amount) {
    out.push(0x08);
    varint(amount);
  }
  for (const [tag, s] of [
    [0x12, transOutResult],
    [0x1a, transInResult],
  ] as const) {
    if (!s) continue;
    const b = Buffer.from(s, 'utf8');
    out.push(tag);
    varint(b.length);
    out.push(...b);
  }
  return Buffer.from(out);
}

/** A gRPC error as the test sees it. */
export type GrpcError = ServiceError;

/**
 * A plain grpc-js client of the coordinator's `dtmgimp.Dtm`, loaded from the protocol package's proto
 * (what a Go dtmgrpc client sends, field for field). `call` resolves with the reply object or rejects
 * with the ServiceError; `raw` sends arbitrary bytes to any path.
 */
export class DtmGrpcClient {
  private readonly client: Client & Record<string, any>;
  private readonly rawClient: Client;

  /** `creds`: the channel's credentials (default plain TCP). */
  constructor(
    readonly address: string,
    creds: ChannelCredentials = credentials.createInsecure(),
  ) {
    const pkg = loadPackageDefinition(loadSync(DTMGIMP_PROTO, PROTO_LOADER_OPTIONS)) as any;
    const Dtm = pkg.dtmgimp.Dtm as ServiceClientConstructor;
    this.client = new Dtm(address, creds) as Client & Record<string, any>;
    this.rawClient = new Client(address, creds);
  }

  /** `metadata`: pairs sent with the call (e.g. `traceparent`). */
  call<T = Record<string, unknown>>(
    method: string,
    request: Record<string, unknown> = {},
    metadata: Record<string, string> = {},
  ): Promise<T> {
    const md = new Metadata();
    for (const [k, v] of Object.entries(metadata)) md.set(k, v);
    return new Promise((resolve, reject) => {
      this.client[method](request, md, (err: ServiceError | null, reply: T) => (err ? reject(err) : resolve(reply)));
    });
  }

  /** The status of a call that is expected to fail (fails the test when it succeeds). */
  async error(
    method: string,
    request: Record<string, unknown> = {},
    metadata: Record<string, string> = {},
  ): Promise<ServiceError> {
    try {
      await this.call(method, request, metadata);
    } catch (err) {
      return err as ServiceError;
    }
    throw new Error(`${method} succeeded where an error was expected`);
  }

  raw(path: string, bytes: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.rawClient.makeUnaryRequest(path, raw, raw, bytes, (err: ServiceError | null, reply?: Buffer) =>
        err ? reject(err) : resolve(reply ?? EMPTY),
      );
    });
  }

  close(): void {
    this.client.close();
    this.rawClient.close();
  }
}
