/**
 * order.api (port 8002, every route needs the JWT). `/api/order/create` is the tutorial's chapter 10: a saga on
 * the coordinator — found through etcd (`DtmServer`) and called over gRPC — whose steps are order.Create /
 * order.CreateRevert and product.DecrStock / product.DecrStockRevert, addressed as `discov://` targets the
 * coordinator resolves in etcd.
 *
 * @module
 */
import { BranchError, isCoordinatorError, isFailure, isOngoing, type Workflow } from '@dtx/client';
import { DtxGrpcClient } from '@dtx/client/grpc';
import { DiscoveryError } from '@dtx/server/discovery';
import { type ApiConf, needRpc } from '../common/config.js';
import { encodeRequest, methodPath, serviceDefinition } from '../common/proto.js';
import { type ApiRoute, route, StatusReply } from '../common/rest.js';
import { businessError, RpcError } from '../common/rpc-error.js';
import type { ServiceKit } from '../common/service-kit.js';
import { buildTarget } from '../common/zrpc.js';
import type { OrderReply } from './rpc.js';

const ORDER_CREATE_FAILED = '订单创建失败'; // order creation failed
const ORDER_SERVICE_UNAVAILABLE = 'order service unavailable, nothing was ordered, try again';

/**
 * The branch's own words in a rollback reason, which the coordinator words as DTM does:
 * `url:<branch> return failed: <message> FAILURE`; the whole reason when it has another form.
 */
export function rollbackReason(reason: string): string {
  const m = /return failed: (.*?)(?: FAILURE)?$/s.exec(reason);
  return m?.[1]?.trim() || reason;
}

/** The routes of order.api. */
export function orderRoutes(conf: ApiConf, kit: ServiceKit): ApiRoute[] {
  const orderConf = needRpc(conf, 'OrderRpc');
  const productConf = needRpc(conf, 'ProductRpc');
  const orders = kit.rpc(orderConf, 'order');
  const orderTarget = buildTarget(orderConf);
  const productTarget = buildTarget(productConf);
  const orderDef = serviceDefinition('order');
  const productDef = serviceDefinition('product');
  const coordinators = new Map<string, DtxGrpcClient>();
  kit.onClose(() => {
    for (const c of coordinators.values()) c.close();
  });
  const coordinator = async (): Promise<DtxGrpcClient> => {
    const address = await kit.resolver.resolve(conf.DtmServer);
    let c = coordinators.get(address);
    if (c === undefined) {
      c = new DtxGrpcClient(address);
      c.workflow.register('mall.createOrder', createOrderWorkflow);
      coordinators.set(address, c);
    }
    return c;
  };

  /**
   * The workflow variant of chapter 10: the same two branches, called by this process itself (the coordinator
   * only records each step), order first, then the stock; a failed step rolls back the steps that ran, newest
   * first. The rpc instances are looked up in etcd for each run: only where a step goes, never which steps are
   * taken, depends on it (see the SDK's determinism rules).
   */
  const createOrderWorkflow = async (wf: Workflow, input: { uid: number; pid: number; amount: number }) => {
    const order = await kit.resolver.resolve(orderTarget);
    const product = await kit.resolver.resolve(productTarget);
    await wf.grpc(
      `${order}${methodPath('order', 'Create')}`,
      encodeRequest(orderDef, 'Create', { Uid: input.uid, Pid: input.pid, Amount: input.amount, Status: 0 }),
      { onRollback: `${order}${methodPath('order', 'CreateRevert')}` },
    );
    await wf.grpc(
      `${product}${methodPath('product', 'DecrStock')}`,
      encodeRequest(productDef, 'DecrStock', { id: input.pid, num: 1 }),
      { onRollback: `${product}${methodPath('product', 'DecrStockRevert')}` },
    );
  };
  const view = (o: OrderReply) => ({ id: o.id, uid: o.Uid, pid: o.Pid, amount: o.Amount, status: o.Status });
  type Fields = { id: number; uid: number; pid: number; amount: number; status: number };

  /**
   * Chapter 10: one saga, order first, then the stock. It waits for the saga's first pass (the original returned
   * `{"id":0}` at once), and answers one of:
   * - 200 `{"id":<order id>}`: the saga committed;
   * - 400 `订单创建失败: <reason>`: it rolled back (no stock, …);
   * - 202 `{"id":<order id, or 0 before the order row exists>,"gid":"<gid>"}`: accepted, still being processed —
   *   a branch erred (a database that is down) and the coordinator retries it; the order completes or is cancelled
   *   later, do not order again;
   * - 503 `order service unavailable: …`: the coordinator could not be reached; nothing was ordered, try again.
   */
  const create = async ({ body }: { body: Fields }) => {
    let gid = '';
    try {
      const dtx = await coordinator();
      gid = await dtx.newGid();
      await dtx
        .saga(gid, { waitResult: true })
        .add(
          `${orderTarget}${methodPath('order', 'Create')}`,
          `${orderTarget}${methodPath('order', 'CreateRevert')}`,
          encodeRequest(orderDef, 'Create', { Uid: body.uid, Pid: body.pid, Amount: body.amount, Status: 0 }),
        )
        .add(
          `${productTarget}${methodPath('product', 'DecrStock')}`,
          `${productTarget}${methodPath('product', 'DecrStockRevert')}`,
          encodeRequest(productDef, 'DecrStock', { id: body.pid, num: 1 }),
        )
        .submit();
    } catch (err) {
      if (isFailure(err)) throw businessError(`${ORDER_CREATE_FAILED}: ${rollbackReason(err.message)}`);
      if (isOngoing(err)) {
        // the order row exists when order.Create ran: give its id, the saga finishes (or cancels) it later
        const id = await orders.call<OrderReply>('DetailByGid', { Gid: gid }).then(
          (o) => o.id,
          () => 0,
        );
        return new StatusReply(202, { id, gid });
      }
      const text = err instanceof Error ? err.message : String(err);
      if (isCoordinatorError(err) || err instanceof DiscoveryError) {
        throw new StatusReply(503, `${ORDER_SERVICE_UNAVAILABLE}: ${text}`);
      }
      throw new RpcError(500, text);
    }
    const o = await orders.call<OrderReply>('DetailByGid', { Gid: gid });
    return { id: o.id };
  };

  /**
   * `/api/order/createWorkflow`: the same order as {@link create}, as a workflow; the same answers: 200 `{"id"}`,
   * 400 `订单创建失败: <reason>` (rolled back), 202 `{"id","gid"}` when a step erred and the workflow is left
   * unfinished (this api serves no resume endpoint: it is finished by the next execute of that gid), 503 when the
   * coordinator could not be reached.
   */
  const createWorkflow = async ({ body }: { body: Fields }) => {
    let gid = '';
    try {
      const dtx = await coordinator();
      gid = await dtx.newGid();
      await dtx.workflow.execute('mall.createOrder', gid, { uid: body.uid, pid: body.pid, amount: body.amount });
    } catch (err) {
      if (isFailure(err)) throw businessError(`${ORDER_CREATE_FAILED}: ${rollbackReason(err.message)}`);
      if (isOngoing(err) || err instanceof BranchError) {
        const id = await orders.call<OrderReply>('DetailByGid', { Gid: gid }).then(
          (o) => o.id,
          () => 0,
        );
        return new StatusReply(202, { id, gid });
      }
      const text = err instanceof Error ? err.message : String(err);
      if (isCoordinatorError(err) || err instanceof DiscoveryError) {
        throw new StatusReply(503, `${ORDER_SERVICE_UNAVAILABLE}: ${text}`);
      }
      throw new RpcError(500, text);
    }
    const o = await orders.call<OrderReply>('DetailByGid', { Gid: gid });
    return { id: o.id };
  };

  return [
    route<Fields>('/api/order/create', { uid: 'int', pid: 'int', amount: 'int', status: 'int' }, true, create),
    route<Fields>(
      '/api/order/createWorkflow',
      { uid: 'int', pid: 'int', amount: 'int', status: 'int' },
      true,
      createWorkflow,
    ),
    route<Fields>(
      '/api/order/update',
      { id: 'int', uid: 'int?', pid: 'int?', amount: 'int?', status: 'int?' },
      true,
      async ({ body }) => {
        await orders.call('Update', {
          id: body.id,
          Uid: body.uid,
          Pid: body.pid,
          Amount: body.amount,
          Status: body.status,
        });
        return {};
      },
    ),
    route<{ id: number }>('/api/order/remove', { id: 'int' }, true, async ({ body }) => {
      await orders.call('Remove', { id: body.id });
      return {};
    }),
    route<{ id: number }>('/api/order/detail', { id: 'int' }, true, async ({ body }) =>
      view(await orders.call<OrderReply>('Detail', { id: body.id })),
    ),
    // A bare JSON array, as the original's hand-edited logic returns.
    route<{ uid: number }>('/api/order/list', { uid: 'int' }, true, async ({ body }) =>
      (await orders.call<{ data: OrderReply[] }>('List', { uid: body.uid })).data.map(view),
    ),
  ];
}

/** Starts order.api. */
export async function startOrderApi(conf: ApiConf, kit: ServiceKit): Promise<{ port: number }> {
  return kit.listen(conf, orderRoutes(conf, kit));
}
