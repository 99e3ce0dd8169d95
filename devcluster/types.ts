// The plain-data description of the infrastructure the services connect to.
// It survives JSON (processes started by scripts/start.ts can receive it).
import type { MysqlInfo } from "../lib/shard/types.js";

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
