/**
 * Local gid generation. DTM's `newGid` returns a 22-character "short UUID" (a random UUID v4 in base57,
 * spec §12.1); any unique string of at most 128 characters works, so the SDK makes the same kind of id itself
 * and saves a round trip. `DtxClient.newGid()` asks the coordinator instead.
 */
import { randomUUID } from 'node:crypto';

const ALPHABET = '23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const LENGTH = 22;

/** A new random gid: 22 characters of base57, like the coordinator's `newGid`. */
export function generateGid(): string {
  let n = BigInt(`0x${randomUUID().replaceAll('-', '')}`);
  const base = BigInt(ALPHABET.length);
  let out = '';
  while (n > 0n) {
    out = ALPHABET.charAt(Number(n % base)) + out;
    n /= base;
  }
  return out.padStart(LENGTH, ALPHABET.charAt(0));
}
