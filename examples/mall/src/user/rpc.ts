/**
 * user.rpc (`/user.User/*`, port 9000): register, login and look up users in table `user`.
 *
 * @module
 */
import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { ConfigError, type RpcConf } from '../common/config.js';
import { passwordEncrypt } from '../common/cryptx.js';
import { mysqlPool } from '../common/mysql-dsn.js';
import { serviceDefinition } from '../common/proto.js';
import { businessError } from '../common/rpc-error.js';
import type { ServiceKit } from '../common/service-kit.js';
import { type RpcServer, startRpcServer, unary } from '../common/zrpc.js';

/** A user as the rpc answers it. */
export interface UserReply {
  Id: number;
  Name: string;
  Gender: number;
  Mobile: string;
}

interface UserRow extends RowDataPacket {
  id: number;
  name: string;
  gender: number;
  mobile: string;
  password: string;
}

const USER_NOT_FOUND = '用户不存在'; // user does not exist
const WRONG_PASSWORD = '密码错误'; // wrong password
const USER_EXISTS = '该用户已存在'; // this user already exists

const reply = (u: UserRow): UserReply => ({ Id: u.id, Name: u.name, Gender: u.gender, Mobile: u.mobile });

/** The handlers of `user.User` on `db`, hashing passwords with `salt`. */
export function userHandlers(db: Pool, salt: string) {
  const byMobile = async (mobile: string) =>
    (await db.execute<UserRow[]>('SELECT * FROM `user` WHERE `mobile` = ? LIMIT 1', [mobile]))[0][0];
  return {
    Login: unary<{ Mobile: string; Password: string }, UserReply>(async (req) => {
      const u = await byMobile(req.Mobile);
      if (u === undefined) throw businessError(USER_NOT_FOUND);
      if ((await passwordEncrypt(salt, req.Password)) !== u.password) throw businessError(WRONG_PASSWORD);
      return reply(u);
    }),
    Register: unary<{ Name: string; Gender: number; Mobile: string; Password: string }, UserReply>(async (req) => {
      if ((await byMobile(req.Mobile)) !== undefined) throw businessError(USER_EXISTS);
      const password = await passwordEncrypt(salt, req.Password);
      let id: number;
      try {
        const [r] = await db.execute<ResultSetHeader>(
          'INSERT INTO `user` (`name`, `gender`, `mobile`, `password`) VALUES (?, ?, ?, ?)',
          [req.Name, req.Gender, req.Mobile, password],
        );
        id = r.insertId;
      } catch (err) {
        // Two registrations of one mobile at once: the unique key decides, with the same answer.
        if ((err as { code?: string }).code === 'ER_DUP_ENTRY') throw businessError(USER_EXISTS);
        throw err;
      }
      return { Id: id, Name: req.Name, Gender: req.Gender, Mobile: req.Mobile };
    }),
    UserInfo: unary<{ Id: number }, UserReply>(async (req) => {
      const [rows] = await db.execute<UserRow[]>('SELECT * FROM `user` WHERE `id` = ? LIMIT 1', [req.Id]);
      const u = rows[0];
      if (u === undefined) throw businessError(USER_NOT_FOUND);
      return reply(u);
    }),
  };
}

/** Starts user.rpc. */
export async function startUserRpc(conf: RpcConf, kit: ServiceKit): Promise<RpcServer> {
  // The tutorial's config struct requires it: without it every password would be hashed with an empty salt, and no
  // user registered by the original could log in.
  if (conf.Salt === '') throw new ConfigError('Salt: required by user.rpc (the scrypt salt of the passwords)');
  const db = mysqlPool(conf.Mysql.DataSource);
  kit.onClose(() => db.end());
  const server = await startRpcServer(conf, serviceDefinition('user'), userHandlers(db, conf.Salt), kit.etcd, kit);
  kit.onClose(() => server.close());
  return server;
}
