import { InputError } from './errors.js';

/**
 * What every text the stores keep as text (not bytes) must satisfy: no NUL (a PostgreSQL text value cannot
 * hold U+0000, so one would fail the write), no unpaired UTF-16 surrogate (it has no UTF-8 form: the drivers
 * would store U+FFFD instead, and the row would not match the value the caller sent), and the width of its
 * column. Payloads are bytes (bytea / blob) and may hold anything; they are not checked here.
 */
const BAD_TEXT = /\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Throw an InputError naming `field` when `v` holds NUL or an unpaired surrogate, or is longer than `max`. */
export function checkStoredText(v: string, field: string, max = Number.POSITIVE_INFINITY): string {
  if (v.length > max) throw new InputError(field, `longer than ${max} characters`);
  if (BAD_TEXT.test(v)) {
    throw new InputError(field, 'contains NUL (\\u0000) or an unpaired UTF-16 surrogate, which cannot be stored');
  }
  return v;
}
