/**
 * product.rpc (`/product.Product/*`, port 9001): products in table `product`, and the saga's second step,
 * DecrStock / DecrStockRevert, each inside the sub-transaction barrier in the same local transaction as its
 * stock update.
 *
 * @module
 */
import { FailureError, mysqlBarrierDb } from '@dtx/client';
import { grpcBranch } from '@dtx/client/grpc';
import type { Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { RpcConf } from '../common/config.js';
import { mysqlPool } from '../common/mysql-dsn.js';
import { serviceDefinition } from '../common/proto.js';
import { businessError, internalError } from '../common/rpc-error.js';
import type { ServiceKit } from '../common/service-kit.js';
import { type RpcServer, startRpcServer, unary } from '../common/zrpc.js';

/** A product as the rpc answers it. */
export interface ProductReply {
  id: number;
  Name: string;
  Desc: string;
  Stock: number;
  Amount: number;
  Status: number;
}

interface ProductRow extends RowDataPacket {
  id: number;
  name: string;
  desc: string;
  stock: number;
  amount: number;
  status: number;
}

const PRODUCT_NOT_FOUND = '产品不存在'; // product does not exist
/** DecrStock's reason for rolling the saga back. */
export const OUT_OF_STOCK = '库存不足'; // insufficient stock

/** The product rpc's test switches (tutorial flow C). */
export interface ProductFaults {
  /** DecrStock answers Aborted after its local transaction committed. */
  failAfterDecrStock: boolean;
  /**
   * Tests only: the next this many DecrStock calls answer a transient error (code 500, as a database outage would)
   * before touching anything, which the coordinator retries. Default 0.
   */
  decrStockErrors?: number;
}

/**
 * The tutorial's `TxAdjustStock`, with `num` honoured (the original always moved the stock by 1):
 * `stock = stock + delta` only while the result stays ≥ 0. Returns the rows changed.
 */
async function adjustStock(tx: PoolConnection, id: number, delta: number): Promise<number> {
  const [r] = await tx.execute<ResultSetHeader>(
    'UPDATE `product` SET `stock` = `stock` + ? WHERE `stock` >= ? AND `id` = ?',
    [delta, -delta, id],
  );
  return r.affectedRows;
}

/** The handlers of `product.Product` on `db`. */
export function productHandlers(db: Pool, faults: ProductFaults) {
  const barrierDb = mysqlBarrierDb(db);
  const load = async (id: number) => {
    const [rows] = await db.execute<ProductRow[]>('SELECT * FROM `product` WHERE `id` = ? LIMIT 1', [id]);
    const p = rows[0];
    if (p === undefined) throw businessError(PRODUCT_NOT_FOUND);
    return p;
  };
  type Req = { id: number; Name: string; Desc: string; Stock: number; Amount: number; Status: number };
  type DecrStock = { id: number; num: number };
  return {
    Create: unary<Omit<Req, 'id'>, { id: number }>(async (req) => {
      const [r] = await db.execute<ResultSetHeader>(
        'INSERT INTO `product` (`name`, `desc`, `stock`, `amount`, `status`) VALUES (?, ?, ?, ?, ?)',
        [req.Name, req.Desc, req.Stock, req.Amount, req.Status],
      );
      return { id: r.insertId };
    }),
    Update: unary<Req, object>(async (req) => {
      const p = await load(req.id);
      // As the original: only non-zero / non-empty fields are copied, then the whole row is saved.
      await db.execute(
        'UPDATE `product` SET `name` = ?, `desc` = ?, `stock` = ?, `amount` = ?, `status` = ? WHERE `id` = ?',
        [
          req.Name !== '' ? req.Name : p.name,
          req.Desc !== '' ? req.Desc : p.desc,
          req.Stock !== 0 ? req.Stock : p.stock,
          req.Amount !== 0 ? req.Amount : p.amount,
          req.Status !== 0 ? req.Status : p.status,
          p.id,
        ],
      );
      return {};
    }),
    Remove: unary<{ id: number }, object>(async (req) => {
      await load(req.id);
      await db.execute('DELETE FROM `product` WHERE `id` = ?', [req.id]);
      return {};
    }),
    Detail: unary<{ id: number }, ProductReply>(async (req) => {
      const p = await load(req.id);
      return { id: p.id, Name: p.name, Desc: p.desc, Stock: p.stock, Amount: p.amount, Status: p.status };
    }),
    // Saga step 2. Too little stock (or no such product) rolls the whole saga back: FailureError answers Aborted.
    DecrStock: grpcBranch<DecrStock>(async ({ request, barrier }) => {
      const num = request.num;
      if (!Number.isSafeInteger(num) || num < 1) throw new FailureError(`num must be at least 1, got ${num}`);
      if ((faults.decrStockErrors ?? 0) > 0) {
        faults.decrStockErrors = (faults.decrStockErrors ?? 0) - 1;
        throw internalError(new Error('injected transient error'));
      }
      await barrier.call(barrierDb, async (tx) => {
        if ((await adjustStock(tx, request.id, -num)) === 0) throw new FailureError(OUT_OF_STOCK);
      });
      if (faults.failAfterDecrStock) throw new FailureError('injected failure after the stock was taken');
    }),
    // Its compensation: the barrier skips it when DecrStock never committed (a null compensation).
    DecrStockRevert: grpcBranch<DecrStock>(async ({ request, barrier }) => {
      const num = Number.isSafeInteger(request.num) && request.num >= 1 ? request.num : 0;
      await barrier.call(barrierDb, async (tx) => {
        if (num > 0) await adjustStock(tx, request.id, num);
      });
    }),
  };
}

/** A running product.rpc; `faults` may be changed while it runs. */
export interface ProductRpc extends RpcServer {
  faults: ProductFaults;
}

/** Starts product.rpc. */
export async function startProductRpc(conf: RpcConf, kit: ServiceKit): Promise<ProductRpc> {
  const db = mysqlPool(conf.Mysql.DataSource);
  kit.onClose(() => db.end());
  const faults: ProductFaults = { failAfterDecrStock: conf.FailAfterDecrStock };
  if (faults.failAfterDecrStock) kit.log.warn('FailAfterDecrStock is on: every DecrStock fails after its commit');
  const server = await startRpcServer(conf, serviceDefinition('product'), productHandlers(db, faults), kit.etcd, kit);
  kit.onClose(() => server.close());
  return Object.assign(server, { faults });
}
