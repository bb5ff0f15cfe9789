#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.js';
import { errorMessage } from './core/errors.js';
import { createLogger, type LogLevel } from './observe/logger.js';
import { startServer } from './server.js';
import { openStore } from './store/open-store.js';
import { VERSION } from './version.js';

const HELP = `dtx — a distributed transaction manager compatible with DTM

Usage:
  dtx serve [-c conf.yml] [-d] [-r]   start the coordinator (also: dtx -c conf.yml)
  dtx migrate [-c conf.yml] [-r]      create or upgrade the store's tables, then exit
  dtx -v                              print the version

Options:
  -c, --config <file>  DTM-style YAML config; keys may also come from env vars (HTTP_PORT, STORE_DRIVER, ...)
  -d, --debug          log level debug
  -r, --reset          drop and recreate the store's tables first (tests only: deletes all data)
  -v, --version        print the version
  -h, --help           this help
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
