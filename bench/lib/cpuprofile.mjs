// Summarises V8 .cpuprofile files (written by `node --cpu-prof`): self time per function and per origin
// (dtx package, npm dependency, node internals, GC), and inclusive time of dtx's own functions. Idle time
// is left out of the percentages (the profile also covers the baseline phases, when the server idles).
// Note: time spent in a synchronous native call (e.g. better-sqlite3's run(), which includes fsync)
// is charged to the JS function that made the call, so look at the inclusive list too.
import { readFileSync } from 'node:fs';

/**
 * @param {string[]} files .cpuprofile paths (several are merged)
 * @param {{ top?: number, root?: string }} [o] root: repository path, stripped from urls
 */
export function summariseProfiles(files, { top = 25, root = '' } = {}) {
  /** @type {Map<string, { fn: string, where: string, origin: string, self: number, total: number }>} */
  const byFn = new Map();
  /** @type {Map<string, number>} */
  const byOrigin = new Map();
  let totalUs = 0;

  for (const file of files) {
    const prof = JSON.parse(readFileSync(file, 'utf8'));
    /** node id → { key, parent } */
    const info = new Map();
    for (const n of prof.nodes) {
      const cf = n.callFrame;
      const fn = cf.functionName || '(anonymous)';
      const url = shortUrl(cf.url, root);
      const where = url ? `${url}:${cf.lineNumber + 1}` : '';
      const key = `${fn}\u0000${where}`;
      if (!byFn.has(key)) byFn.set(key, { fn, where, origin: originOf(fn, cf.url), self: 0, total: 0 });
      info.set(n.id, { key, parent: null });
    }
    for (const n of prof.nodes) for (const c of n.children ?? []) info.get(c).parent = n.id;

    const { samples = [], timeDeltas = [] } = prof;
    const selfUs = new Map();
    // timeDeltas[i] is the gap between samples i-1 and i; like Chrome DevTools, charge the gap that
    // follows a sample to that sample's node.
    for (let i = 0; i < samples.length; i++) {
      const d = Math.max(0, timeDeltas[i + 1] ?? 0);
      selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + d);
    }
    for (const [id, us] of selfUs) {
      const e = byFn.get(info.get(id).key);
      e.self += us;
      byOrigin.set(e.origin, (byOrigin.get(e.origin) ?? 0) + us);
      totalUs += us;
      // inclusive: once per distinct function on the stack (recursion is not double counted)
      const seen = new Set();
      for (let cur = id; cur !== null && cur !== undefined; cur = info.get(cur).parent) {
        const k = info.get(cur).key;
        if (seen.has(k)) continue;
        seen.add(k);
        byFn.get(k).total += us;
      }
    }
  }

  const busyUs = totalUs - (byOrigin.get('(idle)') ?? 0);
  const pct = (us) => Math.round((us / busyUs) * 1000) / 10;
  const row = (e, us) => ({ fn: e.fn, where: e.where, origin: e.origin, ms: Math.round(us / 1000), pct: pct(us) });
  const all = [...byFn.values()].filter((e) => e.origin !== '(idle)');
  byOrigin.delete('(idle)');
  return {
    files,
    totalMs: Math.round(totalUs / 1000),
    busyMs: Math.round(busyUs / 1000),
    byOrigin: [...byOrigin]
      .sort((a, b) => b[1] - a[1])
      .map(([origin, us]) => ({ origin, ms: Math.round(us / 1000), pct: pct(us) })),
    topSelf: all
      .filter((e) => e.self > 0)
      .sort((a, b) => b.self - a.self)
      .slice(0, top)
      .map((e) => row(e, e.self)),
    topInclusiveDtx: all
      .filter((e) => e.origin.startsWith('dtx:') && e.total > 0)
      .sort((a, b) => b.total - a.total)
      .slice(0, top)
      .map((e) => row(e, e.total)),
  };
}

function shortUrl(url, root) {
  if (!url) return '';
  let u = url.replace(/^file:\/\//, '');
  if (root && u.startsWith(root)) u = u.slice(root.length).replace(/^\//, '');
  const nm = u.lastIndexOf('node_modules/');
  return nm >= 0 ? u.slice(nm + 'node_modules/'.length) : u;
}

/** Buckets a frame: '(garbage collector)', '(idle)', '(program)', 'node:internal', 'npm:<pkg>', 'dtx:<pkg>'. */
function originOf(fn, url) {
  if (!url) return fn.startsWith('(') ? fn : '(native/builtin)';
  if (url.startsWith('node:')) return 'node:internal';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    const pkg = rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
    return pkg.startsWith('@dtx/') ? `dtx:${pkg.slice(5)}` : `npm:${pkg}`;
  }
  const m = /\/packages\/([^/]+)\//.exec(url);
  if (m) return `dtx:${m[1]}`;
  return 'other';
}

/** Plain-text rendering of a summary. */
export function formatProfileSummary(s) {
  const line = (f) => `  ${String(f.pct).padStart(5)} %  ${String(f.ms).padStart(7)} ms  ${f.fn}  ${f.where}`;
  const lines = [
    `CPU profile: ${s.totalMs} ms sampled, ${s.busyMs} ms of it busy (not idle), ${s.files.length} file(s); % of busy time`,
    '',
    'self time by origin:',
  ];
  for (const o of s.byOrigin)
    lines.push(`  ${String(o.pct).padStart(5)} %  ${String(o.ms).padStart(7)} ms  ${o.origin}`);
  lines.push('', 'top functions by self time:', ...s.topSelf.map(line));
  if (s.topInclusiveDtx.length) lines.push('', 'dtx functions by inclusive time:', ...s.topInclusiveDtx.map(line));
  return lines.join('\n');
}
