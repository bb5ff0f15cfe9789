import type { IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Read and discard the rest of a request body, up to `maxBytes`, before an early answer (413). A client that
 * writes its whole body before it reads the reply (most do) would otherwise have its socket closed under its
 * writes and see EPIPE or ECONNRESET instead of the answer. Resolves true when the body was read to its end (the
 * connection can be kept), false when it was longer than `maxBytes` or the request broke off: then answer with
 * `Connection: close`. A client that stops sending is cut by the server's request timeout (HttpRequestTimeout).
 */
export function drainRequest(req: IncomingMessage, maxBytes: number): Promise<boolean> {
  if (req.complete) return Promise.resolve(true);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.resolve(false);
  return new Promise((resolve) => {
    let seen = 0;
    const done = (drained: boolean) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onClose);
      req.off('close', onClose);
      resolve(drained);
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > maxBytes) {
        req.pause();
        done(false);
      }
    };
    const onEnd = () => done(true);
    const onClose = () => done(false);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onClose);
    req.on('close', onClose);
    req.resume();
  });
}

/**
 * Answer a body over HttpBodyLimit with 413 (or the JSON-RPC route's own reply) after reading the rest of the
 * body, up to four times the limit, so that the client gets the answer rather than EPIPE; a longer body is
 * answered at once and the connection closed.
 */
export async function sendAfterBody(
  req: FastifyRequest,
  reply: FastifyReply,
  status: number,
  body: unknown,
): Promise<FastifyReply> {
  const drained = await drainRequest(req.raw, 4 * (req.server.initialConfig.bodyLimit ?? 1024 * 1024));
  if (!drained) reply.header('connection', 'close');
  return reply.code(status).send(body);
}
