/**
 * `dtx init [dir] [--db sqlite|postgres]`: writes a starter project — a Fastify service with two branches on the
 * sub-transaction barrier, a saga that commits and one that rolls back, their tests and a README — from the
 * template shipped in this package (`templates/starter`).
 *
 * @module
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The databases a starter can use for its accounts and barrier table. */
export const STARTER_DBS = ['sqlite', 'postgres'] as const;
export type StarterDb = (typeof STARTER_DBS)[number];

const TEMPLATE = fileURLToPath(new URL('../../templates/starter/', import.meta.url));
const OWN_PACKAGE = fileURLToPath(new URL('../../package.json', import.meta.url));

interface OwnManifest {
  version: string;
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
}

/** `dtx init` cannot write the starter (the directory is not empty, an unknown `--db`); the CLI prints its message. */
export class InitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InitError';
  }
}

/** What {@link initProject} wrote. */
export interface InitResult {
  dir: string;
  files: string[];
}

/**
 * Writes the starter into `dir` (created if missing).
 * @throws InitError when `dir` exists and is not an empty directory, or `db` is not one of {@link STARTER_DBS}.
 */
export function initProject(dir: string, db: string = 'sqlite'): InitResult {
  if (!(STARTER_DBS as readonly string[]).includes(db)) {
    throw new InitError(`--db: '${db}' is not one of ${STARTER_DBS.join(', ')}`);
  }
  const target = resolve(dir);
  if (existsSync(target)) {
    if (!statSync(target).isDirectory()) throw new InitError(`${target} exists and is not a directory`);
    const present = readdirSync(target);
    if (present.length > 0) {
      throw new InitError(
        `${target} is not empty (${present.slice(0, 3).join(', ')}${present.length > 3 ? ', …' : ''}): ` +
          'dtx init writes only into a new or empty directory',
      );
    }
  }
  const own = JSON.parse(readFileSync(OWN_PACKAGE, 'utf8')) as OwnManifest;
  const name =
    basename(target)
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/^[._-]+/, '') || 'dtx-starter';
  const postgres = db === 'postgres';
  const files: string[] = [];
  const write = (rel: string, text: string) => {
    mkdirSync(join(target, rel, '..'), { recursive: true });
    writeFileSync(join(target, rel), text);
    files.push(rel);
  };
  const manifest = {
    name,
    version: '0.1.0',
    private: true,
    type: 'module',
    description: `A dtx saga on a Fastify service with the barrier on ${postgres ? 'PostgreSQL' : 'SQLite'} (dtx init)`,
    engines: { node: '>=20' },
    scripts: { start: 'node src/main.js', test: 'node --test test/' },
    dependencies: {
      '@dtx/client': `^${own.version}`,
      fastify: own.dependencies.fastify,
      ...(postgres ? { pg: own.peerDependencies.pg } : { 'better-sqlite3': own.dependencies['better-sqlite3'] }),
    },
  };
  mkdirSync(target, { recursive: true });
  write('package.json', `${JSON.stringify(manifest, null, 2)}\n`);
  const readme = readFileSync(join(TEMPLATE, 'README.md'), 'utf8')
    .replaceAll('{{NAME}}', name)
    .replaceAll('{{DB_TITLE}}', postgres ? 'PostgreSQL' : 'SQLite')
    .replaceAll(
      '{{RUN}}',
      postgres
        ? 'DATABASE_URL=postgres://app:secret@127.0.0.1:5432/app npm start'
        : 'npm start               # accounts 1 (100) and 2 (0) in ./app.sqlite',
    )
    .replaceAll(
      '{{ENV}}',
      postgres
        ? ', `DATABASE_URL` (the PostgreSQL database of the accounts and of the barrier table `dtm_barrier.barrier`)'
        : ', `SQLITE_PATH` (the SQLite file of the accounts and of the barrier table, default `app.sqlite`)',
    )
    .replaceAll(
      '{{TEST}}',
      postgres
        ? 'DATABASE_URL=postgres://app:secret@127.0.0.1:5432/app_test DTX_URL=http://127.0.0.1:36789/api/dtmsvr npm test'
        : 'DTX_URL=http://127.0.0.1:36789/api/dtmsvr npm test    # a temporary SQLite file',
    );
  write('README.md', readme);
  write('.gitignore', 'node_modules/\n*.sqlite\n*.sqlite-*\n');
  for (const rel of ['src/app.js', 'src/main.js', 'test/transfer.test.js']) {
    mkdirSync(join(target, rel, '..'), { recursive: true });
    copyFileSync(join(TEMPLATE, rel), join(target, rel));
    files.push(rel);
  }
  write('src/db.js', readFileSync(join(TEMPLATE, 'src', `db.${db}.js`), 'utf8'));
  return { dir: target, files: files.sort() };
}
