#!/usr/bin/env node
// Entry of the `dtx` command: the compiled CLI (built by `npm ci` through the root `prepare` script).
import('../dist/src/cli.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    process.stderr.write('dtx is not built yet: run `npm run build` in the repository root\n');
    process.exit(1);
  }
  throw err;
});
