// gRPC clients of the bench process: the coordinator's dtmgimp.Dtm (loaded from the protocol package's
// proto, as any dtmgrpc client would) and a raw channel to the gRPC branch service. One channel each:
// gRPC multiplexes every concurrent call over it.
import { DTMGIMP_PROTO, PROTO_LOADER_OPTIONS } from '@dtx/protocol';
import { Client, credentials, loadPackageDefinition, Metadata } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

const raw = (b) => b;

/** Settles one unary call; aborting `signal` cancels it. Resolves { ok } or { ok: false, error }. */
function settle(start, signal) {
  return new Promise((resolve) => {
    const call = start((err) =>
      resolve(
        err ? { ok: false, error: `${err.code} ${String(err.details ?? err.message).slice(0, 120)}` } : { ok: true },
      ),
    );
    if (signal) {
      if (signal.aborted) call.cancel();
      else signal.addEventListener('abort', () => call.cancel(), { once: true });
    }
  });
}

/**
 * @param {{ dtmAddress: string, busiAddress: string, token?: string }} o `token`: sent to the coordinator as
 *   `authorization: Bearer <token>` metadata (one Metadata object for every call, as a client would keep it)
 */
export function createGrpcClients({ dtmAddress, busiAddress, token }) {
  const dtmMd = new Metadata();
  if (token) dtmMd.set('authorization', `Bearer ${token}`);
  const pkg = loadPackageDefinition(loadSync(DTMGIMP_PROTO, PROTO_LOADER_OPTIONS));
  const dtm = new pkg.dtmgimp.Dtm(dtmAddress, credentials.createInsecure());
  const busi = new Client(busiAddress, credentials.createInsecure());
  return {
    /** dtmgimp.Dtm/Submit with a request object. */
    submit: (request, signal) => settle((cb) => dtm.Submit(request, dtmMd, cb), signal),
    /** A raw unary call to the branch service with the dtm-* metadata the coordinator would send. */
    branch: (path, bytes, pairs, signal) => {
      const md = new Metadata();
      for (const [k, v] of Object.entries(pairs)) md.set(k, v);
      return settle((cb) => busi.makeUnaryRequest(path, raw, raw, bytes, md, cb), signal);
    },
    close() {
      dtm.close();
      busi.close();
    },
  };
}
