// A node:test reporter used by scripts/test.mjs next to the TAP one: writes one JSON line per failed test
// (file, the test's path of names, the error), so the runner can repeat every failure at the very end of its
// output, where a reader of a long CI log (or of its tail) looks first.
const MAX_ERROR = 4000;

export default async function* failures(source) {
  const paths = new Map(); // per file: the names of the enclosing suites by nesting level, from test:start
  for await (const event of source) {
    const d = event.data;
    const path = paths.get(d?.file) ?? [];
    paths.set(d?.file, path);
    if (event.type === 'test:start') {
      path.length = d.nesting;
      path.push(d.name);
    } else if (event.type === 'test:fail') {
      const err = d.details?.error;
      // A suite that fails only because a test in it failed adds nothing: that test has its own line.
      if (err?.failureType === 'subtestsFailed') continue;
      const names = [...path.slice(0, d.nesting), d.name];
      const cause = err?.cause ?? err;
      const text = String(cause?.stack ?? cause ?? 'failed')
        .split('\n')
        .filter(
          (line) => !/^\s+at .*\(?node:/.test(line) && !/^\s+at (new )?(Array\.map|Promise|SafePromise) /.test(line),
        )
        .join('\n')
        .slice(0, MAX_ERROR);
      yield `${JSON.stringify({ file: d.file ?? null, test: names.join(' > '), error: text })}\n`;
    }
  }
}
