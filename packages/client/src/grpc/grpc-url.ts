/**
 * gRPC branch URLs (spec §5.5): `<host:port>/<package>.<Service>/<Method>`, split at the first `/`.
 *
 * @module
 */
import { DtxError } from '../errors.js';

/** A gRPC branch URL's two halves. */
export interface GrpcBranchUrl {
  /** `host:port`, dialled as it is. */
  target: string;
  /** The full method path, e.g. `/busi.Busi/TransIn`. */
  method: string;
}

/**
 * Splits `localhost:58081/busi.Busi/TransIn` into `localhost:58081` and `/busi.Busi/TransIn`.
 * @throws DtxError for a URL without `/`, and for a discovery target (`etcd://…`, `discovery://…`), which the SDK
 *   does not resolve: give it the `host:port` of the service.
 */
export function splitGrpcUrl(url: string): GrpcBranchUrl {
  if (url.includes('://')) {
    throw new DtxError(
      `the SDK calls gRPC branches at host:port/package.Service/Method, not '${url}': ` +
        'discovery targets (etcd://, discov://, discovery://) are resolved by the coordinator only',
    );
  }
  const slash = url.indexOf('/');
  if (slash <= 0 || slash === url.length - 1) {
    throw new DtxError(`bad gRPC branch url '${url}': expected host:port/package.Service/Method`);
  }
  return { target: url.slice(0, slash), method: url.slice(slash) };
}
