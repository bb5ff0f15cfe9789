#!/usr/bin/env node
// Summarises .cpuprofile files or directories of them: node bench/profile-summary.mjs <file|dir>... [--top N] [--json]
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatProfileSummary, summariseProfiles } from './lib/cpuprofile.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' }, json: { type: 'boolean', default: false } },
});
if (!positionals.length) {
  console.error('usage: node bench/profile-summary.mjs <file.cpuprofile|dir>... [--top N] [--json]');
  process.exit(2);
}
const files = positionals.flatMap((p) =>
  statSync(p).isDirectory()
    ? readdirSync(p)
        .filter((f) => f.endsWith('.cpuprofile'))
        .map((f) => join(p, f))
    : [p],
);
const root = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const s = summariseProfiles(files, { top: Number(values.top), root });
console.log(values.json ? JSON.stringify(s, null, 2) : formatProfileSummary(s));
