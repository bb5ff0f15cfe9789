// A workflow host process for the crash test: runs the tests' transfer workflow for one gid and is SIGKILLed
// while its second HTTP step waits. Usage: node workflow-host.js <coordinator url> <busi url> <gid>
import { randomUUID } from 'node:crypto';
import { DtxClient, type Workflow } from '../../src/index.js';

const [url, busiUrl, gid] = process.argv.slice(2) as [string, string, string];
const client = new DtxClient(url, { requestTimeoutMs: 60_000 });
client.workflow.register('transfer', async (wf: Workflow, input: { amount: number }) => {
  const out = await wf.call(`${busiUrl}/TransOut`, input, {
    onRollback: `${busiUrl}/TransOutRevert`,
    onCommit: () => {},
  });
  const stamp = await wf.step(() => randomUUID());
  await wf.call(`${busiUrl}/TransIn`, input, { onRollback: `${busiUrl}/TransInRevert`, onCommit: () => {} });
  return { out: out.json<{ path: string }>().path, stamp };
});
await client.workflow.execute('transfer', gid, { amount: 11 });
