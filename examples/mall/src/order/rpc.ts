/**
 * order.rpc (`/order.Order/*`, port 9002): orders in table `order`, and the saga's first step, Create /
 * CreateRevert, each inside the sub-transaction barrier in the same local transaction as its write.
 *
 * @module
 */
import { FailureError, mysqlBarrierDb } from '@dtx/client';
import { grpcBranch } from '@dtx/client/grpc';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { needRpc, type RpcConf } from '../common/config.js';
import { mysqlPool } from '../common/mysql-dsn.js';
import { serviceDefinition } from '../common/proto.js';
import { businessError, CODE_BUSINESS, isStatusError } from '../common/rpc-error.js';
import type { ServiceKit } from '../common/service-kit.js';
import { type RpcClient, type RpcServer, startRpcServer, unary } from '../common/zrpc.js';

/** An order as the rpc answers it. */
export interface OrderReply {
  id: number;
  Uid: number;
  Pid: number;
  Amount: number;
  Status: number;
}

interface OrderRow extends RowDataPacket {
  id: number;
  uid: number;
  pid: number;
  amount: number;
  status: number;
}

/** Order statuses. */
export const ORDER_CREATED = 0;
export const ORDER_PAID = 1;
export const ORDER_CANCELLED = 9;

const ORDER_NOT_FOUND = '订单不存在'; // order does not exist

const reply = (o: OrderRow): OrderReply => ({ id: o.id, Uid: o.uid, Pid: o.pid, Amount: o.amount, Status: o.status });

/** The handlers of `order.Order` on `db`; `users` checks that a uid exists. */
export function orderHandlers(db: Pool, users: RpcClient) {
  const barrierDb = mysqlBarrierDb(db);
  const load = async (id: number) => {
    const [rows] = await db.execute<OrderRow[]>('SELECT * FROM `order` WHERE `id` = ? LIMIT 1', [id]);
    const o = rows[0];
    if (o === undefined) throw businessError(ORDER_NOT_FOUND);
    return o;
  };
  type Create = { Uid: number; Pid: number; Amount: number; Status: number };
  type Update = { id: number; Uid: number; Pid: number; Amount: number; Status: number };
  return {
    // Saga step 1: the order, with status 0 and the saga's gid, in the barrier's transaction.
    Create: grpcBranch<Create>(async ({ request, barrier }) => {
      await barrier.call(barrierDb, async (tx) => {
        try {
          await users.call('UserInfo', { Id: request.Uid });
        } catch (err) {
          // An unknown user will never become known: roll the saga back (the original retried it forever).
          if (isStatusError(err) && err.code === CODE_BUSINESS) throw new FailureError(err.details ?? err.message);
          throw err;
        }
        await tx.execute('INSERT INTO `order` (`uid`, `pid`, `amount`, `status`, `gid`) VALUES (?, ?, ?, ?, ?)', [
          request.Uid,
          request.Pid,
          request.Amount,
          ORDER_CREATED,
          barrier.gid,
        ]);
      });
    }),
    // Its compensation: cancels the order of this saga (the original cancelled the user's newest order).
    CreateRevert: grpcBranch<Create>(async ({ barrier }) => {
      await barrier.call(barrierDb, async (tx) => {
        await tx.execute('UPDATE `order` SET `status` = ? WHERE `gid` = ?', [ORDER_CANCELLED, barrier.gid]);
      });
    }),
    Update: unary<Update, object>(async (req) => {
      const o = await load(req.id);
      await db.execute('UPDATE `order` SET `uid` = ?, `pid` = ?, `amount` = ?, `status` = ? WHERE `id` = ?', [
        req.Uid !== 0 ? req.Uid : o.uid,
        req.Pid !== 0 ? req.Pid : o.pid,
        req.Amount !== 0 ? req.Amount : o.amount,
        req.Status !== 0 ? req.Status : o.status,
        o.id,
      ]);
      return {};
    }),
    Remove: unary<{ id: number }, object>(async (req) => {
      await load(req.id);
      await db.execute('DELETE FROM `order` WHERE `id` = ?', [req.id]);
      return {};
    }),
    Detail: unary<{ id: number }, OrderReply>(async (req) => reply(await load(req.id))),
    List: unary<{ uid: number }, { data: OrderReply[] }>(async (req) => {
      await users.call('UserInfo', { Id: req.uid });
      const [rows] = await db.execute<OrderRow[]>('SELECT * FROM `order` WHERE `uid` = ? ORDER BY `id`', [req.uid]);
      return { data: rows.map(reply) };
    }),
    Paid: unary<{ id: number }, object>(async (req) => {
      const o = await load(req.id);
      await db.execute('UPDATE `order` SET `status` = ? WHERE `id` = ?', [ORDER_PAID, o.id]);
      return {};
    }),
    DetailByGid: unary<{ Gid: string }, OrderReply>(async (req) => {
      const [rows] = await db.execute<OrderRow[]>('SELECT * FROM `order` WHERE `gid` = ? LIMIT 1', [req.Gid]);
      const o = rows[0];
      if (o === undefined) throw businessError(ORDER_NOT_FOUND);
      return reply(o);
    }),
  };
}

/** Starts order.rpc. */
export async function startOrderRpc(conf: RpcConf, kit: ServiceKit): Promise<RpcServer> {
  const db = mysqlPool(conf.Mysql.DataSource);
  kit.onClose(() => db.end());
  const users = kit.rpc(needRpc(conf, 'UserRpc'), 'user');
  const server = await startRpcServer(conf, serviceDefinition('order'), orderHandlers(db, users), kit.etcd, kit);
  kit.onClose(() => server.close());
  return server;
}
