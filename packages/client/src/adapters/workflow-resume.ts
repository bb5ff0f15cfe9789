/**
 * The workflow resume endpoint, framework-neutral: the coordinator calls it (spec §6.8) when a workflow was left
 * unfinished — with `gid`, `trans_type=workflow`, `branch_id=00` and `op=<workflow name>` in the query string and
 * the workflow's input bytes as the body (a GET when the input is empty). The Fastify and Express adapters wrap it.
 *
 * @module
 */
import type { WorkflowRegistry } from '../workflow/workflow.js';

/** The HTTP answer of a resume call. */
export interface WorkflowResumeReply {
  /** 200 finished, 409 failed, 425 not finished, 400 bad request, 404 unknown workflow, 500 error. */
  status: number;
  /** JSON text. */
  body: string;
}

function first(v: unknown): string | undefined {
  const x = Array.isArray(v) ? v[0] : v;
  return typeof x === 'string' ? x : undefined;
}

/** Resumes the workflow a resume call names and says how to answer it. Never rejects. */
export async function workflowResumeReply(
  registry: WorkflowRegistry,
  query: Record<string, unknown>,
  body: Uint8Array,
): Promise<WorkflowResumeReply> {
  const gid = first(query.gid);
  const name = first(query.op);
  if (gid === undefined || gid === '') return error(400, 'the query parameter gid is missing');
  if (name === undefined || name === '') return error(400, 'the query parameter op (the workflow name) is missing');
  if (!registry.has(name)) return error(404, `no workflow named '${name}' is registered on this host`);
  const out = await registry.resume(name, gid, body);
  switch (out.outcome) {
    case 'SUCCESS':
      return { status: 200, body: '{"dtm_result":"SUCCESS"}' };
    case 'FAILURE':
      return { status: 409, body: JSON.stringify({ dtm_result: 'FAILURE', message: out.message }) };
    case 'ONGOING':
      return { status: 425, body: JSON.stringify({ dtm_result: 'ONGOING', message: out.message }) };
    default:
      return error(500, out.message);
  }
}

function error(status: number, message: string): WorkflowResumeReply {
  return { status, body: JSON.stringify({ error: message }) };
}

/** The body as bytes, whatever a body parser made of it. */
export function resumeBodyBytes(body: unknown): Uint8Array {
  if (body === undefined || body === null) return new Uint8Array(0);
  if (body instanceof Uint8Array) return body;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  return Buffer.from(JSON.stringify(body), 'utf8');
}
