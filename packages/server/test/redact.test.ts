import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { renderTrans } from '../src/api/render.js';
import type { TransGlobal } from '../src/core/model.js';
import { HeaderRedactor } from '../src/core/redact.js';
import { replyExcerpt } from '../src/core/reply-excerpt.js';
import { Busi } from './support/busi.js';
import { DtxProcess, freePort, storeEnv, testStoreConfig } from './support/dtx.js';
import { call } from './support/http.js';
import { gidFor, sagaBody } from './support/trans.js';

describe('redaction of branch headers', () => {
  const r = HeaderRedactor.fromConfig('X-Api-Key, x-tenant-secret');

  it('masks the always-masked names and Redact.Headers, case-insensitively, in a copy', () => {
    const h = {
      AUTHORIZATION: 'Bearer a',
      Cookie: 'c',
      'proxy-authorization': 'p',
      'x-api-key': 'k',
      'X-Tenant-Secret': 's',
      Accept: 'x',
    };
    const out = r.headers(h);
    assert.deepEqual(out, {
      AUTHORIZATION: '***',
      Cookie: '***',
      'proxy-authorization': '***',
      'x-api-key': '***',
      'X-Tenant-Secret': '***',
      Accept: 'x',
    });
    assert.equal(h.AUTHORIZATION, 'Bearer a', 'the stored value stays real');
    const plain = { Accept: 'x' };
    assert.equal(r.headers(plain), plain);
  });

  it('masks branch_headers, the options text and ext_data.headers of a rendered transaction', () => {
    const opts = { branch_headers: { Authorization: 'Bearer zz9', 'X-Api-Key': 'kk7' }, wait_result: true };
    const t = {
      gid: 'g',
      transType: 'saga',
      status: 'submitted',
      options: JSON.stringify(opts),
      opts,
      extData: JSON.stringify({ headers: { Cookie: 'sess=cc5' } }),
    } as unknown as TransGlobal;
    const shown = JSON.stringify(renderTrans(t, undefined, r));
    for (const secret of ['zz9', 'kk7', 'cc5']) assert.ok(!shown.includes(secret), shown);
    const o = renderTrans(t, undefined, r);
    assert.deepEqual(o.branch_headers, { Authorization: '***', 'X-Api-Key': '***' });
    assert.equal(JSON.parse(o.options as string).wait_result, true);
    assert.equal(JSON.parse(o.ext_data as string).headers.Cookie, '***');
  });

  it('cuts a reason to 1 KiB of UTF-8 on a character boundary', () => {
    assert.equal(replyExcerpt('short'), 'short');
    const long = 'é'.repeat(2000);
    const cut = replyExcerpt(long);
    assert.ok(Buffer.byteLength(cut, 'utf8') <= 1024);
    assert.ok(cut.endsWith('…'));
    assert.ok(!cut.includes('\uFFFD'));
  });
});

describe('the store password never appears in logs or replies (PostgreSQL)', () => {
  const password = `pw-${randomBytes(8).toString('hex')}`;
  const role = `dtx_pw_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'dtx', password: 'dtx', database: 'dtx_test' });
  const busi = new Busi();

  before(async () => {
    await admin.connect();
    await admin.query(`CREATE ROLE ${role} LOGIN SUPERUSER PASSWORD '${password}'`);
    await busi.start();
  });
  after(async () => {
    await busi.stop();
    await admin.query(`DROP SCHEMA IF EXISTS ${role} CASCADE`);
    await admin.query(`DROP ROLE IF EXISTS ${role}`);
    await admin.end();
  });

  it('not in the start-up, debug, error logs, nor in query, all, version or error replies', async () => {
    const store = { ...testStoreConfig('', 'postgres'), User: role, Password: password, Schema: role };
    const dtx = new DtxProcess(await freePort(), { ...storeEnv(store), LOG_LEVEL: 'debug' });
    await dtx.start();
    try {
      const gid = gidFor('pw');
      busi.setOnce('TransIn', 'FAILURE');
      await call('POST', `${dtx.api}/submit`, { ...sagaBody(busi, gid), wait_result: true });
      const replies = [
        await call('GET', `${dtx.api}/query?gid=${gid}`),
        await call('GET', `${dtx.api}/all`),
        await call('GET', `${dtx.api}/version`),
        await call('POST', `${dtx.api}/submit`, '{bad'),
        await call('GET', `${dtx.api}/query?gid=`),
      ];
      assert.equal((replies[0]!.json as { transaction: { status: string } }).transaction.status, 'failed');
      for (const r of replies) assert.ok(!r.text.includes(password), r.text);
    } finally {
      await dtx.stop();
    }
    assert.match(dtx.output, /dtx started/);
    assert.ok(!dtx.output.includes(password), 'the password is in the log');
  });

  it('not in the log of a refused login either', async () => {
    const wrong = `${password}-wrong`;
    const store = { ...testStoreConfig('', 'postgres'), User: role, Password: wrong, Schema: role };
    const dtx = new DtxProcess(await freePort(), storeEnv(store));
    // a refused login stops the start: start() rejects once the process exited
    await assert.rejects(dtx.start(), /dtx exited/);
    assert.match(dtx.output, /password authentication failed|check Store.User and Store.Password/);
    assert.ok(!dtx.output.includes(wrong), dtx.output);
  });
});
