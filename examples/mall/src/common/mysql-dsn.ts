/**
 * Go's MySQL DSN (`user:password@tcp(host:port)/dbname?param=value`), the form of the tutorial's
 * `Mysql.DataSource`, read into mysql2 pool options.
 *
 * @module
 */
import { createPool, type Pool, type PoolOptions } from 'mysql2/promise';
import { ConfigError } from './config.js';

/** The parts of a Go MySQL DSN this port uses. */
export interface MysqlDsn {
  user: string;
  password: string;
  host: string;
  port: number;
  database: string;
}

/**
 * Parses `user:password@tcp(host:port)/dbname?params`. The parameters (`charset`, `parseTime`, `loc`) are Go driver
 * settings with no mysql2 equivalent needed here, and are ignored.
 * @throws {@link ConfigError} naming `Mysql.DataSource` when the string is not of that form.
 */
export function parseMysqlDsn(dsn: string): MysqlDsn {
  const m = /^([^:@/]*)(?::([^@]*))?@tcp\(([^)]+)\)\/([^?]*)(?:\?.*)?$/.exec(dsn.trim());
  if (m === null) {
    throw new ConfigError(
      `Mysql.DataSource '${dsn.replace(/:[^@]*@/, ':***@')}': expected user:password@tcp(host:port)/dbname?params`,
    );
  }
  const [, user = '', password = '', address = '', database = ''] = m;
  const hp = /^(.*):(\d{1,5})$/.exec(address);
  if (database === '') throw new ConfigError('Mysql.DataSource: names no database (…@tcp(host:port)/<db>)');
  return {
    user: decodeURIComponent(user),
    password: decodeURIComponent(password),
    host: hp?.[1] ?? address,
    port: hp === null ? 3306 : Number(hp[2]),
    database,
  };
}

/** A mysql2 pool for a Go DSN. `database` overrides the DSN's (the start command uses it to create the database). */
export function mysqlPool(dsn: string, extra: Partial<PoolOptions> = {}): Pool {
  const d = parseMysqlDsn(dsn);
  return createPool({
    host: d.host,
    port: d.port,
    user: d.user,
    password: d.password,
    database: d.database,
    connectionLimit: 10,
    supportBigNumbers: true,
    ...extra,
  });
}
