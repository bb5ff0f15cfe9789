// Store back-ends the bench can run the coordinator against.
//
// Each entry prepares a fresh, empty store for one run and says which environment variables make
// `dtx serve` use it. Adding postgres / mysql / redis later means adding one entry here: create a
// throwaway database (or key prefix) in `prepare`, return its STORE_* env, drop it in `cleanup`.
import { join } from 'node:path';

/**
 * @typedef {object} PreparedStore
 * @property {Record<string, string>} env   environment for the coordinator process
 * @property {Record<string, unknown>} facts what the results file records about the store
 * @property {() => Promise<void>} cleanup   removes what `prepare` created (temp dir removal is done by the caller)
 */

/** @type {Record<string, { describe: string, prepare: (ctx: { tmpDir: string }) => Promise<PreparedStore> }>} */
export const stores = {
  sqlite: {
    describe: 'embedded SQLite file, server defaults (WAL, synchronous=FULL)',
    async prepare({ tmpDir }) {
      const path = join(tmpDir, 'dtx-bench.sqlite');
      return {
        env: { STORE_DRIVER: 'sqlite', STORE_SQLITE_PATH: path },
        facts: { driver: 'sqlite', path, durability: 'server default (WAL + synchronous FULL)' },
        async cleanup() {},
      };
    },
  },
};

export function storeNames() {
  return Object.keys(stores);
}
