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
 * Parses `[user[:password]@][tcp[(address)]]/dbname[?params]` as Go's driver (`mysql.ParseDSN`) does: the database
 * follows the last `/`, the credentials end at the last `@` before it, the password starts after the first `:` and
 * is taken literally (it may hold `@`, `:` or `/`; nothing is URL-decoded), the address defaults to
 * `127.0.0.1:3306` and its port to 3306. The parameters (`charset`, `parseTime`, `loc`) are Go driver settings with
 * no mysql2 equivalent needed here, and are ignored.
 * @throws {@link ConfigError} naming `Mysql.DataSource` (its password masked) when the string is not of that form,
 * uses another protocol than tcp, or names no database.
 */
export function parseMysqlDsn(dsn: string): MysqlDsn {
  const slash = dsn.lastIndexOf('/');
  const at = slash < 0 ? -1 : dsn.lastIndexOf('@', slash);
  const credentials = at < 0 ? '' : dsn.slice(0, at);
  const colon = credentials.indexOf(':');
  // The password is masked in messages, even in a string too broken to find the /dbname.
  const maskAt = slash < 0 ? dsn.lastIndexOf('@') : at;
  const maskColon = maskAt < 0 ? -1 : dsn.slice(0, maskAt).indexOf(':');
  const masked = maskColon < 0 ? dsn : `${dsn.slice(0, maskColon)}:***${dsn.slice(maskAt)}`;
  const refuse = (why: string) =>
    new ConfigError(`Mysql.DataSource '${masked}': ${why} (expected user:password@tcp(host:port)/dbname?params)`);
  if (slash < 0) throw refuse('no /dbname');
  const netAddr = dsn.slice(at + 1, slash);
  let net = netAddr;
  let address = '';
  const paren = netAddr.indexOf('(');
  if (paren >= 0) {
    if (!netAddr.endsWith(')')) {
      throw refuse(
        netAddr.includes(')') ? 'did you forget to escape a param value? (e.g. loc=Asia%2FShanghai)' : 'bad address',
      );
    }
    net = netAddr.slice(0, paren);
    address = netAddr.slice(paren + 1, -1);
  }
  if (net !== '' && net !== 'tcp') throw refuse(`protocol '${net}' is not supported, only tcp`);
  if (address === '') address = '127.0.0.1:3306';
  const hp = /^(?:\[([^\]]+)\]|([^:[\]]*))(?::(\d{1,5}))?$/.exec(address);
  if (hp === null) throw refuse(`bad address '${address}'`);
  const rest = dsn.slice(slash + 1);
  const q = rest.indexOf('?');
  let database: string;
  try {
    database = decodeURIComponent(q < 0 ? rest : rest.slice(0, q));
  } catch {
    throw refuse('bad database name');
  }
  if (database === '') throw refuse('names no database (…@tcp(host:port)/<db>)');
  return {
    user: colon < 0 ? credentials : credentials.slice(0, colon),
    password: colon < 0 ? '' : credentials.slice(colon + 1),
    host: hp[1] ?? (hp[2] || '127.0.0.1'),
    port: hp[3] === undefined ? 3306 : Number(hp[3]),
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
