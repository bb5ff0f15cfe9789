// The branch service the bench drives: TransOut / TransIn and their compensations, all answering
// 200 {"dtm_result":"SUCCESS"}. It counts every call and, for gids of the saga scenario, remembers
// which branches were called so the run can check the coordinator's work afterwards.
import { createServer } from 'node:http';

export const BUSI_PREFIX = '/api/busi';
const ROUTES = ['TransOut', 'TransIn', 'TransOutRevert', 'TransInRevert'];
const REPLY = Buffer.from('{"dtm_result":"SUCCESS"}');
const REPLY_HEADERS = { 'content-type': 'application/json', 'content-length': String(REPLY.length) };

/** What each route is expected to receive from the coordinator (spec §5.2, §6.3). */
const EXPECT = {
  TransOut: { branch_id: '01', op: 'action' },
  TransIn: { branch_id: '02', op: 'action' },
  TransOutRevert: { branch_id: '01', op: 'compensate' },
  TransInRevert: { branch_id: '02', op: 'compensate' },
};

/**
 * Starts the branch service on 127.0.0.1 (random port).
 * @param {{ trackPrefix: string, expectBody: string }} opts gids starting with trackPrefix are tracked per gid;
 *   every call's body is compared with expectBody.
 */
export async function startBusi({ trackPrefix, expectBody }) {
  const calls = Object.fromEntries(ROUTES.map((r) => [r, 0]));
  /** gid → [TransOut, TransIn, TransOutRevert, TransInRevert] call counts */
  const perGid = new Map();
  const malformed = { count: 0, samples: [] };
  let total = 0;

  const noteMalformed = (what) => {
    malformed.count++;
    if (malformed.samples.length < 5) malformed.samples.push(what);
  };

  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      total++;
      const url = req.url ?? '';
      const q = url.indexOf('?');
      const path = q < 0 ? url : url.slice(0, q);
      const route = path.startsWith(BUSI_PREFIX + '/') ? path.slice(BUSI_PREFIX.length + 1) : '';
      const idx = ROUTES.indexOf(route);
      if (idx < 0) {
        noteMalformed(`${req.method} ${url}: unknown route`);
        res.writeHead(404).end();
        return;
      }
      calls[route]++;
      const params = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
      const gid = params.get('gid') ?? '';
      const exp = EXPECT[route];
      const body = chunks.length === 1 ? chunks[0].toString() : Buffer.concat(chunks).toString();
      if (
        req.method !== 'POST' ||
        !gid ||
        params.get('trans_type') !== 'saga' ||
        params.get('branch_id') !== exp.branch_id ||
        params.get('op') !== exp.op ||
        body !== expectBody
      ) {
        noteMalformed(`${req.method} ${url} body=${body.slice(0, 80)}`);
      }
      if (gid.startsWith(trackPrefix)) {
        let c = perGid.get(gid);
        if (!c) {
          c = [0, 0, 0, 0];
          perGid.set(gid, c);
        }
        c[idx]++;
      }
      res.writeHead(200, REPLY_HEADERS).end(REPLY);
    });
  });
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  const origin = `http://127.0.0.1:${port}`;

  return {
    origin,
    url: (route) => `${origin}${BUSI_PREFIX}/${route}`,
    calls,
    perGid,
    malformed,
    totalCalls: () => total,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
