// The accounts and the barrier table in one PostgreSQL database: a branch's business update and its barrier row
// commit in the same local transaction, which is what makes the branch idempotent.

import { ensureBarrierTable, postgresBarrierDb } from '@dtx/client';
import pg from 'pg';

/** Opens a pool on `DATABASE_URL` (e.g. `postgres://app:secret@127.0.0.1:5432/app`) and creates the tables if needed. */
export async function openDatabase(url = process.env.DATABASE_URL) {
  if (!url) throw new Error('set DATABASE_URL, e.g. postgres://app:secret@127.0.0.1:5432/app');
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  await pool.query(
    'CREATE TABLE IF NOT EXISTS account (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0))',
  );
  const barrier = postgresBarrierDb(pool);
  await ensureBarrierTable(barrier);
  return {
    /** The barrier of the branch handlers; their business code receives a pg `PoolClient` inside `BEGIN`. */
    barrier,
    /** Adds `delta` to the balance of account `id` inside the barrier's transaction `tx`; false when no such account or too little money. */
    async adjust(tx, id, delta) {
      const r = await tx.query('UPDATE account SET balance = balance + $1 WHERE id = $2 AND balance + $1 >= 0', [
        delta,
        id,
      ]);
      return r.rowCount === 1;
    },
    async balance(id) {
      return (await pool.query('SELECT balance FROM account WHERE id = $1', [id])).rows[0]?.balance;
    },
    async setBalance(id, balance) {
      await pool.query(
        'INSERT INTO account (id, balance) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET balance = excluded.balance',
        [id, balance],
      );
    },
    async close() {
      await pool.end();
    },
  };
}
