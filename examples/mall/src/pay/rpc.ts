/**
 * pay.rpc (`/pay.Pay/*`, port 9003): payments in table `pay`. The callback marks the order paid through
 * order.rpc's `Paid`, as in the original — two independent writes, no distributed transaction.
 *
 * @module
 */
import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { needRpc, type RpcConf } from '../common/config.js';
import { mysqlPool } from '../common/mysql-dsn.js';
import { serviceDefinition } from '../common/proto.js';
import { businessError, internalError } from '../common/rpc-error.js';
import type { ServiceKit } from '../common/service-kit.js';
import { type RpcClient, type RpcServer, startRpcServer, unary } from '../common/zrpc.js';

/** A payment as the rpc answers it. */
export interface PayReply {
  id: number;
  Uid: number;
  Oid: number;
  Amount: number;
  Source: number;
  Status: number;
}

interface PayRow extends RowDataPacket {
  id: number;
  uid: number;
  oid: number;
  amount: number;
  source: number;
  status: number;
}

const PAY_NOT_FOUND = '支付不存在'; // payment does not exist
const PAY_EXISTS = '订单已创建支付'; // a payment already exists for this order
const AMOUNT_MISMATCH = '支付金额与订单金额不符'; // payment amount does not match the order amount

/** The handlers of `pay.Pay` on `db`, checking users and orders through their rpcs. */
export function payHandlers(db: Pool, users: RpcClient, orders: RpcClient) {
  const load = async (id: number) => {
    const [rows] = await db.execute<PayRow[]>('SELECT * FROM `pay` WHERE `id` = ? LIMIT 1', [id]);
    const p = rows[0];
    if (p === undefined) throw businessError(PAY_NOT_FOUND);
    return p;
  };
  type Callback = { id: number; Uid: number; Oid: number; Amount: number; Source: number; Status: number };
  return {
    Create: unary<{ Uid: number; Oid: number; Amount: number }, { id: number }>(async (req) => {
      await users.call('UserInfo', { Id: req.Uid });
      await orders.call('Detail', { id: req.Oid });
      const [found] = await db.execute<PayRow[]>('SELECT `id` FROM `pay` WHERE `oid` = ? LIMIT 1', [req.Oid]);
      if (found.length > 0) throw businessError(PAY_EXISTS);
      const [r] = await db.execute<ResultSetHeader>(
        'INSERT INTO `pay` (`uid`, `oid`, `amount`, `source`, `status`) VALUES (?, ?, ?, 0, 0)',
        [req.Uid, req.Oid, req.Amount],
      );
      return { id: r.insertId };
    }),
    Detail: unary<{ id: number }, PayReply>(async (req) => {
      const p = await load(req.id);
      return { id: p.id, Uid: p.uid, Oid: p.oid, Amount: p.amount, Source: p.source, Status: p.status };
    }),
    Callback: unary<Callback, object>(async (req) => {
      await users.call('UserInfo', { Id: req.Uid });
      await orders.call('Detail', { id: req.Oid });
      const p = await load(req.id);
      // As the original: compared with the payment's amount, not the order's.
      if (req.Amount !== p.amount) throw businessError(AMOUNT_MISMATCH);
      await db.execute('UPDATE `pay` SET `source` = ?, `status` = ? WHERE `id` = ?', [req.Source, req.Status, p.id]);
      try {
        await orders.call('Paid', { id: req.Oid });
      } catch (err) {
        throw internalError(err);
      }
      return {};
    }),
  };
}

/** Starts pay.rpc. */
export async function startPayRpc(conf: RpcConf, kit: ServiceKit): Promise<RpcServer> {
  const db = mysqlPool(conf.Mysql.DataSource);
  kit.onClose(() => db.end());
  const users = kit.rpc(needRpc(conf, 'UserRpc'), 'user');
  const orders = kit.rpc(needRpc(conf, 'OrderRpc'), 'order');
  const server = await startRpcServer(conf, serviceDefinition('pay'), payHandlers(db, users, orders), kit.etcd, kit);
  kit.onClose(() => server.close());
  return server;
}
