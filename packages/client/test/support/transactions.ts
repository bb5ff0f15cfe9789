/**
 * Reading transaction state through the SDK's own `query`, for assertions.
 */
import type { DtxClient, QueryReply } from '../../src/index.js';
import { waitFor } from './poll.js';

/** Polls `query(gid)` until the global status is `status`; rejects with the last state seen at the deadline. */
export async function waitForStatus(client: DtxClient, gid: string, status: string, timeoutMs = 10_000) {
  let last: QueryReply | undefined;
  try {
    return await waitFor(
      async () => {
        last = await client.query(gid);
        return last.transaction?.status === status ? last : undefined;
      },
      { timeoutMs, what: `${gid} to be ${status}` },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last state: ${JSON.stringify(last)}`);
  }
}

/** The branch statuses in row order (e.g. saga: comp01, act01, comp02, act02). */
export function branchStatuses(reply: QueryReply): string[] {
  return reply.branches.map((b) => b.status);
}

/** The branches as `<branch_id> <op> <status>` strings, in row order. */
export function branchRows(reply: QueryReply): string[] {
  return reply.branches.map((b) => `${b.branch_id} ${b.op} ${b.status}`);
}

/**
 * Runs the coordinator's cron one step at a time (clock `nowForward` seconds ahead, picking transactions due
 * within 180 s) until `gid` reaches `status`; rejects at the deadline with the last state seen.
 */
export async function cronUntilStatus(
  server: { cronOnce(nowForward?: number, cronForward?: number): Promise<string> },
  client: DtxClient,
  gid: string,
  status: string,
  nowForward = 60,
): Promise<QueryReply> {
  let last: QueryReply | undefined;
  try {
    return await waitFor(
      async () => {
        last = await client.query(gid);
        if (last.transaction?.status === status) return last;
        await server.cronOnce(nowForward, 180);
        last = await client.query(gid);
        return last.transaction?.status === status ? last : undefined;
      },
      { timeoutMs: 10_000, what: `cron to bring ${gid} to ${status}` },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last state: ${JSON.stringify(last)}`);
  }
}
