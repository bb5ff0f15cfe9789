/**
 * An XA branch service in a process of its own, so that a test can kill it (SIGKILL) between prepare and phase
 * 2 and start it again. Environment: XA_DB (mysql | postgres), XA_TABLE (the account table, made by the test),
 * XA_PORT, XA_DTM (the coordinator's HTTP API), XA_CRASH=after-prepare to SIGKILL itself right after a local
 * XA transaction is prepared (before the action is answered). Prints `ready` when it listens.
 */
import Fastify from 'fastify';
import { DtxClient } from '../../src/index.js';
import type { XaDialect } from '../../src/xa/dialect.js';
import { openXaHarness, type XaDbName } from './xa-db.js';
import { addXaRoutes, type XaCallLog } from './xa-routes.js';

const env = (k: string): string => {
  const v = process.env[k];
  if (v === undefined || v === '') throw new Error(`${k} is not set`);
  return v;
};
const h = await openXaHarness(env('XA_DB') as XaDbName, env('XA_TABLE'), false);
const client = new DtxClient(env('XA_DTM'));
let dialect: XaDialect<any, any> = h.dialect;
if (process.env.XA_CRASH === 'after-prepare') {
  dialect = {
    ...h.dialect,
    async start(db, xid) {
      const local = await h.dialect.start(db, xid);
      return {
        ...local,
        async prepare() {
          await local.prepare();
          process.kill(process.pid, 'SIGKILL');
        },
      };
    },
  };
}
const app = Fastify();
const log: XaCallLog = [];
addXaRoutes(app, h, client, log, dialect);
await app.listen({ host: '127.0.0.1', port: Number(env('XA_PORT')) });
console.log('ready');
