import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Test certificates made by the openssl CLI in a directory of the test's: a CA, and certificates it signs. */
const DAYS = '2';

const ssl = (dir: string, ...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

/** A self-signed CA in `dir`: `<name>.key` and `<name>.pem`. */
export function makeCa(dir: string, name: string, cn: string): void {
  ssl(
    dir,
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.pem`,
    '-days',
    DAYS,
    '-subj',
    `/CN=${cn}`,
  );
}

/**
 * A certificate `<name>.pem` with its key `<name>.key` in `dir`, signed by the CA `<ca>.pem` / `<ca>.key` there;
 * `ext` is its X.509 v3 extensions, e.g. `subjectAltName=IP:127.0.0.1` or `extendedKeyUsage=clientAuth`.
 */
export function issueCert(dir: string, o: { name: string; cn: string; ca: string; ext: string }): void {
  writeFileSync(join(dir, `${o.name}.ext`), `${o.ext}\n`);
  ssl(
    dir,
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    `${o.name}.key`,
    '-out',
    `${o.name}.csr`,
    '-subj',
    `/CN=${o.cn}`,
  );
  ssl(
    dir,
    'x509',
    '-req',
    '-in',
    `${o.name}.csr`,
    '-CA',
    `${o.ca}.pem`,
    '-CAkey',
    `${o.ca}.key`,
    '-CAcreateserial',
    '-out',
    `${o.name}.pem`,
    '-days',
    DAYS,
    '-extfile',
    `${o.name}.ext`,
  );
}
