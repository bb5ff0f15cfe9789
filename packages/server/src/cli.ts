#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.js';
import { createLogger, type Logger, type LogLevel } from './observe/logger.js';
import { startServer } from './server.js';
import { openStore } from './store/open-store.js';
import { errorMessage } from './util/error-message.js';
import { VERSION } from './version.js';

const HELP = `dtx — a distributed transaction manager compatible with DTM

Usage:
  dtx serve [-c conf.yml] [-d] [-r]   start the coordinator (also: dtx -c conf.yml)
  dtx migrate [-c conf.yml] [-r]      create or upgrade the store's tables, then exit
  dtx init [dir] [--db postgres]      write a starter service (Fastify, a saga, the barrier; SQLite by default)
  dtx -v                              print the version

Options:
  -c, --config <file>  DTM-style YAML config; keys may also come from env vars (HTTP_PORT, STORE_DRIVER, ...)
  -d, --debug          log level debug
  -r, --reset          drop and recreate the store's tables first (tests only: deletes all data)
      --db <db>        dtx init: sqlite (default) or postgres, the database of the starter's barrier
  -v, --version        print the version
  -h, --help           this help

Running in production (see the README's "Running in production"):
  - without tokens every API is open, as DTM (a warning is logged on a non-loopback HttpHost):
    set AUTH_TOKEN (services) and AUTH_ADMIN_TOKEN (operators, admin UI); comma-separated lists rotate
  - TLS: HTTP_TLS_CERT_FILE / HTTP_TLS_KEY_FILE (gRPC shares them unless GRPC_TLS_* is set),
    HTTP_TLS_CLIENT_CA_FILE to require client certificates (mTLS)
  - branch URLs: restrict where dtx may call (BranchUrl.* in the README)
  - bind HTTP_HOST=127.0.0.1 when only a local proxy talks to dtx; use a production store
  The "dtx started" line says whether auth and TLS are on.
`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      debug: { type: 'boolean', short: 'd' },
      reset: { type: 'boolean', short: 'r' },
      version: { type: 'boolean', short: 'v' },
      help: { type: 'boolean', short: 'h' },
      db: { type: 'string' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const cmd = positionals[0] ?? 'serve';
  if (cmd === 'init') {
    const dir = positionals[1] ?? '.';
    const { initProject } = await import('./init.js');
    const r = initProject(dir, values.db ?? 'sqlite');
    process.stdout.write(
      `wrote a dtx starter in ${r.dir}:\n${r.files.map((f) => `  ${f}`).join('\n')}\n\n` +
        `next: cd ${dir} && npm install, start a coordinator (npx @dtx/server serve), then npm start / npm test\n`,
    );
    return 0;
  }
  if (values.db !== undefined) {
    process.stderr.write(`--db is an option of dtx init only\n\n${HELP}`);
    return 2;
  }
  if (cmd !== 'serve' && cmd !== 'migrate') {
    process.stderr.write(`unknown command '${cmd}'\n\n${HELP}`);
    return 2;
  }
  const { config, ignoredKeys } = loadConfig(values.config);
  if (values.debug) config.LogLevel = 'debug';
  const log = createLogger(config.LogLevel as LogLevel);
  if (ignoredKeys.length > 0) log.warn('config keys not used by dtx', { keys: ignoredKeys });
  if (cmd === 'migrate') {
    const store = await openStore(config, { reset: values.reset === true, log });
    await store.close();
    log.info('store schema is up to date', { store: config.Store.Driver });
    return 0;
  }
  keepServingOnStrayErrors(log);
  const server = await startServer({ config, log, resetStore: values.reset === true });
  const shutdown = (signal: string) => {
    log.info('shutting down', { signal });
    server.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('shutdown failed', { error: errorMessage(err) });
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  return -1; // keep running
}

/**
 * The last resort of `serve`: an exception thrown outside every handler (a library callback, a timer, a transport's
 * own code) or a rejection nobody awaited is logged with its stack, and the coordinator keeps serving instead of
 * exiting. That is safe because nothing in this process is the only copy of anything: every transaction and branch
 * lives in the store, every change to them is a compare-and-set on their stored version (a step cut short by the
 * error is redone by the next cron pass, never applied twice), and what is kept in memory — topic cache, gRPC
 * channels, etcd leases — is rebuilt or renewed from the store and the configuration. Exiting would instead cut
 * every call in flight on every connection, for an error that concerned one of them.
 */
function keepServingOnStrayErrors(log: Logger): void {
  const report = (what: string) => (err: unknown) => {
    log.error(`${what}; dtx keeps serving (this is a bug, please report it with this line)`, {
      error: errorMessage(err),
      stack: err instanceof Error ? err.stack : undefined,
    });
  };
  process.on('uncaughtException', report('uncaught exception'));
  process.on('unhandledRejection', report('unhandled promise rejection'));
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    if (err instanceof ConfigError) process.stderr.write(`dtx: configuration error: ${err.message}\n`);
    else process.stderr.write(`dtx: ${errorMessage(err)}\n`);
    process.exit(1);
  },
);
