// How client.workflow handles the coordinator's refusals (contracts of dtx: a conflicting step record or a record
// for a decided workflow is refused with 422 / AlreadyExists; a second, different submit too). The coordinator
// here is an in-memory one with those rules, so each race can be set up exactly; the same paths run against
// real coordinators in workflow.test.ts (concurrent executions).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  CoordinatorError,
  type WorkflowBranchRecord,
  WorkflowFailedError,
  type WorkflowHost,
  type WorkflowProgress,
  WorkflowRegistry,
} from '../src/index.js';

/** An in-memory coordinator with dtx's rules; `beforeRecord` runs before each record is applied. */
function memoryHost(beforeRecord?: (r: WorkflowBranchRecord, state: Memory) => void) {
  const state: Memory = { status: '', reason: '', result: new Uint8Array(0), progresses: [] };
  const refuse = (what: string) => new CoordinatorError(`HTTP 422: ${what}`, 422);
  const host: WorkflowHost = {
    protocol: 'http',
    wire: {
      async prepareWorkflow() {
        if (state.status === '') state.status = 'prepared';
        return {
          status: state.status,
          rollbackReason: state.reason,
          result: state.result,
          progresses: state.progresses.map((p) => ({ ...p })),
        };
      },
      async registerWorkflowBranch(r) {
        beforeRecord?.(r, state);
        if (state.status !== 'prepared') throw refuse('the workflow is no longer prepared');
        const same = state.progresses.find((p) => p.branchId === r.branchId && p.op === r.op);
        if (same !== undefined) {
          if (same.status === r.status && Buffer.compare(same.data, r.data) === 0) return;
          throw refuse('conflicting record');
        }
        state.progresses.push({ branchId: r.branchId, op: r.op, status: r.status, data: r.data });
      },
      async submitWorkflow(s) {
        if (state.status !== 'prepared') {
          if (state.status === s.status) return;
          throw refuse(`already ${state.status}`);
        }
        state.status = s.status;
        state.reason = s.rollbackReason;
        state.result = s.result;
      },
    },
    httpBranch: async () => {
      throw new Error('no branches here');
    },
  };
  return { host, state };
}

interface Memory {
  status: string;
  reason: string;
  result: Uint8Array;
  progresses: WorkflowProgress[];
}

describe('workflow: refusals of the coordinator', () => {
  test('a step recorded first by another execution: its outcome is adopted, not ours', async () => {
    const { host, state } = memoryHost((r, s) => {
      if (r.branchId === '01' && s.progresses.length === 0) {
        s.progresses.push({ branchId: '01', op: 'action', status: 'succeed', data: Buffer.from('"theirs"') });
      }
    });
    const registry = new WorkflowRegistry(host, undefined);
    registry.register('w', async (wf) => wf.step(() => 'ours'));
    assert.equal(await registry.execute('w', 'g1', null), 'theirs');
    assert.equal(state.status, 'succeed');
    assert.equal(Buffer.from(state.result).toString(), '"theirs"');
  });

  test('a step recorded first as failed by another execution: the workflow fails with that failure', async () => {
    const { host, state } = memoryHost((r, s) => {
      if (r.op === 'action' && s.progresses.length === 0) {
        s.progresses.push({ branchId: '01', op: 'action', status: 'failed', data: Buffer.from('no stock') });
      }
    });
    const compensated: string[] = [];
    const registry = new WorkflowRegistry(host, undefined);
    registry.register('w', async (wf) =>
      wf.step(() => 'ours', {
        onRollback: (ctx) => {
          compensated.push(ctx.branchId);
        },
      }),
    );
    const err = await registry.execute('w', 'g2', null).catch((e: unknown) => e);
    assert.ok(err instanceof WorkflowFailedError);
    assert.equal(err.rollbackReason, 'no stock');
    assert.deepEqual(compensated, ['01']);
    assert.equal(state.status, 'failed');
  });

  test('the workflow decided by another execution meanwhile: its outcome is reported, our function unwinds', async () => {
    let after = false;
    const { host } = memoryHost((r, s) => {
      if (r.branchId === '02') {
        s.status = 'failed';
        s.reason = 'decided elsewhere';
      }
    });
    const registry = new WorkflowRegistry(host, undefined);
    registry.register('w', async (wf) => {
      await wf.step(() => 1);
      await wf.step(() => 2);
      after = true;
      return 3;
    });
    const err = await registry.execute('w', 'g3', null).catch((e: unknown) => e);
    assert.ok(err instanceof WorkflowFailedError, String(err));
    assert.equal(err.rollbackReason, 'decided elsewhere');
    assert.equal(after, false, 'the function did not go on past the refused step');
  });

  test('a refused submit reports the recorded outcome', async () => {
    const { host, state } = memoryHost();
    const registry = new WorkflowRegistry(host, undefined);
    registry.register('w', async (wf) => {
      await wf.step(() => 1);
      state.status = 'failed'; // another execution submitted a failure while ours ran
      state.reason = 'their failure';
      return 'ours';
    });
    const err = await registry.execute('w', 'g4', null).catch((e: unknown) => e);
    assert.ok(err instanceof WorkflowFailedError, String(err));
    assert.equal(err.rollbackReason, 'their failure');
  });

  test('a refusal that leaves nothing recorded and the workflow prepared is thrown as it is', async () => {
    const { host } = memoryHost((r) => {
      if (r.branchId === '01') throw new CoordinatorError('HTTP 422: something else', 422);
    });
    const registry = new WorkflowRegistry(host, undefined);
    registry.register('w', async (wf) => wf.step(() => 1));
    await assert.rejects(registry.execute('w', 'g5', null), /something else/);
  });

  test('two executes of one gid in one process share one run', async () => {
    const { host } = memoryHost();
    const registry = new WorkflowRegistry(host, undefined);
    let runs = 0;
    registry.register('w', async (wf) => {
      runs += 1;
      return wf.step(() => runs);
    });
    const [a, b] = await Promise.all([registry.execute('w', 'g6', null), registry.execute('w', 'g6', null)]);
    assert.equal(a, 1);
    assert.equal(b, 1);
    assert.equal(runs, 1);
  });
});
