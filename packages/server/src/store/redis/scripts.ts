/**
 * The Lua scripts of the Redis store, one file each under `lua/` (each file is headed by the KEYS and ARGV it
 * takes and what it returns).
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

/**
 * Every script, by file name without `.lua`. Each is called with its number of KEYS first (some take extra KEYS
 * when every key of the deployment shares one hash slot).
 */
export const SCRIPTS = [
  'reserve',
  'save-new',
  'insert-branches',
  'update-branches',
  'change-status',
  'touch-cron-time',
  'record-failure',
  'claim-stuck-alert',
  'claim-due',
  'lease',
  'claim-reset',
  'reset-cron',
  'reset-trans-cron-time',
  'delete-finished',
  'index-cas',
  'index-finish',
  'index-missing',
  'index-forget',
  'branches',
  'kv-create',
  'kv-update',
  'kv-delete',
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
    if (existsSync(new URL('save-new.lua', dir))) return fileURLToPath(dir);
  }
  throw new Error(
    `the Redis store's Lua scripts are missing: looked in ${CANDIDATE_DIRS.map((d) => fileURLToPath(d)).join(' and ')}`,
  );
}

export interface LuaScript {
  lua: string;
  /** SHA1 of the source, for EVALSHA. */
  sha: string;
}

/** Read every script's source. */
export function loadScripts(): Record<ScriptName, LuaScript> {
  const dir = luaDir();
  const out = {} as Record<ScriptName, LuaScript>;
  for (const name of SCRIPTS) {
    const lua = readFileSync(`${dir}/${name}.lua`, 'utf8');
    out[name] = { lua, sha: createHash('sha1').update(lua).digest('hex') };
  }
  return out;
}

/**
 * Pack values into one argument, each as `<byte length>:<bytes>` (the scripts unpack it with string.find/sub). A
 * command with a few packed arguments costs ioredis far less than one with dozens of small ones.
 */
export function pack(values: readonly (string | Uint8Array)[]): Buffer {
  const lens = new Array<number>(values.length);
  let size = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const n = typeof v === 'string' ? Buffer.byteLength(v) : v.byteLength;
    lens[i] = n;
    size += n + String(n).length + 1;
  }
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    pos += out.write(String(lens[i]), pos, 'latin1');
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
