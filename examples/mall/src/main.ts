#!/usr/bin/env node
/**
 * The mall's command line:
 *   node examples/mall/dist/src/main.js up [--etc <dir>] [--check]   everything (`npm run mall`)
 *   node examples/mall/dist/src/main.js <service> [-f <yaml>]        one service, as `go run user.go -f etc/user.yaml`
 *   node examples/mall/dist/src/main.js migrate [-f <yaml>]          create the database and tables, then exit
 *
 * @module
 */
import { parseArgs } from 'node:util';
import { readYaml, rpcConf } from './common/config.js';
import { migrate } from './migrate.js';
import { isServiceName, SERVICE_NAMES, startService } from './services.js';
import { ETC_DIR, up } from './up.js';

const HELP = `mall — the go-zero mall tutorial on dtx

Usage:
  mall up [--etc <dir>] [--check]   migrate, start dtx and the eight services, check they are up (npm run mall);
                                    --check stops everything again once all answered
  mall <service> [-f <yaml>]        run one service: ${SERVICE_NAMES.join(', ')}
                                    (default config: etc/<service>.yaml)
  mall migrate [-f <yaml>]          create the database of Mysql.DataSource (default etc/user-rpc.yaml), its
                                    tables (sql/mall.sql) and dtm_barrier.barrier, then exit
`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      file: { type: 'string', short: 'f' },
      etc: { type: 'string' },
      check: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const cmd = positionals[0];
  if (values.help || cmd === undefined) {
    process.stdout.write(HELP);
    return cmd === undefined && !values.help ? 2 : 0;
  }
  if (cmd === 'up') return up({ etc: values.etc ?? ETC_DIR, check: values.check === true });
  if (cmd === 'migrate') {
    const conf = rpcConf(await readYaml(values.file ?? `${ETC_DIR}/user-rpc.yaml`));
    await migrate(conf.Mysql.DataSource);
    process.stdout.write(`database ready: ${conf.Mysql.DataSource.replace(/:[^@]*@/, ':***@')}\n`);
    return 0;
  }
  if (!isServiceName(cmd)) {
    process.stderr.write(`unknown command or service '${cmd}'\n\n${HELP}`);
    return 2;
  }
  const service = await startService(cmd, await readYaml(values.file ?? `${ETC_DIR}/${cmd}.yaml`));
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await service.close();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`mall: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
