/**
 * What a test's branch handler answers, per transaction and route: a queue of replies used once each, then
 * SUCCESS. Lets one service play many scenarios without global switches.
 */

/** One scripted reply. */
export interface ScriptedReply {
  status: number;
  body: string;
}

/** 200 `{"dtm_result":"SUCCESS"}` */
export const SUCCESS: ScriptedReply = { status: 200, body: '{"dtm_result":"SUCCESS"}' };
/** 409 with a Go-SDK-like error body carrying `reason`. */
export const failure = (reason: string): ScriptedReply => ({ status: 409, body: JSON.stringify({ error: reason }) });
/** 425 `{"dtm_result":"ONGOING"}` */
export const ONGOING: ScriptedReply = { status: 425, body: '{"dtm_result":"ONGOING"}' };
/** 500 with an error body (a retryable error). */
export const ERROR: ScriptedReply = { status: 500, body: '{"error":"internal"}' };

/** Scripted replies keyed by gid and path. */
export class ReplyScript {
  readonly #queues = new Map<string, ScriptedReply[]>();

  /** Queues `replies` for the next calls of `path` within `gid`. */
  set(gid: string, path: string, ...replies: ScriptedReply[]): this {
    this.#queues.set(`${gid} ${path}`, [...replies]);
    return this;
  }

  /** The reply for this call: the next queued one, else SUCCESS. */
  next(gid: string | undefined, path: string): ScriptedReply {
    return this.#queues.get(`${gid} ${path}`)?.shift() ?? SUCCESS;
  }
}
