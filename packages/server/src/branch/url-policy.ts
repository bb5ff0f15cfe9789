import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { parseGrpcUrl } from '@dtx/protocol';

/**
 * The branch-URL policy (config `BranchUrl.Allow` / `BranchUrl.Deny`): which URLs dtx may call. Checked when a
 * URL comes in (submit, prepare, registerBranch, subscribe: a 400 naming the URL and the rule) and again on every
 * call against the address actually connected to, after DNS (a name resolving into a denied range is refused
 * before any connection is made).
 *
 * An entry is one of:
 * - a scheme, `https://` (http, https, grpc for `host:port/Service/Method` URLs, etcd, discov, discovery);
 * - a host name, `orders.internal`, or every name below a domain, `*.corp.example` (not the domain itself);
 * - an IP address or a CIDR range, `10.0.0.0/8`, `fd00::/8`, `::1`;
 * - a scheme and one of those, `https://*.corp.example`: both must match.
 *
 * A URL is refused when any Deny entry matches it (deny wins over allow). When Allow is not empty a URL must
 * also be allowed: if Allow has scheme-only entries its scheme must be one of them, and if Allow has host or
 * address entries its host must match one of them, a host name either by a name entry or by all the addresses
 * it resolves to falling into an allowed range. The default deny list (cloud metadata addresses and link-local)
 * always applies.
 *
 * @module
 */

/** Denied whatever the configuration says: cloud metadata endpoints and link-local ranges. */
export const DEFAULT_DENY: readonly string[] = [
  '169.254.169.254',
  'fd00:ec2::254',
  'metadata.google.internal',
  '169.254.0.0/16',
  'fe80::/10',
];

/** The schemes an entry may name. `grpc` is that of a `host:port/package.Service/Method` URL. */
export const POLICY_SCHEMES: readonly string[] = ['http', 'https', 'grpc', 'etcd', 'discov', 'discovery'];

type Kind = 'scheme' | 'name' | 'suffix' | 'cidr';

interface Rule {
  /** The entry as configured, for messages. */
  text: string;
  /** Where it comes from: `BranchUrl.Deny`, `BranchUrl.Deny (default)` or `BranchUrl.Allow`. */
  source: string;
  kind: Kind;
  /** The scheme the entry requires; undefined for any. */
  scheme: string | undefined;
  /** name: the host; suffix: `.corp.example`. */
  name: string;
  /** cidr: the range. */
  range: IpRange | undefined;
}

/** An IP range: IPv4 as 32 bits, IPv6 as 8 × 16 bits; IPv4-mapped IPv6 addresses are read as IPv4. */
interface IpRange {
  v6: boolean;
  words: number[];
  bits: number;
}

/** An address as words: IPv4 one 32-bit word, IPv6 eight 16-bit words. Undefined when not an IP literal. */
export function parseIp(text: string): { v6: boolean; words: number[] } | undefined {
  let s = text;
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  if (zone !== -1) s = s.slice(0, zone);
  const family = isIP(s);
  if (family === 4) return { v6: false, words: [ipv4Word(s)] };
  if (family !== 6) return undefined;
  const words = ipv6Words(s);
  // ::ffff:a.b.c.d is the IPv4 address a.b.c.d
  if (words[0] === 0 && words[1] === 0 && words[2] === 0 && words[3] === 0 && words[4] === 0 && words[5] === 0xffff) {
    return { v6: false, words: [((words[6]! << 16) | words[7]!) >>> 0] };
  }
  return { v6: true, words };
}

function ipv4Word(s: string): number {
  const p = s.split('.');
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

function ipv6Words(s: string): number[] {
  let tail: number[] = [];
  let body = s;
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) !== -1) {
    const v4 = ipv4Word(s.slice(lastColon + 1));
    tail = [v4 >>> 16, v4 & 0xffff];
    body = s.slice(0, lastColon + 1);
    if (!body.endsWith('::')) body = body.slice(0, -1);
  }
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((h) => Number.parseInt(h, 16)));
  const gap = body.indexOf('::');
  let words: number[];
  if (gap === -1) words = [...parse(body), ...tail];
  else {
    const head = parse(body.slice(0, gap));
    const rest = [...parse(body.slice(gap + 2)), ...tail];
    words = [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest];
  }
  return words;
}

/** The netmask of a prefix length (JavaScript shifts count modulo 32, so 0 and 32 are spelled out). */
function ipv4Mask(bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 32) return 0xffffffff;
  return ~(0xffffffff >>> bits) >>> 0;
}

function inRange(r: IpRange, ip: { v6: boolean; words: number[] }): boolean {
  if (r.v6 !== ip.v6) return false;
  if (!r.v6) {
    if (r.bits === 0) return true;
    const mask = r.bits === 32 ? 0xffffffff : ~(0xffffffff >>> r.bits) >>> 0;
    return (ip.words[0]! & mask) >>> 0 === r.words[0];
  }
  let left = r.bits;
  for (let i = 0; i < 8 && left > 0; i++) {
    const take = left >= 16 ? 16 : left;
    const mask = (0xffff << (16 - take)) & 0xffff;
    if ((ip.words[i]! & mask) !== r.words[i]) return false;
    left -= take;
  }
  return true;
}

const HOST_NAME = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/;

/** A policy entry that cannot be read; the message names it. */
export class PolicyEntryError extends Error {
  constructor(source: string, entry: string, problem: string) {
    super(`${source}: '${entry}' ${problem}`);
    this.name = 'PolicyEntryError';
  }
}

function parseRule(entry: string, source: string): Rule {
  const text = entry.trim();
  let rest = text.toLowerCase();
  let scheme: string | undefined;
  const sep = rest.indexOf('://');
  if (sep !== -1) {
    scheme = rest.slice(0, sep);
    if (!POLICY_SCHEMES.includes(scheme)) {
      throw new PolicyEntryError(source, text, `names an unknown scheme (one of ${POLICY_SCHEMES.join(', ')})`);
    }
    rest = rest.slice(sep + 3);
    if (rest.endsWith('/')) rest = rest.slice(0, -1);
    if (rest === '') return { text, source, kind: 'scheme', scheme, name: '', range: undefined };
  }
  const slash = rest.indexOf('/');
  const addr = parseIp(slash === -1 ? rest : rest.slice(0, slash));
  if (addr) {
    const max = addr.v6 ? 128 : 32;
    let bits = max;
    if (slash !== -1) {
      const b = rest.slice(slash + 1);
      bits = /^\d{1,3}$/.test(b) ? Number(b) : Number.NaN;
      if (!(bits >= 0 && bits <= max))
        throw new PolicyEntryError(source, text, `has a bad prefix length (0 to ${max})`);
    }
    // an IPv4-mapped range is an IPv4 one
    if (!addr.v6 && rest.includes(':') && bits >= 96) bits -= 96;
    const words = addr.words.slice();
    const range: IpRange = { v6: addr.v6, words, bits };
    // keep only the prefix, so that a match compares masked values
    if (!addr.v6) words[0] = (words[0]! & ipv4Mask(bits)) >>> 0;
    else {
      let left = bits;
      for (let i = 0; i < 8; i++) {
        const take = left >= 16 ? 16 : left > 0 ? left : 0;
        words[i] = words[i]! & ((0xffff << (16 - take)) & 0xffff);
        left -= take;
      }
    }
    return { text, source, kind: 'cidr', scheme, name: '', range };
  }
  if (slash !== -1) throw new PolicyEntryError(source, text, 'is neither a host name nor a CIDR range');
  if (rest.startsWith('*.')) {
    const domain = rest.slice(2);
    if (!HOST_NAME.test(domain)) throw new PolicyEntryError(source, text, 'is not a host pattern like *.example.com');
    return { text, source, kind: 'suffix', scheme, name: `.${domain}`, range: undefined };
  }
  const name = rest.endsWith('.') ? rest.slice(0, -1) : rest;
  if (!HOST_NAME.test(name)) {
    throw new PolicyEntryError(
      source,
      text,
      'is not a scheme (https://), a host (api.example.com, *.example.com), an IP address or a CIDR range',
    );
  }
  return { text, source, kind: 'name', scheme, name, range: undefined };
}

/** Splits a configured list: commas (and newlines) separate entries; blanks are dropped. */
export function policyEntries(value: string | readonly string[]): string[] {
  const parts = typeof value === 'string' ? value.split(/[,\n]/) : value.flatMap((v) => v.split(/[,\n]/));
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

/** The scheme and hosts a URL would connect to, as the policy sees it. */
export interface PolicyTarget {
  scheme: string;
  /** Lower-cased, without brackets or a trailing dot; empty for a discovery target on the configured etcd. */
  hosts: string[];
}

/** The scheme and hosts of a branch URL; undefined for a URL that names none (empty, topic://, unparseable). */
export function targetOf(url: string): PolicyTarget | undefined {
  if (url === '' || url.startsWith('topic://')) return undefined;
  if (url.startsWith('http://') || url.startsWith('https://')) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return undefined;
    }
    return { scheme: u.protocol.slice(0, -1), hosts: [normalHost(u.hostname)] };
  }
  const g = parseGrpcUrl(url);
  if (typeof g === 'string') return undefined;
  if (g.scheme === undefined) return { scheme: 'grpc', hosts: [normalHost(hostOf(g.target))] };
  // scheme://authority/service: the authority is the etcd (a comma-separated list), empty for the configured one
  const rest = g.target.slice(g.scheme.length + 3);
  const authority = rest.slice(0, rest.indexOf('/'));
  const hosts = authority === '' ? [] : authority.split(',').map((h) => normalHost(hostOf(h.trim())));
  return { scheme: g.scheme, hosts };
}

/** The host of `host:port` (`[v6]:port` too). */
export function hostOf(hostPort: string): string {
  const at = hostPort.lastIndexOf('@');
  const hp = at === -1 ? hostPort : hostPort.slice(at + 1);
  if (hp.startsWith('[')) {
    const end = hp.indexOf(']');
    return end === -1 ? hp : hp.slice(1, end);
  }
  const colon = hp.lastIndexOf(':');
  return colon === -1 || hp.indexOf(':') !== colon ? hp : hp.slice(0, colon);
}

function normalHost(h: string): string {
  let s = h.toLowerCase();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (s.endsWith('.')) s = s.slice(0, -1);
  return s;
}

/** What the static check of a host came to. */
interface HostVerdict {
  /** Why it is refused; undefined when it is not (yet). */
  denied: string | undefined;
  /**
   * A host name that matched no Allow name entry while Allow has address entries: each address it resolves to
   * must fall into an allowed range.
   */
  needsAllowedAddress: boolean;
}

const OK: HostVerdict = { denied: undefined, needsAllowedAddress: false };
const PENDING: HostVerdict = { denied: undefined, needsAllowedAddress: true };

/** A lookup in the shape of `dns.lookup` with `{ all: true }`. */
export type LookupAll = (hostname: string, cb: (err: Error | null, addresses: LookupAddress[]) => void) => void;

/** The system resolver, as net.connect would use it. */
export const systemLookup: LookupAll = (hostname, cb) => dnsLookup(hostname, { all: true }, cb);

/** The error of a connection the policy refused; no connection was attempted. */
export class UrlPolicyError extends Error {
  readonly code = 'EURLPOLICY';
  constructor(message: string) {
    super(message);
    this.name = 'UrlPolicyError';
  }
}

/**
 * Entries of the static-verdict cache before it is emptied (a URL verdict depends only on the URL), and the longest
 * URL it keeps: a longer one (up to 8,192 characters) is checked every time, so the cache stays within a few MB.
 */
const CACHE_MAX = 4096;
const CACHE_URL_MAX = 512;

/**
 * A compiled policy. `checkUrl` is the static check (cached per URL); `checkAddress` checks one resolved address
 * of a host; `lookup` wraps a resolver so that a name is refused before connecting when any of its addresses is.
 */
export class UrlPolicy {
  private readonly deny: Rule[];
  private readonly allowSchemes: Rule[];
  private readonly allowHosts: Rule[];
  private readonly allowHasRanges: boolean;
  private readonly cache = new Map<string, string | null>();

  /** Whether a configured Allow list exists (everything not denied is allowed otherwise). */
  readonly restricted: boolean;

  constructor(allow: readonly string[] = [], deny: readonly string[] = []) {
    this.deny = [
      ...DEFAULT_DENY.map((e) => parseRule(e, 'BranchUrl.Deny (default)')),
      ...deny.map((e) => parseRule(e, 'BranchUrl.Deny')),
    ];
    const allowRules = allow.map((e) => parseRule(e, 'BranchUrl.Allow'));
    this.allowSchemes = allowRules.filter((r) => r.kind === 'scheme');
    this.allowHosts = allowRules.filter((r) => r.kind !== 'scheme');
    this.allowHasRanges = this.allowHosts.some((r) => r.kind === 'cidr');
    this.restricted = allowRules.length > 0;
  }

  /** From config values: comma-separated text or YAML lists. Throws PolicyEntryError naming a bad entry. */
  static fromConfig(allow: string | readonly string[], deny: string | readonly string[]): UrlPolicy {
    return new UrlPolicy(policyEntries(allow), policyEntries(deny));
  }

  /**
   * Why `url` may not be called (`<url> is denied by BranchUrl.Deny 169.254.0.0/16`), or undefined. Only what
   * the URL itself says is checked here; the addresses a name resolves to are checked when connecting.
   */
  checkUrl(url: string): string | undefined {
    const hit = this.cache.get(url);
    if (hit !== undefined) return hit ?? undefined;
    const t = targetOf(url);
    let problem: string | undefined;
    if (t !== undefined) {
      problem = this.schemeProblem(t.scheme);
      for (const h of t.hosts) {
        if (problem !== undefined) break;
        const v = this.checkHost(t.scheme, h);
        problem = v.denied;
      }
      if (problem !== undefined) problem = `${shown(url)} ${problem}`;
    }
    if (url.length <= CACHE_URL_MAX) {
      if (this.cache.size >= CACHE_MAX) this.cache.clear();
      this.cache.set(url, problem ?? null);
    }
    return problem;
  }

  private schemeProblem(scheme: string): string | undefined {
    for (const r of this.deny)
      if (r.kind === 'scheme' && r.scheme === scheme) return `is denied by ${r.source} ${r.text}`;
    if (this.allowSchemes.length > 0 && !this.allowSchemes.some((r) => r.scheme === scheme)) {
      return `is not allowed by BranchUrl.Allow (scheme ${scheme}:// is not among ${this.allowSchemes.map((r) => r.text).join(', ')})`;
    }
    return undefined;
  }

  /** The static verdict on one host (lower-cased, no brackets). */
  private checkHost(scheme: string, host: string): HostVerdict {
    const ip = parseIp(host);
    for (const r of this.deny) {
      if (r.scheme !== undefined && r.scheme !== scheme) continue;
      if (matchesHost(r, host, ip)) return { denied: `is denied by ${r.source} ${r.text}`, needsAllowedAddress: false };
    }
    if (this.allowHosts.length === 0) return OK;
    for (const r of this.allowHosts) {
      if (r.scheme !== undefined && r.scheme !== scheme) continue;
      if (matchesHost(r, host, ip)) return OK;
    }
    if (ip === undefined && this.allowHasRanges) return PENDING;
    return { denied: `is not allowed by BranchUrl.Allow (${this.allowList()})`, needsAllowedAddress: false };
  }

  private allowList(): string {
    return this.allowHosts.map((r) => r.text).join(', ');
  }

  /**
   * Why a connection to `host` (as the URL names it) at the resolved `address` is refused, or undefined. Checks
   * the host itself too, so a caller that resolved nothing (an IP literal) needs only this.
   */
  checkAddress(scheme: string, host: string, address: string): string | undefined {
    const h = normalHost(host);
    const v = this.checkHost(scheme, h);
    if (v.denied !== undefined) return `${h} ${v.denied}`;
    const ip = parseIp(address);
    if (ip === undefined) return `${h} resolved to '${address}', which is not an IP address`;
    for (const r of this.deny) {
      if (r.kind !== 'cidr' || (r.scheme !== undefined && r.scheme !== scheme)) continue;
      if (inRange(r.range!, ip)) return `${h} resolves to ${address}, which is denied by ${r.source} ${r.text}`;
    }
    if (v.needsAllowedAddress) {
      const ok = this.allowHosts.some(
        (r) => r.kind === 'cidr' && (r.scheme === undefined || r.scheme === scheme) && inRange(r.range!, ip),
      );
      if (!ok) return `${h} resolves to ${address}, which is not allowed by BranchUrl.Allow (${this.allowList()})`;
    }
    return undefined;
  }

  /**
   * A `lookup` for net.connect / tls.connect: resolves with `base`, refuses (with a {@link UrlPolicyError},
   * before any connection) a name any of whose addresses is refused, and answers in the shape asked for
   * (`all` or one address).
   */
  lookupFor(scheme: string, base: LookupAll = systemLookup): NetLookup {
    return (hostname, options, cb) => {
      base(hostname, (err, addresses) => {
        if (err) return cb(err, '', 0);
        const family = typeof options === 'number' ? options : options.family;
        const wanted =
          family === 4 || family === 6 || family === 'IPv4' || family === 'IPv6'
            ? addresses.filter((a) => a.family === (family === 'IPv4' ? 4 : family === 'IPv6' ? 6 : family))
            : addresses;
        if (wanted.length === 0) {
          const e = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
          return cb(e, '', 0);
        }
        for (const a of wanted) {
          const problem = this.checkAddress(scheme, hostname, a.address);
          if (problem !== undefined)
            return cb(new UrlPolicyError(`refused by the branch-URL policy: ${problem}`), '', 0);
        }
        if (typeof options === 'object' && options.all) return (cb as unknown as AllCallback)(null, wanted);
        return cb(null, wanted[0]!.address, wanted[0]!.family);
      });
    };
  }
}

type AllCallback = (err: Error | null, addresses: LookupAddress[]) => void;

/** The `lookup` option of net.connect. */
export type NetLookup = (
  hostname: string,
  options: { family?: number | string | undefined; all?: boolean | undefined } | number,
  cb: (err: Error | null, address: string, family: number) => void,
) => void;

function matchesHost(r: Rule, host: string, ip: { v6: boolean; words: number[] } | undefined): boolean {
  switch (r.kind) {
    case 'name':
      return host === r.name;
    case 'suffix':
      return host.endsWith(r.name);
    case 'cidr':
      return ip !== undefined && inRange(r.range!, ip);
    default:
      return false;
  }
}

/** A URL as shown in a message: at most 200 characters, a `password` query value masked. */
function shown(url: string): string {
  const masked = url.replace(/([?&]password=)[^&#]*/gi, '$1***');
  return masked.length > 200 ? `${masked.slice(0, 200)}…` : masked;
}

/** The policy of an unconfigured coordinator: the default deny list only. */
export const DEFAULT_URL_POLICY = new UrlPolicy();
