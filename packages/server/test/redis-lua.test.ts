/**
 * The Redis store's Lua files: the include step of scripts.ts (fragments under lua/include/ pulled in by
 * `--@include <fragment>` lines) and the `<name>.<number of KEYS>.lua` naming, checked on the real files.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { keyCountOf, loadScripts, luaDir, pack, resolveIncludes, SCRIPTS, unpack } from '../src/store/redis/scripts.js';

describe('Redis Lua: the include step', () => {
  const fragments: Record<string, string> = {
    a: 'local function a() return 1 end\n',
    b: '--@include a\nlocal function b() return a() + 1 end\n',
    c: '--@include a\n--@include b\nlocal function c() return b() end\n',
    loop1: '--@include loop2\n',
    loop2: '--@include loop1\n',
  };
  const read = (f: string) => {
    const text = fragments[f];
    if (text === undefined) throw new Error(`no fragment ${f}`);
    return text;
  };

  it('replaces an include line by the fragment, itself resolved, each fragment once', () => {
    const out = resolveIncludes('s.1', '-- head\n--@include c\n--@include b\nreturn c()\n', read);
    assert.equal((out.match(/local function a\(/g) ?? []).length, 1);
    assert.equal((out.match(/local function b\(/g) ?? []).length, 1);
    assert.equal((out.match(/local function c\(/g) ?? []).length, 1);
    assert.doesNotMatch(out, /--@include/);
    // definitions come before their use: a, then b, then c, then the script's own code
    const at = (s: string) => out.indexOf(s);
    assert.ok(
      at('function a(') < at('function b(') &&
        at('function b(') < at('function c(') &&
        at('function c(') < at('return c()'),
    );
    assert.ok(out.startsWith('-- head\n'));
  });

  it('an unknown fragment is an error naming the script, the fragment and the chain', () => {
    assert.throws(
      () => resolveIncludes('x.1', '--@include b\n--@include nope\n', read),
      /Redis script 'x\.1': cannot include 'nope'/,
    );
    assert.throws(
      () => resolveIncludes('x.1', '--@include c\n', (f) => (f === 'c' ? '--@include gone\n' : read(f))),
      /cannot include 'gone' \(from c\)/,
    );
  });

  it('an include cycle is an error naming it', () => {
    assert.throws(() => resolveIncludes('x.1', '--@include loop1\n', read), /include cycle loop1 -> loop2 -> loop1/);
  });

  it('a name without its key count is refused', () => {
    assert.equal(keyCountOf('save-new.5'), 5);
    assert.throws(() => keyCountOf('save-new'), /<name>\.<number of KEYS>\.lua/);
  });
});

describe('Redis Lua: the scripts as loaded', () => {
  const dir = luaDir();
  const scripts = loadScripts();

  it('every file under lua/ is a listed script and every listed script has its file', () => {
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.lua'))
      .map((f) => f.slice(0, -'.lua'.length))
      .sort();
    assert.deepEqual(files, [...SCRIPTS].sort());
  });

  it('every fragment under lua/include/ is included by some script', () => {
    const used = new Set<string>();
    const collect = (text: string) => {
      for (const m of text.matchAll(/^--@include[ \t]+(\S+)/gm)) {
        if (!used.has(m[1]!)) {
          used.add(m[1]!);
          collect(readFileSync(`${dir}/include/${m[1]}.lua`, 'utf8'));
        }
      }
    };
    for (const name of SCRIPTS) collect(readFileSync(`${dir}/${name}.lua`, 'utf8'));
    const fragments = readdirSync(`${dir}/include`).map((f) => f.slice(0, -'.lua'.length));
    assert.deepEqual(
      fragments.filter((f) => !used.has(f)),
      [],
    );
  });

  for (const name of SCRIPTS) {
    it(`${name}: resolved, no function defined twice, and it uses exactly the KEYS its name says`, () => {
      const { lua, keys } = scripts[name];
      assert.doesNotMatch(lua, /^--@include/m);
      const defs = [...lua.matchAll(/local function ([A-Za-z_]\w*)/g)].map((m) => m[1]!);
      assert.deepEqual(
        defs.filter((d, i) => defs.indexOf(d) !== i),
        [],
      );
      // the highest KEYS[n] the resolved source reads is the count (the scripts address their keys by number)
      const used = [...lua.matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1]));
      assert.equal(Math.max(...used), keys);
      assert.doesNotMatch(lua, /#KEYS/, 'a script takes a fixed number of KEYS; its one-slot form is its own file');
    });
  }
});

describe('Redis Lua: packed arguments', () => {
  it('text packs to a string, anything with bytes to a Buffer; lengths count UTF-8 bytes either way', () => {
    const values = ['gid-1', '', 'dé€😀', '12:34'];
    const text = pack(values);
    assert.equal(typeof text, 'string');
    assert.equal(text, '5:gid-10:10:dé€😀5:12:34');
    const bytes = Uint8Array.from([0xff, 0x00, 0x3a]);
    const mixed = pack([...values, bytes]);
    assert.ok(Buffer.isBuffer(mixed));
    // the same bytes on the wire: ioredis encodes a string argument as UTF-8
    assert.deepEqual(mixed.subarray(0, Buffer.byteLength(text as string)), Buffer.from(text as string, 'utf8'));
    assert.deepEqual(
      unpack(mixed).map((b) => Buffer.from(b)),
      [...values.map((v) => Buffer.from(v, 'utf8')), Buffer.from(bytes)],
    );
    // a packed string nested in a Buffer pack, as the branch rows are
    const nested = pack([text, bytes]) as Buffer;
    assert.deepEqual(unpack(unpack(nested)[0]!).map(String), values);
  });

  it('writes lengths of every number of digits in a Buffer pack', () => {
    const values = [0, 9, 10, 99, 100, 1234, 70_000].map((n) => Buffer.alloc(n, n % 251));
    const packed = pack([...values, 'é'.repeat(5)]) as Buffer;
    assert.equal(packed.subarray(0, 6).toString('latin1'), '0:9:\x09\x09');
    assert.equal(packed.length, values.reduce((n, v) => n + String(v.length).length + 1 + v.length, 0) + 3 + 10);
    assert.deepEqual(
      unpack(packed).map((b) => Buffer.from(b)),
      [...values, Buffer.from('é'.repeat(5))],
    );
  });
});
