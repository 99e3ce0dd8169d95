// The plain-data description of the infrastructure the services connect to.
// It survives JSON (processes started by scripts/start.ts can receive it).

export interface HostPort {
  host: string;
  port: number;
}

export interface MemberAddress extends HostPort {
  /** Member name from the shard config (`rs0-a`), or `<rs>-<n>` for URL-given servers. */
  name: string;
}

export interface MysqlCredentials {
  user: string;
  password: string;
}

export interface ReplicaSetInfo {
  name: string;
  primary: MemberAddress;
  replicas: MemberAddress[];
}

export interface ShardInfo {
  /** Vitess keyrange name, e.g. `40-80`. */
  name: string;
  replicaSet: string;
  database: string;
}

export interface MysqlInfo {
  keyspace: string;
  replicaSets: ReplicaSetInfo[];
  shards: ShardInfo[];
  /** What services use: SELECT, INSERT, UPDATE, DELETE on the shard databases, nothing else. */
  appUser: MysqlCredentials;
  /** Schema migrations and replication admin (failover). Never hand it to a service. */
  adminUser: MysqlCredentials;
}

export interface InfraInfo {
  mysql: MysqlInfo;
  redisUrl: string;
  natsUrl: string;
  /**
   * Where the shard layout (databases) is written when it is not
   * shard-config/local.json, e.g. a test file's own databases on a shared
   * cluster; every process gets it as CHIRP_SHARD_CONFIG.
   */
  shardConfigFile?: string;
}
