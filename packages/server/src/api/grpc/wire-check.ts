/**
 * A pass over a request's protobuf bytes before they are decoded, driven by the message's descriptor: every
 * string field (map keys and values included) must be valid UTF-8, every known field must come with its wire
 * type, and every length must fit. protobufjs checks none of this: it decodes invalid UTF-8 into lone surrogates
 * or other characters without a word, and reads a known field by its declared type whatever wire type it came
 * with, so only the raw bytes can tell.
 *
 * @module
 */
import { isUtf8 } from 'node:buffer';
import type { PackageDefinition } from '@grpc/proto-loader';
import { InputError } from '../../core/errors.js';

/** The parts of a descriptor (`google.protobuf.DescriptorProto`, as proto-loader gives it) read here. */
interface FieldDescriptor {
  name: string;
  number: number;
  label: string;
  type: string;
  typeName: string;
}
interface MessageDescriptor {
  name: string;
  field: FieldDescriptor[];
  nestedType: MessageDescriptor[];
  options: { mapEntry?: boolean } | null;
}

type Kind = 'string' | 'message' | 'other';

interface FieldRule {
  /** The field's name in messages: `TransOptions.BranchHeaders value`. */
  path: string;
  kind: Kind;
  wireType: number;
  /** A repeated scalar, which may also arrive packed (length-delimited). */
  packable: boolean;
  message?: MessageRule;
}

/** The fields of a message by number. */
type MessageRule = Map<number, FieldRule>;

/** A check of one message type's bytes: throws an InputError naming the field. */
export type WireCheck = (bytes: Uint8Array) => void;

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const SGROUP = 3;
const EGROUP = 4;
const I32 = 5;
const WIRE_TYPE_NAMES = ['varint', '64-bit', 'length-delimited', 'start group', 'end group', '32-bit'];

function wireTypeOf(type: string): number {
  switch (type) {
    case 'TYPE_DOUBLE':
    case 'TYPE_FIXED64':
    case 'TYPE_SFIXED64':
      return I64;
    case 'TYPE_FLOAT':
    case 'TYPE_FIXED32':
    case 'TYPE_SFIXED32':
      return I32;
    case 'TYPE_STRING':
    case 'TYPE_BYTES':
    case 'TYPE_MESSAGE':
      return LEN;
    case 'TYPE_GROUP':
      return SGROUP;
    default:
      return VARINT; // the integer types, bool, enum
  }
}

/** Deepest nesting of unknown groups skipped before the message is refused. */
const MAX_GROUP_DEPTH = 32;

/**
 * The check of the message `typeName` (as a method's `requestType` names it, e.g. `DtmRequest`) of `pkg`,
 * built once from the descriptors.
 */
export function wireCheckOf(pkg: PackageDefinition, scope: string, typeName: string): WireCheck {
  const rules = new Map<string, MessageRule>();

  const descriptorOf = (full: string): MessageDescriptor | undefined => {
    const def = pkg[full] as { type?: MessageDescriptor } | undefined;
    return def?.type && Array.isArray(def.type.field) ? def.type : undefined;
  };
  /** Protobuf's scoping: the innermost enclosing scope first, then any unique match by simple name. */
  const resolve = (name: string, from: string): string => {
    const n = name.replace(/^\./, '');
    if (descriptorOf(n) && name.startsWith('.')) return n;
    for (let s = from; s !== ''; s = s.includes('.') ? s.slice(0, s.lastIndexOf('.')) : '') {
      if (descriptorOf(`${s}.${n}`)) return `${s}.${n}`;
    }
    if (descriptorOf(n)) return n;
    const matches = Object.keys(pkg).filter((k) => k.endsWith(`.${n}`) && descriptorOf(k));
    if (matches.length === 1 && matches[0] !== undefined) return matches[0];
    throw new Error(`cannot resolve message type '${name}' from '${from}'`);
  };

  const ruleOf = (d: MessageDescriptor, full: string, prefix: string, mapEntry: boolean): MessageRule => {
    const key = `${full}\0${prefix}`;
    const known = rules.get(key);
    if (known) return known;
    const rule: MessageRule = new Map();
    rules.set(key, rule);
    for (const f of d.field) {
      const path = mapEntry ? `${prefix} ${f.name}` : prefix === '' ? f.name : `${prefix}.${f.name}`;
      const kind: Kind = f.type === 'TYPE_STRING' ? 'string' : f.type === 'TYPE_MESSAGE' ? 'message' : 'other';
      const wireType = wireTypeOf(f.type);
      const r: FieldRule = {
        path,
        kind,
        wireType,
        packable: f.label === 'LABEL_REPEATED' && wireType !== LEN && wireType !== SGROUP,
      };
      if (kind === 'message') {
        const nested = d.nestedType.find((t) => t.name === f.typeName);
        if (nested) {
          r.message = ruleOf(nested, `${full}.${nested.name}`, path, nested.options?.mapEntry === true);
        } else {
          const target = resolve(f.typeName, full);
          const td = descriptorOf(target);
          if (td) r.message = ruleOf(td, target, path, false);
        }
      }
      rule.set(f.number, r);
    }
    return rule;
  };

  const full = resolve(typeName, scope);
  const d = descriptorOf(full);
  if (!d) throw new Error(`no descriptor for ${full}`);
  const top = ruleOf(d, full, '', false);
  return (bytes) => checkMessage(bytes, 0, bytes.length, top, '');
}

/** A structural fault of the bytes, named by where it was found. */
function malformed(path: string, problem: string): InputError {
  return new InputError(path, problem);
}

/** Reads a varint at `p`; returns [value (exact up to 2^53), next position]. */
function varint(b: Uint8Array, p: number, end: number, path: string): [number, number] {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (p >= end) throw malformed(path, 'truncated varint');
    const byte = b[p++] as number;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, p];
    scale *= 128;
  }
  throw malformed(path, 'varint longer than 10 bytes');
}

function checkMessage(b: Uint8Array, start: number, end: number, rule: MessageRule, at: string): void {
  let p = start;
  while (p < end) {
    let tag: number;
    [tag, p] = varint(b, p, end, at);
    p = checkField(b, p, end, tag, rule, at, 0);
  }
}

/** Checks one field whose tag was read; returns the position after it. */
function checkField(
  b: Uint8Array,
  start: number,
  end: number,
  tag: number,
  rule: MessageRule | undefined,
  at: string,
  depth: number,
): number {
  const number = Math.floor(tag / 8);
  const wireType = tag % 8;
  const f = rule?.get(number);
  const path = f?.path ?? (at === '' ? `field ${number}` : `${at} field ${number}`);
  if (number === 0 || number > 0x1fffffff) throw malformed(path, `invalid field number ${number}`);
  if (f && wireType !== f.wireType && !(f.packable && wireType === LEN)) {
    throw malformed(
      path,
      `sent with wire type ${WIRE_TYPE_NAMES[wireType] ?? wireType}, expected ${WIRE_TYPE_NAMES[f.wireType]}`,
    );
  }
  let p = start;
  switch (wireType) {
    case VARINT:
      return varint(b, p, end, path)[1];
    case I64:
      if (end - p < 8) throw malformed(path, 'truncated 64-bit value');
      return p + 8;
    case I32:
      if (end - p < 4) throw malformed(path, 'truncated 32-bit value');
      return p + 4;
    case LEN: {
      let len: number;
      [len, p] = varint(b, p, end, path);
      if (len > end - p) throw malformed(path, `length ${len} runs past the end of the message`);
      const stop = p + len;
      if (f?.kind === 'string' && !isUtf8(b.subarray(p, stop))) {
        throw new InputError(path, 'not valid UTF-8 (a protobuf string must be UTF-8 text)');
      }
      if (f?.kind === 'message' && f.message) checkMessage(b, p, stop, f.message, f.path);
      return stop;
    }
    case SGROUP: {
      if (depth >= MAX_GROUP_DEPTH) throw malformed(path, `groups nested deeper than ${MAX_GROUP_DEPTH}`);
      for (;;) {
        let inner: number;
        [inner, p] = varint(b, p, end, path);
        if (inner % 8 === EGROUP) {
          if (Math.floor(inner / 8) !== number) throw malformed(path, 'mismatched end of group');
          return p;
        }
        p = checkField(b, p, end, inner, undefined, path, depth + 1);
      }
    }
    default:
      throw malformed(path, wireType === EGROUP ? 'end of group without a start' : `invalid wire type ${wireType}`);
  }
}
