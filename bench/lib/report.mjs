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

/** Coordinator scenario and baseline of each transport. */
const PAIRS = [
  ['http', 'saga', 'baseline'],
  ['grpc', 'grpc-saga', 'grpc-baseline'],
];

/** One line per concurrency level and transport: the saga figures and the ratio to its baseline. */
export function summaryTable(levels) {
  const rows = [];
  for (const l of levels) {
    for (const [transport, saga, base] of PAIRS) {
      const s = l.scenarios[saga];
      if (!s) continue;
      rows.push([
        l.concurrency,
        transport,
        fmt(l.scenarios[base]?.tps),
        fmt(s.tps),
        fmt(s.p50, 2),
        fmt(s.p99, 2),
        s.errors,
        fmt(l.ratios?.[transport] ?? (transport === 'http' ? l.ratio : null), 3),
      ]);
    }
  }
  return table(
    ['concurrency', 'transport', 'baseline tx/s', 'saga tx/s', 'saga p50 ms', 'saga p99 ms', 'saga errors', 'ratio'],
    rows,
  );
}
