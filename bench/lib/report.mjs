// Plain-text tables for the terminal.

/** Renders rows (arrays of cells) under headers; the first column is left-aligned, the rest right-aligned. */
export function table(headers, rows) {
  const cells = [headers, ...rows].map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c))));
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

const fmt = (v, digits = 1) => (v === null || v === undefined ? null : v.toFixed(digits));
const pctOf = (v) => (v === null || v === undefined ? null : `${Math.round(v)} %`);

/** Table of one concurrency level: one row per scenario. */
export function levelTable(level) {
  const rows = Object.entries(level.scenarios).map(([name, s]) => [
    name,
    s.ops,
    s.errors,
    fmt(s.tps),
    fmt(s.p50, 2),
    fmt(s.p99, 2),
    pctOf(s.cpu.serverPct),
    pctOf(s.cpu.benchPct),
    pctOf(s.cpu.othersPct),
    fmt(s.cpu.serverMsPerOp, 3),
  ]);
  return table(
    ['scenario', 'ops', 'errors', 'tx/s', 'p50 ms', 'p99 ms', 'srv cpu', 'bench cpu', 'other cpu', 'srv cpu ms/op'],
    rows,
  );
}

/** One line per concurrency level: the saga figures and the ratio. */
export function summaryTable(levels) {
  const rows = levels.map((l) => [
    l.concurrency,
    fmt(l.scenarios.baseline?.tps),
    fmt(l.scenarios.saga?.tps),
    fmt(l.scenarios.saga?.p50, 2),
    fmt(l.scenarios.saga?.p99, 2),
    l.scenarios.saga?.errors,
    fmt(l.ratio, 3),
  ]);
  return table(
    ['concurrency', 'baseline tx/s', 'saga tx/s', 'saga p50 ms', 'saga p99 ms', 'saga errors', 'ratio'],
    rows,
  );
}
