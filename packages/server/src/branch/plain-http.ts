import { connect, isIP, type Socket } from 'node:net';
import { CallTimeoutError, MAX_REPLY_READ, type TextReply } from './caller.js';
import {
  DEFAULT_URL_POLICY,
  type LookupAll,
  type NetLookup,
  systemLookup,
  type UrlPolicy,
  UrlPolicyError,
} from './url-policy.js';

/** A request of {@link PlainHttpPool}: what the HTTP branch caller sends, the body whole. */
export interface PlainRequest {
  /** `http://host[:port]`, no path. */
  origin: string;
  path: string;
  method: 'GET' | 'POST';
  headers: Readonly<Record<string, string>>;
  body: Uint8Array | null;
}

/** The longest header block of a reply read (as undici's default); a longer one fails the call. */
export const MAX_REPLY_HEADERS = 16 * 1024;
/** How long an idle connection is kept when the reply gave no `Keep-Alive: timeout=` (the undici agent's setting). */
const IDLE_MS = 30_000;
/** An idle connection is given up this long before the server's announced keep-alive timeout. */
const IDLE_MARGIN_MS = 1_000;
/** How often idle connections past their time are looked for. */
const SWEEP_MS = 1_000;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** What a header value may hold (no CR, LF or NUL), written as latin1 like undici does. */
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** Header names this client writes itself or does not support; a request carrying one goes through undici. */
const RESERVED = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'upgrade',
  'expect',
  'te',
  'trailer',
]);
/** What a request target may not hold (a space, a control character, anything past latin1). */
const BAD_PATH = /[^\u0021-\u00ff]/;

/** A reply the server framed wrongly: the call fails and the connection is dropped. */
export class ReplyProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplyProtocolError';
  }
}

interface Origin {
  host: string;
  port: number;
  /** The Host header: the origin's host and port as written. */
  hostHeader: string;
  /** A refusal of the branch-URL policy for an IP literal, found once. */
  refused: string | undefined;
}

/**
 * dtx's own HTTP/1.1 client for the common branch call (HTTP and JSON-RPC): plain `http:`, headers that
 * {@link PlainHttpPool.canSend} (dtx's content type and trace context, a transaction's own headers unless they
 * frame or route the request), which is nearly all of them; https and the rest go through undici. It does what a
 * branch call needs and no more: keep-alive connections pooled per origin (as many as calls in flight), a request
 * written in one go, the reply's status and at most MAX_REPLY_READ bytes of its body (Content-Length, chunked, or
 * up to the end of the connection), one timer per call. A branch call's CPU through undici was about a fifth of the
 * coordinator's at C=50 (its request object, its queue, the WebAssembly parser and its callbacks); this is the same
 * exchange in a few allocations.
 *
 * Every new connection is checked by the branch-URL policy against the address it connects to (an IP literal at
 * once, a name through the policy's lookup, so no DNS answer can change between check and connection). Redirects
 * are replies like any other (a 3xx is a retryable error). A request on a connection reused from the pool that
 * the server had closed meanwhile (the close and the request crossed; nothing of a reply came) is sent once more on
 * a new connection: branch calls are idempotent by contract.
 */
export class PlainHttpPool {
  private readonly idle = new Map<string, Conn[]>();
  private readonly origins = new Map<string, Origin>();
  private readonly policy: UrlPolicy;
  readonly lookup: NetLookup;
  private closed = false;
  /** Closes idle connections past their time, while there are any (unref'd: it never keeps the process up). */
  private sweeper: NodeJS.Timeout | undefined;

  constructor(o: { policy?: UrlPolicy | undefined; lookup?: LookupAll | undefined } = {}) {
    this.policy = o.policy ?? DEFAULT_URL_POLICY;
    this.lookup = this.policy.lookupFor('http', o.lookup ?? systemLookup);
  }

  /**
   * True when {@link request} can send these headers as they are: a token name, a value without CR, LF or NUL, and
   * none of the names that frame or route the request (Host, Content-Length, Connection, …), which are left to
   * undici's handling of them (a Host of the caller's own, refusals).
   */
  static canSend(headers: Readonly<Record<string, string>>): boolean {
    for (const k in headers) {
      const v = headers[k];
      if (typeof v !== 'string' || !TOKEN.test(k) || BAD_VALUE.test(v) || RESERVED.has(k.toLowerCase())) return false;
    }
    return true;
  }

  request(req: PlainRequest, timeoutMs: number): Promise<TextReply> {
    return new Promise<TextReply>((resolve, reject) => {
      if (BAD_PATH.test(req.path)) {
        reject(new Error('invalid request path'));
        return;
      }
      let origin = this.origins.get(req.origin);
      if (origin === undefined) {
        try {
          origin = this.parseOrigin(req.origin);
        } catch (err) {
          reject(err as Error);
          return;
        }
      }
      if (origin.refused !== undefined) {
        reject(new UrlPolicyError(`refused by the branch-URL policy: ${origin.refused}`));
        return;
      }
      let head = `${req.method} ${req.path} HTTP/1.1\r\nhost: ${origin.hostHeader}\r\n`;
      const h = req.headers;
      for (const k in h) head += `${k}: ${h[k]}\r\n`;
      head += req.body === null ? '\r\n' : `content-length: ${req.body.byteLength}\r\n\r\n`;
      const ex = new Exchange(head, req.body, resolve, reject);
      ex.timer = setTimeout(() => ex.conn?.fail(new CallTimeoutError(timeoutMs)), timeoutMs);
      ex.timer.unref();
      this.send(req.origin, origin, ex);
    });
  }

  private parseOrigin(text: string): Origin {
    const u = new URL(text);
    if (u.protocol !== 'http:') throw new Error(`not a plain http origin: ${text}`);
    const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    const refused = isIP(host) === 0 ? undefined : this.policy.checkAddress('http', host, host);
    const origin: Origin = { host, port: u.port === '' ? 80 : Number(u.port), hostHeader: u.host, refused };
    if (this.origins.size >= 10_000) this.origins.clear(); // bounded: a cache, not a registry
    this.origins.set(text, origin);
    return origin;
  }

  /** On an idle connection of the origin if one is left, else on a new one. */
  send(key: string, origin: Origin, ex: Exchange): void {
    const list = this.idle.get(key);
    if (list !== undefined) {
      const now = Date.now();
      for (let c = list.pop(); c !== undefined; c = list.pop()) {
        if (c.expiresAt > now) {
          c.start(ex, true);
          return;
        }
        c.destroy();
      }
    }
    new Conn(this, key, origin).start(ex, false);
  }

  /** A connection whose exchange ended cleanly: back to its origin's idle list (or closed, after close()). */
  release(c: Conn): void {
    if (this.closed) {
      c.destroy();
      return;
    }
    let list = this.idle.get(c.key);
    if (list === undefined) {
      list = [];
      this.idle.set(c.key, list);
    }
    list.push(c);
    if (this.sweeper === undefined) {
      this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
      this.sweeper.unref();
    }
  }

  /** Idle connections whose time is up are closed (a burst leaves many that the next calls do not need). */
  private sweep(): void {
    const now = Date.now();
    for (const [key, list] of this.idle) {
      const keep = list.filter((c) => {
        if (c.expiresAt > now) return true;
        c.destroy();
        return false;
      });
      if (keep.length === 0) this.idle.delete(key);
      else if (keep.length !== list.length) this.idle.set(key, keep);
    }
    if (this.idle.size === 0) this.stopSweeping();
  }

  private stopSweeping(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /** An idle connection that closed or misbehaved leaves its list. */
  forget(c: Conn): void {
    const list = this.idle.get(c.key);
    if (list === undefined) return;
    const i = list.indexOf(c);
    if (i !== -1) list.splice(i, 1);
    if (list.length === 0) this.idle.delete(c.key);
  }

  /** Closes the idle connections; calls in flight end as they would, and their connections are closed then. */
  close(): void {
    this.closed = true;
    for (const list of this.idle.values()) for (const c of list) c.destroy();
    this.idle.clear();
    this.stopSweeping();
  }
}

/** One request and what has been read of its reply. */
class Exchange {
  timer: NodeJS.Timeout | undefined;
  conn: Conn | undefined;
  /** Bytes of a reply seen: a failure after any of them is never sent again. */
  got = 0;
  constructor(
    readonly head: string,
    readonly body: Uint8Array | null,
    readonly resolve: (r: TextReply) => void,
    readonly reject: (e: Error) => void,
  ) {}
}

enum Phase {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkEnd,
  Trailers,
  UntilClose,
}

/** A keep-alive connection and the parser of the reply it is reading. */
class Conn {
  private readonly socket: Socket;
  private ex: Exchange | undefined;
  private reused = false;
  expiresAt = 0;
  private dead = false;
  // the reply being read
  private phase = Phase.Head;
  /** Bytes of an incomplete header block, chunk-size line or trailer line. */
  private pending: Buffer | undefined;
  private status = 0;
  private keepAlive = true;
  private idleMs = IDLE_MS;
  /** Body bytes still to come (Length), or of the current chunk (ChunkData); CR LF bytes left (ChunkEnd). */
  private left = 0;
  private readonly body: Buffer[] = [];
  private size = 0;

  constructor(
    private readonly pool: PlainHttpPool,
    readonly key: string,
    private readonly origin: Origin,
  ) {
    this.socket = connect({ host: origin.host, port: origin.port, lookup: pool.lookup as never, noDelay: true });
    this.socket.on('data', (d: Buffer) => this.onData(d));
    this.socket.on('error', (e: Error) => this.onError(e));
    this.socket.on('end', () => this.onEnd());
    this.socket.on('close', () => this.onEnd());
  }

  start(ex: Exchange, reused: boolean): void {
    this.ex = ex;
    ex.conn = this;
    this.reused = reused;
    this.phase = Phase.Head;
    this.pending = undefined;
    this.status = 0;
    this.keepAlive = true;
    this.idleMs = IDLE_MS;
    this.body.length = 0;
    this.size = 0;
    const s = this.socket;
    if (ex.body === null) {
      s.write(ex.head, 'latin1');
    } else {
      s.cork();
      s.write(ex.head, 'latin1');
      s.write(ex.body);
      s.uncork();
    }
  }

  destroy(): void {
    this.dead = true;
    this.socket.destroy();
  }

  /** The call fails with `err` (its timer, a socket error, a bad reply); the connection is not used again. */
  fail(err: Error): void {
    const ex = this.ex;
    this.ex = undefined;
    if (!this.dead) {
      this.destroy();
      if (ex === undefined) this.pool.forget(this);
    }
    if (ex === undefined) return;
    clearTimeout(ex.timer);
    ex.reject(err);
  }

  private onError(err: Error): void {
    const code = (err as { code?: unknown }).code;
    if ((code === 'ECONNRESET' || code === 'EPIPE') && this.resend()) return;
    this.fail(err);
  }

  private onEnd(): void {
    const ex = this.ex;
    if (ex === undefined) {
      if (!this.dead) {
        this.dead = true;
        this.pool.forget(this);
      }
      return;
    }
    if (this.phase === Phase.UntilClose) {
      this.keepAlive = false;
      this.finish();
      return;
    }
    if (this.resend()) return;
    this.fail(new Error('other side closed'));
  }

  /**
   * A connection from the pool that the server closed while the request was on its way (nothing of a reply came):
   * the request goes once more, on another connection. False when that does not apply.
   */
  private resend(): boolean {
    const ex = this.ex;
    if (ex === undefined || !this.reused || ex.got > 0 || this.dead) return false;
    this.ex = undefined;
    this.destroy();
    this.pool.send(this.key, this.origin, ex);
    return true;
  }

  private onData(chunk: Buffer): void {
    const ex = this.ex;
    if (ex === undefined) {
      // bytes nobody asked for: the connection cannot be trusted for the next request
      this.fail(new ReplyProtocolError('data on an idle connection'));
      return;
    }
    ex.got += chunk.byteLength;
    let b = chunk;
    if (this.pending !== undefined) {
      b = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    const problem = this.parse(b);
    if (problem !== undefined) this.fail(new ReplyProtocolError(problem));
  }

  /**
   * Reads what `b` holds of the reply: ends the exchange when the reply is complete, keeps an incomplete line in
   * `pending` for the next bytes. The problem, when the bytes are no HTTP/1.1 reply.
   */
  private parse(b: Buffer): string | undefined {
    const len = b.byteLength;
    let p = 0;
    while (this.ex !== undefined) {
      const phase: Phase = this.phase;
      if (phase === Phase.Head) {
        const end = b.indexOf('\r\n\r\n', p, 'latin1');
        if (end === -1 || end - p > MAX_REPLY_HEADERS) {
          if (len - p > MAX_REPLY_HEADERS) return 'reply headers too long';
          this.pending = b.subarray(p);
          return undefined;
        }
        const problem = this.readHead(b.toString('latin1', p, end));
        if (problem !== undefined) return problem;
        p = end + 4;
      } else if (phase === Phase.Length || phase === Phase.ChunkData) {
        const n = Math.min(this.left, len - p);
        if (this.take(b, p, n)) return undefined;
        p += n;
        this.left -= n;
        if (this.left > 0) return undefined;
        if (phase === Phase.Length) {
          this.finish(p < len);
          return undefined;
        }
        this.phase = Phase.ChunkEnd;
        this.left = 2;
      } else if (phase === Phase.UntilClose) {
        this.take(b, p, len - p);
        return undefined;
      } else if (phase === Phase.ChunkEnd) {
        while (this.left > 0 && p < len) {
          if (b[p] !== (this.left === 2 ? 13 : 10)) return 'bad chunk end';
          p++;
          this.left--;
        }
        if (this.left > 0) return undefined;
        this.phase = Phase.ChunkSize;
      } else {
        // a chunk-size line, or a trailer line after the last chunk
        const eol = b.indexOf('\r\n', p, 'latin1');
        if (eol === -1) {
          if (len - p > 1024) return 'chunk line too long';
          this.pending = b.subarray(p);
          return undefined;
        }
        const line = b.toString('latin1', p, eol);
        p = eol + 2;
        if (phase === Phase.Trailers) {
          if (line === '') {
            this.finish(p < len);
            return undefined;
          }
        } else {
          const semi = line.indexOf(';');
          const hex = (semi === -1 ? line : line.slice(0, semi)).trim();
          if (!/^[0-9a-fA-F]{1,8}$/.test(hex)) return 'bad chunk size';
          const n = Number.parseInt(hex, 16);
          if (n === 0) this.phase = Phase.Trailers;
          else {
            this.phase = Phase.ChunkData;
            this.left = n;
          }
        }
      }
      // out of bytes: wait for more, unless the reply needs none (a body of length 0 after the head)
      if (p >= len && !(this.phase === Phase.Length && this.left === 0)) {
        if (this.phase === Phase.Head || this.phase === Phase.ChunkSize || this.phase === Phase.Trailers) {
          this.pending = undefined;
        }
        return undefined;
      }
    }
    return undefined;
  }

  /** Reads the status line and the framing headers; the problem, if the reply cannot be read. */
  private readHead(head: string): string | undefined {
    const lineEnd = head.indexOf('\r\n');
    const statusLine = lineEnd === -1 ? head : head.slice(0, lineEnd);
    if (!statusLine.startsWith('HTTP/1.') || statusLine.charCodeAt(8) !== 32) return 'bad status line';
    const minor = statusLine.charCodeAt(7);
    const status = Number(statusLine.slice(9, 12));
    if (!(status >= 100 && status <= 999) || (statusLine.length > 12 && statusLine.charCodeAt(12) !== 32)) {
      return 'bad status line';
    }
    if (status < 200) {
      if (status === 101) return 'the server switched protocols';
      return undefined; // an interim reply (100 Continue, 103): the real one follows, phase stays Head
    }
    this.status = status;
    this.keepAlive = minor === 49; // HTTP/1.1; an HTTP/1.0 reply ends its connection
    let length = -1;
    let chunked = false;
    let start = lineEnd === -1 ? head.length : lineEnd + 2;
    while (start < head.length) {
      let end = head.indexOf('\r\n', start);
      if (end === -1) end = head.length;
      const colon = head.indexOf(':', start);
      if (colon === -1 || colon > end) return 'bad header line';
      const name = head.slice(start, colon).toLowerCase();
      if (name === 'content-length') {
        const v = head.slice(colon + 1, end).trim();
        if (!/^\d{1,15}$/.test(v)) return 'bad content-length';
        const n = Number(v);
        if (length !== -1 && length !== n) return 'conflicting content-length';
        length = n;
      } else if (name === 'transfer-encoding') {
        const v = head
          .slice(colon + 1, end)
          .trim()
          .toLowerCase();
        chunked = v === 'chunked' || v.endsWith(',chunked') || v.endsWith(', chunked');
        if (!chunked) this.keepAlive = false; // another coding last: the body runs to the close
      } else if (name === 'connection') {
        if (/(^|,)\s*close\s*(,|$)/i.test(head.slice(colon + 1, end))) this.keepAlive = false;
      } else if (name === 'keep-alive') {
        const m = /timeout\s*=\s*(\d+)/i.exec(head.slice(colon + 1, end));
        if (m !== null) this.idleMs = Math.min(IDLE_MS, Number(m[1]) * 1000 - IDLE_MARGIN_MS);
      }
      start = end + 2;
    }
    if (status === 204 || status === 304) {
      this.phase = Phase.Length;
      this.left = 0;
    } else if (chunked) {
      if (length !== -1) this.keepAlive = false; // both framings: chunked wins, and the connection is not trusted
      this.phase = Phase.ChunkSize;
    } else if (length !== -1) {
      this.phase = Phase.Length;
      this.left = length;
    } else {
      this.phase = Phase.UntilClose;
      this.keepAlive = false;
    }
    return undefined;
  }

  /** Keeps body bytes up to MAX_REPLY_READ; true when the reply was cut there (the call has its answer). */
  private take(b: Buffer, p: number, n: number): boolean {
    if (n === 0) return false;
    const room = MAX_REPLY_READ - this.size;
    if (n >= room) {
      this.body.push(b.subarray(p, p + room));
      this.size += room;
      this.keepAlive = false; // the rest is not read: the connection is dropped instead of drained
      this.finish();
      return true;
    }
    this.body.push(b.subarray(p, p + n));
    this.size += n;
    return false;
  }

  private finish(extra = false): void {
    const ex = this.ex;
    if (ex === undefined) return;
    this.ex = undefined;
    clearTimeout(ex.timer);
    const parts = this.body;
    const text =
      parts.length === 0 ? '' : parts.length === 1 ? parts[0]!.toString('utf8') : Buffer.concat(parts).toString('utf8');
    parts.length = 0;
    if (this.keepAlive && !extra && this.idleMs > 0 && !this.dead) {
      this.expiresAt = Date.now() + this.idleMs;
      this.pool.release(this);
    } else if (!this.dead) this.destroy();
    ex.resolve({ statusCode: this.status, body: text });
  }
}
