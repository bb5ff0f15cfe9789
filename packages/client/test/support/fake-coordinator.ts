/**
 * A stand-in coordinator (plain node:http) that records the exact requests the SDK sends and answers what the
 * test says. Used to pin the wire format; behaviour is tested against the real server.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as it arrived. */
export interface CapturedRequest {
  method: string;
  /** Path without query, e.g. `/api/dtmsvr/submit`. */
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  /** The raw body text. */
  body: string;
}

/** What to answer; a missing status is 200, a missing body `{"dtm_result":"SUCCESS"}`. */
export interface FakeReply {
  status?: number;
  body?: string;
}

/** A running fake. */
export interface FakeCoordinator {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** `<origin>/api/dtmsvr` */
  readonly url: string;
  readonly requests: CapturedRequest[];
  /** The parsed JSON bodies of the requests to `/api/dtmsvr/<route>`. */
  bodiesOf(route: string): unknown[];
  close(): Promise<void>;
}

/** Starts a fake that answers each request with `reply(request)` (default: SUCCESS). */
export async function startFakeCoordinator(
  reply: (req: CapturedRequest) => FakeReply | undefined = () => undefined,
): Promise<FakeCoordinator> {
  const requests: CapturedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://x');
      const captured: CapturedRequest = {
        method: req.method ?? '',
        path: u.pathname,
        query: u.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      requests.push(captured);
      const r = reply(captured) ?? {};
      res.writeHead(r.status ?? 200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(r.body ?? '{"dtm_result":"SUCCESS"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin,
    url: `${origin}/api/dtmsvr`,
    requests,
    bodiesOf: (route) =>
      requests.filter((r) => r.path === `/api/dtmsvr/${route}`).map((r) => JSON.parse(r.body) as unknown),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
