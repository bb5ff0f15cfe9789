#!/usr/bin/env node
// Part of `npm run build`, after `tsc -b`: marks the CommonJS builds (packages/*/dist/cjs, from each package's
// tsconfig.cjs.json) as CommonJS. The packages are `"type": "module"`, so without this marker Node would read
// dist/cjs/*.js as ES modules.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
for (const pkg of ['protocol', 'client']) {
  const dir = join(root, 'packages', pkg, 'dist', 'cjs');
  if (!existsSync(dir)) {
    console.error(`${dir} is missing: tsc -b did not build packages/${pkg}/tsconfig.cjs.json`);
    process.exit(1);
  }
  writeFileSync(join(dir, 'package.json'), '{"type":"commonjs"}\n');
}
