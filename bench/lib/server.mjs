// Starting, watching and stopping the coordinator under test as a child process.
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { request } from 'undici';

/** A free TCP port on 127.0.0.1 (the tiny race with other processes is acceptable for a bench). */
export async function freePort() {
  const srv = createServer();
  await new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  const { port } = /** @type {import('node:net').AddressInfo} */ (srv.address());
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/**
 * Spawns `cmd args` with its stdout+stderr in logFile and waits until GET `readyPath` on 127.0.0.1:port answers
 * 200 and `ready(body)` holds (a deadline, polled every 100 ms). The coordinator and the bench's peers (DTM,
 * dtmrs) start through it.
 * @param {{ cmd: string, args: string[], cwd: string, env: Record<string,string>, port: number, logFile: string,
 *   readyPath: string, ready?: (body: string) => boolean, what?: string, startTimeoutMs?: number }} o
 */
export async function startProcess({
  cmd,
  args,
  cwd,
  env,
  port,
  logFile,
  readyPath,
  ready = () => true,
  what = cmd,
  startTimeoutMs = 30_000,
}) {
  const logFd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  /** @type {{ code: number|null, signal: string|null } | null} */
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });
  const origin = `http://127.0.0.1:${port}`;
  const handle = {
    origin,
    pid: child.pid,
    logFile,
    get exited() {
      return exited;
    },
    /** Last lines of the process's stdout+stderr. */
    logTail(lines = 40) {
      try {
        return readFileSync(logFile, 'utf8').split('\n').slice(-lines).join('\n');
      } catch {
        return '';
      }
    },
    /** SIGTERM, then SIGKILL if it has not exited within graceMs. Resolves with how it exited. */
    async stop(graceMs = 10_000) {
      if (!exited) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exitPromise;
        clearTimeout(t);
      }
      return exited;
    },
    /** Synchronous best-effort kill, for process 'exit' handlers. */
    killNow() {
      if (!exited) child.kill('SIGKILL');
    },
  };

  const deadline = Date.now() + startTimeoutMs;
  let lastErr = 'no answer yet';
  while (Date.now() < deadline) {
    if (exited) {
      throw new Error(
        `${what} exited during start-up (code ${exited.code}, signal ${exited.signal}); log tail:\n${handle.logTail()}`,
      );
    }
    try {
      const res = await request(`${origin}${readyPath}`, { headersTimeout: 1000, bodyTimeout: 1000 });
      const text = await res.body.text();
      if (res.statusCode === 200 && ready(text)) return handle;
      lastErr = `HTTP ${res.statusCode} ${text.slice(0, 200)}`;
    } catch (e) {
      lastErr = e instanceof Error ? e.message : String(e);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  handle.killNow();
  throw new Error(
    `${what} did not answer ${readyPath} within ${startTimeoutMs} ms (last: ${lastErr}); log tail:\n${handle.logTail()}`,
  );
}

/**
 * Spawns `node [nodeArgs] <entry> serve` with the given env and waits for GET /api/ping → {"msg":"pong"}.
 * @param {{ entry: string, cwd: string, env: Record<string,string>, port: number, logFile: string,
 *   nodeArgs?: string[], startTimeoutMs?: number }} o
 */
export function startServer({ entry, cwd, env, port, logFile, nodeArgs = [], startTimeoutMs = 30_000 }) {
  return startProcess({
    cmd: process.execPath,
    args: [...nodeArgs, entry, 'serve'],
    cwd,
    env: { ...env, HTTP_PORT: String(port) },
    port,
    logFile,
    readyPath: '/api/ping',
    ready: (text) => JSON.parse(text).msg === 'pong',
    what: 'coordinator',
    startTimeoutMs,
  });
}

let clkTck = 0;
/** CPU seconds (user+system, all threads) used so far by process `pid`, from /proc; null where unavailable. */
export function procCpuSeconds(pid) {
  try {
    if (!clkTck) {
      try {
        clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
      } catch {
        clkTck = 100;
      }
    }
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after the command: [0]=state (field 3), so utime (field 14) is [11] and stime (15) is [12]
    return (Number(f[11]) + Number(f[12])) / clkTck;
  } catch {
    return null;
  }
}

/** Busy CPU seconds of the whole machine so far (all cores, from /proc/stat); null where unavailable. */
export function systemBusyCpuSeconds() {
  try {
    if (!clkTck) procCpuSeconds(process.pid); // initialises clkTck
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
    // cpu user nice system idle iowait irq softirq steal guest guest_nice
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] ?? 0);
    return busy / clkTck;
  } catch {
    return null;
  }
}
