/**
 * `npm run mall`: the whole tutorial system on this machine, each part its own process as in the original —
 * the coordinator (dtx on HTTP 36789 / gRPC 36790, registered in etcd as `dtmservice`) and the eight services
 * (api 8000-8003, rpc 9000-9003, metrics 9080-9083 / 9090-9093) — after creating the database. It checks that
 * every part is up (dtx answers /api/ping, each rpc is registered in etcd, each api answers HTTP), prints where
 * they are, and stops them all on Ctrl-C, or when one of them dies.
 *
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { Etcd3 } from 'etcd3';
import { type ApiConf, apiConf, type RpcConf, readYaml, rpcConf } from './common/config.js';
import { migrate } from './migrate.js';
import { SERVICE_NAMES, type ServiceName } from './services.js';

/** The directory of the shipped configs. */
export const ETC_DIR = new URL('../../etc', import.meta.url).pathname;
const MAIN = new URL('./main.js', import.meta.url).pathname;
const DTX_CLI = new URL('../../../../packages/server/dist/src/cli.js', import.meta.url).pathname;

/** Options of {@link up}. */
export interface UpOptions {
  /** The directory holding dtx.yaml and the eight `<service>.yaml`. */
  etc: string;
  /** Stop again once everything answered (a smoke test). */
  check: boolean;
  /** Milliseconds each part may take to come up. Default 30 s. */
  timeoutMs?: number;
}

const log = (line: string) => process.stdout.write(`[mall] ${line}\n`);

/** Runs the mall; resolves with the exit code. */
export async function up(o: UpOptions): Promise<number> {
  const confs = new Map<ServiceName, ApiConf | RpcConf>();
  for (const name of SERVICE_NAMES) {
    const raw = await readYaml(`${o.etc}/${name}.yaml`);
    confs.set(name, name.endsWith('-rpc') ? rpcConf(raw) : apiConf(raw));
  }
  const dtxRaw = await readYaml(`${o.etc}/dtx.yaml`);
  const dtxHttp = Number(dtxRaw.HttpPort ?? 36789);

  const userRpc = confs.get('user-rpc') as RpcConf;
  log(`creating the database if needed (${userRpc.Mysql.DataSource.replace(/:[^@]*@/, ':***@')})`);
  try {
    await migrate(userRpc.Mysql.DataSource);
  } catch (err) {
    log(
      `cannot prepare the database: ${err instanceof Error ? err.message : String(err)}. ` +
        'Are MariaDB and etcd running? `sudo bash scripts/services.sh` installs and starts them on 127.0.0.1.',
    );
    return 1;
  }

  const children = new Map<string, ChildProcess>();
  let stopping = false;
  let failed: string | undefined;
  const stopAll = async () => {
    stopping = true;
    const exits = [...children.entries()].reverse().map(
      ([, c]) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
        }),
    );
    await Promise.all(exits);
  };
  let onDeath: (name: string) => void = () => {};
  const died = new Promise<string>((resolve) => {
    onDeath = resolve;
  });
  const launch = (name: string, args: string[]) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const prefix = (chunk: Buffer) =>
      chunk
        .toString()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => `[${name}] ${l}\n`)
        .join('');
    child.stdout?.on('data', (c: Buffer) => process.stdout.write(prefix(c)));
    child.stderr?.on('data', (c: Buffer) => process.stderr.write(prefix(c)));
    child.once('exit', (code, signal) => {
      if (!stopping) {
        failed = `${name} exited (${signal ?? `code ${code}`})`;
        onDeath(name);
      }
    });
    children.set(name, child);
  };
  const until = async (what: string, check: () => Promise<boolean>) => {
    const deadline = Date.now() + (o.timeoutMs ?? 30_000);
    while (!(await check())) {
      if (failed !== undefined) throw new Error(`${failed} while waiting for ${what}`);
      if (Date.now() > deadline) throw new Error(`${what} did not come up in time`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const etcdHosts = userRpc.Etcd.Hosts;
  const etcd = new Etcd3({ hosts: etcdHosts.map((h) => `http://${h}`) });
  try {
    launch('dtx', [DTX_CLI, 'serve', '-c', `${o.etc}/dtx.yaml`]);
    await until(`dtx (http://127.0.0.1:${dtxHttp}/api/ping)`, () =>
      httpAnswers(`http://127.0.0.1:${dtxHttp}/api/ping`, 200),
    );
    log(`dtx is up: http://127.0.0.1:${dtxHttp}/api/ping`);
    for (const name of SERVICE_NAMES) {
      launch(name, [MAIN, name, '-f', `${o.etc}/${name}.yaml`]);
      const conf = confs.get(name)!;
      if ('ListenOn' in conf) {
        const key = `${conf.Etcd.Key}/`;
        await until(
          `${name} (etcd key ${key}…)`,
          async () =>
            (
              await etcd
                .getAll()
                .prefix(key)
                .keys()
                .catch(() => [])
            ).length > 0,
        );
        log(`${name} is up: gRPC ${conf.ListenOn}, registered in etcd under ${key}`);
      } else {
        // A JWT route without a token answers 401: this api, not some other server on its port.
        const url = `http://127.0.0.1:${conf.Port}${PROBES[name]}`;
        await until(`${name} (${url})`, () => httpAnswers(url, 401, 'POST'));
        log(`${name} is up: http://127.0.0.1:${conf.Port}`);
      }
    }
  } catch (err) {
    log(`failed: ${err instanceof Error ? err.message : String(err)}; stopping`);
    await stopAll();
    etcd.close();
    return 1;
  }
  etcd.close();
  log('all up. Walk through examples/mall/README.md; Ctrl-C stops everything.');
  if (o.check) {
    await stopAll();
    log('check passed: everything answered, and is stopped again');
    return 0;
  }
  const signal = new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  const why = await Promise.race([signal, died]);
  log(why.startsWith('SIG') ? `${why}: stopping` : `${failed}; stopping the others`);
  await stopAll();
  return why.startsWith('SIG') ? 0 : 1;
}

const PROBES: Record<string, string> = {
  'user-api': '/api/user/userinfo',
  'product-api': '/api/product/detail',
  'order-api': '/api/order/detail',
  'pay-api': '/api/pay/detail',
};

async function httpAnswers(url: string, status: number, method = 'GET'): Promise<boolean> {
  try {
    const r = await fetch(url, { method, signal: AbortSignal.timeout(2000) });
    await r.arrayBuffer();
    return r.status === status;
  } catch {
    return false;
  }
}
