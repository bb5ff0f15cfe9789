/**
 * Branch handlers as Fastify routes.
 *
 * @module
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { StringMap } from '../barrier/branch-info.js';
import type { WorkflowRegistry } from '../workflow/workflow.js';
import { type BranchHandler, createBranchContext, describeBranch } from './branch-context.js';
import { runBranch } from './branch-outcome.js';
import type { BranchLogger } from './logger.js';
import { resumeBodyBytes, workflowResumeReply } from './workflow-resume.js';

/** The Fastify objects of a branch request, as `ctx.raw`. */
export interface FastifyBranchRaw {
  readonly request: FastifyRequest;
  readonly reply: FastifyReply;
}

/** Options of {@link fastifyBranch}. */
export interface FastifyBranchOptions {
  /** Where 500s are reported. Default: the request's logger (`request.log.error`). */
  logger?: BranchLogger;
}

/**
 * Wraps a {@link BranchHandler} as a Fastify route handler that answers as DTM expects ({@link branchOutcome}).
 *
 * A request whose query string lacks gid, trans_type, branch_id or op fails with 500 and a message naming the
 * field when the handler uses `ctx.barrier` or `ctx.branchInfo`: DTM always sends them, so this is a wiring mistake,
 * and DTM would retry a 4xx just the same.
 *
 * Fastify refuses an empty body sent as `application/json` with 400, and DTM sends exactly that for XA phase 2
 * (POST, empty body): call {@link allowEmptyJsonBody} on the instance that holds such routes.
 *
 * @example
 * ```ts
 * app.post('/api/busi/TransOut', fastifyBranch<{ amount: number }>(async (ctx) => {
 *   await ctx.barrier.call(db, (client) => client.query('update ...', [ctx.body.amount]));
 * }));
 * ```
 */
export function fastifyBranch<Body = unknown>(
  handler: BranchHandler<Body, FastifyBranchRaw>,
  options: FastifyBranchOptions = {},
): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply> {
  return async (request, reply) => {
    const query = (request.query ?? {}) as StringMap;
    const out = await runBranch(() =>
      handler(
        createBranchContext({ body: request.body as Body, query, headers: request.headers, raw: { request, reply } }),
      ),
    );
    if (out.result === 'ERROR') {
      const message = `branch handler ${request.method} ${request.routeOptions.url ?? request.url} failed (${describeBranch(query)})`;
      if (options.logger) options.logger.error(message, out.error);
      else request.log.error({ err: out.error }, message);
    }
    return reply.code(out.status).type('application/json; charset=utf-8').send(out.body);
  };
}

/**
 * Makes `app` (and the routes registered in its encapsulation context) accept an empty `application/json` body as
 * "no body" (`ctx.body` is `undefined`) instead of answering 400, because DTM's XA phase-2 calls are POSTs with an
 * empty body. Non-empty bodies are parsed by Fastify's own JSON parser (with prototype-poisoning protection).
 */
export function allowEmptyJsonBody(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') done(null, undefined);
    else parseJson(request, text, done);
  });
}

/** Options of {@link workflowFastify}. */
export interface WorkflowFastifyOptions {
  /** The route's path in the plugin's context. Default: `/workflow/resume`. */
  path?: string;
}

/**
 * The workflow resume endpoint as a Fastify plugin: register it, and pass its full URL as the client's
 * `workflowResumeUrl`. It answers GET and POST on `path`, reads the body as raw bytes whatever its content type
 * (in its own encapsulation context: the app's parsers are not changed), and resumes the named workflow of
 * `registry`: 200 when it finished, 409 when it failed, 425 when it is not finished yet, 500 for an error (the
 * coordinator retries it), 400 / 404 for a call naming no gid or an unknown workflow.
 *
 * @example
 * ```ts
 * const client = new DtxClient(dtm, { workflowResumeUrl: 'http://10.0.0.5:8081/api/workflow/resume' });
 * client.workflow.register('transfer', transfer);
 * await app.register(workflowFastify(client.workflow), { prefix: '/api' });
 * ```
 */
export function workflowFastify(
  registry: WorkflowRegistry,
  options: WorkflowFastifyOptions = {},
): (app: FastifyInstance) => Promise<void> {
  const path = options.path ?? '/workflow/resume';
  return async (app) => {
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    app.route({
      method: ['GET', 'POST'],
      url: path,
      handler: async (request, reply) => {
        const out = await workflowResumeReply(
          registry,
          (request.query ?? {}) as Record<string, unknown>,
          resumeBodyBytes(request.body),
        );
        if (out.status === 500) request.log.error(`workflow resume failed: ${out.body}`);
        return reply.code(out.status).type('application/json; charset=utf-8').send(out.body);
      },
    });
  };
}
