/**
 * Where the .proto files are, computed in a CommonJS file so that the ESM and the CommonJS builds of the package
 * share it: `__dirname` is `dist/src` or `dist/cjs` (or `src` under a TypeScript loader), the directory is two
 * levels up, in the package itself. An ESM file would need `import.meta`, which a CommonJS build cannot carry.
 *
 * @module
 */
import path = require('node:path');

export = path.join(__dirname, '..', '..', 'proto') + path.sep;
