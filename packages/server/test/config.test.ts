/**
 * Configuration (spec §10, DTM's dtmsvr/config/config_test.go): DTM's keys, defaults and env names, the loading
 * order defaults ← env ← YAML, and the validation messages. Every load passes its own env object.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, coreConfigOf, DEFAULT_CONFIG, envName, loadConfig } from '../src/config.js';

let dir: string;
let files = 0;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'dtx-config-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Write a YAML file and return its path. */
function yamlFile(text: string): string {
  const path = join(dir, `conf-${++files}.yml`);
  writeFileSync(path, text);
  return path;
}

/** Assert that loading throws a ConfigError whose message satisfies `check`. */
function assertConfigError(load: () => unknown, check: (message: string) => boolean, what: string): void {
  assert.throws(load, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `${what}: a ConfigError, got ${String(err)}`);
    assert.ok(check(err.message), `${what}: unexpected message ${JSON.stringify(err.message)}`);
    return true;
  });
}

/** The value at a dotted path of the loaded config. */
function get(config: object, path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], config);
}

/** Spec §10.2: YAML key, env var, DTM default (Store.Driver: dtx defaults to sqlite, DTM to boltdb). */
const KEYS: [string, string, unknown][] = [
  ['Store.Driver', 'STORE_DRIVER', 'sqlite'],
  ['Store.Host', 'STORE_HOST', ''],
  ['Store.Port', 'STORE_PORT', 0],
  ['Store.User', 'STORE_USER', ''],
  ['Store.Password', 'STORE_PASSWORD', ''],
  ['Store.Db', 'STORE_DB', 'dtm'],
  ['Store.Schema', 'STORE_SCHEMA', 'public'],
  ['Store.MaxOpenConns', 'STORE_MAX_OPEN_CONNS', 500],
  ['Store.MaxIdleConns', 'STORE_MAX_IDLE_CONNS', 500],
  ['Store.ConnMaxLifeTime', 'STORE_CONN_MAX_LIFE_TIME', 5],
  ['Store.DataExpire', 'STORE_DATA_EXPIRE', 604800],
  ['Store.FinishedDataExpire', 'STORE_FINISHED_DATA_EXPIRE', 86400],
  ['Store.RedisPrefix', 'STORE_REDIS_PREFIX', '{a}'],
  ['MicroService.Driver', 'MICRO_SERVICE_DRIVER', 'default'],
  ['MicroService.Target', 'MICRO_SERVICE_TARGET', ''],
  ['MicroService.EndPoint', 'MICRO_SERVICE_END_POINT', ''],
  ['TransCronInterval', 'TRANS_CRON_INTERVAL', 3],
  ['TimeoutToFail', 'TIMEOUT_TO_FAIL', 35],
  ['RetryInterval', 'RETRY_INTERVAL', 10],
  ['RequestTimeout', 'REQUEST_TIMEOUT', 3],
  ['HttpPort', 'HTTP_PORT', 36789],
  ['GrpcPort', 'GRPC_PORT', 36790],
  ['JsonRpcPort', 'JSON_RPC_PORT', 36791],
  ['UpdateBranchSync', 'UPDATE_BRANCH_SYNC', 1],
  ['UpdateBranchAsyncGoroutineNum', 'UPDATE_BRANCH_ASYNC_GOROUTINE_NUM', 1],
  ['LogLevel', 'LOG_LEVEL', 'info'],
  ['Log.Outputs', 'LOG_OUTPUTS', 'stderr'],
  ['Log.RotationEnable', 'LOG_ROTATION_ENABLE', 0],
  ['Log.RotationConfigJSON', 'LOG_ROTATION_CONFIG_JSON', '{}'],
  ['TimeZoneOffset', 'TIME_ZONE_OFFSET', ''],
  ['ConfigUpdateInterval', 'CONFIG_UPDATE_INTERVAL', 3],
  ['AlertRetryLimit', 'ALERT_RETRY_LIMIT', 3],
  ['AlertWebHook', 'ALERT_WEB_HOOK', ''],
  ['AdminBasePath', 'ADMIN_BASE_PATH', ''],
  ['GrpcServiceConfig', 'GRPC_SERVICE_CONFIG', '{"loadBalancingConfig": [{"round_robin":{}}]}'],
];

describe('config defaults', () => {
  it("every DTM key defaults to DTM's value (spec §10.2), Store.Driver to sqlite", () => {
    const { config, ignoredKeys } = loadConfig(undefined, {});
    for (const [key, , value] of KEYS) assert.deepEqual(get(config, key), value, key);
    assert.deepEqual(ignoredKeys, []);
    assert.deepEqual(config, DEFAULT_CONFIG, 'loadConfig without input is the exported default');
  });

  it('loading does not mutate the exported defaults', () => {
    const before = structuredClone(DEFAULT_CONFIG);
    loadConfig(yamlFile('HttpPort: 1234\nStore:\n  Db: other\n'), { RETRY_INTERVAL: '20' });
    assert.deepEqual(DEFAULT_CONFIG, before);
  });
});

describe('envName (the DTM env-name rule)', () => {
  it('converts the spec examples', () => {
    assert.equal(envName('MicroService.EndPoint'), 'MICRO_SERVICE_END_POINT');
    assert.equal(envName('HttpPort'), 'HTTP_PORT');
    assert.equal(envName('Store.MaxOpenConns'), 'STORE_MAX_OPEN_CONNS');
    assert.equal(envName('MicroService_Driver'), 'MICRO_SERVICE_DRIVER'); // config_test.go
  });

  it('gives the env var of every key of the spec table', () => {
    for (const [key, env] of KEYS) assert.equal(envName(key), env, key);
  });

  it('splits before the last capital of an acronym run', () => {
    assert.equal(envName('HTTPPort'), 'HTTP_PORT');
    assert.equal(envName('Log.RotationConfigJSON'), 'LOG_ROTATION_CONFIG_JSON');
    assert.equal(envName('GRPCServiceConfig'), 'GRPC_SERVICE_CONFIG');
  });
});

describe('loading from the environment', () => {
  const values: Record<string, string> = {
    STORE_DRIVER: 'mysql',
    STORE_HOST: 'db.internal',
    STORE_PORT: '3306',
    STORE_USER: 'root',
    STORE_PASSWORD: 's3cret',
    STORE_DB: 'dtm2',
    STORE_SCHEMA: 'dtx',
    STORE_MAX_OPEN_CONNS: '50',
    STORE_MAX_IDLE_CONNS: '40',
    STORE_CONN_MAX_LIFE_TIME: '7',
    STORE_DATA_EXPIRE: '1000',
    STORE_FINISHED_DATA_EXPIRE: '500',
    STORE_REDIS_PREFIX: '{b}',
    MICRO_SERVICE_DRIVER: 'dtm-driver-gozero',
    MICRO_SERVICE_TARGET: 'etcd://localhost:2379/dtmservice',
    MICRO_SERVICE_END_POINT: 'localhost:36790',
    TRANS_CRON_INTERVAL: '5',
    TIMEOUT_TO_FAIL: '40',
    RETRY_INTERVAL: '20',
    REQUEST_TIMEOUT: '4',
    HTTP_PORT: '8080',
    GRPC_PORT: '8081',
    JSON_RPC_PORT: '8082',
    UPDATE_BRANCH_SYNC: '0',
    UPDATE_BRANCH_ASYNC_GOROUTINE_NUM: '2',
    LOG_LEVEL: 'debug',
    LOG_OUTPUTS: 'stdout',
    LOG_ROTATION_ENABLE: '1',
    LOG_ROTATION_CONFIG_JSON: '{"maxsize":1}',
    TIME_ZONE_OFFSET: '8',
    CONFIG_UPDATE_INTERVAL: '10',
    ALERT_RETRY_LIMIT: '5',
    ALERT_WEB_HOOK: 'http://localhost:8080/alert',
    ADMIN_BASE_PATH: '/dtm',
    GRPC_SERVICE_CONFIG: '{"loadBalancingConfig":[{"pick_first":{}}]}',
  };

  it('reads every key from its env var, as a number where the default is one', () => {
    const { config } = loadConfig(undefined, values);
    for (const [key, env, def] of KEYS) {
      const want = typeof def === 'number' ? Number(values[env]) : values[env];
      assert.deepEqual(get(config, key), want, `${key} from ${env}`);
    }
  });

  it("reads dtx's own keys by the same rule", () => {
    const { config } = loadConfig(undefined, {
      STORE_SQLITE_PATH: '/var/lib/dtx/x.sqlite',
      HTTP_HOST: '127.0.0.1',
      HTTP_BODY_LIMIT: String(16 * 1024 * 1024),
      CRON_BATCH_SIZE: '64',
      DTX_TEST_MODE: 'true',
    });
    assert.equal(config.Store.SqlitePath, '/var/lib/dtx/x.sqlite');
    assert.equal(config.HttpHost, '127.0.0.1');
    assert.equal(config.HttpBodyLimit, 16 * 1024 * 1024);
    assert.equal(config.CronBatchSize, 64);
    assert.equal(config.DtxTestMode, true);
  });

  it('reads the Tracing keys: exporter off by default, a fractional SampleRatio', () => {
    assert.deepEqual(loadConfig(undefined, {}).config.Tracing, {
      Exporter: 'none',
      Endpoint: 'http://127.0.0.1:4318/v1/traces',
      ServiceName: 'dtx',
      SampleRatio: 1,
    });
    const { config } = loadConfig(undefined, {
      TRACING_EXPORTER: 'otlp',
      TRACING_ENDPOINT: 'http://collector:4318/v1/traces',
      TRACING_SERVICE_NAME: 'dtx-eu',
      TRACING_SAMPLE_RATIO: '0.25',
    });
    assert.deepEqual(config.Tracing, {
      Exporter: 'otlp',
      Endpoint: 'http://collector:4318/v1/traces',
      ServiceName: 'dtx-eu',
      SampleRatio: 0.25,
    });
    const yaml = yamlFile('Tracing:\n  Exporter: console\n  SampleRatio: 0.5\n');
    assert.equal(loadConfig(yaml, {}).config.Tracing.SampleRatio, 0.5);
    assert.equal(loadConfig(yaml, {}).config.Tracing.Exporter, 'console');
  });

  it('an empty env var keeps the default; unrelated vars are ignored', () => {
    const { config } = loadConfig(undefined, { HTTP_PORT: '', STORE_DRIVER: '', PATH: '/usr/bin', HOME: '/root' });
    assert.equal(config.HttpPort, 36789);
    assert.equal(config.Store.Driver, 'sqlite');
  });

  it('a non-integer in a numeric env var is a ConfigError naming the key', () => {
    assertConfigError(
      () => loadConfig(undefined, { HTTP_PORT: 'abc' }),
      (m) => m.includes('HttpPort'),
      'HTTP_PORT=abc',
    );
    assertConfigError(
      () => loadConfig(undefined, { STORE_MAX_OPEN_CONNS: '1.5' }),
      (m) => m.includes('Store.MaxOpenConns'),
      'STORE_MAX_OPEN_CONNS=1.5',
    );
  });
});

describe('loading a YAML file', () => {
  it('YAML wins over env; env still fills the keys the file does not set', () => {
    const file = yamlFile('HttpPort: 2222\nStore:\n  Db: from-yaml\n');
    const { config } = loadConfig(file, { HTTP_PORT: '1111', STORE_DB: 'from-env', RETRY_INTERVAL: '20' });
    assert.equal(config.HttpPort, 2222);
    assert.equal(config.Store.Db, 'from-yaml');
    assert.equal(config.RetryInterval, 20);
  });

  it('YAML keys are matched case-insensitively at every level', () => {
    const file = yamlFile(
      [
        'httpport: 3333',
        'STORE:',
        '  driver: boltdb',
        '  SQLITEPATH: /tmp/x.sqlite',
        'microService:',
        '  endpoint: localhost:9',
        'log:',
        '  outputs: stdout',
        '',
      ].join('\n'),
    );
    const { config, ignoredKeys } = loadConfig(file, {});
    assert.equal(config.HttpPort, 3333);
    assert.equal(config.Store.Driver, 'boltdb', 'boltdb is accepted');
    assert.equal(config.Store.SqlitePath, '/tmp/x.sqlite');
    assert.equal(config.MicroService.EndPoint, 'localhost:9');
    assert.equal(config.Log.Outputs, 'stdout');
    assert.deepEqual(ignoredKeys, []);
  });

  it('scalars convert to the type of the key: numeric strings to numbers, numbers to strings', () => {
    const file = yamlFile(
      "Store:\n  Driver: mysql\n  Host: localhost\n  Port: '3306'\n  User: root\n  Password: 123456\n",
    );
    const { config } = loadConfig(file, {});
    assert.equal(config.Store.Port, 3306);
    assert.equal(config.Store.Password, '123456');
  });

  it('GrpcServiceConfig may be given as a YAML mapping', () => {
    const mapped = loadConfig(yamlFile('GrpcServiceConfig:\n  loadBalancingConfig:\n    - pick_first: {}\n'), {});
    assert.deepEqual(JSON.parse(mapped.config.GrpcServiceConfig), { loadBalancingConfig: [{ pick_first: {} }] });
  });

  it('an empty GrpcServiceConfig is replaced by the round-robin default (spec §10.1 step 4)', () => {
    const empty = loadConfig(yamlFile("GrpcServiceConfig: ''\n"), {});
    assert.equal(empty.config.GrpcServiceConfig, '{"loadBalancingConfig": [{"round_robin":{}}]}', 'spec §10.1 step 4');
  });

  it('an empty file keeps the defaults', () => {
    const { config } = loadConfig(yamlFile('# nothing here\n'), {});
    assert.deepEqual(config, DEFAULT_CONFIG);
  });

  it('keys dtx does not use are reported as ignoredKeys, as written in the file', () => {
    const file = yamlFile(
      [
        'GrpcBalancer: round_robin',
        'HttpMicroService:',
        '  Driver: default',
        '  Target: ""',
        'Store:',
        '  Driver: boltdb',
        '  TransGlobalTable: dtm.trans_global',
        'HttpPort: 36789',
        '',
      ].join('\n'),
    );
    const { ignoredKeys } = loadConfig(file, {});
    assert.deepEqual([...ignoredKeys].sort(), ['GrpcBalancer', 'HttpMicroService', 'Store.TransGlobalTable']);
  });

  it('an unknown key fails start-up naming the key and the closest known one', () => {
    for (const [yaml, key, closest] of [
      ['Store:\n  Drvier: postgres\n', 'Store.Drvier', 'Store.Driver'],
      ['HttpProt: 1234\n', 'HttpProt', 'HttpPort'],
      ['Limits:\n  MaxStep: 10\n', 'Limits.MaxStep', 'Limits.MaxSteps'],
      ['Tracing:\n  Exporterr: otlp\n', 'Tracing.Exporterr', 'Tracing.Exporter'],
    ] as const) {
      assertConfigError(
        () => loadConfig(yamlFile(yaml), {}),
        (m) => m.startsWith(`${key} (`) && m.includes(`did you mean ${closest}?`),
        key,
      );
    }
  });

  it("Limits.* and the HTTP timeouts: defaults, env names by DTM's rule, validation", () => {
    const { config } = loadConfig(undefined, {});
    assert.deepEqual(config.Limits, {
      MaxSteps: 1000,
      MaxBranchHeaders: 32,
      MaxBranchHeadersBytes: 8192,
      MaxConcurrentCallsPerTrans: 64,
      MaxConcurrentCalls: 1024,
      MaxBackgroundPasses: 1024,
    });
    assert.equal(config.MaxRetryInterval, 3600);
    assert.deepEqual([config.HttpRequestTimeout, config.HttpHeadersTimeout, config.HttpKeepAliveTimeout], [60, 20, 72]);
    const env = {
      LIMITS_MAX_STEPS: '5',
      LIMITS_MAX_BRANCH_HEADERS: '6',
      LIMITS_MAX_BRANCH_HEADERS_BYTES: '7',
      HTTP_REQUEST_TIMEOUT: '8',
      HTTP_HEADERS_TIMEOUT: '4',
      HTTP_KEEP_ALIVE_TIMEOUT: '9',
      LIMITS_MAX_CONCURRENT_CALLS_PER_TRANS: '10',
      LIMITS_MAX_CONCURRENT_CALLS: '11',
      LIMITS_MAX_BACKGROUND_PASSES: '12',
      MAX_RETRY_INTERVAL: '13',
    };
    const c = loadConfig(undefined, env).config;
    assert.deepEqual(c.Limits, {
      MaxSteps: 5,
      MaxBranchHeaders: 6,
      MaxBranchHeadersBytes: 7,
      MaxConcurrentCallsPerTrans: 10,
      MaxConcurrentCalls: 11,
      MaxBackgroundPasses: 12,
    });
    assert.equal(c.MaxRetryInterval, 13);
    assert.deepEqual(
      [coreConfigOf(c).maxCallsPerTrans, coreConfigOf(c).maxCalls, coreConfigOf(c).maxBackgroundPasses],
      [10, 11, 12],
    );
    assertConfigError(
      () => loadConfig(undefined, { MAX_RETRY_INTERVAL: '9' }),
      (m) => m.startsWith('MaxRetryInterval: must not be less than RetryInterval (10)'),
      'MaxRetryInterval below RetryInterval',
    );
    assert.deepEqual([c.HttpRequestTimeout, c.HttpHeadersTimeout, c.HttpKeepAliveTimeout], [8, 4, 9]);
    assertConfigError(
      () => loadConfig(undefined, { LIMITS_MAX_STEPS: '0' }),
      (m) => m.startsWith('Limits.MaxSteps: must be greater than 0'),
      'MaxSteps 0',
    );
    assertConfigError(
      () => loadConfig(undefined, { HTTP_REQUEST_TIMEOUT: '5', HTTP_HEADERS_TIMEOUT: '6' }),
      (m) => m.startsWith('HttpHeadersTimeout: must not be greater than HttpRequestTimeout (5)'),
      'headers > request',
    );
  });

  it("a file like DTM's conf.sample.yml loads, and UpdateBranchSync keeps its default 1", () => {
    const file = yamlFile(`#####################################################################
### dtm can be run without any config; every key below is optional
### MicroService.EndPoint => MICRO_SERVICE_END_POINT
#####################################################################
Store: # specify which engine to store trans status
  Driver: 'postgres'
  Host: 'localhost'
  User: 'postgres'
  Password: 'mysecretpassword'
  Port: '5432'
  Db: 'dtm'
  Schema: 'public'
  MaxOpenConns: 500
  MaxIdleConns: 500
  ConnMaxLifeTime: 5 # minutes
  TransGlobalTable: 'dtm.trans_global'
  TransBranchOpTable: 'dtm.trans_branch_op'
  DataExpire: 604800
  RedisPrefix: '{a}'

MicroService:
  Driver: 'dtm-driver-gozero' # name of the driver to handle register/discover
  Target: 'etcd://localhost:2379/dtmservice' # register dtm server to this url
  EndPoint: 'localhost:36790'

HttpMicroService:
  Driver: 'default'
  RegistryType: ''
  RegistryAddress: ''
  RegistryOptions: '{}'
  Target: ''
  EndPoint: ''

# the unit of following configurations is second
TransCronInterval: 3
TimeoutToFail: 35
RetryInterval: 10
UpdateBranchAsyncGoroutineNum: 1
LogLevel: 'info'
Log:
  Outputs: 'stderr'
  RotationEnable: 0
  RotationConfigJSON: '{}'
HttpPort: 36789
GrpcPort: 36790
ConfigUpdateInterval: 10
AlertRetryLimit: 3
AlertWebHook: 'http://localhost:8080/api/alert'
AdminBasePath: ''
`);
    const { config, ignoredKeys } = loadConfig(file, {});
    assert.equal(config.Store.Driver, 'postgres');
    assert.equal(config.Store.Host, 'localhost');
    assert.equal(config.Store.Port, 5432);
    assert.equal(config.Store.User, 'postgres');
    assert.equal(config.Store.Password, 'mysecretpassword');
    assert.equal(config.MicroService.Driver, 'dtm-driver-gozero');
    assert.equal(config.MicroService.Target, 'etcd://localhost:2379/dtmservice');
    assert.equal(config.MicroService.EndPoint, 'localhost:36790');
    assert.equal(config.ConfigUpdateInterval, 10);
    assert.equal(config.AlertWebHook, 'http://localhost:8080/api/alert');
    assert.equal(config.UpdateBranchSync, 1);
    assert.deepEqual([...ignoredKeys].sort(), [
      'HttpMicroService',
      'Store.TransBranchOpTable',
      'Store.TransGlobalTable',
    ]);
  });

  it('a missing or malformed file is a ConfigError naming the file', () => {
    const missing = join(dir, 'does-not-exist.yml');
    assertConfigError(
      () => loadConfig(missing, {}),
      (m) => m.includes(missing),
      'missing file',
    );
    const bad = yamlFile('HttpPort: [1, 2\n');
    assertConfigError(
      () => loadConfig(bad, {}),
      (m) => m.includes(bad),
      'bad YAML',
    );
    const list = yamlFile('- HttpPort: 1\n');
    assertConfigError(
      () => loadConfig(list, {}),
      (m) => m.includes(list),
      'a list at the top',
    );
  });
});

describe('validation (spec §10.1)', () => {
  const load = (yaml: string) => () => loadConfig(yamlFile(yaml), {});

  it('RetryInterval below 10', () => {
    assertConfigError(
      load('RetryInterval: 5\n'),
      (m) => m === 'RetryInterval should not be less than 10',
      'RetryInterval 5',
    );
    assert.equal(loadConfig(yamlFile('RetryInterval: 10\n'), {}).config.RetryInterval, 10);
  });

  it('TimeoutToFail below RetryInterval', () => {
    assertConfigError(
      load('RetryInterval: 40\n'),
      (m) => m === 'TimeoutToFail should not be less than RetryInterval',
      'RetryInterval 40 with the default TimeoutToFail 35',
    );
    assertConfigError(
      load('TimeoutToFail: 9\n'),
      (m) => m === 'TimeoutToFail should not be less than RetryInterval',
      'TimeoutToFail 9',
    );
    assert.equal(loadConfig(yamlFile('RetryInterval: 35\n'), {}).config.RetryInterval, 35);
  });

  for (const driver of ['mysql', 'postgres']) {
    it(`${driver}: DTM's Db messages (with their trailing space), naming the key`, () => {
      const ok = { Host: 'localhost', Port: 5432, User: 'u' };
      const yaml = (o: Record<string, unknown>) =>
        `Store:\n  Driver: ${driver}\n${Object.entries(o)
          .map(([k, v]) => `  ${k}: '${v}'\n`)
          .join('')}`;
      assertConfigError(
        load(yaml({ Port: 1, User: 'u' })),
        (m) => m.endsWith('Db host not valid ') && m.includes('Store.Host'),
        'empty Host',
      );
      assertConfigError(
        load(yaml({ Host: 'h', User: 'u' })),
        (m) => m.endsWith('Db port not valid ') && m.includes('Store.Port'),
        'Port 0',
      );
      assertConfigError(
        load(yaml({ Host: 'h', Port: 1 })),
        (m) => m.endsWith('Db user not valid ') && m.includes('Store.User'),
        'empty User',
      );
      const schemaEmpty = () => loadConfig(yamlFile(yaml({ ...ok, Schema: '' })), {});
      if (driver === 'postgres') {
        assertConfigError(
          schemaEmpty,
          (m) => m.endsWith('Postgres schema not valid') && m.includes('Store.Schema'),
          'empty Schema',
        );
      } else {
        assert.equal(schemaEmpty().config.Store.Schema, '', 'mysql does not need a schema');
      }
      assert.equal(loadConfig(yamlFile(yaml(ok)), {}).config.Store.Driver, driver);
    });
  }

  it("redis: DTM's Redis messages, naming the key", () => {
    assertConfigError(
      load('Store:\n  Driver: redis\n  Port: 6379\n'),
      (m) => m.endsWith('Redis host not valid') && m.includes('Store.Host'),
      'empty Host',
    );
    assertConfigError(
      load('Store:\n  Driver: redis\n  Host: localhost\n'),
      (m) => m.endsWith('Redis port not valid') && m.includes('Store.Port'),
      'Port 0',
    );
    const { config } = loadConfig(yamlFile('Store:\n  Driver: redis\n  Host: localhost\n  Port: 6379\n'), {});
    assert.equal(config.Store.Port, 6379);
  });

  it('the validation also applies to values that came from the environment', () => {
    assertConfigError(
      () => loadConfig(undefined, { RETRY_INTERVAL: '9' }),
      (m) => m === 'RetryInterval should not be less than 10',
      'RETRY_INTERVAL=9',
    );
    assertConfigError(
      () => loadConfig(undefined, { STORE_DRIVER: 'redis' }),
      (m) => m.endsWith('Redis host not valid'),
      'STORE_DRIVER=redis',
    );
  });

  it('a value of the wrong type is a ConfigError naming the key', () => {
    const cases: [string, string][] = [
      ['HttpPort: "abc"\n', 'HttpPort'],
      ['HttpPort: 1.5\n', 'HttpPort'],
      ['HttpPort: true\n', 'HttpPort'],
      ['HttpPort:\n  a: 1\n', 'HttpPort'],
      ['Store:\n  Port: x\n', 'Store.Port'],
      ['Log:\n  RotationEnable: yes please\n', 'Log.RotationEnable'],
      ['DtxTestMode: maybe\n', 'DtxTestMode'],
    ];
    for (const [yaml, key] of cases) {
      assertConfigError(load(yaml), (m) => m.includes(key), JSON.stringify(yaml));
    }
  });

  it('a scalar where DTM expects a mapping (Store: sqlite) is a ConfigError naming the key', () => {
    assertConfigError(load('Store: sqlite\n'), (m) => m.includes('Store'), 'Store given as a scalar');
  });

  it('HttpBodyLimit below 4 MiB is rejected, naming the key; 4 MiB is accepted', () => {
    assertConfigError(
      load(`HttpBodyLimit: ${4 * 1024 * 1024 - 1}\n`),
      (m) => m.includes('HttpBodyLimit'),
      'HttpBodyLimit 4 MiB - 1',
    );
    assert.equal(loadConfig(yamlFile(`HttpBodyLimit: ${4 * 1024 * 1024}\n`), {}).config.HttpBodyLimit, 4 * 1024 * 1024);
  });

  it('other invalid values name their key', () => {
    const cases: [string, string][] = [
      ['Store:\n  Driver: oracle\n', 'Store.Driver'],
      ['HttpPort: 70000\n', 'HttpPort'],
      ['GrpcPort: -1\n', 'GrpcPort'],
      ['TransCronInterval: 0\n', 'TransCronInterval'],
      ['RequestTimeout: 0\n', 'RequestTimeout'],
      ['CronBatchSize: 0\n', 'CronBatchSize'],
      ['LogLevel: verbose\n', 'LogLevel'],
      ['AlertWebHook: localhost:8080/alert\n', 'AlertWebHook'],
      ['TimeZoneOffset: eight\n', 'TimeZoneOffset'],
      ["Store:\n  SqlitePath: ''\n", 'Store.SqlitePath'],
      ['Tracing:\n  Exporter: jaeger\n', 'Tracing.Exporter'],
      ['Tracing:\n  Exporter: otlp\n  Endpoint: collector:4318\n', 'Tracing.Endpoint'],
      ["Tracing:\n  ServiceName: ''\n", 'Tracing.ServiceName'],
      ['Tracing:\n  SampleRatio: 1.5\n', 'Tracing.SampleRatio'],
      ['Tracing:\n  SampleRatio: -0.1\n', 'Tracing.SampleRatio'],
      ['Tracing:\n  SampleRatio: half\n', 'Tracing.SampleRatio'],
    ];
    for (const [yaml, key] of cases) {
      assertConfigError(load(yaml), (m) => m.includes(key), JSON.stringify(yaml));
    }
  });
});

describe('Stuck.* (when a transaction counts as stuck)', () => {
  it('FailedAttempts 0 takes AlertRetryLimit; env and YAML set both keys; negatives are refused', () => {
    let c = loadConfig(undefined, {}).config;
    assert.deepEqual([coreConfigOf(c).stuckFailedAttempts, coreConfigOf(c).stuckUnfinishedAfter], [3, 3600]);
    c = loadConfig(undefined, { ALERT_RETRY_LIMIT: '7' }).config;
    assert.equal(coreConfigOf(c).stuckFailedAttempts, 7);
    c = loadConfig(undefined, { STUCK_FAILED_ATTEMPTS: '5', STUCK_UNFINISHED_AFTER: '0' }).config;
    assert.deepEqual([coreConfigOf(c).stuckFailedAttempts, coreConfigOf(c).stuckUnfinishedAfter], [5, 0]);
    c = loadConfig(yamlFile('Stuck:\n  FailedAttempts: 9\n  UnfinishedAfter: 60\n'), {}).config;
    assert.deepEqual([coreConfigOf(c).stuckFailedAttempts, coreConfigOf(c).stuckUnfinishedAfter], [9, 60]);
    for (const key of ['FailedAttempts', 'UnfinishedAfter']) {
      assertConfigError(
        () => loadConfig(yamlFile(`Stuck:\n  ${key}: -1\n`), {}),
        (m) => m.includes(`Stuck.${key}`) && m.includes('negative'),
        key,
      );
    }
    assertConfigError(
      () => loadConfig(yamlFile('Stuck:\n  Attempts: 3\n'), {}),
      (m) => m.includes('Stuck.Attempts'),
      'unknown key',
    );
  });
});
