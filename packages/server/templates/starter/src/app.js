// A Fastify service with the two branches of a money transfer — TransOut takes the amount from one account,
// TransIn gives it to another — and their compensations, all on the sub-transaction barrier, plus a
// /api/transfer route that runs them as a saga on the dtx coordinator.

import { DtxClient, FailureError, isFailure, isOngoing } from '@dtx/client';
import { fastifyBranch } from '@dtx/client/fastify';
import Fastify from 'fastify';

/**
 * @param {object} o
 * @param {Awaited<ReturnType<typeof import('./db.js').openDatabase>>} o.db
 * @param {string} o.dtxUrl the coordinator, e.g. http://127.0.0.1:36789/api/dtmsvr
 * @param {() => string} o.busiUrl this service's base URL as the coordinator reaches it, e.g. http://127.0.0.1:8081/api
 */
export function buildApp({ db, dtxUrl, busiUrl }) {
  const app = Fastify({ logger: process.env.LOG_LEVEL ? { level: process.env.LOG_LEVEL } : false });
  const dtx = new DtxClient(dtxUrl);
  app.addHook('onClose', async () => dtx.close());

  /** A branch that adds `sign * amount` to the account `field` of the body, inside the barrier. */
  const branch = (field, sign) =>
    fastifyBranch(async (ctx) => {
      const { amount } = ctx.body;
      const id = ctx.body[field];
      await ctx.barrier.call(db.barrier, async (tx) => {
        if (!(await db.adjust(tx, id, sign * amount))) {
          // FAILURE (HTTP 409): the saga rolls back; the barrier rolls this local transaction back too
          throw new FailureError(`account ${id}: no such account, or its balance is too low`);
        }
      });
    });
  app.post('/api/TransOut', branch('from', -1));
  app.post('/api/TransOutRevert', branch('from', +1));
  app.post('/api/TransIn', branch('to', +1));
  app.post('/api/TransInRevert', branch('to', -1));

  app.get('/api/balance/:id', async (req, reply) => {
    const balance = await db.balance(Number(req.params.id));
    return balance === undefined ? reply.code(404).send({ error: 'no such account' }) : { balance };
  });

  // POST /api/transfer {"from":1,"to":2,"amount":30}: a saga of TransOut then TransIn, waiting for its outcome
  app.post('/api/transfer', async (req, reply) => {
    const { from, to, amount } = req.body ?? {};
    if (![from, to, amount].every(Number.isInteger) || amount <= 0) {
      return reply.code(400).send({ error: 'from, to and amount must be integers, amount above 0' });
    }
    const body = { from, to, amount };
    const busi = busiUrl();
    const saga = dtx
      .saga(undefined, { waitResult: true })
      .add(`${busi}/TransOut`, `${busi}/TransOutRevert`, body)
      .add(`${busi}/TransIn`, `${busi}/TransInRevert`, body);
    try {
      await saga.submit();
      return { gid: saga.gid, result: 'succeeded' };
    } catch (err) {
      if (isFailure(err)) return reply.code(409).send({ gid: saga.gid, result: 'rolled back', reason: err.message });
      if (isOngoing(err)) return reply.code(202).send({ gid: saga.gid, result: 'still running' });
      throw err; // the coordinator was not reached: 500, submit again
    }
  });
  return app;
}
