import { readFileSync } from 'node:fs';

/** The package version, read once at start. */
export const VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    return `v${pkg.version}`;
  } catch {
    return 'v0.0.0-dev';
  }
})();
