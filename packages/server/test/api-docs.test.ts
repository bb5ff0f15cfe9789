/**
 * `npm run docs`: typedoc (tools/docs, on its own TypeScript 5.9) builds the API reference of @dtx/client,
 * @dtx/protocol and @dtx/server from their TSDoc with warnings as errors — an unresolved `{@link}` fails it.
 * Built into a temporary directory instead of docs/api.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ROOT, run } from './support/packed.js';

describe('API docs (typedoc)', () => {
  const out = mkdtempSync(join(tmpdir(), 'dtx-api-docs-'));
  after(() => rmSync(out, { recursive: true, force: true }));

  it('build without a warning, with a page per package and the main entries', { timeout: 330_000 }, async () => {
    const docs = join(ROOT, 'tools', 'docs');
    // typedoc as tools/docs resolves it (npm nests it there, next to its TypeScript 5.9)
    const manifest = createRequire(join(docs, 'package.json')).resolve('typedoc/package.json');
    const bin = (JSON.parse(readFileSync(manifest, 'utf8')) as { bin: Record<string, string> }).bin.typedoc!;
    const typedoc = join(dirname(manifest), bin);
    // killed before the test's own timeout, so that nothing writes into `out` while after() removes it
    const r = await run(process.execPath, [typedoc, '--options', 'typedoc.json', '--out', out], {
      cwd: docs,
      timeoutMs: 300_000,
    });
    const ts = createRequire(typedoc).resolve('typescript/package.json');
    assert.match((JSON.parse(readFileSync(ts, 'utf8')) as { version: string }).version, /^5\.9\./);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.doesNotMatch(r.stdout + r.stderr, /warning|error/i);
    for (const page of [
      '_dtx_client.html',
      '_dtx_protocol.html',
      '_dtx_server.index.html',
      '_dtx_server.discovery.html',
    ]) {
      assert.ok(existsSync(join(out, 'modules', page)), `modules/${page}`);
    }
    const client = readFileSync(join(out, 'modules', '_dtx_client.html'), 'utf8');
    for (const name of ['DtxClient', 'Saga', 'FailureError']) assert.match(client, new RegExp(`>${name}<`));
    assert.match(readFileSync(join(out, 'modules', '_dtx_server.index.html'), 'utf8'), />startServer</);
  });
});
