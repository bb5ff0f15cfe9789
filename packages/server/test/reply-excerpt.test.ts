import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REPLY_EXCERPT_BYTES, replyExcerpt } from '../src/core/reply-excerpt.js';

describe('replyExcerpt (the stored last error)', () => {
  it('keeps a text of at most 1 KiB of UTF-8 as it is', () => {
    assert.equal(replyExcerpt(''), '');
    assert.equal(replyExcerpt('http status 503: down'), 'http status 503: down');
    const exact = 'é'.repeat(512); // 1024 bytes
    assert.equal(replyExcerpt(exact), exact);
  });

  it('cuts a longer one to at most 1 KiB on a character boundary, marked with an ellipsis', () => {
    for (const unit of ['x', 'é', '€', '😀']) {
      const text = `http status 500: ${unit.repeat(2000)}`;
      const out = replyExcerpt(text);
      const bytes = Buffer.byteLength(out);
      assert.ok(bytes <= REPLY_EXCERPT_BYTES, `${unit}: ${bytes} bytes`);
      assert.ok(bytes > REPLY_EXCERPT_BYTES - 8, `${unit}: ${bytes} bytes, not needlessly short`);
      assert.ok(out.endsWith('…'), unit);
      assert.ok(text.startsWith(out.slice(0, -1)), `${unit}: a prefix of the text`);
      assert.ok(!out.includes('\uFFFD'), `${unit}: no broken character`);
    }
  });
});
