/**
 * A Fastify app on 127.0.0.1:0 that records every call before the test's own routes answer it. Tests define
 * the routes (the branch handlers) in the test file; this only listens and records.
 */
import Fastify, { type FastifyInstance } from 'fastify';

/** One call the service received. */
export interface RecordedCall {
  method: string;
  /** The path without the query string, e.g. `/TransIn`. */
  path: string;
  gid: string | undefined;
  trans_type: string | undefined;
  branch_id: string | undefined;
  op: string | undefined;
  /** The whole query string as an object. */
  query: Record<string, string>;
  /** The raw body text (`''` when there was none). */
  body: string;
  /** The request headers (lower-case names). */
  headers: Record<string, string | string[] | undefined>;
}

/** A running branch service. */
export interface BranchService {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly app: FastifyInstance;
  /** Every call, in arrival order. */
  readonly calls: RecordedCall[];
  /** The calls of one transaction, as `<path> <op>` strings (e.g. `/TransIn action`), in arrival order. */
  trace(gid: string): string[];
  close(): Promise<void>;
}

/** Builds the app, lets `routes` add handlers, and listens. JSON bodies reach handlers as raw text in `request.body`. */
export async function startBranchService(routes: (app: FastifyInstance) => void): Promise<BranchService> {
  const app = Fastify();
  const calls: RecordedCall[] = [];
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.addHook('preHandler', async (req) => {
    const query = { ...(req.query as Record<string, string>) };
    calls.push({
      method: req.method,
      path: req.url.split('?')[0] ?? req.url,
      gid: query.gid,
      trans_type: query.trans_type,
      branch_id: query.branch_id,
      op: query.op,
      query,
      body: typeof req.body === 'string' ? req.body : '',
      headers: { ...req.headers },
    });
  });
  routes(app);
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url: address,
    app,
    calls,
    trace: (gid) => calls.filter((c) => c.gid === gid).map((c) => `${c.path} ${c.op}`),
    close: () => app.close(),
  };
}
