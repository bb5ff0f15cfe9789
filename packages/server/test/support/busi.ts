import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a busi handler answers: a result word, or a raw status and body. */
export type BusiResult = 'SUCCESS' | 'FAILURE' | 'ONGOING' | 'ERROR' | { status: number; body: string };

export interface BusiCall {
  method: string;
  path: string;
  /** The handler name: the last path segment. */
  name: string;
  query: Record<string, string>;
  body: string;
  headers: IncomingMessage['headers'];
}

/**
 * A real HTTP branch service for tests, in the spirit of DTM's busi: any path answers; `setOnce`
 * queues results for the next calls of a handler (by the last path segment); every call is recorded.
 * `onCall` runs before the reply and may, for instance, kill the coordinator.
 */
export class Busi {
  readonly calls: BusiCall[] = [];
  private readonly queued = new Map<string, BusiResult[]>();
  private readonly sticky = new Map<string, BusiResult>();
  onCall: ((c: BusiCall) => void | Promise<void>) | undefined;
  /** Decides the reply of a call before the queued and sticky results (undefined: fall through to them). */
  answer: ((c: BusiCall) => BusiResult | undefined) | undefined;
  private server: Server | undefined;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        const u = new URL(req.url ?? '/', 'http://x');
        const call: BusiCall = {
          method: req.method ?? '',
          path: u.pathname,
          name: u.pathname.split('/').pop() ?? '',
          query: Object.fromEntries(u.searchParams),
          body: Buffer.concat(chunks).toString('utf8'),
          headers: req.headers,
        };
        this.calls.push(call);
        if (this.onCall) await this.onCall(call);
        const r = this.answer?.(call) ?? this.queued.get(call.name)?.shift() ?? this.sticky.get(call.name) ?? 'SUCCESS';
        const [status, body] =
          typeof r === 'object'
            ? [r.status, r.body]
            : r === 'SUCCESS'
              ? [200, '{"dtm_result":"SUCCESS"}']
              : r === 'FAILURE'
                ? [409, `{"error":"reason:${call.name} refused FAILURE"}`]
                : r === 'ONGOING'
                  ? [425, '{"error":"ONGOING"}']
                  : [500, '{"error":"busi internal error"}'];
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(body);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/api/busi`;
    return this;
  }

  /** Queue results for the next calls of handler `name`. */
  setOnce(name: string, ...results: BusiResult[]): void {
    this.queued.set(name, [...(this.queued.get(name) ?? []), ...results]);
  }

  /** Answer `result` on every call of `name` (until cleared with undefined). */
  setAlways(name: string, result: BusiResult | undefined): void {
    if (result === undefined) this.sticky.delete(name);
    else this.sticky.set(name, result);
  }

  /** Forget queued and sticky results and the onCall and answer hooks (between tests). */
  reset(): void {
    this.queued.clear();
    this.sticky.clear();
    this.onCall = undefined;
    this.answer = undefined;
  }

  /** Calls for one gid, as "name op" strings in arrival order. */
  callsOf(gid: string): string[] {
    return this.calls.filter((c) => c.query.gid === gid).map((c) => `${c.name} ${c.query.op}`);
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}
