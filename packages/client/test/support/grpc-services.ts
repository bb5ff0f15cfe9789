/**
 * gRPC test plumbing: a real `busi.Busi` protobuf service definition (built in code, no .proto file), a grpc-js
 * server on 127.0.0.1:0, a recording stand-in for the coordinator's `dtmgimp.Dtm`, and a real dtx server with its
 * gRPC API on a free port. Tests define the handlers themselves.
 */
import { connect, createServer } from 'node:net';
import {
  DTM_GRPC_SERVICE,
  DTMGIMP_PROTO,
  type DtmBranchRequest,
  type DtmRequest,
  PROTO_LOADER_OPTIONS,
} from '@dtx/protocol';
import {
  type handleUnaryCall,
  Metadata,
  type MethodDefinition,
  Server,
  ServerCredentials,
  type ServiceDefinition,
  type ServiceError,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { fromJSON, loadSync } from '@grpc/proto-loader';
import { type DtxServer, startDtxServer } from './dtx-server.js';
import { waitFor } from './poll.js';

/** `busi.BusiReq`. */
export interface BusiReq {
  Amount: number;
  Note: string;
}

/** `busi.BusiReply`. */
export interface BusiReply {
  Message: string;
}

/** The methods of the test's `busi.Busi` service, all `BusiReq → BusiReply`. */
export const BUSI_METHODS = [
  'TransOut',
  'TransOutRevert',
  'TransIn',
  'TransInRevert',
  'TransOutTry',
  'TransOutConfirm',
  'TransOutCancel',
  'TransInTry',
  'TransInConfirm',
  'TransInCancel',
  'QueryPrepared',
  'Hello',
] as const;

/** `busi.Busi`'s definition, as proto-loader builds it from protobufjs JSON (same options as the SDK's). */
export function busiService(): ServiceDefinition & Record<string, MethodDefinition<BusiReq, BusiReply>> {
  const methods: Record<string, { requestType: string; responseType: string; comment: string }> = {};
  for (const m of BUSI_METHODS) methods[m] = { requestType: 'BusiReq', responseType: 'BusiReply', comment: '' };
  const pkg = fromJSON(
    {
      nested: {
        busi: {
          nested: {
            BusiReq: { fields: { Amount: { type: 'int64', id: 1 }, Note: { type: 'string', id: 2 } } },
            BusiReply: { fields: { Message: { type: 'string', id: 1 } } },
            Busi: { methods },
          },
        },
      },
    },
    PROTO_LOADER_OPTIONS,
  );
  return pkg['busi.Busi'] as ServiceDefinition & Record<string, MethodDefinition<BusiReq, BusiReply>>;
}

/** The protobuf bytes of a `BusiReq`. */
export function busiReq(def: ReturnType<typeof busiService>, amount: number, note = ''): Buffer {
  return def.TransIn!.requestSerialize({ Amount: amount, Note: note });
}

/** A running grpc-js server. */
export interface GrpcTestServer {
  /** `127.0.0.1:<port>` */
  readonly address: string;
  readonly server: Server;
  close(): Promise<void>;
}

/** Starts a grpc-js server on 127.0.0.1:0 with the services `add` registers. */
export async function startGrpcServer(add: (server: Server) => void): Promise<GrpcTestServer> {
  const server = new Server();
  add(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    address: `127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
      }),
  };
}

/** The `dtm-*` (and every other) metadata pair of a call, first value of each key. */
export function metadataOf(md: Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(md.getMap())) out[k] = Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
  return out;
}

/** One request to the fake coordinator. */
export interface FakeDtmCall {
  method: string;
  request: DtmRequest | DtmBranchRequest | Record<string, never>;
  metadata: Record<string, string>;
}

/** A recording stand-in for `dtmgimp.Dtm`. */
export interface FakeGrpcCoordinator extends GrpcTestServer {
  readonly calls: FakeDtmCall[];
}

/**
 * Starts a fake `dtmgimp.Dtm` that records every request and answers what `reply` says: `undefined` for OK, or an
 * error `{ code, details }`.
 */
export async function startFakeGrpcCoordinator(
  reply: (call: FakeDtmCall) => { code: number; details: string } | undefined = () => undefined,
): Promise<FakeGrpcCoordinator> {
  const pkg = loadSync(DTMGIMP_PROTO, PROTO_LOADER_OPTIONS);
  const def = pkg[DTM_GRPC_SERVICE] as ServiceDefinition;
  const calls: FakeDtmCall[] = [];
  const impl: UntypedServiceImplementation = {};
  for (const method of Object.keys(def)) {
    const handler: handleUnaryCall<FakeDtmCall['request'], unknown> = (call, cb) => {
      const c: FakeDtmCall = { method, request: call.request, metadata: metadataOf(call.metadata) };
      calls.push(c);
      const err = reply(c);
      if (err) cb({ ...err, name: 'Error', message: err.details, metadata: new Metadata() } as ServiceError);
      else cb(null, method === 'NewGid' ? { Gid: 'fake-gid' } : {});
    };
    impl[method] = handler;
  }
  const srv = await startGrpcServer((s) => s.addService(def, impl));
  return { ...srv, calls };
}

/** A TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => {
        if (addr !== null && typeof addr === 'object') resolve(addr.port);
        else reject(new Error('no port'));
      });
    });
  });
}

/** A real dtx server with its gRPC API on a free port. */
export interface GrpcDtxServer extends DtxServer {
  /** `127.0.0.1:<grpc port>`, for `new DtxGrpcClient(...)`. */
  readonly grpcAddress: string;
}

/**
 * Starts a dtx server (see `startDtxServer`) with GRPC_PORT set to a free port, and waits until that port accepts
 * connections too (the server answers `/api/ping` a moment before its gRPC API is bound).
 */
export async function startGrpcDtxServer(env: Record<string, string> = {}): Promise<GrpcDtxServer> {
  const port = await freePort();
  const server = await startDtxServer({ env: { GRPC_PORT: String(port), ...env } });
  try {
    await waitFor(() => accepts(port), { what: `the gRPC API on 127.0.0.1:${port}` });
  } catch (err) {
    await server.stop();
    throw new Error(`${(err as Error).message}\n--- output ---\n${server.output()}`);
  }
  return Object.assign(server, { grpcAddress: `127.0.0.1:${port}` });
}

function accepts(port: number): Promise<true | undefined> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.end();
      resolve(true);
    });
    sock.once('error', () => resolve(undefined));
  });
}
