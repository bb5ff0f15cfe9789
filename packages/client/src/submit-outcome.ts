/**
 * The real outcome of a submit the coordinator refused because the transaction already moved on. DTM (and dtx,
 * which keeps its wire reply) answers a repeated submit with FAILURE `current status '<status>', cannot sumbmit.`
 * whatever that status is — also `succeed`. The SDK reads the status (from the stored transaction when the
 * transport can query it, else from the text) and reports what really happened.
 *
 * @module
 */
import { FailureError, OngoingError } from './errors.js';

const FINISHED = /current status '([a-z]+)', cannot (?:sumbmit|submit)\b/;

/** The stored state the SDK can look up: the global status and rollback reason. */
export interface StoredOutcome {
  status: string;
  rollbackReason?: string;
}

/** The status a submit's FAILURE names when it says the transaction cannot be submitted any more, else undefined. */
export function refusedSubmitStatus(err: unknown): string | undefined {
  if (!(err instanceof FailureError)) return undefined;
  return FINISHED.exec(err.message)?.[1];
}

/**
 * Settles a submit refused with {@link refusedSubmitStatus} `status`: resolves when the transaction succeeded,
 * throws a `FailureError` (with the stored rollback reason, when known) when it failed or is rolling back, and an
 * `OngoingError` when it is still submitted. `lookup` reads the stored transaction; when it fails or is not
 * given, the status in the reply decides. Any other status rethrows `refused`.
 */
export async function settleRefusedSubmit(
  gid: string,
  status: string,
  refused: FailureError,
  lookup?: () => Promise<StoredOutcome | undefined>,
): Promise<void> {
  let now: StoredOutcome = { status };
  if (lookup !== undefined) {
    try {
      now = (await lookup()) ?? now;
    } catch {
      // the status named by the reply still holds
    }
  }
  switch (now.status) {
    case 'succeed':
      return;
    case 'failed':
    case 'aborting': {
      const reason = now.rollbackReason ?? '';
      const what = now.status === 'failed' ? 'was rolled back' : 'is being rolled back';
      throw new FailureError(reason !== '' ? reason : `transaction '${gid}' ${what} (status ${now.status})`, {
        cause: refused,
      });
    }
    case 'submitted':
      throw new OngoingError(
        `transaction '${gid}' is still submitted: it is being processed and will be retried, ` +
          'query it or submit it again with the same gid',
        { cause: refused },
      );
    default:
      throw refused;
  }
}
