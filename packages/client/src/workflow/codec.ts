/**
 * How a workflow's input, output and local step results become bytes: they are recorded by the coordinator as
 * bytes (base64 on the wire) and decoded again on replay.
 *
 * @module
 */
import { DtxError } from '../errors.js';

/** Encodes values of type `T` to bytes and back. */
export interface WorkflowCodec<T> {
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

/** A codec by name — `json` (the default), `bytes` (a `Uint8Array` as it is), `text` (UTF-8) — or your own. */
export type CodecSpec<T> = 'json' | 'bytes' | 'text' | WorkflowCodec<T>;

const utf8 = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();

/** JSON text as UTF-8; `undefined` is the empty byte string (and decodes back to `undefined`). */
export const jsonCodec: WorkflowCodec<unknown> = {
  encode(value) {
    if (value === undefined) return new Uint8Array(0);
    const text = JSON.stringify(value);
    if (text === undefined) throw new DtxError(`a value of type ${typeof value} cannot be encoded as JSON`);
    return utf8Encoder.encode(text);
  },
  decode(bytes) {
    if (bytes.length === 0) return undefined;
    const text = utf8.decode(bytes);
    try {
      return JSON.parse(text);
    } catch (cause) {
      throw new DtxError(`recorded bytes are not JSON: ${text.slice(0, 200)}`, { cause });
    }
  },
};

/** Bytes as they are. */
export const bytesCodec: WorkflowCodec<Uint8Array> = {
  encode(value) {
    if (!(value instanceof Uint8Array)) throw new DtxError('the bytes codec encodes a Uint8Array');
    return value;
  },
  decode: (bytes) => bytes,
};

/** A string as UTF-8. */
export const textCodec: WorkflowCodec<string> = {
  encode(value) {
    if (typeof value !== 'string') throw new DtxError('the text codec encodes a string');
    return utf8Encoder.encode(value);
  },
  decode: (bytes) => utf8.decode(bytes),
};

/** The codec a {@link CodecSpec} names; default JSON. */
export function codecOf<T>(spec: CodecSpec<T> | undefined): WorkflowCodec<T> {
  if (spec === undefined || spec === 'json') return jsonCodec as WorkflowCodec<T>;
  if (spec === 'bytes') return bytesCodec as unknown as WorkflowCodec<T>;
  if (spec === 'text') return textCodec as unknown as WorkflowCodec<T>;
  if (typeof spec.encode !== 'function' || typeof spec.decode !== 'function') {
    throw new DtxError("a codec is 'json', 'bytes', 'text' or an object with encode and decode");
  }
  return spec;
}

/** UTF-8 text of bytes. */
export function textOf(bytes: Uint8Array): string {
  return utf8.decode(bytes);
}

/** UTF-8 bytes of text. */
export function bytesOf(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}
