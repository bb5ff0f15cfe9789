/**
 * pay.api (port 8003, every route needs the JWT): create a payment, read it, and its callback.
 *
 * @module
 */
import { type ApiConf, needRpc } from '../common/config.js';
import { type ApiRoute, route } from '../common/rest.js';
import type { ServiceKit } from '../common/service-kit.js';
import type { PayReply } from './rpc.js';

/** The routes of pay.api. */
export function payRoutes(conf: ApiConf, kit: ServiceKit): ApiRoute[] {
  const pays = kit.rpc(needRpc(conf, 'PayRpc'), 'pay');
  type Fields = { id: number; uid: number; oid: number; amount: number; source: number; status: number };
  return [
    route<Fields>('/api/pay/create', { uid: 'int', oid: 'int', amount: 'int' }, true, async ({ body }) => {
      const r = await pays.call<{ id: number }>('Create', { Uid: body.uid, Oid: body.oid, Amount: body.amount });
      return { id: r.id };
    }),
    route<{ id: number }>('/api/pay/detail', { id: 'int' }, true, async ({ body }) => {
      const p = await pays.call<PayReply>('Detail', { id: body.id });
      // As the original: the id is echoed from the request.
      return { id: body.id, uid: p.Uid, oid: p.Oid, amount: p.Amount, source: p.Source, status: p.Status };
    }),
    route<Fields>(
      '/api/pay/callback',
      { id: 'int', uid: 'int', oid: 'int', amount: 'int', source: 'int', status: 'int' },
      true,
      async ({ body }) => {
        await pays.call('Callback', {
          id: body.id,
          Uid: body.uid,
          Oid: body.oid,
          Amount: body.amount,
          Source: body.source,
          Status: body.status,
        });
        return {};
      },
    ),
  ];
}

/** Starts pay.api. */
export async function startPayApi(conf: ApiConf, kit: ServiceKit): Promise<{ port: number }> {
  return kit.listen(conf, payRoutes(conf, kit));
}
