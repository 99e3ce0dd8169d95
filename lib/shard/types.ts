// The plain-data description of a keyspace's replica sets, members and
// shards, as the shard router and the topology manager see them. Plain JSON:
// it crosses process boundaries (devcluster/types.ts builds InfraInfo on it).

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
  /** false: a reshard's target, not in the ring until its writes switch (decision 23). Absent: serving. */
  serving?: boolean;
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
