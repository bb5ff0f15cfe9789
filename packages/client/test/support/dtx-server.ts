/**
 * A real dtx coordinator for end-to-end tests: spawns the built server (`packages/server/dist/src/cli.js serve`,
 * nothing is built here) on a free port with a fresh SQLite file and test mode on, and waits for `/api/ping`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './poll.js';

/** The built server's entry point (this file runs from packages/client/dist/test/support). */
export const SERVER_CLI = fileURLToPath(new URL('../../../../server/dist/src/cli.js', import.meta.url));

/** A running coordinator. */
export interface DtxServer {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** The dtm API base, `http://127.0.0.1:<port>/api/dtmsvr`, for `new DtxClient(...)`. */
  readonly url: string;
  /**
   * Runs exactly one cron step with the clock moved forward (test mode only) and returns the gid it processed,
   * or `''` when there was nothing to do.
   */
  cronOnce(nowForwardSeconds?: number, cronForwardSeconds?: number): Promise<string>;
  /** The server's stdout and stderr so far, for failure messages. */
  output(): string;
  /** Kills the server and removes its files. */
  stop(): Promise<void>;
  /** SIGKILL: no shutdown, no flush, as a crash (files are kept until stop). */
  kill(): Promise<void>;
}

/** True when the server has been built, so end-to-end tests can run. */
export function serverBuilt(): boolean {
  return existsSync(SERVER_CLI);
}

/** Starts a coordinator; rejects (with its output) when `/api/ping` does not answer within `timeoutMs`. */
export async function startDtxServer(options: { timeoutMs?: number; env?: Record<string, string> } = {}) {
  if (!serverBuilt()) throw new Error(`the dtx server is not built (${SERVER_CLI} is missing): run \`npx tsc -b\``);
  const dir = await mkdtemp(join(tmpdir(), 'dtx-client-test-'));
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  let output = '';
  const child: ChildProcess = spawn(process.execPath, [SERVER_CLI, 'serve'], {
    env: {
      ...process.env,
      HTTP_PORT: String(port),
      STORE_SQLITE_PATH: join(dir, 'dtx.db'),
      GRPC_PORT: '0',
      DTX_TEST_MODE: '1',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (b: Buffer) => {
    output += b.toString();
  });
  child.stderr?.on('data', (b: Buffer) => {
    output += b.toString();
  });
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
  });

  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exit;
      clearTimeout(killer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await waitFor(
      async () => {
        if (exited) throw new Error('the server exited');
        const res = await fetch(`${origin}/api/ping`);
        const body = (await res.json()) as { msg?: string };
        return body.msg === 'pong' ? true : undefined;
      },
      { timeoutMs: options.timeoutMs ?? 15_000, intervalMs: 50, what: `${origin}/api/ping` },
    );
  } catch (err) {
    await stop();
    throw new Error(`the dtx server did not start: ${(err as Error).message}\n--- output ---\n${output}`);
  }

  const server: DtxServer = {
    origin,
    url: `${origin}/api/dtmsvr`,
    async cronOnce(nowForwardSeconds = 0, cronForwardSeconds = 0) {
      const res = await fetch(`${origin}/api/dtx-test/cronOnce`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ now_forward: nowForwardSeconds, cron_forward: cronForwardSeconds }),
      });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`cronOnce answered HTTP ${res.status}: ${text}`);
      return (JSON.parse(text) as { gid?: string }).gid ?? '';
    },
    output: () => output,
    stop,
    async kill() {
      if (exited) return;
      child.kill('SIGKILL');
      await exit;
    },
  };
  return server;
}

/** A TCP port that was free a moment ago. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => {
        if (addr !== null && typeof addr === 'object') resolve(addr.port);
        else reject(new Error('no port'));
      });
    });
  });
}
