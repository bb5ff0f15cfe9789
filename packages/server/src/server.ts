import type { AddressInfo } from 'node:net';
import { buildHttpApi } from './api/http/app.js';
import type { BranchCaller } from './branch/caller.js';
import { DispatchingCaller } from './branch/dispatch.js';
import { coreConfigOf, type DtxConfig, logLevelOf } from './config.js';
import { type Clock, systemClock } from './core/clock.js';
import { Cron } from './core/cron.js';
import { errorMessage } from './core/errors.js';
import type { PassDeps } from './core/pass.js';
import { Processor } from './core/processor.js';
import { Retention } from './core/retention.js';
import { TransService } from './core/service.js';
import { Topics } from './core/topics.js';
import { webhookAlerter } from './observe/alert.js';
import { createLogger, type Logger } from './observe/logger.js';
import { openStore } from './store/open-store.js';
import type { Store } from './store/store.js';
import { VERSION } from './version.js';

export interface StartOptions {
  config: DtxConfig;
  log?: Logger;
  clock?: Clock;
  /** Use this store instead of the configured one (tests). */
  store?: Store;
  caller?: BranchCaller;
  /** Drop and recreate the store's tables first (DTM's `-r`). */
  resetStore?: boolean;
}

export interface DtxServer {
  /** The HTTP port actually bound (useful with HttpPort 0). */
  httpPort: number;
  store: Store;
  service: TransService;
  cron: Cron;
  stop(): Promise<void>;
}

async function waitForStore(store: Store, log: Logger): Promise<void> {
  for (;;) {
    try {
      await store.ping();
      return;
    } catch (err) {
      log.error('store is not reachable; retrying in 3 s', { error: errorMessage(err) });
      await new Promise((r) => setTimeout(r, 3000));
    }
  }
}

/** Start a dtx coordinator: store, cron, topic refresh and the HTTP API. */
export async function startServer(o: StartOptions): Promise<DtxServer> {
  const c = o.config;
  const log = o.log ?? createLogger(logLevelOf(c));
  const clock = o.clock ?? systemClock;
  const store = o.store ?? (await openStore(c, { reset: o.resetStore === true, log }));
  await waitForStore(store, log);
  const conf = coreConfigOf(c);
  const caller = o.caller ?? new DispatchingCaller();
  const deps: PassDeps = {
    store,
    caller,
    clock,
    conf,
    log,
    alert: webhookAlerter(c.AlertWebHook, c.RequestTimeout * 1000, log),
  };
  const processor = new Processor(deps);
  const topics = new Topics(store, clock, log);
  await topics.refresh();
  topics.start(c.ConfigUpdateInterval);
  const service = new TransService(deps, processor, topics);
  const cron = new Cron(deps, processor);
  const app = buildHttpApi({
    service,
    store,
    cron,
    log,
    version: VERSION,
    bodyLimit: c.HttpBodyLimit,
    testMode: c.DtxTestMode,
    resetTimeout: 3 * c.TimeoutToFail,
  });
  await app.listen({ port: c.HttpPort, host: c.HttpHost });
  const httpPort = (app.server.address() as AddressInfo).port;
  cron.start();
  const retention = new Retention(store, clock, log, {
    finishedAge: c.Retention.FinishedAge,
    interval: c.Retention.Interval,
    batchSize: c.Retention.BatchSize,
  });
  retention.start();
  log.info('dtx started', {
    version: VERSION,
    http: `${c.HttpHost}:${httpPort}`,
    store: c.Store.Driver,
    ...(c.Store.Driver === 'sqlite' || c.Store.Driver === 'boltdb' ? { sqlite: c.Store.SqlitePath } : {}),
    testMode: c.DtxTestMode || undefined,
  });
  let stopping: Promise<void> | undefined;
  return {
    httpPort,
    store,
    service,
    cron,
    stop() {
      stopping ??= (async () => {
        await app.close();
        await cron.stop();
        await retention.stop();
        topics.stop();
        await processor.drain();
        await caller.close();
        await store.close();
        log.info('dtx stopped');
      })();
      return stopping;
    },
  };
}
