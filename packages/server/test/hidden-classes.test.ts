import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Dispatcher } from 'undici';
import type { BranchCall, BranchCaller, BranchOutcome } from '../src/branch/caller.js';
import { requestText } from '../src/branch/http-caller.js';
import { FakeClock } from '../src/core/clock.js';
import { DEFAULT_CORE_CONFIG } from '../src/core/core-config.js';
import { FailureError } from '../src/core/errors.js';
import { withTraceContext } from '../src/core/model.js';
import type { PassDeps } from '../src/core/pass.js';
import type { StatusChange } from '../src/core/ports.js';
import { Processor } from '../src/core/processor.js';
import { TransService } from '../src/core/service.js';
import { Topics } from '../src/core/topics.js';
import { silentLogger } from '../src/observe/logger.js';
import { MemoryStore } from '../src/store/memory/memory-store.js';
import { oneHiddenClass } from './support/shapes.js';

// Objects made on every saga must keep one hidden class once V8 has optimised the code making them. On Node 20 an
// optimised `{ ...a, b }` (or a property added to an optimised `{ ...a }`) makes a new one on each call: old-space
// garbage per saga, and megamorphic reads wherever the objects go (undici's dispatch read every option that way).
// Each case runs its code often enough to be optimised and compares the objects of the last calls.
const CALLS = 30_000;
const lastOf = <T>(xs: T[]): T[] => xs.slice(-20);

describe('hidden classes of per-saga objects', () => {
  it('the dispatch options of a branch call', () => {
    const seen: object[] = [];
    const agent = { dispatch: (opts: object) => (seen.push(opts), true) } as unknown as Dispatcher;
    for (let i = 0; i < CALLS; i++) {
      void requestText(
        agent,
        { origin: 'http://127.0.0.1:1', path: `/a?gid=${i}`, method: 'POST', headers: {}, body: '{}' },
        1000,
      );
    }
    assert.equal(seen.length, CALLS);
    assert.ok(oneHiddenClass(lastOf(seen)));
  });

  it('the stored options of a traced transaction', () => {
    const seen: object[] = [];
    for (let i = 0; i < CALLS; i++) {
      seen.push(withTraceContext({ wait_result: true, retry_interval: i }, { traceparent: `00-${i}-01` }));
    }
    assert.ok(oneHiddenClass(lastOf(seen)));
    assert.deepEqual(seen.at(-1), { wait_result: true, retry_interval: CALLS - 1, traceparent: `00-${CALLS - 1}-01` });
  });

  it('the status change a pass hands the store (a saga rolling back: the change carries its reason)', async () => {
    const changes: StatusChange[] = [];
    const store = new MemoryStore();
    const changeStatus = store.changeStatus.bind(store);
    store.changeStatus = (gid, from, to, change, now) => {
      if (to === 'aborting') changes.push(change);
      return changeStatus(gid, from, to, change, now);
    };
    const caller: BranchCaller = {
      call: async (c: BranchCall): Promise<BranchOutcome> => ({
        result: c.op === 'action' ? 'FAILURE' : 'SUCCESS',
        message: '',
      }),
      close: async () => {},
    };
    const clock = new FakeClock();
    const deps: PassDeps = { store, caller, clock, conf: DEFAULT_CORE_CONFIG, log: silentLogger, alert: () => {} };
    const service = new TransService(deps, new Processor(deps), new Topics(store, clock, silentLogger));
    const sagas = CALLS / 3;
    for (let i = 0; i < sagas; i++) {
      const submitted = service.submit({
        gid: `hc-${i}`,
        transType: 'saga',
        steps: [{ action: 'http://b/A', compensate: 'http://b/C' }],
        binPayloads: [Buffer.from('{}')],
        customData: '',
        queryPrepared: '',
        protocol: 'http',
        rollbackReason: '',
        reqExtra: {},
        opts: { wait_result: true },
      });
      await assert.rejects(submitted, FailureError);
    }
    assert.equal(changes.length, sagas);
    assert.ok(changes.every((c) => c.rollbackReason?.includes('FAILURE')));
    assert.ok(oneHiddenClass(lastOf(changes)));
  });
});
