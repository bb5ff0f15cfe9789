import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GrpcStatus } from '@dtx/protocol';
import { MemoryStore } from '../src/store/memory/memory-store.js';
import { startTestDtx, type TestDtx, testStoreConfig } from './support/dtx.js';
import { DtmGrpcClient } from './support/grpc-busi.js';
import { call } from './support/http.js';
import { waitFor } from './support/poll.js';
import { gidFor } from './support/trans.js';
import { GrpcWorkflowHost, HttpWorkflowHost } from './support/workflow-host.js';

// Workflow mode on the server (spec §2.8, §4.5, §6.8): a real dtx and a real workflow host written here, which
// speaks DTM's workflow client protocol by hand over HTTP and gRPC. The server keeps the steps and the outcome,
// and resumes a workflow left unfinished through the host's resume endpoint; dtx's rules on top of DTM's: a
// duplicate identical record is accepted, a conflicting one refused (HTTP 422, gRPC ALREADY_EXISTS), a resume call
// is leased like any pass and backed off on failure, and the gRPC reply carries the result.

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** Stores the HTTP scenarios run on: DTX_TEST_STORE's (SQLite by default), and the in-memory one beside SQLite. */
const stores: { name: string; store?: () => MemoryStore }[] = process.env.DTX_TEST_STORE
  ? [{ name: process.env.DTX_TEST_STORE }]
  : [{ name: 'sqlite' }, { name: 'memory', store: () => new MemoryStore() }];

for (const s of stores) {
  describe(`workflow over HTTP (${s.name} store)`, () => {
    let dtx: TestDtx;
    let host: HttpWorkflowHost;
    before(async () => {
      dtx = await startTestDtx({}, s.store ? { store: s.store() } : {});
      host = await new HttpWorkflowHost(dtx.api).start();
    });
    after(async () => {
      await host.stop();
      await dtx.stop();
    });
    const post = (route: string, body: unknown) => call('POST', `${dtx.api}/${route}`, body);
    const prepare = (gid: string, extra: Record<string, unknown> = {}) =>
      post('prepareWorkflow', {
        gid,
        trans_type: 'workflow',
        protocol: 'http',
        custom_data: JSON.stringify({ name: 'transfer', data: b64('30') }),
        query_prepared: host.resumeUrl,
        ...extra,
      });
    const register = (gid: string, branchId: string, op: string, status: string, data: string) =>
      post('registerBranch', { gid, trans_type: 'workflow', branch_id: branchId, op, status, data });
    const submit = (gid: string, extra: Record<string, string>) =>
      post('submit', { gid, trans_type: 'workflow', req_extra: extra });

    it('success: steps and result are recorded; prepareWorkflow then answers the stored outcome', async () => {
      const gid = gidFor('wf-ok');
      const out = await host.run(gid, Buffer.from('30'));
      assert.deepEqual(out, { status: 'succeed', result: Buffer.from('moved 30') });
      const q = await dtx.query(gid);
      assert.equal(q.transaction.status, 'succeed');
      assert.equal(q.transaction.trans_type, 'workflow');
      assert.equal(q.transaction.result, b64('moved 30'));
      assert.ok(q.transaction.finish_time);
      assert.deepEqual(
        q.branches.map((b: any) => [b.branch_id, b.op, b.status, Buffer.from(b.bin_data, 'base64').toString()]),
        [
          ['01', 'action', 'succeed', 'debit done'],
          ['02', 'action', 'succeed', 'credit done'],
        ],
      );
      // DTM's reply shape: strings; bin_data and result base64; the steps in the order recorded
      const again = await prepare(gid);
      assert.equal(again.status, 200, again.text);
      assert.equal(again.json.transaction.gid, gid);
      assert.equal(again.json.transaction.status, 'succeed');
      assert.equal(again.json.transaction.result, b64('moved 30'));
      assert.deepEqual(
        again.json.progresses.map((p: any) => [p.branch_id, p.op, p.status, p.bin_data]),
        [
          ['01', 'action', 'succeed', b64('debit done')],
          ['02', 'action', 'succeed', b64('credit done')],
        ],
      );
      // re-running the host replays nothing: it reads the outcome
      assert.deepEqual(await host.run(gid, Buffer.from('30')), { status: 'succeed', result: Buffer.from('moved 30') });
      assert.deepEqual(
        host.executed.filter((e) => e.startsWith(gid)),
        [`${gid} debit`, `${gid} credit`],
      );
    });

    it('a new workflow answers prepared with no progress; the cron never times it out', async () => {
      const gid = gidFor('wf-new');
      const r = await prepare(gid);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.dtm_result, 'SUCCESS');
      assert.equal(r.json.transaction.status, 'prepared');
      assert.equal(r.json.transaction.custom_data, JSON.stringify({ name: 'transfer', data: b64('30') }));
      assert.deepEqual(r.json.progresses, []);
      // a week later, with the host absent: still prepared (a failed resume, not a timeout)
      await host.stop();
      try {
        await dtx.cronFor(gid, 7 * 24 * 3600);
      } finally {
        await host.start();
      }
      const q = await dtx.query(gid);
      assert.equal(q.transaction.status, 'prepared');
      assert.equal(q.transaction.failed_attempts, 1);
      await submit(gid, { status: 'failed', rollback_reason: 'given up', result: '' });
    });

    it('failure: the failed step is recorded, the done one compensated, the workflow failed with its reason', async () => {
      const gid = gidFor('wf-fail');
      host.plans.set(gid, { failAt: 'credit' });
      const out = await host.run(gid, Buffer.from('30'));
      assert.deepEqual(out, { status: 'failed', reason: 'credit refused' });
      const q = await dtx.query(gid);
      assert.equal(q.transaction.status, 'failed');
      assert.equal(q.transaction.rollback_reason, 'credit refused');
      assert.ok(q.transaction.rollback_time);
      assert.deepEqual(
        q.branches.map((b: any) => `${b.branch_id} ${b.op} ${b.status}`),
        ['01 action succeed', '02 action failed', '01 rollback succeed'],
      );
      const again = await prepare(gid);
      assert.equal(again.json.transaction.status, 'failed');
      assert.equal(again.json.transaction.rollback_reason, 'credit refused');
    });

    it('resume: a host absent when the cron calls is backed off; once back, it is resumed and finishes', async () => {
      const gid = gidFor('wf-resume');
      host.plans.set(gid, { crashBefore: 'credit' });
      assert.deepEqual(await host.run(gid, Buffer.from('30')), { status: 'crashed' });
      host.plans.delete(gid);
      await host.stop();
      let q: any;
      try {
        await dtx.cronFor(gid);
        q = await dtx.query(gid);
        assert.equal(q.transaction.status, 'prepared');
        assert.equal(q.transaction.failed_attempts, 1);
        assert.match(q.transaction.last_error, /ECONNREFUSED|connect/i);
        assert.equal(q.transaction.next_cron_interval, 20); // RetryInterval 10, doubled
        await dtx.cronFor(gid);
        q = await dtx.query(gid);
        assert.equal(q.transaction.failed_attempts, 2);
        assert.equal(q.transaction.next_cron_interval, 40);
      } finally {
        await host.start();
      }
      await dtx.cronFor(gid);
      q = await dtx.query(gid);
      assert.equal(q.transaction.status, 'succeed');
      assert.equal(q.transaction.result, b64('moved 30'));
      const [r] = host.resumesOf(gid);
      assert.deepEqual(r, {
        gid,
        transType: 'workflow',
        branchId: '00',
        op: 'transfer',
        method: 'POST',
        input: Buffer.from('30'),
      });
      // the step recorded before the crash was replayed, not executed again
      assert.deepEqual(
        host.executed.filter((e) => e.startsWith(gid)),
        [`${gid} debit`, `${gid} credit`],
      );
    });

    it('resume of a workflow without input is a GET', async () => {
      const gid = gidFor('wf-get');
      const r = await post('prepareWorkflow', {
        gid,
        trans_type: 'workflow',
        custom_data: JSON.stringify({ name: 'transfer', data: null }),
        query_prepared: host.resumeUrl,
      });
      assert.equal(r.status, 200, r.text);
      await dtx.cronFor(gid);
      assert.equal(await dtx.status(gid), 'succeed');
      const [c] = host.resumesOf(gid);
      assert.equal(c?.method, 'GET');
      assert.equal(c?.input.length, 0);
      assert.equal((await dtx.query(gid)).transaction.result, b64('moved '));
    });

    it('a resume answered 200 while the workflow is still prepared is a failed attempt', async () => {
      const gid = gidFor('wf-nosubmit');
      host.plans.set(gid, { crashBefore: 'debit' });
      host.crashStatus = 200;
      await prepare(gid);
      try {
        await dtx.cronFor(gid);
      } finally {
        host.crashStatus = 500;
      }
      const q = await dtx.query(gid);
      assert.equal(q.transaction.status, 'prepared');
      assert.equal(q.transaction.failed_attempts, 1);
      assert.match(q.transaction.last_error, /still prepared/);
      host.plans.delete(gid);
      await dtx.cronFor(gid);
      assert.equal(await dtx.status(gid), 'succeed');
    });

    it('registerBranch: an identical duplicate is accepted; a conflicting one, or one too late, is refused (422)', async () => {
      const gid = gidFor('wf-reg');
      assert.equal((await prepare(gid)).status, 200);
      assert.equal((await register(gid, '01', 'action', 'succeed', 'abc')).status, 200);
      const dup = await register(gid, '01', 'action', 'succeed', 'abc');
      assert.equal(dup.status, 200, dup.text);
      assert.deepEqual(dup.json, { dtm_result: 'SUCCESS' });
      const otherData = await register(gid, '01', 'action', 'succeed', 'abd');
      assert.equal(otherData.status, 422, otherData.text);
      assert.match(
        otherData.json.message,
        /step 01 \(action\) of workflow .* is recorded already as succeed with other data/,
      );
      assert.doesNotMatch(otherData.text, /FAILURE/);
      const otherStatus = await register(gid, '01', 'action', 'failed', 'abc');
      assert.equal(otherStatus.status, 422);
      assert.match(otherStatus.json.message, /recorded already as succeed/);
      // another op of the same branch is another record
      assert.equal((await register(gid, '01', 'rollback', 'succeed', '')).status, 200);
      const unknown = await register(gidFor('wf-none'), '01', 'action', 'succeed', 'x');
      assert.equal(unknown.status, 422);
      assert.match(unknown.json.message, /no workflow with gid/);
      assert.equal((await submit(gid, { status: 'failed', rollback_reason: 'r', result: '' })).status, 200);
      // a replaying client may resend the failure with another reason: a success, the first reason stays
      assert.equal((await submit(gid, { status: 'failed', rollback_reason: ' FAILURE', result: '' })).status, 200);
      assert.equal((await dtx.query(gid)).transaction.rollback_reason, 'r');
      const late = await register(gid, '02', 'action', 'succeed', 'x');
      assert.equal(late.status, 422);
      assert.match(late.json.message, /is failed: no step can be recorded/);
      assert.deepEqual(
        (await dtx.query(gid)).branches.map((b: any) => `${b.branch_id} ${b.op} ${b.status} ${b.bin_data ?? ''}`),
        [`01 action succeed ${b64('abc')}`, '01 rollback succeed '],
      );
      // a workflow step for a gid of another mode
      const tcc = gidFor('wf-tcc');
      await post('prepare', { gid: tcc, trans_type: 'tcc' });
      const wrong = await register(tcc, '01', 'action', 'succeed', 'x');
      assert.equal(wrong.status, 422);
      assert.match(wrong.json.message, /belongs to a tcc transaction/);
    });

    it('concurrent records of one step: identical ones all succeed; of different ones exactly one wins', async () => {
      const gid = gidFor('wf-reg-race');
      await prepare(gid);
      const same = await Promise.all([1, 2, 3].map(() => register(gid, '01', 'action', 'succeed', 'same')));
      assert.deepEqual(
        same.map((r) => r.status),
        [200, 200, 200],
      );
      const diff = await Promise.all(['a', 'b'].map((d) => register(gid, '02', 'action', 'succeed', d)));
      assert.deepEqual(diff.map((r) => r.status).sort(), [200, 422]);
      const rows = (await dtx.query(gid)).branches.map((b: any) => `${b.branch_id} ${b.op}`);
      assert.deepEqual(rows, ['01 action', '02 action']);
    });

    it('submit: the first outcome is kept; the same again is a success, another is refused (422)', async () => {
      const gid = gidFor('wf-submit');
      await prepare(gid);
      const first = await submit(gid, { status: 'succeed', rollback_reason: '', result: b64('out') });
      assert.equal(first.status, 200, first.text);
      assert.equal((await submit(gid, { status: 'succeed', rollback_reason: '', result: b64('out') })).status, 200);
      const failed = await submit(gid, { status: 'failed', rollback_reason: 'no', result: '' });
      assert.equal(failed.status, 422);
      assert.match(failed.json.message, /is succeed already: it cannot be submitted as failed/);
      const other = await submit(gid, { status: 'succeed', rollback_reason: '', result: b64('other') });
      assert.equal(other.status, 422);
      assert.match(other.json.message, /with another result/);
      const q = await dtx.query(gid);
      assert.equal(q.transaction.status, 'succeed');
      assert.equal(q.transaction.result, b64('out'));
      const none = await submit(gidFor('wf-nosuch'), { status: 'succeed', result: '' });
      assert.equal(none.status, 422);
      assert.match(none.json.message, /no workflow with gid/);
      // a prepareWorkflow of a gid that is no workflow
      const saga = gidFor('wf-saga');
      await post('prepare', { gid: saga, trans_type: 'tcc' });
      const notWf = await prepare(saga);
      assert.equal(notWf.status, 422);
      assert.match(notWf.json.message, /belongs to a tcc transaction, not a workflow/);
    });

    it('concurrent submits of different outcomes: exactly one wins, the other is refused', async () => {
      const gid = gidFor('wf-race');
      await prepare(gid);
      const rs = await Promise.all([
        submit(gid, { status: 'succeed', rollback_reason: '', result: b64('a') }),
        submit(gid, { status: 'failed', rollback_reason: 'b', result: '' }),
      ]);
      assert.deepEqual(rs.map((r) => r.status).sort(), [200, 422]);
      const won = rs[0]!.status === 200 ? 'succeed' : 'failed';
      assert.equal(await dtx.status(gid), won);
    });

    it('bad input: a 4xx naming the field', async () => {
      const gid = gidFor('wf-bad');
      const cd = (o: unknown) => JSON.stringify(o);
      const cases: [string, unknown, number, string | RegExp][] = [
        ['prepareWorkflow', { gid, trans_type: 'workflow' }, 400, /^custom_data: required for a workflow/],
        ['prepareWorkflow', { gid, trans_type: 'workflow', custom_data: 'x' }, 400, /^custom_data: expected the text/],
        [
          'prepareWorkflow',
          { gid, trans_type: 'workflow', custom_data: '[1]' },
          400,
          /^custom_data: expected the text/,
        ],
        [
          'prepareWorkflow',
          { gid, trans_type: 'workflow', custom_data: cd({ data: '' }) },
          400,
          /^custom_data\.name: required/,
        ],
        [
          'prepareWorkflow',
          { gid, trans_type: 'workflow', custom_data: cd({ name: 'n'.repeat(129) }) },
          400,
          'custom_data.name: longer than 128 characters',
        ],
        [
          'prepareWorkflow',
          { gid, trans_type: 'workflow', custom_data: cd({ name: 'tränsfer' }) },
          400,
          /^custom_data\.name: must be printable ASCII/,
        ],
        [
          'prepareWorkflow',
          { gid, trans_type: 'workflow', custom_data: cd({ name: 'transfer', data: 'not base64!' }) },
          400,
          /^custom_data\.data: expected standard base64/,
        ],
        [
          'prepareWorkflow',
          { gid, trans_type: 'workflow', custom_data: cd({ name: 'transfer', data: 42 }) },
          400,
          /^custom_data\.data: expected the base64 text/,
        ],
        [
          'prepareWorkflow',
          { gid, trans_type: 'saga', custom_data: cd({ name: 'transfer' }) },
          400,
          "trans_type: expected workflow for prepareWorkflow, got 'saga'",
        ],
        [
          'prepareWorkflow',
          { gid, trans_type: 'workflow', custom_data: cd({ name: 'transfer' }), query_prepared: 'ftp://x' },
          400,
          /^query_prepared: expected an http/,
        ],
        [
          'prepare',
          { gid, trans_type: 'workflow' },
          400,
          'trans_type: a workflow is created with prepareWorkflow, not prepare',
        ],
        [
          'submit',
          { gid, trans_type: 'workflow' },
          400,
          'req_extra.status: required for a workflow submit: succeed or failed',
        ],
        [
          'submit',
          { gid, trans_type: 'workflow', req_extra: { status: 'done' } },
          400,
          "req_extra.status: expected succeed or failed, got 'done'",
        ],
        [
          'submit',
          { gid, trans_type: 'workflow', req_extra: { status: 'succeed', result: '***' } },
          400,
          /^req_extra\.result: expected standard base64/,
        ],
        [
          'registerBranch',
          { gid, trans_type: 'workflow', branch_id: '01', op: 'compensate', status: 'succeed' },
          400,
          "op: expected one of action, commit, rollback, business for a workflow step, got 'compensate'",
        ],
        [
          'registerBranch',
          { gid, trans_type: 'workflow', branch_id: '01', op: 'action', status: 'ok' },
          400,
          "status: expected succeed or failed for a workflow step, got 'ok'",
        ],
        [
          'registerBranch',
          { gid, trans_type: 'workflow', op: 'action', status: 'succeed' },
          400,
          'branch_id: required',
        ],
      ];
      for (const [route, body, status, message] of cases) {
        const r = await post(route, body);
        assert.equal(r.status, status, `${route} ${JSON.stringify(body)}: ${r.text}`);
        if (typeof message === 'string') assert.equal(r.json.message, message);
        else assert.match(r.json.message, message);
      }
      assert.equal(await dtx.status(gid), ''); // nothing was stored
    });

    it('JSON-RPC: prepareWorkflow, registerBranch and submit, with the refusal code', async () => {
      const gid = gidFor('wf-rpc');
      const rpc = async (method: string, params: unknown) =>
        (await call('POST', `${dtx.base}/api/json-rpc`, { jsonrpc: '2.0', id: '1', method, params })).json;
      const p = await rpc('prepareWorkflow', {
        gid,
        trans_type: 'workflow',
        custom_data: JSON.stringify({ name: 'transfer', data: b64('1') }),
      });
      assert.equal(p.error, null);
      assert.equal(p.result.transaction.status, 'prepared');
      const reg = { gid, trans_type: 'workflow', branch_id: '01', op: 'action', status: 'succeed', data: 'x' };
      assert.equal((await rpc('registerBranch', reg)).error, null);
      const conflict = await rpc('registerBranch', { ...reg, data: 'y' });
      assert.equal(conflict.error.code, -32022);
      assert.equal(
        (await rpc('submit', { gid, trans_type: 'workflow', req_extra: { status: 'succeed' } })).error,
        null,
      );
      assert.equal(await dtx.status(gid), 'succeed');
    });
  });
}

describe('workflow: a resume call is leased like any pass', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dtx-wf-'));
  const shared = testStoreConfig(dir);
  let a: TestDtx;
  let b: TestDtx;
  let host: HttpWorkflowHost;
  before(async () => {
    a = await startTestDtx({ Store: shared });
    b = await startTestDtx({ Store: shared });
    host = await new HttpWorkflowHost(a.api).start();
  });
  after(async () => {
    await host.stop();
    await b?.server.stop();
    await a?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('no second resume call while one runs, from this instance or another on the same store', async () => {
    const gid = gidFor('wf-lease');
    // a resume call may take up to 20 s (its request_timeout): longer than RetryInterval (10 s)
    host.prepareExtra = { request_timeout: 20 };
    host.plans.set(gid, { crashBefore: 'debit' });
    assert.deepEqual(await host.run(gid, Buffer.from('5')), { status: 'crashed' });
    host.plans.delete(gid);
    let release!: () => void;
    host.hold = new Promise<void>((r) => {
      release = r;
    });
    const first = a.cronFor(gid);
    await waitFor('the resume call to arrive', () => host.inFlight === 1);
    // this instance, looking 3 minutes ahead, leases it again: its pass is still on it, nothing is called
    assert.equal(await a.cronOnce(0, 180), gid);
    // another instance looking 15 s ahead: a lease of RetryInterval would be over by then, the pass's is not
    assert.equal(await b.cronOnce(0, 15), '');
    assert.equal(host.resumesOf(gid).length, 1);
    release();
    host.hold = undefined;
    await first;
    assert.equal(await a.status(gid), 'succeed');
    assert.equal(host.maxInFlight, 1);
    assert.equal(host.resumesOf(gid).length, 1);
  });

  it('metrics label the resume call op "workflow", never the workflow name', async () => {
    const gid = gidFor('wf-metrics');
    host.prepareExtra = {};
    host.plans.set(gid, { crashBefore: 'debit' });
    await host.run(gid, Buffer.from('5'));
    host.plans.delete(gid);
    await a.cronFor(gid);
    assert.equal(await a.status(gid), 'succeed');
    const r = await call('GET', `${a.base}/api/metrics`);
    assert.equal(r.status, 200);
    assert.match(
      r.text,
      /dtm_branch_process_total\{model="workflow",branchid="00",branchtype="workflow",status="ok"\} [1-9]/,
    );
    assert.match(
      r.text,
      /dtx_branch_call_duration_seconds_count\{trans_type="workflow",op="workflow",protocol="http"\} [1-9]/,
    );
    assert.doesNotMatch(r.text, /op="transfer"/);
    assert.match(r.text, /dtx_transactions_finished_total\{[^}]*trans_type="workflow"/);
  });
});

describe('workflow: the step records of one workflow are bounded (Limits.MaxSteps)', () => {
  let dtx: TestDtx;
  before(async () => {
    dtx = await startTestDtx({ Limits: { MaxSteps: 3 } });
  });
  after(async () => dtx.stop());

  it('a record past the limit is refused with 413 naming it; a duplicate of a stored one still succeeds', async () => {
    const gid = gidFor('wf-limit');
    const post = (route: string, body: unknown) => call('POST', `${dtx.api}/${route}`, body);
    await post('prepareWorkflow', { gid, trans_type: 'workflow', custom_data: JSON.stringify({ name: 'loop' }) });
    const reg = (id: string) =>
      post('registerBranch', { gid, trans_type: 'workflow', branch_id: id, op: 'action', status: 'succeed', data: id });
    for (const id of ['01', '02', '03']) assert.equal((await reg(id)).status, 200);
    const over = await reg('04');
    assert.equal(over.status, 413, over.text);
    assert.match(
      over.json.message,
      /^branch_id: workflow .* has 3 step records, the most Limits\.MaxSteps \(3\) allows$/,
    );
    assert.equal((await reg('03')).status, 200);
    assert.equal((await dtx.query(gid)).branches.length, 3);
  });
});

describe('workflow over gRPC', () => {
  let dtx: TestDtx;
  let dtm: DtmGrpcClient;
  let host: GrpcWorkflowHost;
  before(async () => {
    dtx = await startTestDtx();
    dtm = new DtmGrpcClient(dtx.grpc);
    host = await new GrpcWorkflowHost(dtm).start();
  });
  after(async () => {
    await host.stop();
    dtm.close();
    await dtx.stop();
  });

  it('success: PrepareWorkflow answers the steps, and the result (which DTM leaves empty)', async () => {
    const gid = gidFor('gwf-ok');
    assert.deepEqual(await host.run(gid, Buffer.from([0, 1, 2, 255])), {
      status: 'succeed',
      result: Buffer.concat([Buffer.from('moved '), Buffer.from([0, 1, 2, 255])]),
    });
    const r = await dtm.call<any>('PrepareWorkflow', {
      Gid: gid,
      TransType: 'workflow',
      CustomedData: JSON.stringify({ name: 'transfer', data: b64('x') }),
      QueryPrepared: host.resumeUrl,
    });
    assert.equal(r.Transaction.Gid, gid);
    assert.equal(r.Transaction.Status, 'succeed');
    assert.equal(
      r.Transaction.Result,
      Buffer.concat([Buffer.from('moved '), Buffer.from([0, 1, 2, 255])]).toString('base64'),
    );
    assert.deepEqual(
      r.Progresses.map((p: any) => [p.BranchID, p.Op, p.Status, Buffer.from(p.BinData).toString()]),
      [
        ['01', 'action', 'succeed', 'debit done'],
        ['02', 'action', 'succeed', 'credit done'],
      ],
    );
    assert.equal((await dtx.query(gid)).transaction.protocol, 'grpc');
  });

  it('resume: Execute with WorkflowData and the dtm metadata, once the host is back', async () => {
    const gid = gidFor('gwf-resume');
    host.plans.set(gid, { crashBefore: 'credit' });
    assert.deepEqual(await host.run(gid, Buffer.from('input bytes')), { status: 'crashed' });
    host.plans.delete(gid);
    await host.stop();
    try {
      await dtx.cronFor(gid);
      const q = await dtx.query(gid);
      assert.equal(q.transaction.status, 'prepared');
      assert.equal(q.transaction.failed_attempts, 1);
      assert.match(q.transaction.last_error, /UNAVAILABLE|Unavailable|14/);
    } finally {
      await host.start();
    }
    // the channel to the host reconnects within its capped backoff: polled, not waited for
    await waitFor(
      'the workflow to be resumed',
      async () => {
        await dtx.cronFor(gid, 0, 24 * 3600);
        return (await dtx.status(gid)) === 'succeed';
      },
      20_000,
    );
    const [c] = host.resumesOf(gid);
    assert.deepEqual(c, {
      gid,
      transType: 'workflow',
      branchId: '00',
      op: 'transfer',
      method: 'grpc',
      input: Buffer.from('input bytes'),
    });
    assert.equal(host.metadata.at(-1)?.['dtm-dtm'], '');
    assert.deepEqual(
      host.executed.filter((e) => e.startsWith(gid)),
      [`${gid} debit`, `${gid} credit`],
    );
  });

  it('refusals are ALREADY_EXISTS: a conflicting step, a late step, another outcome', async () => {
    const gid = gidFor('gwf-refuse');
    await dtm.call('PrepareWorkflow', {
      Gid: gid,
      TransType: 'workflow',
      CustomedData: JSON.stringify({ name: 'transfer', data: '' }),
      QueryPrepared: host.resumeUrl,
    });
    const step = (payload: string, status = 'succeed') => ({
      Gid: gid,
      TransType: 'workflow',
      BranchID: '01',
      Data: { op: 'action', status },
      BusiPayload: Buffer.from(payload),
    });
    await dtm.call('RegisterBranch', step('a'));
    await dtm.call('RegisterBranch', step('a')); // identical: accepted
    const conflict = await dtm.error('RegisterBranch', step('b'));
    assert.equal(conflict.code, GrpcStatus.ALREADY_EXISTS);
    assert.match(conflict.details, /recorded already as succeed with other data/);
    const submit = (status: string) => ({ Gid: gid, TransType: 'workflow', ReqExtra: { status, result: '' } });
    await dtm.call('Submit', submit('failed'));
    await dtm.call('Submit', submit('failed'));
    const other = await dtm.error('Submit', submit('succeed'));
    assert.equal(other.code, GrpcStatus.ALREADY_EXISTS);
    const late = await dtm.error('RegisterBranch', { ...step('c'), BranchID: '02' });
    assert.equal(late.code, GrpcStatus.ALREADY_EXISTS);
    const bad = await dtm.error('RegisterBranch', { ...step('c'), Data: { op: 'action', status: 'maybe' } });
    assert.equal(bad.code, GrpcStatus.INVALID_ARGUMENT);
    assert.equal(bad.details, "Data.status: expected succeed or failed for a workflow step, got 'maybe'");
    const badName = await dtm.error('PrepareWorkflow', {
      Gid: gidFor('gwf-bad'),
      TransType: 'workflow',
      CustomedData: JSON.stringify({ data: '' }),
    });
    assert.equal(badName.code, GrpcStatus.INVALID_ARGUMENT);
    assert.match(badName.details, /^CustomedData\.name: required/);
  });
});
