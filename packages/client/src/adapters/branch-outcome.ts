/**
 * The one place where the outcome of a branch handler becomes an HTTP reply that DTM reads as intended
 * (spec §12.5 for the replies, §5.4 for how DTM reads them).
 *
 * @module
 */
import { classifyHttpReply, HttpStatus, Result, withResultSuffix } from '@dtx/protocol';
import { DuplicatedError, FailureError, OngoingError } from '../errors.js';

/** How a branch handler ended: it returned `value`, or it threw `error`. */
export type BranchSettlement =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: unknown };

/** The HTTP reply for a branch handler's outcome. */
export interface BranchReply {
  /** 200, 409, 425 or 500. */
  readonly status: number;
  /** The JSON text to send, with `Content-Type: application/json`. */
  readonly body: string;
  /** How DTM reads this reply: always equal to `classifyHttpReply(status, body)`. */
  readonly result: Result | 'ERROR';
  /** The error the handler threw, for logging (set when `result` is `ERROR`, `FAILURE` or `ONGOING`). */
  readonly error?: unknown;
}

/** The body of a successful reply without a value, as the Go SDK sends it. */
export const SUCCESS_BODY = '{"dtm_result":"SUCCESS"}';

const ESCAPES: Readonly<Record<'FAILURE' | 'ONGOING', [RegExp, string]>> = {
  FAILURE: [/FAILURE/g, '\\u0046AILURE'],
  ONGOING: [/ONGOING/g, '\\u004fNGOING'],
};

/**
 * `JSON.stringify(value)`, with every `FAILURE` / `ONGOING` in it written as `\u0046AILURE` / `\u004fNGOING`.
 *
 * DTM reads a reply whose body contains the text `ONGOING` as ONGOING and `FAILURE` as FAILURE whatever its
 * status (spec §5.4), so a successful value that merely mentions those words would be taken for a failure. In JSON
 * text these words can only occur inside strings, where the escaped spelling decodes to the very same value:
 * every JSON parser reads the reply exactly as the handler returned it, and DTM no longer sees the words.
 * (`JSON.stringify` writes hex digits in lower case, so an `F` of `FAILURE` is never part of an escape.)
 *
 * @returns `undefined` when `JSON.stringify` does (for `undefined`, a function, a symbol).
 */
export function toSafeJson(
  value: unknown,
  words: readonly ('FAILURE' | 'ONGOING')[] = ['FAILURE', 'ONGOING'],
): string | undefined {
  let text: string | undefined = JSON.stringify(value);
  if (text === undefined) return undefined;
  for (const word of words) {
    const [pattern, replacement] = ESCAPES[word];
    text = text.replace(pattern, replacement);
  }
  return text;
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

function reply(status: number, body: string, error?: unknown): BranchReply {
  return { status, body, result: classifyHttpReply(status, body), ...(error === undefined ? {} : { error }) };
}

function errorBody(message: string, words: readonly ('FAILURE' | 'ONGOING')[]): string {
  return toSafeJson({ error: message }, words) as string;
}

/**
 * Maps the outcome of a branch handler to its HTTP reply, as the Go SDK answers (spec §12.5):
 *
 * | outcome | status | body |
 * |---|---|---|
 * | returned `undefined` | 200 | `{"dtm_result":"SUCCESS"}` |
 * | returned a value | 200 | the value as JSON (see {@link toSafeJson}) |
 * | threw {@link FailureError} | 409 | `{"error":"<message> FAILURE"}` (never a doubled suffix) |
 * | threw {@link OngoingError} | 425 | `{"error":"<message> ONGOING"}` |
 * | threw {@link DuplicatedError} | 200 | `{"dtm_result":"SUCCESS"}`: the work is known to be done or refused for good |
 * | threw anything else | 500 | `{"error":"<message>"}`: DTM retries |
 *
 * The body never makes DTM read anything else than the status says: the words `FAILURE` and `ONGOING` are
 * escaped where they would change DTM's reading (a 200 value or a 500 message that mentions FAILURE, a 409 message
 * that mentions ONGOING). A value that cannot be serialized (a `BigInt`, a cycle) becomes a 500.
 */
export function branchOutcome(settlement: BranchSettlement): BranchReply {
  if (settlement.ok) {
    let body: string | undefined;
    try {
      body = toSafeJson(settlement.value);
    } catch (err) {
      return reply(
        HttpStatus.Error,
        errorBody(`the branch handler's result cannot be sent as JSON: ${messageOf(err)}`, ['FAILURE', 'ONGOING']),
        err,
      );
    }
    return reply(HttpStatus.Success, body ?? SUCCESS_BODY);
  }
  const { error } = settlement;
  if (error instanceof DuplicatedError) return reply(HttpStatus.Success, SUCCESS_BODY);
  if (error instanceof FailureError) {
    const message = withResultSuffix(messageOf(error), Result.Failure).trim();
    return reply(HttpStatus.Failure, errorBody(message, ['ONGOING']), error);
  }
  if (error instanceof OngoingError) {
    const message = withResultSuffix(messageOf(error), Result.Ongoing).trim();
    return reply(HttpStatus.Ongoing, errorBody(message, []), error);
  }
  return reply(HttpStatus.Error, errorBody(messageOf(error) || 'error', ['FAILURE', 'ONGOING']), error);
}

/**
 * Runs `work` (your handler, with whatever it needs first, such as reading the body) and maps how it ended with
 * {@link branchOutcome}. Never rejects.
 */
export async function runBranch(work: () => unknown): Promise<BranchReply> {
  try {
    return branchOutcome({ ok: true, value: await work() });
  } catch (error) {
    return branchOutcome({ ok: false, error });
  }
}
