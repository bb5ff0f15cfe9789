/** Go's RFC 3339 with the fraction's trailing zeros dropped, in UTC; undefined for 0, undefined and dates out of range. */
export function formatTime(ms: number | undefined): string | undefined {
  if (ms === undefined || ms === null || ms === 0) return undefined;
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return undefined; // beyond what a date can hold: omit rather than fail the reply
  const iso = d.toISOString();
  return iso.replace(/\.?0+Z$/, 'Z').replace(/\.Z$/, 'Z');
}
