// The layering of packages/server/src, read from the source imports (docs/architecture.md):
// - core/ imports only core/, util/ and packages; core/ports.ts alone may also reach observe/ (a leaf) — so the
//   core never depends on store/, branch/, api/ or observe/ except through its ports;
// - observe/ and util/ are leaves: they import nothing of the server but themselves (util/ too for observe/);
// - config.ts is read by server.ts and cli.ts only (index.ts re-exports it as the package's public face);
// - the files of branch/ import each other without a cycle.
// Every rule is checked on the real graph, and, so that a rule that can no longer fail is noticed, on a synthetic
// graph that breaks it.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** File (path relative to src/, `/`-separated) → what it imports: relative paths of src files, or package names. */
type ImportGraph = Map<string, string[]>;

/** `import … from '…'`, `export … from '…'` and `import '…'` at the start of a line (so not inside a comment). */
const STATIC_IMPORT = /^[ \t]*(?:import|export)\s+(?:type\s+)?(?:[\w$*{}\s,]+?\s+from\s+)?['"]([^'"\n]+)['"]/gm;
/** `import('…')`: a module loaded on demand is a dependency too. */
const DYNAMIC_IMPORT = /\bimport\(\s*['"]([^'"\n]+)['"]\s*\)/g;

/** The specifiers a source text imports, in order of appearance. */
function specifiersOf(text: string): string[] {
  const out: string[] = [];
  for (const re of [STATIC_IMPORT, DYNAMIC_IMPORT]) for (const m of text.matchAll(re)) out.push(m[1]!);
  return out;
}

function tsFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) tsFiles(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The import graph of a source tree: relative specifiers resolved to the .ts files they name. */
function readGraph(root: string): ImportGraph {
  const files = tsFiles(root).map((f) => relative(root, f).split('\\').join('/'));
  const known = new Set(files);
  const graph: ImportGraph = new Map();
  for (const file of files) {
    const deps: string[] = [];
    for (const spec of specifiersOf(readFileSync(join(root, file), 'utf8'))) {
      if (!spec.startsWith('.')) {
        deps.push(spec);
        continue;
      }
      const target = posix.normalize(posix.join(posix.dirname(file), spec)).replace(/\.js$/, '.ts');
      assert.ok(known.has(target), `${file} imports '${spec}', which is no source file (${target})`);
      deps.push(target);
    }
    graph.set(file, deps);
  }
  return graph;
}

const isPackage = (dep: string) => !dep.endsWith('.ts');
const under = (dir: string) => (f: string) => f.startsWith(`${dir}/`);

/** Imports from `from` files to targets the rule does not allow, as `file → target` lines. */
function disallowed(
  graph: ImportGraph,
  from: (file: string) => boolean,
  allowed: (dep: string, file: string) => boolean,
): string[] {
  const out: string[] = [];
  for (const [file, deps] of graph) {
    if (!from(file)) continue;
    for (const dep of deps) if (!isPackage(dep) && !allowed(dep, file)) out.push(`${file} → ${dep}`);
  }
  return out;
}

/** The cycles (strongly connected components of more than one file, or a file importing itself) among `files`. */
function cycles(graph: ImportGraph, files: (file: string) => boolean): string[][] {
  const nodes = [...graph.keys()].filter(files);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!files(w) || !graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort());
  };
  for (const v of nodes) if (!index.has(v)) visit(v);
  return out;
}

/** Every rule of the layering, each with the offending imports (empty when it holds). */
function layeringProblems(graph: ImportGraph): Record<string, string[]> {
  const leaf = (dir: string, also: string[] = []) =>
    disallowed(graph, under(dir), (dep) => under(dir)(dep) || also.some((d) => under(d)(dep)));
  return {
    'core/ imports only core/, util/ and packages (core/ports.ts may reach observe/)': disallowed(
      graph,
      under('core'),
      (dep, file) => under('core')(dep) || under('util')(dep) || (file === 'core/ports.ts' && under('observe')(dep)),
    ),
    'observe/ is a leaf (observe/, util/ and packages only)': leaf('observe', ['util']),
    'util/ is a leaf (util/ and packages only)': leaf('util'),
    'config.ts is imported by server.ts, cli.ts and index.ts only': disallowed(
      graph,
      () => true,
      (dep, file) => dep !== 'config.ts' || ['server.ts', 'cli.ts', 'index.ts'].includes(file),
    ),
    'no import cycle among the files of branch/': cycles(graph, under('branch')).map((c) => c.join(' ⇄ ')),
  };
}

describe('the import graph of packages/server/src', () => {
  const graph = readGraph(SRC);

  it('is read: every core file is found with its imports, multi-line and on-demand ones included', () => {
    assert.ok(graph.size > 50, `only ${graph.size} files read`);
    // a multi-line named import and a type-only one
    assert.ok(graph.get('core/pass.ts')?.includes('core/ports.ts'), 'core/pass.ts → core/ports.ts not seen');
    // an on-demand import()
    assert.ok(
      graph.get('store/open-store.ts')?.includes('store/redis/redis-store.ts'),
      'the import() of the Redis store not seen',
    );
    assert.ok(graph.get('server.ts')?.includes('config.ts'));
  });

  for (const [rule, problems] of Object.entries(layeringProblems(graph))) {
    it(`holds: ${rule}`, () => {
      assert.deepEqual(problems, [], `${rule}:\n  ${problems.join('\n  ')}`);
    });
  }

  it('reports every kind of violation (self-check on a synthetic graph)', () => {
    const bad: ImportGraph = new Map([
      ['core/pass.ts', ['core/ports.ts', 'store/store.ts', '@dtx/protocol']],
      ['core/ports.ts', ['observe/logger.ts', 'branch/caller.ts']],
      ['core/saga.ts', ['observe/logger.ts', 'util/error-message.ts']],
      ['observe/logger.ts', ['core/model.ts', 'util/error-message.ts', 'node:fs']],
      ['util/error-message.ts', ['api/render.ts']],
      ['store/store.ts', ['config.ts']],
      ['server.ts', ['config.ts']],
      ['branch/a.ts', ['branch/b.ts']],
      ['branch/b.ts', ['branch/c.ts']],
      ['branch/c.ts', ['branch/a.ts']],
      ['branch/d.ts', ['branch/d.ts']],
      ['branch/e.ts', ['branch/a.ts']],
    ]);
    const p = Object.values(layeringProblems(bad));
    assert.deepEqual(p, [
      ['core/pass.ts → store/store.ts', 'core/ports.ts → branch/caller.ts', 'core/saga.ts → observe/logger.ts'],
      ['observe/logger.ts → core/model.ts'],
      ['util/error-message.ts → api/render.ts'],
      ['store/store.ts → config.ts'],
      ['branch/a.ts ⇄ branch/b.ts ⇄ branch/c.ts', 'branch/d.ts'],
    ]);
    // and the same rules on a graph that keeps them report nothing
    const good: ImportGraph = new Map([
      ['core/pass.ts', ['core/ports.ts', 'util/error-message.ts']],
      ['core/ports.ts', ['observe/logger.ts', 'core/model.ts']],
      ['observe/logger.ts', ['util/error-message.ts']],
      ['store/store.ts', ['core/ports.ts']],
      ['cli.ts', ['config.ts']],
      ['branch/a.ts', ['branch/b.ts', 'core/ports.ts']],
      ['branch/b.ts', ['core/ports.ts']],
    ]);
    assert.deepEqual(Object.values(layeringProblems(good)).flat(), []);
  });

  it('finds the imports of a source text, and none in comments', () => {
    const text = [
      "import { a,\n  type B } from './one.js';",
      "import type { C } from '../two.js';",
      "export * from './three.js';",
      "export { d } from './four.js';",
      "import './five.js';",
      ' * import { x } from "./in-a-comment.js";',
      "const m = await import('./six.js');",
      "export const url = 'from ./not-an-import.js';",
    ].join('\n');
    assert.deepEqual(specifiersOf(text), ['./one.js', '../two.js', './three.js', './four.js', './five.js', './six.js']);
  });
});
