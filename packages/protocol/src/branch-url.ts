/**
 * The grammar of branch URLs (spec §5.1, §5.5): which protocol a URL is called over, and how a gRPC URL splits into
 * the target to dial and the method to call. Shared by the server's input checks and its branch callers.
 *
 * @module
 */

/** How a branch is called. */
export type BranchProtocol = 'http' | 'grpc' | 'json-rpc';

/** True when a URL is called over plain HTTP. */
export function isHttpUrl(url: string): boolean {
  return url.startsWith('http://') || url.startsWith('https://');
}

/**
 * The protocol a branch URL of a transaction is called over (spec §5.1): an http(s) URL, or any URL of an http
 * transaction, goes over HTTP, as JSON-RPC when the transaction is json-rpc and the URL names a `method`; every
 * other URL is a gRPC branch. `transProtocol` '' means http.
 */
export function branchProtocolOf(transProtocol: string, url: string): BranchProtocol {
  const p = transProtocol || 'http';
  if (p === 'http' || isHttpUrl(url)) return p === 'json-rpc' && url.includes('method') ? 'json-rpc' : 'http';
  return 'grpc';
}

/** Schemes of the discovery targets the server resolves: go-zero's etcd (two names) and kratos. */
export const DISCOVERY_SCHEMES: readonly string[] = ['etcd', 'discov', 'discovery'];

/** A gRPC branch URL split for the call. */
export interface GrpcUrl {
  /** `host:port`, or a discovery target (`scheme://authority/service`) to resolve first. */
  target: string;
  /** The scheme of a discovery target; undefined for `host:port`. */
  scheme: string | undefined;
  /** Full method path, `/package.Service/Method`. */
  method: string;
}

const HOST_PORT = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::\d{1,5})?$/;
const METHOD = /^\/[A-Za-z0-9_.]+\/[A-Za-z0-9_]+$/;

/**
 * Splits a gRPC branch URL (spec §5.5). `host:port/package.Service/Method` splits at the first `/`;
 * a discovery URL `scheme://authority/service/package.Service/Method` splits after the service
 * (kratos: `discovery:///service/...`, the authority empty); a query string, such as go-zero's etcd
 * `?user=&password=`, stays with the target. Returns a problem text for a URL that can never be called.
 */
export function parseGrpcUrl(url: string): GrpcUrl | string {
  const sep = url.indexOf('://');
  if (sep !== -1) {
    const scheme = url.slice(0, sep).toLowerCase();
    if (!DISCOVERY_SCHEMES.includes(scheme)) {
      return `unknown scheme '${scheme}://': only ${DISCOVERY_SCHEMES.map((s) => `${s}://`).join(', ')} are resolved`;
    }
    // a query (go-zero's etcd ?user=&password=) belongs to the target, wherever it was written
    const q = url.indexOf('?', sep);
    const query = q === -1 ? '' : url.slice(q);
    const rest = url.slice(sep + 3, q === -1 ? undefined : q);
    const authorityEnd = rest.indexOf('/');
    if (authorityEnd === -1) return `no service after '${scheme}://${rest}'`;
    const serviceEnd = rest.indexOf('/', authorityEnd + 1);
    if (serviceEnd === -1) return `no method after '${scheme}://${rest}'`;
    if (serviceEnd === authorityEnd + 1) return 'empty service name';
    const method = rest.slice(serviceEnd);
    if (!METHOD.test(method)) return `'${method}' is not a method path /package.Service/Method`;
    return { target: `${scheme}://${rest.slice(0, serviceEnd)}${query}`, scheme, method };
  }
  const slash = url.indexOf('/');
  if (slash === -1) return "no '/' found";
  const target = url.slice(0, slash);
  const method = url.slice(slash);
  if (!HOST_PORT.test(target)) return `'${target}' is not host:port`;
  if (!METHOD.test(method)) return `'${method}' is not a method path /package.Service/Method`;
  return { target, scheme: undefined, method };
}

/** Why a URL can never be called over gRPC, or undefined when it can. */
export function grpcUrlProblem(url: string): string | undefined {
  const p = parseGrpcUrl(url);
  return typeof p === 'string' ? p : undefined;
}
