import { Command } from 'ioredis';

/** An argument of a command written by {@link encodeCommand}: text (sent as UTF-8), a number (its decimal text) or bytes. */
export type RespArg = string | number | Uint8Array;

const CRLF = 0x0a0d; // '\r\n' as a little-endian uint16

/**
 * The RESP request of a command: `*<n>\r\n` and each of the name and the arguments as `$<byte length>\r\n<bytes>\r\n`,
 * written into one Buffer. The bytes are those ioredis writes for the same command, built without its per-argument
 * string concatenations, and a Buffer the socket takes without converting a string.
 */
export function encodeCommand(name: string, args: readonly RespArg[]): Buffer {
  const n = args.length;
  const lens = new Array<number>(n);
  const texts = new Array<string | undefined>(n);
  let size = header(n + 1) + bulk(name.length);
  for (let i = 0; i < n; i++) {
    const a = args[i]!;
    let len: number;
    if (typeof a === 'string') {
      len = Buffer.byteLength(a);
      texts[i] = a;
    } else if (typeof a === 'number') {
      const t = String(a);
      len = t.length;
      texts[i] = t;
    } else len = a.byteLength;
    lens[i] = len;
    size += bulk(len);
  }
  const out = Buffer.allocUnsafe(size);
  let pos = out.write(`*${n + 1}\r\n$${name.length}\r\n${name}\r\n`, 0, 'latin1');
  for (let i = 0; i < n; i++) {
    const len = lens[i]!;
    out[pos] = 0x24; // '$'
    pos = writeDigits(out, pos + 1, len);
    out.writeUInt16LE(CRLF, pos);
    pos += 2;
    const t = texts[i];
    if (t !== undefined) pos += out.write(t, pos, 'utf8');
    else {
      out.set(args[i] as Uint8Array, pos);
      pos += len;
    }
    out.writeUInt16LE(CRLF, pos);
    pos += 2;
  }
  return out;
}

/** Bytes of `*<count>\r\n`. */
function header(count: number): number {
  return 3 + digits(count);
}

/** Bytes of `$<len>\r\n<len bytes>\r\n`. */
function bulk(len: number): number {
  return 5 + digits(len) + len;
}

/** Write the decimal digits of `v` (a non-negative integer) at `pos`; returns the position after them. */
export function writeDigits(out: Buffer, pos: number, v: number): number {
  const end = pos + digits(v);
  for (let p = end - 1; p >= pos; p--) {
    out[p] = 0x30 + (v % 10);
    v = Math.floor(v / 10);
  }
  return end;
}

/** How many decimal digits `v` (a non-negative integer) has. */
export function digits(v: number): number {
  let d = 1;
  while (v >= 10) {
    v = Math.floor(v / 10);
    d++;
  }
  return d;
}

/**
 * An ioredis command whose request was encoded beforehand ({@link encodeCommand}): ioredis queues it, writes it,
 * matches its reply and resolves it as any other, but writes these bytes instead of encoding its arguments again.
 * Its `args` are left empty (they are only in the bytes), so ioredis' debug log shows the name alone.
 */
export class EncodedCommand extends Command {
  private readonly bytes: Buffer;

  /** `replyEncoding` `'utf8'` resolves bulk replies as strings, `null` as Buffers (ioredis' `*Buffer` commands). */
  constructor(name: string, args: readonly RespArg[], replyEncoding: 'utf8' | null) {
    super(name, [], { replyEncoding });
    this.bytes = encodeCommand(name, args);
  }

  override toWritable(): Buffer {
    return this.bytes;
  }
}
