import type { BranchCall, BranchCaller, BranchOutcome } from './caller.js';
import { HttpBranchCaller } from './http-caller.js';

/** True when a URL is called over plain HTTP. */
export function isHttpUrl(url: string): boolean {
  return url.startsWith('http://') || url.startsWith('https://');
}

/**
 * Chooses the protocol of a branch call (spec §5.1): an empty URL succeeds at once without a call;
 * http(s) URLs go over HTTP whatever the trans protocol. Other protocols arrive in later versions;
 * until then their URLs are refused at submit time, and a stored one is an error that is retried.
 */
export class DispatchingCaller implements BranchCaller {
  constructor(private readonly http: BranchCaller = new HttpBranchCaller()) {}

  async call(c: BranchCall): Promise<BranchOutcome> {
    if (c.url === '') return { result: 'SUCCESS', message: '' };
    if (isHttpUrl(c.url) || c.trans.protocol === 'http') return this.http.call(c);
    return { result: 'ERROR', message: `no caller for protocol '${c.trans.protocol}' (url '${c.url}')` };
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}
