/**
 * The XA branch handlers of the tests, on a Fastify app: `/xa/<db>/TransOut` takes `amount` from `account` (a
 * FailureError when the balance is short), `/xa/<db>/TransIn` adds it; both run their work with
 * `xaLocalTransaction`, so the same route serves the coordinator's phase 2. Every call is recorded.
 */
import type { FastifyInstance } from 'fastify';
import { allowEmptyJsonBody, fastifyBranch } from '../../src/adapters/fastify.js';
import { FailureError, type TransportClient } from '../../src/index.js';
import { xaBranchFromQuery, xaLocalTransaction } from '../../src/xa/branch.js';
import type { XaDialect } from '../../src/xa/dialect.js';
import type { XaHarness } from './xa-db.js';

/** The body of an XA action call in the tests. */
export interface TransferBody {
  account: string;
  amount: number;
}

/** One call an XA route received: `<path> <op> <branch_id>`. */
export type XaCallLog = { gid: string; line: string }[];

export function addXaRoutes(
  app: FastifyInstance,
  h: XaHarness,
  client: TransportClient<unknown, unknown>,
  log: XaCallLog,
  dialect: XaDialect<any, any> = h.dialect,
): void {
  allowEmptyJsonBody(app);
  const route = (name: string, work: (conn: unknown, body: TransferBody) => Promise<unknown>) =>
    app.post(
      `/xa/${h.name}/${name}`,
      fastifyBranch<TransferBody>(async (ctx) => {
        const q = ctx.query as Record<string, string>;
        log.push({ gid: q.gid ?? '', line: `${name} ${q.op ?? '-'} ${q.branch_id ?? '-'}` });
        const branch = xaBranchFromQuery(ctx.query, client);
        return xaLocalTransaction(dialect, h.db, branch, (conn) => work(conn, ctx.body));
      }),
    );
  route('TransOut', async (conn, body) => {
    if (!(await h.debit(conn, body.account, body.amount))) throw new FailureError('insufficient balance');
    return { debited: body.amount };
  });
  route('TransIn', async (conn, body) => {
    await h.credit(conn, body.account, body.amount);
    return { credited: body.amount };
  });
}
