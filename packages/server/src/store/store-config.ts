/**
 * The Store section of the configuration (DTM's Store.* keys, spec §10.2), as the stores read it: the stores get
 * this section, never the whole server configuration.
 */
export interface StoreConfig {
  Driver: string;
  Host: string;
  Port: number;
  User: string;
  Password: string;
  Db: string;
  Schema: string;
  MaxOpenConns: number;
  MaxIdleConns: number;
  ConnMaxLifeTime: number;
  DataExpire: number;
  FinishedDataExpire: number;
  RedisPrefix: string;
  /** dtx: the SQLite file of the embedded store. */
  SqlitePath: string;
}
