/**
 * Samples of a Prometheus text exposition, by `name{label="value",...}` with the labels sorted by name (so a test
 * can name a sample without knowing the order the exporter prints them in).
 */
export function parseSamples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: [string, string][] = [];
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    for (let l = re.exec(m[3] ?? ''); l; l = re.exec(m[3] ?? '')) labels.push([l[1]!, l[2]!]);
    out.set(sampleKey(m[1]!, Object.fromEntries(labels)), Number(m[4]));
  }
  return out;
}

/** The key of one sample in {@link parseSamples}' map. */
export function sampleKey(name: string, labels: Record<string, string> = {}): string {
  const keys = Object.keys(labels).sort();
  return keys.length === 0 ? name : `${name}{${keys.map((k) => `${k}="${labels[k]}"`).join(',')}}`;
}

/** The metric names a scrape exposes (its `# TYPE` lines; histograms also as _bucket, _sum, _count). */
export function metricNames(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    out.add(m[1]!);
    if (m[2] === 'histogram' || m[2] === 'summary') for (const s of ['_bucket', '_sum', '_count']) out.add(m[1]! + s);
  }
  return out;
}
