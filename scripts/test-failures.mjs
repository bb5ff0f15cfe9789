// A node:test reporter used by scripts/test.mjs next to the TAP one: writes one JSON line per failed test
// (file, the test's path of names, the error), so the runner can repeat every failure at the very end of its
// output, where a reader of a long CI log (or of its tail) looks first.
const MAX_ERROR = 4000;

export default async function* failures(source) {
  // The names of the enclosing suites by nesting level, from test:start. One stack serves all files: the runner
  // reports each file's tests together, and a test defined in a shared module (a conformance suite) reports
  // that module as its file, not the test file whose suite holds it.
  const path = [];
  for await (const event of source) {
    const d = event.data;
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
