// The gRPC branch service the bench drives: busi.Busi TransOut / TransIn and their compensations, raw
// byte handlers (no proto, as the coordinator sends payloads unchanged) answering OK with an empty
// message. Same counters as busi.mjs, keyed by the dtm-gid metadata, so one correctness check serves
// both transports.
import { Server, ServerCredentials } from '@grpc/grpc-js';

export const GRPC_SERVICE = 'busi.Busi';
const ROUTES = ['TransOut', 'TransIn', 'TransOutRevert', 'TransInRevert'];
const EMPTY = Buffer.alloc(0);
const raw = (b) => b;

/** What each method is expected to receive from the coordinator (spec §5.5, §6.3). */
const EXPECT = {
  TransOut: { branch_id: '01', op: 'action' },
  TransIn: { branch_id: '02', op: 'action' },
  TransOutRevert: { branch_id: '01', op: 'compensate' },
  TransInRevert: { branch_id: '02', op: 'compensate' },
};

/**
 * Starts the gRPC branch service on 127.0.0.1 (random port).
 * @param {{ trackPrefix: string, expectBody: Buffer }} opts gids starting with trackPrefix are tracked per gid;
 *   every call's message bytes are compared with expectBody.
 */
export async function startGrpcBusi({ trackPrefix, expectBody }) {
  const calls = Object.fromEntries(ROUTES.map((r) => [r, 0]));
  /** gid → [TransOut, TransIn, TransOutRevert, TransInRevert] call counts */
  const perGid = new Map();
  const malformed = { count: 0, samples: [] };
  let total = 0;
  const noteMalformed = (what) => {
    malformed.count++;
    if (malformed.samples.length < 5) malformed.samples.push(what);
  };

  const server = new Server();
  const definition = {};
  const handlers = {};
  ROUTES.forEach((route, idx) => {
    definition[route] = {
      path: `/${GRPC_SERVICE}/${route}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: raw,
      requestDeserialize: raw,
      responseSerialize: raw,
      responseDeserialize: raw,
    };
    handlers[route] = (call, callback) => {
      total++;
      calls[route]++;
      const md = call.metadata;
      const get = (k) => {
        const v = md.get(k);
        return v.length > 0 ? String(v[0]) : undefined;
      };
      const gid = get('dtm-gid') ?? '';
      const exp = EXPECT[route];
      if (
        !gid ||
        get('dtm-trans_type') !== 'saga' ||
        get('dtm-branch_id') !== exp.branch_id ||
        get('dtm-op') !== exp.op ||
        get('dtm-dtm') === undefined ||
        !call.request.equals(expectBody)
      ) {
        noteMalformed(
          `${route} gid=${gid} metadata=${JSON.stringify(md.getMap())} body=${call.request.toString('hex')}`,
        );
      }
      if (gid.startsWith(trackPrefix)) {
        let c = perGid.get(gid);
        if (!c) {
          c = [0, 0, 0, 0];
          perGid.set(gid, c);
        }
        c[idx]++;
      }
      callback(null, EMPTY);
    };
  });
  server.addService(definition, handlers);
  const port = await new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const address = `127.0.0.1:${port}`;
  return {
    address,
    origin: `grpc://${address}`,
    /** The branch URL of a method, as a saga step names it. */
    url: (route) => `${address}/${GRPC_SERVICE}/${route}`,
    calls,
    perGid,
    malformed,
    totalCalls: () => total,
    close() {
      return new Promise((resolve) => {
        const t = setTimeout(() => server.forceShutdown(), 2000);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      });
    },
  };
}
