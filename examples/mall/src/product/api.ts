/**
 * product.api (port 8001, every route needs the JWT): create, update, remove and detail of products.
 *
 * @module
 */
import { type ApiConf, needRpc } from '../common/config.js';
import { type ApiRoute, route } from '../common/rest.js';
import type { ServiceKit } from '../common/service-kit.js';
import type { ProductReply } from './rpc.js';

/** The routes of product.api. */
export function productRoutes(conf: ApiConf, kit: ServiceKit): ApiRoute[] {
  const products = kit.rpc(needRpc(conf, 'ProductRpc'), 'product');
  type Fields = { id: number; name: string; desc: string; stock: number; amount: number; status: number };
  return [
    route<Fields>(
      '/api/product/create',
      { name: 'string', desc: 'string', stock: 'int', amount: 'int', status: 'int' },
      true,
      async ({ body }) => {
        const r = await products.call<{ id: number }>('Create', {
          Name: body.name,
          Desc: body.desc,
          Stock: body.stock,
          Amount: body.amount,
          Status: body.status,
        });
        return { id: r.id };
      },
    ),
    route<Fields>(
      '/api/product/update',
      { id: 'int', name: 'string?', desc: 'string?', stock: 'int', amount: 'int?', status: 'int?' },
      true,
      async ({ body }) => {
        await products.call('Update', {
          id: body.id,
          Name: body.name,
          Desc: body.desc,
          Stock: body.stock,
          Amount: body.amount,
          Status: body.status,
        });
        return {};
      },
    ),
    route<{ id: number }>('/api/product/remove', { id: 'int' }, true, async ({ body }) => {
      await products.call('Remove', { id: body.id });
      return {};
    }),
    route<{ id: number }>('/api/product/detail', { id: 'int' }, true, async ({ body }) => {
      const p = await products.call<ProductReply>('Detail', { id: body.id });
      return { id: p.id, name: p.Name, desc: p.Desc, stock: p.Stock, amount: p.Amount, status: p.Status };
    }),
  ];
}

/** Starts product.api. */
export async function startProductApi(conf: ApiConf, kit: ServiceKit): Promise<{ port: number }> {
  return kit.listen(conf, productRoutes(conf, kit));
}
