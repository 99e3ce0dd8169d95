// The topology manager (Vitess's vtorc + heartbeat writer in one): finds the
// real primary of each replica set at start, publishes the live topology in
// the KV, writes heartbeats while routers ask for them or a set is in trouble,
// probes every member, fails a dead primary over, fences, and brings returning
// members back as replicas. One replica set's trouble never touches another's:
// each is evaluated, paced and failed over alone.
import { EventEmitter } from "node:events";
import type { KV } from "@nats-io/kv";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { heartbeatDemandSubject } from "../../lib/shard/heartbeat-demand.js";
import type { MemberAddress, ReplicaSetInfo } from "../../lib/shard/types.js";
import type { Logger } from "../../lib/logger.js";
import { compareGtidPos, errantGtids, formatGtidList, type Gtid } from "../../lib/shard/gtid.js";
import {
  fence,
  isReplicatingFrom,
  promote,
  SEMI_SYNC_TIMEOUT_MS,
  setSemiSyncMaster,
  setSemiSyncNeverFallBack,
  waitApplied,
} from "../../lib/shard/replication.js";
import { memberStatusKey, publishTopology, readTopology, StaleTopologyError, type LiveTopology, type MemberStatus } from "../../lib/shard/topology.js";
import type { TopologyConfig } from "./config.js";
import { saveErrant, rebuildFrom } from "./rebuild.js";
import { FailoverAborted, failover, rejoin, sameAddress, type FailoverContext, type FailoverReport } from "./failover.js";
import { trackLost, type LostMember, type PrimaryReading } from "./covers.js";
import { HeartbeatWriter } from "./heartbeat.js";
import type { Leadership } from "./leadership.js";
import type { TopologyMetrics } from "./metrics.js";
import { MemberProbe } from "./monitor.js";
import { HeartbeatDemand, StatePace } from "./pacing.js";
import { heartbeatDatabases, LiveDocument, nextTopology } from "./document.js";
import { freezeRelayLog, Hearing, readHearing } from "./silence.js";

export interface ManagerDeps {
  readonly log: Logger;
  readonly metrics: TopologyMetrics;
  readonly kv: KV;
  /** The connection the routers' asks for heartbeats arrive on (heartbeat-demand.ts). */
  readonly nc: NatsConnection;
  /** The lease that makes this manager the one that acts (leadership.ts); without one (tests, benchmarks) it always acts. */
  readonly leadership?: Leadership;
}

export interface ManagerEvents {
  topology: [LiveTopology];
  failover: [FailoverReport];
  failoverAborted: [{ replicaSet: string; reason: string }];
  rejoin: [{ replicaSet: string; member: string; result: "ok" | "refused" | "failed"; errant?: string }];
  /** A refused member was rebuilt from the primary (rebuild.ts): its errant transactions saved to `file` first. */
  rebuild: [{ replicaSet: string; member: string; result: "ok" | "failed"; file?: string; ms: number; error?: string }];
  /**
   * A member not receiving from the primary got its cover (covers.ts): the
   * primary position that contains all it can have acknowledged. A failover
   * without it promotes only a candidate that received that much (decision 24).
   */
  covered: [{ replicaSet: string; member: string; cover: string }];
  /** After every probe round. */
  tick: [];
  /** Routers started asking for heartbeats, or stopped (the on-demand window ran out). */
  heartbeatDemand: [{ wanted: boolean }];
}

/** Retry an aborted failover of the same replica set no sooner than this. */
const FAILOVER_RETRY_MS = 2_000;
/** A primary probe running this long (a ping takes milliseconds) starts sampling what its replicas hear (silence.ts). */
const SUSPECT_PROBE_MS = 200;
const START_TIMEOUT_MS = 60_000;

interface SetState {
  readonly info: { name: string; databases: string[] };
  readonly probes: MemberProbe[];
  primary: string;
  /** Members published as replicas. */
  replicas: Set<string>;
  badTicks: number;
  badSince: number | undefined;
  busy: boolean;
  lastFailoverAttempt: number;
  waitingLogged: boolean;
  semiSyncActive: boolean | undefined;
  semiSyncClients: number | undefined;
  semiSyncOffTimes: number | undefined;
  fellBack: boolean;
  /**
   * Members not receiving from the primary: since when, and the first primary
   * binlog position read after that (with the primary counting no more
   * semi-sync clients than the members seen receiving), which contains all
   * they can have acknowledged. A failover needs it to promote without them.
   */
  lost: Map<string, LostMember>;
  /** Commits were seen waiting for an ack with no semi-sync client (logged once per change). */
  stalled: boolean;
  heartbeat: HeartbeatWriter;
  pace: StatePace;
  /** What each replica hears from the primary, sampled while its probe hangs or fails (silence.ts). */
  hearing: Hearing;
  /** A sampling round is running. */
  hearingBusy: boolean;
  /** Replicas whose IO thread this manager stopped because none heard the primary any more; started again if it answers. */
  frozenEarly: Set<string>;
}

export class TopologyManager extends EventEmitter<ManagerEvents> {
  private readonly sets = new Map<string, SetState>();
  private topology: LiveTopology | undefined;
  /** The KV's document, followed from start(): a reshard publishes without this manager (document.ts). */
  private live: LiveDocument | undefined;
  /** Former primaries that went away before they could be fenced. */
  private readonly needsFencing = new Set<string>();
  /** Members refused a rejoin, with the errant GTIDs (logged once per change). */
  private readonly refused = new Map<string, string>();
  private readonly memberBusy = new Set<string>();
  private readonly ctx: FailoverContext;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private tickRunning: Promise<void> | undefined;
  private readonly demand: HeartbeatDemand;
  private demanded = false;
  private demandSub: Subscription | undefined;
  /** The lease it acts under (deps.leadership, or the one start() is given after watch()). */
  private leadership: Leadership | undefined;
  /** A standby's probing (watch()): members are probed, nothing is changed. */
  private watching = false;
  /** While start() takes over from watching: no round may begin (one would decide on the set before it is resolved). */
  private ticksHeld = false;

  constructor(
    private readonly config: TopologyConfig,
    private readonly deps: ManagerDeps,
  ) {
    super();
    this.leadership = deps.leadership;
    this.demand = new HeartbeatDemand(config.heartbeatOnDemandMs);
    this.ctx = {
      log: deps.log,
      admin: config.admin,
      repl: config.repl,
      probeTimeoutMs: config.probeTimeoutMs,
      applyTimeoutMs: config.applyTimeoutMs,
      mayAct: () => this.acting(),
    };
    for (const rs of config.replicaSets) {
      const databases = config.shardConfig.shards.filter((s) => s.replicaSet === rs.name).map((s) => s.database);
      const probes = [rs.primary, ...rs.replicas].map((m) => new MemberProbe(rs.name, m, config.admin, config.probeTimeoutMs, config.stateMs));
      this.sets.set(rs.name, {
        info: { name: rs.name, databases },
        probes,
        primary: rs.primary.name,
        replicas: new Set(rs.replicas.map((r) => r.name)),
        badTicks: 0,
        badSince: undefined,
        busy: false,
        lastFailoverAttempt: 0,
        waitingLogged: false,
        semiSyncActive: undefined,
        semiSyncClients: undefined,
        semiSyncOffTimes: undefined,
        fellBack: false,
        lost: new Map(),
        hearing: new Hearing(),
        hearingBusy: false,
        frozenEarly: new Set(),
        stalled: false,
        heartbeat: new HeartbeatWriter(rs.name, config.admin, config.probeTimeoutMs, Math.max(config.probeTimeoutMs * 4, 10_000), deps.log, deps.metrics),
        pace: new StatePace(config.quietStateMs, config.stateMs),
      });
    }
  }

  /** The topology this manager last published or adopted. */
  get current(): LiveTopology | undefined {
    return this.topology;
  }

  /** The replica sets it writes heartbeats to now: all while routers ask, else those in trouble. */
  heartbeatSets(): string[] {
    const wanted = this.demand.wanted(Date.now());
    return [...this.sets.values()].filter((s) => wanted || s.pace.isTroubled).map((s) => s.info.name);
  }

  /**
   * A standby's wait (issue 22): probes every member at the probe pace over
   * kept-open connections, reading each one's state at the quiet pace, and
   * changes nothing (no decision, heartbeat or publication). start() then
   * begins from what it has seen: no connection to open, and a primary that
   * went down while it watched counted as down since then.
   */
  watch(): Promise<void> {
    if (this.watching || this.stopped) return Promise.resolve();
    this.watching = true;
    for (const set of this.sets.values()) for (const p of set.probes) p.setStatePace(this.config.quietStateMs);
    // Warm once every member has answered or failed a probe.
    const warm = new Promise<void>((resolve) => {
      const check = (): void => {
        if ([...this.sets.values()].every((s) => s.probes.every((p) => p.up !== undefined))) resolve();
        else setTimeout(check, this.config.probeIntervalMs).unref();
      };
      check();
    });
    this.scheduleTick();
    return warm;
  }

  /**
   * Finds the primaries, publishes the topology, then monitors until stop().
   * `leadership`: the lease it now holds, after watch().
   */
  async start(leadership?: Leadership): Promise<LiveTopology> {
    const log = this.deps.log;
    if (leadership !== undefined) this.leadership = leadership;
    const warm = this.watching;
    if (warm) {
      this.ticksHeld = true;
      clearTimeout(this.tickTimer);
      await this.tickRunning;
      clearTimeout(this.tickTimer);
      this.watching = false;
      // What the members are now, not as last read at the quiet pace.
      for (const set of this.sets.values()) for (const p of set.probes) p.readStateNext();
    }
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      await this.probeAll();
      const missing = [...this.sets.values()].filter((s) => !s.probes.some((p) => p.up));
      if (missing.length === 0) break;
      if (Date.now() > deadline) throw new Error(`no member of ${missing.map((s) => s.info.name).join(", ")} answers`);
      await sleep(this.config.probeIntervalMs);
    }
    const existing = await readTopology(this.deps.kv, this.config.shardConfig.keyspace);
    if (existing) this.topology = existing.topology;
    this.live ??= new LiveDocument(this.deps.kv, this.config.shardConfig.keyspace, log);
    await this.live.follow();
    const adopted: SetState[] = [];
    for (const set of this.sets.values()) {
      if (warm && existing !== null && existing !== undefined && this.adoptDownPrimary(set, existing.topology)) adopted.push(set);
      else await this.resolvePrimary(set, existing?.topology);
    }
    const published = this.topology;
    const wanted = this.describe();
    if (published === undefined || !sameSets(published.replicaSets, wanted)) {
      await this.publish(`initial topology${published ? ` (the KV's epoch ${published.epoch} disagrees with the servers)` : ""}`);
    } else {
      log.info({ epoch: published.epoch }, "the KV's topology matches the servers");
    }
    this.deps.metrics.epoch.set(this.topology!.epoch);
    this.demandSub = this.deps.nc.subscribe(heartbeatDemandSubject(this.config.shardConfig.keyspace), {
      callback: (err) => {
        if (err === null) this.heartbeatsAsked();
      },
    });
    this.beatAll();
    this.heartbeatTimer = setInterval(() => this.beatAll(), this.config.heartbeatIntervalMs);
    // A published primary that went down while this manager watched is failed over now, by the usual rules.
    for (const set of adopted) this.evaluate(set).catch((err: unknown) => this.deps.log.error({ err, replica_set: set.info.name }, "evaluation failed"));
    this.ticksHeld = false;
    this.scheduleTick();
    return this.topology!;
  }

  /**
   * A warm start (after watch()) where the published primary of `set` is
   * down and no member has been made writable since (a manager that died
   * mid-failover got no further than freezing the replicas): the published
   * view is kept and the down primary is left to the failover rules
   * (failed probes counted while watching; at once when its replicas have
   * lost it too, else after the confirmation window), rather than promoting
   * whichever replica is most advanced on the spot as a cold start must.
   */
  private adoptDownPrimary(set: SetState, published: LiveTopology): boolean {
    const rs = published.replicaSets.find((r) => r.name === set.info.name);
    if (rs === undefined) return false;
    const primary = set.probes.find((p) => sameAddress(p.address, rs.primary));
    if (primary === undefined || primary.up !== false) return false;
    const writable = set.probes.some((p) => p !== primary && p.up && p.state !== undefined && !p.state.readOnly && p.state.slave === undefined);
    if (writable) return false;
    set.primary = primary.name;
    set.replicas = new Set(set.probes.filter((p) => p !== primary && rs.replicas.some((r) => sameAddress(r, p.address))).map((p) => p.name));
    set.badSince = primary.firstFailureAt;
    this.deps.log.warn(
      { replica_set: set.info.name, primary: primary.name, failed_probes: primary.failures, problem: primary.lastError },
      "the published primary went down while this manager stood by: failing it over by the usual rules",
    );
    return true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.demandSub?.unsubscribe();
    this.live?.stop();
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.tickTimer);
    await this.tickRunning;
    for (const set of this.sets.values()) {
      set.heartbeat.close();
      for (const p of set.probes) p.close();
    }
  }

  private lastWholenessAt = Date.now();
  /** Members being rebuilt now (runRebuild). */
  private readonly rebuilding = new Set<string>();
  /** Each member's status as last published (memberStatusKey), and since when. */
  private statuses = new Map<string, { status: MemberStatus; detail?: string; since: string }>();
  private statusPublish: Promise<unknown> = Promise.resolve();

  /** Each member's status now: the topology's view, refused and rebuilding ones named as such. */
  private memberStatus(set: SetState, m: MemberProbe, primary: MemberProbe | undefined): { status: MemberStatus; detail?: string } {
    if (this.rebuilding.has(m.name)) return { status: "rebuilding", detail: `from ${set.primary}` };
    const refused = this.refused.get(m.name);
    if (refused !== undefined) return { status: "refused", detail: "holds transactions the primary lacks" };
    if (!m.up) return { status: "down", detail: m.lastError ?? "" };
    if (m === primary) return { status: "primary" };
    if (m.state !== undefined && primary !== undefined && isReplicatingFrom(m.state, primary.address)) return { status: "replica" };
    return { status: "not replicating", detail: m.state?.slave?.lastIoError || m.state?.slave?.lastSqlError || "" };
  }

  /** Publishes every member's status when any changed (chirp topology shows it). */
  private publishMemberStatus(): void {
    const now = new Date().toISOString();
    const next = new Map<string, { status: MemberStatus; detail?: string; since: string }>();
    const report: Record<string, Record<string, { status: MemberStatus; detail?: string; since: string }>> = {};
    let changed = false;
    for (const set of this.sets.values()) {
      const primary = this.probe(set, set.primary);
      report[set.info.name] = {};
      for (const m of set.probes) {
        const s = this.memberStatus(set, m, primary);
        const before = this.statuses.get(m.name);
        const same = before !== undefined && before.status === s.status && before.detail === s.detail;
        const entry = { ...s, since: same ? before.since : now };
        if (!same) changed = true;
        next.set(m.name, entry);
        report[set.info.name]![m.name] = entry;
      }
    }
    if (!changed) return;
    this.statuses = next;
    const data = JSON.stringify({ updateTime: now, replicaSets: report });
    this.statusPublish = this.statusPublish
      .then(() => this.deps.kv.put(memberStatusKey(this.config.shardConfig.keyspace), data))
      .catch((err: unknown) => this.deps.log.warn({ err: (err as Error).message }, "member status not published"));
  }

  /** Whether each replica set is whole (every member but the primary replicating from it), as a gauge and a running total of time not whole. */
  private recordWholeness(): void {
    const now = Date.now();
    const elapsed = (now - this.lastWholenessAt) / 1000;
    this.lastWholenessAt = now;
    for (const set of this.sets.values()) {
      const primary = this.probe(set, set.primary);
      const replicating = set.probes.filter((p) => p !== primary && p.up && p.state !== undefined && primary !== undefined && isReplicatingFrom(p.state, primary.address));
      const degraded = primary === undefined || !primary.up || replicating.length < set.probes.length - 1;
      this.deps.metrics.degraded.set({ replica_set: set.info.name }, degraded ? 1 : 0);
      if (degraded) this.deps.metrics.degradedSeconds.inc({ replica_set: set.info.name }, elapsed);
    }
  }

  /** A round every probe interval, counted from the start of the last one (a round takes at most about one interval: probeAll). */
  private scheduleTick(lastStart = Date.now()): void {
    if (this.stopped || this.ticksHeld) return;
    this.tickTimer = setTimeout(() => {
      const start = Date.now();
      this.tickRunning = this.tick().finally(() => {
        this.tickRunning = undefined;
        this.scheduleTick(start);
      });
    }, Math.max(0, this.config.probeIntervalMs - (Date.now() - lastStart)));
  }

  /**
   * One heartbeat per replica set that needs one: every set while a router
   * wants them, and a troubled set regardless (a beat is then the canary that
   * takes a lost replica's semi-sync timeout, rather than the next user's
   * write). A set in good order with no router asking gets none.
   */
  private beatAll(): void {
    if (!this.acting()) return;
    const wanted = this.demand.wanted(Date.now());
    if (wanted !== this.demanded) {
      this.demanded = wanted;
      if (!wanted) this.deps.log.info({ window_ms: this.config.heartbeatOnDemandMs }, "no router asked for heartbeats within the window: stopped writing them");
      this.emit("heartbeatDemand", { wanted });
    }
    for (const set of this.sets.values()) {
      if (wanted || set.pace.isTroubled) void set.heartbeat.beat(this.heartbeatTarget(set));
    }
  }

  /** A router asked for heartbeats: the window restarts; a first ask beats at once. */
  private heartbeatsAsked(): void {
    if (this.stopped || !this.demand.requested(Date.now())) return;
    this.deps.log.info("a router asked for heartbeats: writing them");
    this.beatAll();
  }

  private heartbeatTarget(set: SetState): { primary: MemberAddress; databases: string[] } | undefined {
    if (set.busy) return undefined;
    const p = this.probe(set, set.primary);
    // A primary with no replica to ack would only hold the beat until one returns.
    const ss = p?.state?.semiSync;
    if (ss !== undefined && ss.masterEnabled && ss.masterClients === 0 && p?.state?.readOnly === false) return undefined;
    // The live document's serving shards: a split's targets once its writes switch, without a restart.
    return p ? { primary: p.address, databases: heartbeatDatabases(set.info.name, this.live?.current ?? this.topology, this.config.shardConfig.shards) } : undefined;
  }

  /**
   * Probes every member. A member that hangs (frozen, partitioned) uses up
   * its probe timeout; the round waits for it at most one probe interval, so
   * the others (a replica that has lost its primary) are still read at the
   * probe pace. Its probe goes on and counts when it ends (a member never
   * has two probes at once: monitor.ts).
   */
  private async probeAll(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.sets.values()].flatMap((s) => s.probes.map((p) => p.probe()))),
      new Promise((resolve) => (timer = setTimeout(resolve, this.config.probeIntervalMs))),
    ]);
    clearTimeout(timer);
    for (const set of this.sets.values()) {
      for (const p of set.probes) this.deps.metrics.memberUp.set({ replica_set: set.info.name, member: p.name }, p.up ? 1 : 0);
    }
  }

  /** Whether this manager may change anything now: it leads and its lease is fresh (leadership.ts). */
  private acting(): boolean {
    if (this.watching) return false;
    return this.leadership?.mayAct() ?? true;
  }

  private async tick(): Promise<void> {
    await this.probeAll();
    if (this.stopped || !this.acting()) return;
    this.recordWholeness();
    this.publishMemberStatus();
    for (const set of this.sets.values()) this.paceStateReads(set);
    for (const set of this.sets.values()) {
      if (set.busy) continue;
      this.evaluate(set).catch((err: unknown) => this.deps.log.error({ err, replica_set: set.info.name }, "evaluation failed"));
    }
    this.emit("tick");
  }

  /**
   * Sets how often the set's members' state is read (pacing.ts): slowly while
   * nothing changes and nothing is wrong (an idle set), as before while writes
   * flow (so a semi-sync fallback is seen as soon as it was); every member at
   * the next probe when trouble begins; and while its primary misses probes,
   * the others' at every probe, so a failover decides on the replicas' view as
   * of the last probe round.
   */
  private paceStateReads(set: SetState): void {
    const primary = this.probe(set, set.primary)!;
    const began = set.pace.observe({ troubled: this.isTroubled(set, primary), changed: set.probes.some((p) => p.stateChanged) });
    for (const p of set.probes) {
      p.setStatePace(set.pace.stateMs);
      if (began || (!primary.up && p !== primary)) p.readStateNext();
    }
  }

  /** Anything but: every member answers and replicates from the primary, the primary takes writes with semi-sync on, nothing is under way. */
  private isTroubled(set: SetState, primary: MemberProbe): boolean {
    const ps = primary.state;
    if (set.busy || !primary.up || ps === undefined || ps.readOnly || ps.slave !== undefined) return true;
    const others = set.probes.filter((p) => p !== primary);
    if (others.length > 0 && !(ps.semiSync.masterEnabled && ps.semiSync.masterActive)) return true;
    return !others.every(
      (m) =>
        m.up === true &&
        m.state !== undefined &&
        m.state.readOnly &&
        isReplicatingFrom(m.state, primary.address) &&
        set.replicas.has(m.name) &&
        !this.memberBusy.has(m.name) &&
        !this.needsFencing.has(m.name) &&
        !this.refused.has(m.name),
    );
  }

  private probe(set: SetState, name: string): MemberProbe | undefined {
    return set.probes.find((p) => p.name === name);
  }

  /** One replica set, once per probe interval. */
  private async evaluate(set: SetState): Promise<void> {
    const log = this.deps.log.child({ replica_set: set.info.name });
    const primary = this.probe(set, set.primary)!;
    // A primary that answers but is read-only came back from a crash (every
    // member starts read_only) or was fenced: it serves no writes either.
    const bad = !primary.up || primary.state?.readOnly === true || primary.state?.slave !== undefined;
    if (bad) {
      set.badTicks++;
      set.badSince ??= primary.firstFailureAt ?? Date.now();
    } else {
      set.badTicks = 0;
      set.badSince = undefined;
      set.waitingLogged = false;
    }
    if (!primary.up || primary.probeRunningMs >= SUSPECT_PROBE_MS) void this.watchHearing(set, primary, log);
    else if (primary.up) set.hearing.clear();
    // An unreachable primary counts its failed probes (a slow probe spans rounds); one that answers wrongly, the rounds.
    const misses = primary.up ? set.badTicks : primary.failures;
    if (bad && misses >= this.config.failuresToFailover) {
      if (Date.now() - set.lastFailoverAttempt < FAILOVER_RETRY_MS) return;
      const others = set.probes.filter((p) => p !== primary && p.up);
      // The replicas' view: have they lost the primary too?
      // Those frozen early were frozen because none of them heard it any more.
      const replicasLost = others.every((p) => set.frozenEarly.has(p.name) || p.state?.slave === undefined || p.state.slave.ioRunning !== "Yes");
      const waited = Date.now() - (set.badSince ?? Date.now());
      if (primary.up || replicasLost || waited >= this.config.replicaConfirmMs) {
        log.warn(
          {
            primary: primary.name,
            failed_probes: misses,
            problem: primary.up ? "answers but is read-only / replicating" : primary.lastError,
            replicas_lost_it: replicasLost,
            waited_ms: waited,
          },
          "primary down: failing over",
        );
        await this.runFailover(set, primary);
      } else if (!set.waitingLogged) {
        set.waitingLogged = true;
        log.warn({ primary: primary.name }, "primary unreachable from here but its replicas still stream from it: waiting");
      }
      return;
    }
    if (bad) return;

    // Members resumed just now were probed while their IO thread was stopped: the rules below
    // would see them as not replicating and start a rejoin on top of the resume. The next round
    // reads their state again.
    const resumed = set.frozenEarly.size > 0 ? await this.resumeFrozenEarly(set, primary, log) : new Set<string>();
    this.watchSemiSync(set, primary, log);
    this.trackLost(set, primary, log);

    for (const m of set.probes) {
      if (m === primary || !m.up || m.state === undefined || this.memberBusy.has(m.name) || resumed.has(m.name)) continue;
      if (!m.state.readOnly) {
        // One fence at a time per member: evaluations overlap while one waits.
        this.memberBusy.add(m.name);
        log.error({ member: m.name, primary: primary.name }, "a second writable member: fencing it (never two primaries)");
        try {
          await m.withAdmin((c) => fence(c, this.config.admin.user, 5_000, () => m.connect()));
          this.needsFencing.delete(m.name);
        } catch (err) {
          log.warn({ member: m.name, err }, "fencing failed; retrying");
        } finally {
          this.memberBusy.delete(m.name);
        }
        continue;
      }
      if (this.needsFencing.delete(m.name)) {
        log.info({ member: m.name }, "former primary is back and read-only (every member starts so): fenced");
      }
      if (isReplicatingFrom(m.state, primary.address)) {
        if (!set.replicas.has(m.name)) {
          set.replicas.add(m.name);
          await this.publish(`${m.name} replicates from ${primary.name}`);
        }
        continue;
      }
      const s = m.state.slave;
      const pointsAtPrimary = s !== undefined && s.masterHost === primary.address.host && s.masterPort === primary.address.port;
      if (pointsAtPrimary && s.ioRunning === "Connecting" && s.lastIoErrno !== 1236) continue; // reconnecting by itself
      const known = this.refused.get(m.name);
      if (known !== undefined && known === formatGtidList(m.state.binlogState)) continue;
      void this.runRejoin(set, m, primary);
    }
  }

  /**
   * While the primary's probe hangs or fails: samples what every replica
   * still receiving from it has heard, and once none has heard anything for
   * SILENT_MS (longer than the primary's heartbeat period) and the primary
   * has failed a probe, stops their IO threads at once (silence.ts: before
   * they start reconnecting, when the stop is quick). Their relay logs are
   * then what a failover chooses from, as if frozen by it (decision 27); if
   * the primary answers again they are started again (resumeFrozenEarly).
   */
  private async watchHearing(set: SetState, primary: MemberProbe, log: Logger): Promise<void> {
    if (set.hearingBusy) return;
    set.hearingBusy = true;
    try {
      const pointing = set.probes.filter(
        (p) =>
          p !== primary &&
          p.up === true &&
          !set.frozenEarly.has(p.name) &&
          p.state?.slave !== undefined &&
          p.state.slave.masterHost === primary.address.host &&
          p.state.slave.masterPort === primary.address.port &&
          p.state.slave.ioRunning !== "No",
      );
      if (pointing.length === 0) return;
      await Promise.all(
        pointing.map(async (p) => {
          const key = await p.withAdmin((c) => readHearing(c, this.config.probeTimeoutMs)).catch(() => undefined);
          if (key !== undefined) set.hearing.record(p.name, key, Date.now());
        }),
      );
      const now = Date.now();
      if (primary.up !== false || set.busy || !this.acting() || !pointing.every((p) => set.hearing.silent(p.name, now))) return;
      for (const p of pointing) set.frozenEarly.add(p.name);
      const startedAt = Date.now();
      await Promise.all(
        pointing.map((p) =>
          p
            .withAdmin((c) => freezeRelayLog(c))
            .catch((err: unknown) => log.warn({ member: p.name, problem: (err as { code?: string }).code ?? String(err) }, "could not stop the IO thread early"))
            .finally(() => p.readStateNext()),
        ),
      );
      log.warn(
        { primary: primary.name, failed_probes: primary.failures, replicas: pointing.map((p) => p.name), stop_ms: Date.now() - startedAt },
        "no replica hears the primary any more: stopped their IO threads (relay logs frozen, no ack leaves them)",
      );
    } finally {
      set.hearingBusy = false;
    }
  }

  /** The primary answers again after its replicas were frozen on its silence: they receive from it again. Resolves to the members resumed. */
  private async resumeFrozenEarly(set: SetState, primary: MemberProbe, log: Logger): Promise<Set<string>> {
    const names = [...set.frozenEarly];
    set.frozenEarly.clear();
    set.hearing.clear();
    const resumed = new Set<string>();
    await Promise.all(
      names.map(async (name) => {
        const m = this.probe(set, name);
        const s = m?.state?.slave;
        if (m === undefined || s === undefined || s.masterHost !== primary.address.host || s.masterPort !== primary.address.port || this.memberBusy.has(name)) return;
        this.memberBusy.add(name);
        try {
          await m.withAdmin((c) => c.query("START SLAVE IO_THREAD"));
          m.readStateNext();
          resumed.add(name);
          log.warn({ member: name, primary: primary.name }, "the primary answers again: the replica frozen on its silence receives from it again");
        } catch (err) {
          log.warn({ member: name, err }, "could not start the IO thread again; the rejoin rules take it from here");
        } finally {
          this.memberBusy.delete(name);
        }
      }),
    );
    return resumed;
  }

  /**
   * See SetState.lost (covers.ts). A member that came back unseen is lost
   * anew (forgetReturned). While a lost member has no cover, the primary's
   * state is read at every probe rather than at the state pace (1 s): when the
   * set was in trouble already, nothing else had it read sooner, and a primary
   * lost before that reading stopped the failover until the replica returned.
   */
  private trackLost(set: SetState, primary: MemberProbe, log: Logger): void {
    const others = set.probes.filter((m) => m !== primary);
    const receiving = others.filter((m) => m.up && m.state !== undefined && isReplicatingFrom(m.state, primary.address)).map((m) => m.name);
    // Last readings that show a member replicating from the primary, up or not now.
    const seenReceiving = new Map(others.filter((m) => m.state !== undefined && isReplicatingFrom(m.state, primary.address)).map((m) => [m.name, m.stateReadAt]));
    const reading: PrimaryReading = { readAt: primary.stateReadAt, binlogPos: primary.state!.binlogPos, semiSyncClients: primary.state!.semiSync.masterClients };
    const before = set.lost;
    const kept = forgetReturned(before, seenReceiving, reading, receiving.length);
    for (const [member, entry] of before) {
      if (kept.has(member) || receiving.includes(member)) continue;
      log.warn(
        { member, primary: primary.name, cover: entry.cover === undefined ? undefined : formatGtidList(entry.cover) },
        "member lost earlier received from the primary since, unseen until now: its cover no longer bounds what it can have acknowledged; lost anew from now",
      );
    }
    set.lost = trackLost(kept, receiving, others.map((m) => m.name), reading, Date.now());
    let uncovered = false;
    for (const [member, entry] of set.lost) {
      if (entry.cover === undefined) {
        uncovered = true;
      } else if (kept.get(member)?.cover === undefined) {
        const cover = formatGtidList(entry.cover);
        log.info(
          { member, primary: primary.name, cover, lost_ms: Date.now() - entry.since },
          "member not receiving from the primary: all it can have acknowledged is within its cover (a failover without it needs a candidate that received that much)",
        );
        this.emit("covered", { replicaSet: set.info.name, member, cover });
      }
    }
    if (uncovered) primary.readStateNext();
  }

  /**
   * Semi-sync on the primary never falls back to async (decision 24): it is
   * switched on (with replicas in the set, connected or not) and its timeout
   * kept at SEMI_SYNC_TIMEOUT_MS; commits waiting for an ack with no replica
   * connected are logged and exported (alerts watch both).
   */
  private watchSemiSync(set: SetState, primary: MemberProbe, log: Logger): void {
    const ss = primary.state!.semiSync;
    const rs = { replica_set: set.info.name };
    this.deps.metrics.semiSyncClients.set(rs, ss.masterClients);
    this.deps.metrics.semiSyncWaitSessions.set(rs, ss.masterWaitSessions);
    const stalled = ss.masterWaitSessions > 0 && ss.masterClients === 0;
    if (stalled !== set.stalled) {
      if (stalled) log.error({ primary: primary.name, waiting: ss.masterWaitSessions }, "commits are waiting for a replica's ack and no replica is connected: writes to this replica set stall until one returns");
      else log.info({ primary: primary.name, clients: ss.masterClients }, "no commit waits without a replica any more");
      set.stalled = stalled;
    }
    if (set.probes.length > 1 && ss.masterEnabled && ss.masterTimeoutMs < SEMI_SYNC_TIMEOUT_MS && !primary.state!.readOnly) {
      primary
        .withAdmin((c) => setSemiSyncNeverFallBack(c))
        .then(() => log.warn({ primary: primary.name, was_ms: ss.masterTimeoutMs }, "semi-sync timeout was short enough to fall back to async: raised"))
        .catch(() => undefined);
    }
    if (set.semiSyncOffTimes !== undefined && ss.masterOffTimes > set.semiSyncOffTimes) {
      log.warn({ primary: primary.name, fallbacks: ss.masterOffTimes }, "semi-sync fell back to async: commits are not waiting for a replica");
    }
    set.semiSyncOffTimes = ss.masterOffTimes;
    const active = ss.masterEnabled && ss.masterActive;
    if (set.semiSyncActive !== undefined && active !== set.semiSyncActive) {
      if (active) log.info({ primary: primary.name }, "semi-sync active: commits wait for a replica's ack");
      else log.warn({ primary: primary.name, clients: ss.masterClients }, "semi-sync NOT active: an acknowledged commit may exist only on the primary");
    }
    set.semiSyncActive = active;
    set.semiSyncClients = ss.masterClients;
    set.fellBack = !active;
    this.deps.metrics.semiSyncActive.set({ replica_set: set.info.name }, active ? 1 : 0);
    if (!ss.masterEnabled && set.probes.length > 1) {
      primary
        .withAdmin(async (c) => {
          await setSemiSyncNeverFallBack(c);
          await setSemiSyncMaster(c, true);
        })
        .then(() => log.warn({ primary: primary.name, clients: ss.masterClients }, "semi-sync was off on the primary: enabled (commits wait for a replica's ack)"))
        .catch(() => undefined);
    }
  }

  private async runFailover(set: SetState, old: MemberProbe): Promise<void> {
    if (!this.acting()) return;
    set.busy = true;
    set.lastFailoverAttempt = Date.now();
    void set.heartbeat.beat(undefined);
    const rs = set.info.name;
    try {
      const candidates = set.probes.filter((p) => p !== old && p.up && !this.refused.has(p.name) && !this.memberBusy.has(p.name));
      // The last probe that reached the old primary is the freshest evidence.
      const seen = old.state?.semiSync;
      const covers = new Map(set.probes.filter((p) => p !== old).map((p) => [p.name, set.lost.get(p.name)?.cover] as const));
      const report = await failover(
        this.ctx,
        old,
        candidates,
        {
          lastActive: seen ? seen.masterEnabled && seen.masterActive : set.semiSyncActive,
          fellBackSinceWatched: set.fellBack || (seen !== undefined && set.semiSyncOffTimes !== undefined && seen.masterOffTimes > set.semiSyncOffTimes),
          lastClients: seen?.masterClients ?? set.semiSyncClients,
        },
        covers,
      );
      // Now measured against the new primary (which holds every cover it was checked against).
      set.lost = new Map();
      set.frozenEarly.clear();
      set.hearing.clear();
      if (!report.oldPrimaryFenced) this.needsFencing.add(old.name);
      set.primary = report.newPrimary;
      set.replicas.delete(old.name);
      set.replicas.delete(report.newPrimary);
      set.badTicks = 0;
      set.badSince = undefined;
      set.semiSyncActive = undefined;
      set.semiSyncOffTimes = undefined;
      set.fellBack = false;
      const publishStart = Date.now();
      const epoch = await this.publish(`failover of ${rs}: ${old.name} -> ${report.newPrimary}`);
      report.publishMs = Date.now() - publishStart;
      report.totalMs = Date.now() - report.firstFailureAt;
      report.epoch = epoch;
      this.deps.metrics.failovers.inc({ replica_set: rs, result: "promoted" });
      this.deps.metrics.lastFailoverSeconds.set({ replica_set: rs }, report.totalMs / 1000);
      this.deps.log.warn({ ...report, replica_set: rs }, "failover done");
      this.emit("failover", report);
    } catch (err) {
      this.deps.metrics.failovers.inc({ replica_set: rs, result: "aborted" });
      const reason = err instanceof FailoverAborted ? err.message : String((err as Error).stack ?? err);
      this.deps.log.error({ replica_set: rs, reason }, "failover aborted; retrying");
      this.emit("failoverAborted", { replicaSet: rs, reason });
    } finally {
      set.busy = false;
      void set.heartbeat.beat(this.heartbeatTarget(set));
    }
  }

  private async runRejoin(set: SetState, member: MemberProbe, primary: MemberProbe): Promise<void> {
    if (!this.acting()) return;
    this.memberBusy.add(member.name);
    const rs = set.info.name;
    const log = this.deps.log.child({ replica_set: rs, member: member.name });
    try {
      log.info({ primary: primary.name }, "member is not replicating from the primary: rejoining it");
      const out = await rejoin(this.ctx, member, primary);
      this.deps.metrics.rejoins.inc({ replica_set: rs, result: out.result });
      if (out.result === "refused" && this.config.autoRebuild) {
        set.replicas.delete(member.name);
        this.emit("rejoin", { replicaSet: rs, member: member.name, ...out });
        await this.runRebuild(set, member, primary, out.errant ?? "");
        return;
      }
      if (out.result === "refused") {
        this.refused.set(member.name, formatGtidList(member.state?.binlogState ?? []));
        set.replicas.delete(member.name);
        log.error(
          { primary: primary.name, errant: out.errant },
          "REFUSING TO REJOIN: the member has transactions the primary lacks; it stays read-only and out of the topology. Inspect it, then rebuild it from the primary",
        );
      } else if (out.result === "ok") {
        this.refused.delete(member.name);
        this.needsFencing.delete(member.name);
        set.replicas.add(member.name);
        await this.publish(`${member.name} rejoined ${rs} as a replica of ${primary.name}`);
      }
      this.emit("rejoin", { replicaSet: rs, member: member.name, ...out });
    } catch (err) {
      this.deps.metrics.rejoins.inc({ replica_set: rs, result: "failed" });
      log.error({ err }, "rejoin failed; retrying");
    } finally {
      this.memberBusy.delete(member.name);
    }
  }

  /**
   * A member refused for errant transactions: they are saved to a file and
   * named in the log, then the member is rebuilt from the primary and rejoins
   * as a semi-sync replica (rebuild.ts). A failed rebuild leaves it refused
   * until its state changes or the manager restarts, and is retried then.
   */
  private async runRebuild(set: SetState, member: MemberProbe, primary: MemberProbe, errantText: string): Promise<void> {
    if (!this.acting()) return;
    const rs = set.info.name;
    const log = this.deps.log.child({ replica_set: rs, member: member.name });
    const started = Date.now();
    const rctx = { log: this.deps.log, admin: this.config.admin, repl: this.config.repl, errantDir: this.config.errantDir, databases: set.info.databases };
    let file: string | undefined;
    try {
      // The member first: a primary read before it could lack what it has since received.
      const mine = await member.refresh();
      const theirs = await primary.refresh();
      const errant = errantGtids(mine.binlogState, theirs.binlogState);
      file = await saveErrant(rctx, member, errant);
      log.error(
        { primary: primary.name, errant: formatGtidList(errant) || errantText, saved_to: file },
        "member has transactions the primary lacks: saved them for inspection; rebuilding it from the primary",
      );
      this.rebuilding.add(member.name);
      this.publishMemberStatus();
      try {
        await rebuildFrom(rctx, member, primary);
      } finally {
        this.rebuilding.delete(member.name);
      }
      this.refused.delete(member.name);
      this.needsFencing.delete(member.name);
      set.replicas.add(member.name);
      this.deps.metrics.rejoins.inc({ replica_set: rs, result: "rebuilt" });
      await this.publish(`${member.name} rebuilt from ${primary.name} and rejoined ${rs}`);
      this.emit("rebuild", { replicaSet: rs, member: member.name, result: "ok", file, ms: Date.now() - started });
    } catch (err) {
      this.refused.set(member.name, formatGtidList(member.state?.binlogState ?? []));
      this.deps.metrics.rejoins.inc({ replica_set: rs, result: "rebuild_failed" });
      log.error({ err, saved_to: file }, "rebuild failed: the member stays out of the topology");
      this.emit("rebuild", { replicaSet: rs, member: member.name, result: "failed", ...(file === undefined ? {} : { file }), ms: Date.now() - started, error: (err as Error).message });
    }
  }

  /**
   * The actual primary of a replica set at start, from the servers: the one
   * writable member that is not replicating. Several: the one whose history
   * contains the others' (the rest are fenced). None: the member with the most
   * advanced history is promoted (what a failover would do). Never two.
   */
  private async resolvePrimary(set: SetState, published: LiveTopology | undefined): Promise<void> {
    const log = this.deps.log.child({ replica_set: set.info.name });
    const up = set.probes.filter((p) => p.up && p.state);
    const contains = (a: MemberProbe, b: MemberProbe): boolean => errantGtids(b.state!.binlogState, a.state!.binlogState).length === 0;
    const mostAdvanced = (list: MemberProbe[]): MemberProbe | undefined => list.find((a) => up.every((b) => contains(a, b)));
    const writable = up.filter((p) => !p.state!.readOnly && p.state!.slave === undefined);
    let primary: MemberProbe | undefined;
    if (writable.length === 1) {
      primary = writable[0];
      log.info({ primary: primary!.name }, "primary found: the only writable member that is not replicating");
    } else if (writable.length > 1) {
      primary = mostAdvanced(writable) ?? writable.find((p) => published?.replicaSets.some((r) => sameAddress(r.primary, p.address)));
      if (!primary) throw new Error(`${set.info.name}: ${writable.map((p) => p.name).join(", ")} are all writable with diverged histories`);
      log.error({ primary: primary.name, others: writable.filter((p) => p !== primary).map((p) => p.name) }, "several writable members: keeping the most advanced, fencing the rest");
      for (const p of writable) if (p !== primary) await p.withAdmin((c) => fence(c, this.config.admin.user, 5_000, () => p.connect()));
    } else {
      const notReplicating = up.filter((p) => p.state!.slave === undefined);
      // Read-only replicas of one primary (one died, or a manager died while failing it
      // over) are ordered by what they received of its binlog, as a failover orders them:
      // their relay logs are prefixes of one history (decision 5), whatever their binlog
      // states say of older primaries.
      const received = (p: MemberProbe): Gtid[] => p.state!.slave?.gtidIoPos ?? p.state!.binlogPos;
      const replicasOfOne = up.length > 0 && up.every((p) => p.state!.slave !== undefined) && new Set(up.map((p) => `${p.state!.slave!.masterHost}:${p.state!.slave!.masterPort}`)).size === 1;
      primary =
        mostAdvanced(notReplicating) ??
        mostAdvanced(up) ??
        (replicasOfOne ? [...up].sort((a, b) => compareGtidPos(received(b), received(a)) || a.name.localeCompare(b.name))[0] : undefined);
      if (!primary) throw new Error(`${set.info.name}: no member's history contains the others'; refusing to pick a primary`);
      log.warn({ primary: primary.name }, "no writable primary: promoting the member with the most advanced history");
      const p = primary;
      await p.withAdmin(async (c) => {
        if (p.state!.slave) {
          await freezeRelayLog(c);
          const s = await p.refresh();
          if (!(await waitApplied(c, formatGtidList(s.slave?.gtidIoPos ?? []), this.config.applyTimeoutMs))) {
            throw new Error(`${set.info.name}: ${p.name} did not apply its relay log`);
          }
        }
        await promote(c, { semiSync: set.probes.length > 1 });
      });
      await p.refresh();
    }
    set.primary = primary!.name;
    set.replicas = new Set(up.filter((p) => p !== primary && isReplicatingFrom(p.state!, primary!.address)).map((p) => p.name));
  }

  private describe(): ReplicaSetInfo[] {
    return [...this.sets.values()].map((set) => {
      const addr = (name: string): MemberAddress => this.probe(set, name)!.address;
      return {
        name: set.info.name,
        primary: addr(set.primary),
        replicas: set.probes.filter((p) => set.replicas.has(p.name) && p.name !== set.primary).map((p) => p.address),
      };
    });
  }

  /**
   * Publishes the current view with the next epoch, compare-and-set. Losing the
   * race to another publisher re-reads and tries again on top of its epoch.
   */
  private async publish(why: string): Promise<number> {
    const keyspace = this.config.shardConfig.keyspace;
    for (let attempt = 1; ; attempt++) {
      const current = await readTopology(this.deps.kv, keyspace);
      const epoch = Math.max(current?.topology.epoch ?? 0, this.topology?.epoch ?? 0) + 1;
      // The live document's shards and splits in progress carry over (document.ts, decision 23).
      const next = nextTopology({ keyspace, epoch, replicaSets: this.describe(), current: current?.topology, configShards: this.config.shardConfig.shards });
      try {
        await publishTopology(this.deps.kv, next);
        this.topology = next;
        this.deps.metrics.epoch.set(epoch);
        this.deps.log.info(
          { epoch, why, primaries: Object.fromEntries(next.replicaSets.map((r) => [r.name, r.primary.name])) },
          "topology published",
        );
        this.emit("topology", next);
        return epoch;
      } catch (err) {
        if (attempt >= 5) throw err;
        this.deps.log.warn({ attempt, err: err instanceof StaleTopologyError ? err.message : String(err) }, "topology publish lost a race; re-reading");
      }
    }
  }
}

/**
 * The lost members (SetState.lost) without those that came back since they
 * were lost, unseen by the evaluations in between: their covers no longer
 * bound what they can have acknowledged. Two signs: a state reading of the
 * member taken after it was lost shows it replicating from the primary
 * (`seenReceivingAt`: when such a reading was taken), even if it is down
 * again by now, as when a rejoin or rebuild ends and the member dies before
 * the next evaluation; or, for a covered member, a primary reading after it
 * was lost counts more semi-sync clients than the `receiving` members seen, so
 * some member not seen receiving acknowledges. trackLost then counts a member
 * not receiving as lost from now, and covers it with a reading after that.
 */
export function forgetReturned(
  lost: ReadonlyMap<string, LostMember>,
  seenReceivingAt: ReadonlyMap<string, number>,
  primary: PrimaryReading,
  receiving: number,
): Map<string, LostMember> {
  const next = new Map<string, LostMember>();
  for (const [name, entry] of lost) {
    if ((seenReceivingAt.get(name) ?? 0) > entry.since) continue;
    if (entry.cover !== undefined && primary.readAt > entry.since && primary.semiSyncClients > receiving) continue;
    next.set(name, entry);
  }
  return next;
}

function sameSets(a: readonly ReplicaSetInfo[], b: readonly ReplicaSetInfo[]): boolean {
  const key = (l: readonly ReplicaSetInfo[]): string =>
    JSON.stringify(
      [...l]
        .map((r) => [r.name, `${r.primary.host}:${r.primary.port}`, r.replicas.map((m) => `${m.host}:${m.port}`).sort()])
        .sort(),
    );
  return key(a) === key(b);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
