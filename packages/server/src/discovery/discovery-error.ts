/**
 * The error of every discovery failure: a target that cannot be parsed, an etcd that cannot be reached, a
 * service with no live instance, a registration that cannot be made.
 *
 * @module
 */

/** A discovery failure. The message says what was looked for, where, and what to check. */
export class DiscoveryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DiscoveryError';
  }
}

/** The message of any thrown value. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
