// The accounts and the barrier table in one SQLite file: a branch's business update and its barrier row commit
// in the same local transaction, which is what makes the branch idempotent.

import { ensureBarrierTable, sqliteBarrierDb } from '@dtx/client';
import Database from 'better-sqlite3';

/**
 * Opens the database named by `SQLITE_PATH` (default `app.sqlite`, `:memory:` allowed) and creates the
 * tables if needed.
 */
export async function openDatabase(path = process.env.SQLITE_PATH ?? 'app.sqlite') {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE IF NOT EXISTS account (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0))');
  const barrier = sqliteBarrierDb(db);
  await ensureBarrierTable(barrier);
  return {
    /** The barrier of the branch handlers; their business code receives the `Database`, inside `BEGIN IMMEDIATE`. */
    barrier,
    /** Adds `delta` to the balance of account `id` inside the barrier's transaction `tx`; false when no such account or too little money. */
    async adjust(tx, id, delta) {
      return (
        tx.prepare('UPDATE account SET balance = balance + ? WHERE id = ? AND balance + ? >= 0').run(delta, id, delta)
          .changes === 1
      );
    },
    async balance(id) {
      return db.prepare('SELECT balance FROM account WHERE id = ?').get(id)?.balance;
    },
    async setBalance(id, balance) {
      db.prepare(
        'INSERT INTO account (id, balance) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET balance = excluded.balance',
      ).run(id, balance);
    },
    async close() {
      db.close();
    },
  };
}
