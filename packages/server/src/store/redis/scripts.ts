/**
 * The Lua scripts of the Redis store, one file each under `lua/`, named `<name>.<number of KEYS>.lua` (each file is
 * headed by the KEYS and ARGV it takes and what it returns), with shared fragments under `lua/include/` pulled in by
 * `--@include <fragment>` lines (see the README).
 *
 * The .lua files are not compiled: `tsc -b` leaves them in `src/store/redis/lua/`, and the compiled module
 * (`dist/src/store/redis/scripts.js`) reads them from there, relative to its own URL. A `lua/` folder next to
 * the module wins when present (running from `src/` directly, or a bundle that copies the folder).
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../../util/error-message.js';
import { digits, writeDigits } from './resp.js';

/**
 * Every script, by file name without `.lua`: `<name>.<number of KEYS>`. The one-slot forms of four scripts (every
 * key of the deployment in one hash slot) take the index keys too and are files of their own.
 */
export const SCRIPTS = [
  'reserve.3',
  'save-new.1',
  'save-new.5',
  'insert-branches.1',
  'update-branches.1',
  'change-status.1',
  'change-status.3',
  'touch-cron-time.1',
  'touch-cron-time.2',
  'record-failure.1',
  'record-failure.2',
  'claim-stuck-alert.1',
  'claim-due.1',
  'lease.1',
  'claim-reset.1',
  'reset-cron.1',
  'reset-trans-cron-time.1',
  'delete-finished.1',
  'index-cas.1',
  'index-finish.2',
  'index-missing.3',
  'index-forget.2',
  'branches.1',
  'kv-create.3',
  'kv-update.1',
  'kv-delete.2',
] as const;

export type ScriptName = (typeof SCRIPTS)[number];

const CANDIDATE_DIRS = [
  new URL('./lua/', import.meta.url),
  // dist/src/store/redis/ → the package root → src/store/redis/lua/
  new URL('../../../../src/store/redis/lua/', import.meta.url),
];

/** The folder the .lua files are read from. */
export function luaDir(): string {
  for (const dir of CANDIDATE_DIRS) {
    if (existsSync(new URL('save-new.1.lua', dir))) return fileURLToPath(dir);
  }
  throw new Error(
    `the Redis store's Lua scripts are missing: looked in ${CANDIDATE_DIRS.map((d) => fileURLToPath(d)).join(' and ')}`,
  );
}

export interface LuaScript {
  /** The source with its includes resolved: what EVAL sends. */
  lua: string;
  /** SHA1 of {@link lua}, for EVALSHA. */
  sha: string;
  /** How many KEYS the script takes (from its file name). */
  keys: number;
}

/** The number of KEYS a script's name says (`change-status.3` → 3). */
export function keyCountOf(name: string): number {
  const m = /^[a-z][a-z0-9-]*\.(\d+)$/.exec(name);
  if (!m) throw new Error(`Redis script '${name}': its file name must be <name>.<number of KEYS>.lua`);
  return Number(m[1]);
}

/** A `--@include <fragment>` line. */
const INCLUDE = /^--@include[ \t]+(\S+)[ \t]*$/gm;

/**
 * The source of a script with every `--@include <fragment>` line replaced by the fragment (`include/<fragment>.lua`,
 * read with `read`), itself resolved: each fragment at most once per script (a later include of one already in is
 * dropped), an include cycle or a fragment `read` cannot give is an error naming the script and the chain.
 */
export function resolveIncludes(script: string, source: string, read: (fragment: string) => string): string {
  const included = new Set<string>();
  const expand = (text: string, chain: string[]): string =>
    text.replace(INCLUDE, (_line, fragment: string) => {
      if (chain.includes(fragment)) {
        throw new Error(`Redis script '${script}': include cycle ${[...chain, fragment].join(' -> ')}`);
      }
      if (included.has(fragment)) return `-- (${fragment}: included above)`;
      let body: string;
      try {
        body = read(fragment);
      } catch (err) {
        throw new Error(
          `Redis script '${script}': cannot include '${fragment}'${chain.length > 0 ? ` (from ${chain.join(' -> ')})` : ''}: ${errorMessage(err)}`,
        );
      }
      const resolved = expand(body, [...chain, fragment]).replace(/\n$/, '');
      included.add(fragment);
      return resolved;
    });
  return expand(source, []);
}

/** Read every script's source, its includes resolved. */
export function loadScripts(dir = luaDir()): Record<ScriptName, LuaScript> {
  const out = {} as Record<ScriptName, LuaScript>;
  const read = (fragment: string) => {
    if (!/^[a-z][a-z0-9-]*$/.test(fragment)) throw new Error('not a fragment name');
    return readFileSync(`${dir}/include/${fragment}.lua`, 'utf8');
  };
  for (const name of SCRIPTS) {
    const lua = resolveIncludes(name, readFileSync(`${dir}/${name}.lua`, 'utf8'), read);
    out[name] = { lua, sha: createHash('sha1').update(lua).digest('hex'), keys: keyCountOf(name) };
  }
  return out;
}

/**
 * Pack values into one argument, each as `<byte length>:<bytes>` (the scripts unpack it with string.find/sub). A
 * command with a few packed arguments costs ioredis far less than one with dozens of small ones. Text values give
 * a string (one concatenation; ioredis encodes the command once), any bytes among them a Buffer.
 */
export function pack(values: readonly (string | Uint8Array)[]): string | Buffer {
  let text = true;
  for (let i = 0; i < values.length; i++) {
    if (typeof values[i] !== 'string') {
      text = false;
      break;
    }
  }
  if (text) {
    let out = '';
    for (let i = 0; i < values.length; i++) {
      const v = values[i] as string;
      out += `${Buffer.byteLength(v)}:${v}`;
    }
    return out;
  }
  const lens = new Array<number>(values.length);
  let size = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const n = typeof v === 'string' ? Buffer.byteLength(v) : v.byteLength;
    lens[i] = n;
    size += n + digits(n) + 1;
  }
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    pos = writeDigits(out, pos, lens[i]!);
    out[pos++] = 0x3a; // ':'
    if (typeof v === 'string') pos += out.write(v, pos, 'utf8');
    else {
      out.set(v, pos);
      pos += v.byteLength;
    }
  }
  return out;
}

/** The values of a {@link pack}ed buffer, as views into it. */
export function unpack(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < b.length) {
    const colon = b.indexOf(0x3a, pos);
    const len = Number(b.toString('latin1', pos, colon));
    out.push(b.subarray(colon + 1, colon + 1 + len));
    pos = colon + 1 + len;
  }
  return out;
}
