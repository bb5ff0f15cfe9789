/**
 * The coordinator of the workflow tests: a real dtx server by default, or a real DTM binary when
 * `DTX_TEST_DTM_BIN` names one (e.g. ~/.cache/dtx-bench/dtm/dtm, DTM v1.19.0 on its default BoldDB store), so
 * the same expectations are checked against both.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDtxServer } from './dtx-server.js';
import { freePort } from './grpc-services.js';
import { waitFor } from './poll.js';

/** A running coordinator. */
export interface WorkflowCoordinator {
  /** `dtx` or `dtm`. */
  readonly kind: 'dtx' | 'dtm';
  /** The HTTP API base, for `new DtxClient(url)`. */
  readonly url: string;
  /** `127.0.0.1:<port>`, for `new DtxGrpcClient(address)`. */
  readonly grpcAddress: string;
  /**
   * Lets the coordinator's cron reach unfinished workflows now: dtx runs cron passes with the clock moved
   * forward (test mode); DTM (TransCronInterval 1 s, the workflows retry_interval 1 s) gets there by itself, so this does nothing there.
   */
  kick(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the coordinator the environment selects. */
export async function startWorkflowCoordinator(): Promise<WorkflowCoordinator> {
  const bin = process.env.DTX_TEST_DTM_BIN;
  if (bin !== undefined && bin !== '') return startDtm(bin);
  const grpcPort = await freePort();
  const server = await startDtxServer({ env: { GRPC_PORT: String(grpcPort) } });
  return {
    kind: 'dtx',
    url: server.url,
    grpcAddress: `127.0.0.1:${grpcPort}`,
    async kick() {
      await server.cronOnce(3600, 3600).catch(() => '');
    },
    stop: () => server.stop(),
  };
}

async function startDtm(bin: string): Promise<WorkflowCoordinator> {
  const dir = await mkdtemp(join(tmpdir(), 'dtx-wf-dtm-'));
  const [httpPort, grpcPort, jsonRpcPort] = [await freePort(), await freePort(), await freePort()];
  await writeFile(
    join(dir, 'dtm.yml'),
    [
      `HttpPort: ${httpPort}`,
      `GrpcPort: ${grpcPort}`,
      `JsonRpcPort: ${jsonRpcPort}`,
      'TransCronInterval: 1',
      'UpdateBranchSync: 1',
      "LogLevel: 'error'",
      'Store:',
      "  Driver: 'boltdb'",
      '',
    ].join('\n'),
  );
  let output = '';
  const child: ChildProcess = spawn(bin, ['-c', join(dir, 'dtm.yml')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (b: Buffer) => {
    output += b.toString();
  });
  child.stderr?.on('data', (b: Buffer) => {
    output += b.toString();
  });
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exit.then(() => {
    exited = true;
  });
  const stop = async () => {
    if (!exited) {
      child.kill('SIGKILL');
      await exit;
    }
    await rm(dir, { recursive: true, force: true });
  };
  const origin = `http://127.0.0.1:${httpPort}`;
  try {
    await waitFor(
      async () => {
        if (exited) throw new Error('DTM exited');
        const res = await fetch(`${origin}/api/ping`);
        return res.status === 200 ? true : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 50, what: `${origin}/api/ping` },
    );
  } catch (err) {
    await stop();
    throw new Error(`DTM did not start: ${(err as Error).message}\n--- output ---\n${output}`);
  }
  return {
    kind: 'dtm',
    url: `${origin}/api/dtmsvr`,
    grpcAddress: `127.0.0.1:${grpcPort}`,
    async kick() {},
    stop,
  };
}
