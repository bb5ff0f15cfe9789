/**
 * Times between the core (epoch milliseconds) and SQL columns. dtx writes every time as UTC with
 * millisecond precision and passes it as a parameter, never as a literal formatted in the server's
 * local zone (DTM's way, spec §8.5).
 */

const p2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`);
const p3 = (n: number): string => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`);

/**
 * The text up to the seconds of the two seconds utcText rendered last: a write's times mostly fall in the current
 * second or in its next retry's (next_cron_time), so one slot alone would be replaced at every other call.
 */
let second0 = Number.NaN;
let prefix0 = '';
let second1 = Number.NaN;
let prefix1 = '';

/** `2026-01-01 00:00:00.123` in UTC (years 1000–9999). Twice as fast as Date#toISOString, on every write. */
function utcText(ms: number): string {
  const second = Math.floor(ms / 1000);
  const rest = p3(ms - second * 1000);
  if (second === second0) return prefix0 + rest;
  if (second !== second1) {
    const d = new Date(second * 1000);
    prefix1 = `${d.getUTCFullYear()}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())} ${p2(d.getUTCHours())}:${p2(
      d.getUTCMinutes(),
    )}:${p2(d.getUTCSeconds())}.`;
    second1 = second;
  }
  // the newest second to slot 0, the one before it to slot 1
  const prefix = prefix1;
  second1 = second0;
  prefix1 = prefix0;
  second0 = second;
  prefix0 = prefix;
  return prefix + rest;
}

/** `2026-01-01 00:00:00.123Z`: what PostgreSQL reads exactly into a timestamptz. */
export function toIsoUtc(ms: number): string {
  return `${utcText(ms)}Z`;
}

/** `2026-01-01 00:00:00.123`: a MySQL DATETIME(3) literal, in UTC (the zone dtx stores in). */
export function toMysqlDatetime(ms: number): string {
  return utcText(ms);
}

const TIME_RE =
  /^(\d{4,})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:(Z)|([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?)?$/;

/**
 * Parse a SQL time as the drivers return it in text form: PostgreSQL `2026-01-01 00:00:00.123+00`
 * (any offset) or MySQL `2026-01-01 00:00:00.123` (no offset: UTC). Sub-millisecond digits are dropped.
 * Returns epoch ms; throws on anything else, so that a changed DateStyle cannot silently corrupt times.
 */
export function parseSqlTime(text: string): number {
  const m = TIME_RE.exec(text);
  if (!m) throw new Error(`cannot parse a SQL time: '${text}'`);
  const frac = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  let ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), frac);
  if (m[9]) {
    const offsetS = Number(m[10]) * 3600 + Number(m[11] ?? 0) * 60 + Number(m[12] ?? 0);
    ms -= (m[9] === '-' ? -1 : 1) * offsetS * 1000;
  }
  return ms;
}

/** A nullable time column → epoch ms or undefined. */
export function optionalTime(v: unknown): number | undefined {
  if (v === null || v === undefined) return undefined;
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'number') return v;
  return parseSqlTime(String(v));
}

/** A time column the model requires (DTM rows may hold NULL there): NULL → 0. */
export function requiredTime(v: unknown): number {
  return optionalTime(v) ?? 0;
}
