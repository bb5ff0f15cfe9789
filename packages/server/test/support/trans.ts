import type { Busi } from './busi.js';

/** A 2-step saga body (TransOut/TransOutRevert, TransIn/TransInRevert), like DTM's busi sagas. */
export function sagaBody(busi: Busi, gid: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    gid,
    trans_type: 'saga',
    protocol: 'http',
    concurrent: false,
    steps: [
      { action: `${busi.url}/TransOut`, compensate: `${busi.url}/TransOutRevert` },
      { action: `${busi.url}/TransIn`, compensate: `${busi.url}/TransInRevert` },
    ],
    payloads: ['{"amount":30}', '{"amount":30}'],
    ...extra,
  };
}

/** A msg body with two direct branches. */
export function msgBody(busi: Busi, gid: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    gid,
    trans_type: 'msg',
    protocol: 'http',
    concurrent: false,
    steps: [{ action: `${busi.url}/TransOut` }, { action: `${busi.url}/TransIn` }],
    payloads: ['{"amount":30}', '{"amount":30}'],
    query_prepared: `${busi.url}/QueryPrepared`,
    ...extra,
  };
}

let seq = 0;
/** A unique gid for a test. */
export function gidFor(name: string): string {
  seq += 1;
  return `${name}-${process.pid}-${Date.now().toString(36)}-${seq}`;
}
