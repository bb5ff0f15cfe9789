import { type Dispatcher, request } from 'undici';
import { errorMessage } from '../util/error-message.js';
import type { Logger } from './logger.js';

/**
 * POST the alert webhook (spec §7.5); failures are only logged and never block processing. `dispatcher` makes
 * the connections: the server gives one that applies the branch-URL policy to the address connected to (see
 * branch/outbound.ts); redirects are not followed. The payload (the core's AlertPayload) is sent as JSON, as it is.
 */
export function webhookAlerter<A extends { gid: string }>(
  url: string,
  timeoutMs: number,
  log: Logger,
  dispatcher?: Dispatcher,
  /** Told of each delivery: ok when the webhook answered 200 (dtx_alert_deliveries_total). */
  delivered?: (ok: boolean) => void,
): (a: A) => void {
  return (a) => {
    if (!url) return;
    request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(a),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      ...(dispatcher === undefined ? {} : { dispatcher }),
    })
      .then(async (res) => {
        await res.body.dump();
        delivered?.(res.statusCode === 200);
        if (res.statusCode !== 200) log.warn('alert webhook answered an error', { gid: a.gid, status: res.statusCode });
      })
      .catch((err: unknown) => {
        delivered?.(false);
        log.warn('alert webhook failed', { gid: a.gid, error: errorMessage(err) });
      });
  };
}
