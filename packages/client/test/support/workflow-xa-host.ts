/**
 * A workflow host process for the workflow-XA crash tests: runs `xaTransfer` (support/workflow-xa.ts) for one gid
 * with a dialect that SIGKILLs the process at a crash point. Environment: XA_DB (mysql | postgres), XA_TABLE,
 * WF_PROTOCOL (http | grpc), WF_DTM (the coordinator: its HTTP API or gRPC address), WF_RESUME (the resume URL
 * recorded with the workflow), WF_GID, WF_INPUT (JSON), WF_CRASH (an XaCrashPoint).
 */
import { DtxGrpcClient } from '../../src/grpc/index.js';
import { DtxClient } from '../../src/index.js';
import { crashingDialect, registerXaTransfer, type XaCrashPoint } from './workflow-xa.js';
import { openXaHarness, type XaDbName } from './xa-db.js';

const env = (k: string): string => {
  const v = process.env[k];
  if (v === undefined || v === '') throw new Error(`${k} is not set`);
  return v;
};
const h = await openXaHarness(env('XA_DB') as XaDbName, env('XA_TABLE'), false);
const options = { workflowResumeUrl: env('WF_RESUME'), requestTimeoutMs: 30_000 };
const client =
  env('WF_PROTOCOL') === 'grpc' ? new DtxGrpcClient(env('WF_DTM'), options) : new DtxClient(env('WF_DTM'), options);
registerXaTransfer(client, h, crashingDialect(h.dialect, env('WF_CRASH') as XaCrashPoint));
await client.workflow.execute('xaTransfer', env('WF_GID'), JSON.parse(env('WF_INPUT')));
console.log('finished without crashing');
process.exit(3);
