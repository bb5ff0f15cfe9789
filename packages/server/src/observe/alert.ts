import { request } from 'undici';
import { errorMessage } from '../core/errors.js';
import type { AlertPayload } from '../core/pass.js';
import type { Logger } from './logger.js';

/** POST the alert webhook (spec §7.5); failures are only logged and never block processing. */
export function webhookAlerter(
  url: string,
  timeoutMs: number,
  log: Logger,
  /** Told of each delivery: ok when the webhook answered 200 (dtx_alert_deliveries_total). */
  delivered?: (ok: boolean) => void,
): (a: AlertPayload) => void {
  return (a) => {
    if (!url) return;
    request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(a),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
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
