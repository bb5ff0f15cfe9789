/**
 * Where the HTTP adapters report branch handlers that failed with an unexpected error (an HTTP 500).
 *
 * @module
 */

/** A sink for unexpected branch handler errors. `console` is one. */
export interface BranchLogger {
  /** Called once per 500 reply, with a one-line description and the error the handler threw. */
  error(message: string, error: unknown): void;
}
