/**
 * The XA workflow of the workflow-XA tests, shared by the test process and the workflow host process it kills
 * (support/workflow-xa-host.ts): two XA steps (debit, credit) on one database and a local step that refuses
 * when asked to, so the prepared XA branches are rolled back.
 */
import { FailureError, type Workflow } from '../../src/index.js';
import type { XaDialect } from '../../src/xa/dialect.js';
import type { XaHarness } from './xa-db.js';

/** The input of the workflow. */
export interface XaTransferInput {
  out: string;
  in: string;
  amount: number;
  /** The last step fails (a `FailureError`): the workflow rolls back. */
  refuse?: boolean;
}

/** What the workflow returns. */
export interface XaTransferResult {
  debited: { account: string; amount: number };
  credited: string;
}

export const REFUSED = 'refused by the last step';

/**
 * Registers `xaTransfer` on `client`; `dialect` defaults to the harness's (a test may wrap it). Each run of a step's
 * function is logged in `steps` as `<gid> <debit|credit|check> <branch_id>`.
 */
export function registerXaTransfer(
  client: {
    workflow: { register: (name: string, fn: (wf: Workflow, input: XaTransferInput) => Promise<unknown>) => void };
  },
  h: XaHarness,
  dialect: XaDialect<any, any> = h.dialect,
  steps: string[] = [],
): void {
  client.workflow.register('xaTransfer', async (wf: Workflow, input: XaTransferInput): Promise<XaTransferResult> => {
    const debited = await wf.xa(dialect, h.db, async (conn, ctx) => {
      steps.push(`${ctx.gid} debit ${ctx.branchId}`);
      if (!(await h.debit(conn, input.out, input.amount))) throw new FailureError('insufficient balance');
      return { account: input.out, amount: input.amount };
    });
    const credited = await wf.xa(
      dialect,
      h.db,
      async (conn, ctx) => {
        steps.push(`${ctx.gid} credit ${ctx.branchId}`);
        await h.credit(conn, input.in, input.amount);
        return `${input.in}+${input.amount}`;
      },
      { codec: 'text' },
    );
    await wf.step((ctx) => {
      steps.push(`${ctx.gid} check ${ctx.branchId}`);
      if (input.refuse === true) throw new FailureError(REFUSED);
      return true;
    });
    return { debited, credited };
  });
}

/**
 * Where the host process kills itself (SIGKILL): just before / just after the local XA transaction of branch 02 is
 * prepared, or just before the XA commit of branch 01 (branch 02 is committed then: newest first).
 */
export type XaCrashPoint = 'before-prepare-02' | 'after-prepare-02' | 'commit-01';

/** `dialect`, killing this process at `point`. */
export function crashingDialect(dialect: XaDialect<any, any>, point: XaCrashPoint): XaDialect<any, any> {
  const die = (): never => {
    process.kill(process.pid, 'SIGKILL');
    throw new Error('unreachable');
  };
  return {
    ...dialect,
    async start(db, xid) {
      const local = await dialect.start(db, xid);
      if (!xid.endsWith('-02')) return local;
      return {
        ...local,
        async prepare() {
          if (point === 'before-prepare-02') die();
          await local.prepare();
          if (point === 'after-prepare-02') die();
        },
      };
    },
    async commit(db, xid) {
      if (point === 'commit-01' && xid.endsWith('-01')) die();
      return dialect.commit(db, xid);
    },
  };
}
