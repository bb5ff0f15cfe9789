// An ESM consumer of the packed @dtx/client, compiled by the tarball-install test in a project outside the
// workspace: a committing and a rolling-back 2-step saga against the dtx named by argv[2], with the branches on a
// loopback server here. It prints the calls the branches received, as JSON, for the test to check.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DtxClient, FailureError, isFailure, type SubmitHandle, type XaDialect, xaXid } from '@dtx/client';
import type { SqliteDatabaseLike } from '@dtx/client/barrier/sqlite';
import { mysqlXaDialect } from '@dtx/client/xa/mysql';
import { type PostgresXaOptions, postgresXaDialect } from '@dtx/client/xa/postgres';

const dtm = process.argv[2];
if (dtm === undefined) throw new Error('usage: consumer <coordinator url>');
const calls: string[] = [];
const server = createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
  req.resume();
  req.on('end', () => {
    calls.push(path);
    const refuse = path === '/refuse';
    res.writeHead(refuse ? 409 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ dtm_result: refuse ? 'FAILURE' : 'SUCCESS' }));
  });
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const busi = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const client = new DtxClient(dtm, { retry: { retries: 2 } });
const unused: SqliteDatabaseLike | undefined = undefined;
void unused;
try {
  const ok: SubmitHandle = client
    .saga(undefined, { waitResult: true })
    .add(`${busi}/out`, `${busi}/out-revert`, { amount: 30 })
    .add(`${busi}/in`, `${busi}/in-revert`, { amount: 30 })
    .submit();
  await ok;
  const committed = (await ok.status())?.status;
  let rolledBack = '';
  try {
    await client
      .saga(undefined, { waitResult: true })
      .add(`${busi}/out`, `${busi}/out-revert`, { amount: 30 })
      .add(`${busi}/refuse`, `${busi}/refuse-revert`, { amount: 30 })
      .submit();
  } catch (err) {
    if (!(err instanceof FailureError) || !isFailure(err)) throw err;
    rolledBack = 'failed';
  }
  // The XA subpaths load without their drivers (mysql2, pg are optional peers, not installed here).
  const pgOptions: PostgresXaOptions = { table: 'dtm_barrier.barrier' };
  const dialects: XaDialect<unknown, unknown>[] = [mysqlXaDialect(), postgresXaDialect(pgOptions)];
  const xa = [...dialects.map((d) => `${d.dialect}:${d.maxXidBytes}`), xaXid('g', '01')];
  console.log(
    JSON.stringify({ format: typeof require === 'function' ? 'cjs' : 'esm', committed, rolledBack, calls, xa }),
  );
} finally {
  await client.close();
  server.close();
}
