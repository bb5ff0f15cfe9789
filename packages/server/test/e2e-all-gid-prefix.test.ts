import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Busi } from './support/busi.js';
import { startTestDtx, type TestDtx } from './support/dtx.js';
import { call } from './support/http.js';
import { gidFor, msgBody } from './support/trans.js';

// GET /api/dtmsvr/all?gidPrefix= (the admin list's gid filter) over HTTP, on the store of DTX_TEST_STORE.
describe('all: gidPrefix filter', () => {
  let dtx: TestDtx;
  let busi: Busi;
  const prefix = gidFor('gp');
  before(async () => {
    dtx = await startTestDtx();
    busi = await new Busi().start();
    for (const gid of [`${prefix}-a`, `${prefix}-b`, `${prefix}_c`, `x${prefix}`]) {
      assert.equal((await call('POST', `${dtx.api}/prepare`, msgBody(busi, gid))).status, 200);
    }
  });
  after(async () => {
    await dtx.stop();
    await busi.stop();
  });

  const list = async (q: string) => {
    const r = await call('GET', `${dtx.api}/all?${q}`);
    assert.equal(r.status, 200, r.text);
    return (r.json.transactions as { gid: string }[]).map((t) => t.gid).sort();
  };

  it('lists the gids that start with the prefix, with the other filters and paging', async () => {
    assert.deepEqual(await list(`gidPrefix=${encodeURIComponent(`${prefix}-`)}`), [`${prefix}-a`, `${prefix}-b`]);
    assert.deepEqual(await list(`gidPrefix=${encodeURIComponent(prefix)}`), [
      `${prefix}-a`,
      `${prefix}-b`,
      `${prefix}_c`,
    ]);
    assert.deepEqual(await list(`gidPrefix=${encodeURIComponent(`${prefix}%`)}`), [], '% is no wildcard');
    assert.deepEqual(await list(`gidPrefix=${encodeURIComponent(prefix)}&status=succeed`), []);
    const p1 = await call('GET', `${dtx.api}/all?gidPrefix=${encodeURIComponent(prefix)}&limit=2`);
    assert.equal(p1.json.transactions.length, 2);
    const p2 = await call(
      'GET',
      `${dtx.api}/all?gidPrefix=${encodeURIComponent(prefix)}&limit=2&position=${p1.json.next_position}`,
    );
    assert.equal(p2.json.transactions.length, 1);
    assert.equal(p2.json.next_position, '');
  });

  it('refuses a prefix longer than a gid or with control characters, naming the field', async () => {
    const long = await call('GET', `${dtx.api}/all?gidPrefix=${'a'.repeat(129)}`);
    assert.equal(long.status, 400);
    assert.match(long.json.message, /^gidPrefix: .*128/);
    const ctl = await call('GET', `${dtx.api}/all?gidPrefix=a%01b`);
    assert.equal(ctl.status, 400);
    assert.match(ctl.json.message, /^gidPrefix: .*control/);
    const twice = await call('GET', `${dtx.api}/all?gidPrefix=a&gidPrefix=b`);
    assert.equal(twice.status, 400);
    assert.match(twice.json.message, /gidPrefix/);
    assert.equal((await call('GET', `${dtx.base}/api/ping`)).status, 200, 'still serving');
  });
});
