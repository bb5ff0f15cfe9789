import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import { Agent, buildConnector } from 'undici';
import { DEFAULT_URL_POLICY, type LookupAll, systemLookup, type UrlPolicy, UrlPolicyError } from './url-policy.js';

/** How outbound HTTP connections (branches, JSON-RPC branches, the alert webhook) are made. */
export interface OutboundOptions {
  /** The branch-URL policy checked against every address connected to. Default: the default deny list. */
  policy?: UrlPolicy;
  /** Resolves host names (tests inject one). Default: the system resolver (`dns.lookup`). */
  lookup?: LookupAll;
  /**
   * PEM CA certificates trusted for https in addition to Node's bundled roots (config `BranchTls.CaFile`).
   * Certificates are always verified.
   */
  ca?: string | undefined;
}

/** Reads `BranchTls.CaFile`; empty path: none. Throws naming the key when the file cannot be read or holds no PEM. */
export function readCaFile(path: string): string | undefined {
  if (!path) return undefined;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`BranchTls.CaFile: cannot read '${path}': ${(err as Error).message}`);
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    throw new Error(`BranchTls.CaFile: '${path}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  return text;
}

/**
 * An undici Agent whose every connection is checked by the policy against the address actually connected to:
 * an IP literal directly, a name through a lookup that refuses it before connecting when any of its addresses is
 * refused (so a DNS answer cannot change between the check and the connection). Redirects are never followed
 * (undici's Agent does not follow them; a 3xx is the branch's reply). https verifies certificates against Node's
 * roots plus `ca`.
 */
export function outboundAgent(o: OutboundOptions = {}): Agent {
  const policy = o.policy ?? DEFAULT_URL_POLICY;
  const base = o.lookup ?? systemLookup;
  const tlsExtra = o.ca === undefined ? {} : { ca: [...rootCertificates, o.ca] };
  const http = buildConnector({ lookup: policy.lookupFor('http', base) } as buildConnector.BuildOptions);
  const https = buildConnector({
    lookup: policy.lookupFor('https', base),
    rejectUnauthorized: true,
    ...tlsExtra,
  } as buildConnector.BuildOptions);
  const connect: buildConnector.connector = (opts, cb) => {
    const scheme = opts.protocol === 'https:' ? 'https' : 'http';
    // net.connect does not look an IP literal up: it is checked here
    if (isIP(opts.hostname) !== 0) {
      const problem = policy.checkAddress(scheme, opts.hostname, opts.hostname);
      if (problem !== undefined) {
        cb(new UrlPolicyError(`refused by the branch-URL policy: ${problem}`), null);
        return;
      }
    }
    (scheme === 'https' ? https : http)(opts, cb);
  };
  return new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, connect });
}
