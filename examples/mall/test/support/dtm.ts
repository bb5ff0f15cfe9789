/**
 * A real DTM coordinator (the binary `DTX_TEST_DTM_BIN` names, e.g. ~/.cache/dtx-bench/dtm/dtm, on its default
 * BoltDB store) for the tests that also check their expectations against DTM.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './mall.js';

/** A running DTM. */
export interface Dtm {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** `127.0.0.1:<port>` */
  readonly grpcAddress: string;
  stop(): Promise<void>;
}

/** Starts DTM from `bin` on free loopback ports. */
export async function startDtm(bin: string): Promise<Dtm> {
  const dir = await mkdtemp(join(tmpdir(), 'mall-dtm-'));
  const [http, grpc, jsonRpc] = [await freePort(), await freePort(), await freePort()];
  const conf = join(dir, 'dtm.yml');
  await writeFile(
    conf,
    `HttpPort: ${http}\nGrpcPort: ${grpc}\nJsonRpcPort: ${jsonRpc}\nUpdateBranchSync: 1\nLogLevel: 'error'\nStore:\n  Driver: 'boltdb'\n`,
  );
  const child: ChildProcess = spawn(bin, ['-c', conf], { cwd: dir, stdio: 'ignore' });
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const origin = `http://127.0.0.1:${http}`;
  const stop = async () => {
    if (!exited) {
      child.kill('SIGKILL');
      await exit;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(async () => {
      if (exited) throw new Error('DTM exited');
      return (await fetch(`${origin}/api/ping`)
        .then((r) => r.status)
        .catch(() => 0)) === 200
        ? true
        : undefined;
    }, `DTM at ${origin}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { origin, grpcAddress: `127.0.0.1:${grpc}`, stop };
}
