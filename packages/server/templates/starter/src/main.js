// Starts the service: PORT (default 8081) on HOST (default 127.0.0.1), coordinator at DTX_URL.
import { buildApp } from './app.js';
import { openDatabase } from './db.js';

const port = Number(process.env.PORT ?? 8081);
const host = process.env.HOST ?? '127.0.0.1';
const dtxUrl = process.env.DTX_URL ?? 'http://127.0.0.1:36789/api/dtmsvr';
// the URL the coordinator calls the branches at: set BUSI_URL when it is not this host's address
const busiUrl = process.env.BUSI_URL ?? `http://${host}:${port}/api`;

const db = await openDatabase();
for (const [id, balance] of [
  [1, 100],
  [2, 0],
])
  if ((await db.balance(id)) === undefined) await db.setBalance(id, balance);
const app = buildApp({ db, dtxUrl, busiUrl: () => busiUrl });
app.addHook('onClose', async () => db.close());
await app.listen({ port, host });
console.log(`listening on http://${host}:${port}; coordinator ${dtxUrl}`);
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => app.close());
