/**
 * Branch handlers as Express routes.
 *
 * @module
 */
import type { Request, Response } from 'express';
import type { StringMap } from '../barrier/branch-info.js';
import type { WorkflowRegistry } from '../workflow/workflow.js';
import { type BranchHandler, createBranchContext, describeBranch } from './branch-context.js';
import { runBranch } from './branch-outcome.js';
import type { BranchLogger } from './logger.js';
import { resumeBodyBytes, workflowResumeReply } from './workflow-resume.js';

/** The Express objects of a branch request, as `ctx.raw`. */
export interface ExpressBranchRaw {
  readonly req: Request;
  readonly res: Response;
}

/** Options of {@link expressBranch}. */
export interface ExpressBranchOptions {
  /** Where 500s are reported. Default `console`. */
  logger?: BranchLogger;
}

/** Reads and parses the JSON body when no body parser ran; `undefined` for an empty body. */
async function readJsonBody(req: Request): Promise<unknown> {
  if (req.readableEnded) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`the request body is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * The JSON body: `undefined` when the request has none (express.json() turns an empty body into `{}`), the body
 * parser's result when one ran, else read from the request.
 */
async function bodyOf(req: Request): Promise<unknown> {
  if (req.headers['content-length'] === '0') return undefined;
  return req.body !== undefined ? req.body : readJsonBody(req);
}

/**
 * Wraps a {@link BranchHandler} as an Express route handler that answers as DTM expects ({@link branchOutcome}).
 * The JSON body is taken from `req.body` when a body parser (`express.json()`) ran, else read from the request;
 * an empty body is `undefined` (also behind express.json(), which would make it `{}`), a body that is not JSON is
 * a 500 (express.json() answers it with 400 itself).
 *
 * A request whose query string lacks gid, trans_type, branch_id or op fails with 500 and a message naming the
 * field when the handler uses `ctx.barrier` or `ctx.branchInfo`: DTM always sends them, so this is a wiring mistake,
 * and DTM would retry a 4xx just the same.
 *
 * @example
 * ```ts
 * app.post('/api/busi/TransOut', expressBranch<{ amount: number }>(async (ctx) => {
 *   await ctx.barrier.call(db, (conn) => conn.execute('update ...', [ctx.body.amount]));
 * }));
 * ```
 */
export function expressBranch<Body = unknown>(
  handler: BranchHandler<Body, ExpressBranchRaw>,
  options: ExpressBranchOptions = {},
): (req: Request, res: Response) => Promise<void> {
  const logger = options.logger ?? console;
  return async (req, res) => {
    const query = (req.query ?? {}) as StringMap;
    const out = await runBranch(async () => {
      const body = await bodyOf(req);
      return handler(createBranchContext({ body: body as Body, query, headers: req.headers, raw: { req, res } }));
    });
    if (out.result === 'ERROR') {
      logger.error(`branch handler ${req.method} ${req.originalUrl} failed (${describeBranch(query)})`, out.error);
    }
    res.status(out.status).type('application/json').send(out.body);
  };
}

/** Options of {@link workflowExpress}. */
export interface WorkflowExpressOptions extends ExpressBranchOptions {
  /** The largest body (the workflow's input) read, in bytes; a larger one gets 413. Default: 1 MiB (Fastify's). */
  bodyLimit?: number;
}

/**
 * The workflow resume endpoint as an Express handler: mount it for GET and POST (`app.all(path, …)`) and pass its
 * full URL as the client's `workflowResumeUrl`. The body is read raw when no body parser ran (mount it before
 * `express.json()`, or behind `express.raw({ type: '*\/*' })`); it resumes the named workflow of `registry` and
 * answers 200 finished, 409 failed, 425 not finished yet, 500 error, 400 / 404 for no gid or an unknown workflow.
 *
 * @example
 * ```ts
 * app.all('/api/workflow/resume', workflowExpress(client.workflow));
 * ```
 */
export function workflowExpress(
  registry: WorkflowRegistry,
  options: WorkflowExpressOptions = {},
): (req: Request, res: Response) => Promise<void> {
  const logger = options.logger ?? console;
  const limit = options.bodyLimit ?? 1_048_576;
  return async (req, res) => {
    let body: Uint8Array;
    if (req.body !== undefined || req.readableEnded) body = resumeBodyBytes(req.body);
    else {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of req) {
        const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
        size += b.length;
        if (size > limit) {
          res
            .status(413)
            .type('application/json')
            .send(JSON.stringify({ error: `the workflow input is larger than bodyLimit (${limit} bytes)` }));
          return;
        }
        chunks.push(b);
      }
      body = Buffer.concat(chunks);
    }
    const out = await workflowResumeReply(registry, (req.query ?? {}) as Record<string, unknown>, body);
    if (out.status === 500) logger.error(`workflow resume ${req.originalUrl} failed`, out.body);
    res.status(out.status).type('application/json').send(out.body);
  };
}
