/**
 * Password hashes compatible with the tutorial's `common/cryptx`: hex(scrypt(password, salt, N=32768, r=8, p=1,
 * keyLen=32)), so users registered by the original log in here.
 *
 * @module
 */
import { scrypt } from 'node:crypto';

/** scrypt at N=32768, r=8 needs 32 MiB of memory (128·N·r): Node's default limit is exactly that and too small. */
const MAX_MEM = 64 * 1024 * 1024;

/** The hex scrypt hash of `password` with `salt`, as the original stores it in `user.password`. */
export function passwordEncrypt(salt: string, password: string): Promise<string> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, 32, { N: 32768, r: 8, p: 1, maxmem: MAX_MEM }, (err, key) =>
      err ? reject(err) : resolve(key.toString('hex')),
    );
  });
}
