/**
 * Durable consumers' NATS protocol cost: messages between the consuming
 * process and nats-server per event delivered, counted by nats-server itself
 * (its monitoring endpoint), for lib/events/consume() as the services run it.
 *
 *   node --import tsx bench/consumer-protocol.ts [--events 1000] [--rate 50] [--concurrency 8,2,64] [--handler-ms 1] [--out bench/results/consumer-protocol.json]
 *
 * A private nats-server (devcluster) and the event stream as the bus creates
 * it. One consume() per concurrency, on a bus connection of its own, so the
 * server's per-connection counters (/connz) are that consumer's traffic only:
 * in = pull requests + acks (+ in-progress acks), out = deliveries + status
 * messages (idle heartbeats, expired pulls). Every handler succeeds (it waits
 * --handler-ms), so acks = events and pulls = in - acks exactly. Events are
 * published on another connection:
 *
 *   steady: --events at --rate per second (the DSB mix composes about 50/s);
 *   burst:  --events published at once (pipelined), while the consumer runs;
 *   shared: a burst with two instances of one durable (two processes sharing
 *           it): how the events split between them;
 *   quiet:  after a burst, no events for --quiet-s (first concurrency only):
 *           what the consumer's pull requests cost with nothing to deliver
 *           (expiries every 30 s, idle heartbeats), as messages per minute.
 *
 * Also reported: the most events the durable had delivered and unacked
 * (num_ack_pending, sampled every 20 ms in a burst: the handlers running
 * plus what the process holds waiting), the server's totals (/varz in_msgs,
 * out_msgs per event, publishing included, the bench's polling left out),
 * and, marked noisy (shared machine),
 * nats-server's CPU per event: utime + stime from /proc/<pid>/stat over the
 * phase (10 ms ticks), less its idle rate (measured first, for --idle-s)
 * over the phase's length.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { setTimeout as delay } from "node:timers/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, headers as natsHeaders } from "@nats-io/transport-node";
import { pino } from "pino";
import { findBinary } from "../devcluster/binaries.js";
import { REPO_ROOT } from "../devcluster/index.js";
import { startNats } from "../devcluster/nats.js";
import { createEventBus, type EventBus } from "../lib/events/bus.js";
import { BUS_DEFAULTS } from "../lib/events/config.js";
import { consume, type EventConsumer } from "../lib/events/consumer.js";
import { EVENT_ID_HEADER } from "../lib/events/headers.js";
import { EVENT_STREAM, EVENTS } from "../lib/events/subjects.js";

const { values: args } = parseArgs({
  options: {
    events: { type: "string", default: "1000" },
    rate: { type: "string", default: "50" },
    concurrency: { type: "string", default: "8,2,64" },
    "handler-ms": { type: "string", default: "5" },
    "idle-s": { type: "string", default: "10" },
    "quiet-s": { type: "string", default: "65" },
    out: { type: "string", default: "bench/results/consumer-protocol.json" },
  },
});
const events = Number(args.events);
const rate = Number(args.rate);
const concurrencies = args.concurrency.split(",").map(Number);
const handlerMs = Number(args["handler-ms"]);
const say = (line: string): void => console.error(`[bench] ${line}`);
const log = pino({ level: "warn" });
const CLOCK_TICK_MS = 10; // USER_HZ 100 on Linux

interface ConnCounts {
  in_msgs: number;
  out_msgs: number;
  in_bytes: number;
  out_bytes: number;
}

interface PhaseResult {
  phase: string;
  concurrency: number;
  events: number;
  /** Per event, the consumer's connection (exact). */
  inPerEvent: number;
  outPerEvent: number;
  pullsPerEvent: number;
  statusPerEvent: number;
  bytesInPerEvent: number;
  bytesOutPerEvent: number;
  /** Per event, the whole server, publishing and the bench's own API calls included. */
  serverInPerEvent: number;
  serverOutPerEvent: number;
  /** Most events delivered and not yet acked at once (sampled). */
  peakAckPending: number;
  /** Noisy: nats-server CPU (µs) per event, above its idle rate. */
  serverCpuUsPerEvent: number;
  /** With two instances: events handled by each. */
  split?: number[];
}

mkdirSync(join(REPO_ROOT, ".data"), { recursive: true });
const dir = mkdtempSync(join(REPO_ROOT, ".data", "bench-consumer-protocol-"));
const nats = await startNats({ binary: findBinary("nats-server", { path: process.env["PATH"] }), dir, log: () => {} });
const buses: EventBus[] = [];
const newBus = async (name: string): Promise<EventBus> => {
  const bus = createEventBus({ config: { ...BUS_DEFAULTS, natsUrl: nats.url }, log, name });
  buses.push(bus);
  await bus.ready(AbortSignal.timeout(10_000));
  return bus;
};
const pub = await connect({ servers: nats.url, name: "bench-publisher" });
const js = jetstream(pub);
// The bench's own consumer-info polling goes over a connection of its own, left out of the server's totals.
const mon = await connect({ servers: nats.url, name: "bench-monitor" });
const jsm = await jetstreamManager(mon);

const monitor = async <T>(path: string): Promise<T> => (await fetch(`${nats.monitorUrl}${path}`)).json() as Promise<T>;
const connCounts = async (names: readonly string[]): Promise<ConnCounts> => {
  const connz = await monitor<{ connections: (ConnCounts & { name?: string })[] }>("/connz?limit=1024");
  const sum: ConnCounts = { in_msgs: 0, out_msgs: 0, in_bytes: 0, out_bytes: 0 };
  for (const c of connz.connections) {
    if (c.name === undefined || !names.includes(c.name)) continue;
    sum.in_msgs += c.in_msgs;
    sum.out_msgs += c.out_msgs;
    sum.in_bytes += c.in_bytes;
    sum.out_bytes += c.out_bytes;
  }
  return sum;
};
const varz = (): Promise<ConnCounts> => monitor<ConnCounts>("/varz");
const serverCpuTicks = (): number => {
  // Fields after the command name (which is in parentheses): utime is the 14th field, stime the 15th.
  const stat = readFileSync(`/proc/${nats.proc.pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
};

const payload = toBinary(EVENTS.tweetCreated.schema, create(EVENTS.tweetCreated.schema, { tweetId: 1n, authorId: 2n, text: "x".repeat(140) }));
let published = 0;
const publish = (): Promise<unknown> => {
  const n = ++published;
  const h = natsHeaders();
  h.set(EVENT_ID_HEADER, String(n));
  return js.publish(EVENTS.tweetCreated.subject, payload, { msgID: `bench-${n}`, headers: h });
};

const startConsumers = async (
  durable: string,
  concurrency: number,
  instances: number,
): Promise<{ names: string[]; handled: number[]; consumers: EventConsumer[]; phaseBuses: EventBus[] }> => {
  const names: string[] = [];
  const phaseBuses: EventBus[] = [];
  const handled: number[] = [];
  const consumers: EventConsumer[] = [];
  for (let i = 0; i < instances; i++) {
    const name = `bench-${durable}-${i}`;
    const bus = await newBus(name);
    phaseBuses.push(bus);
    handled.push(0);
    const consumer = consume({
      bus,
      durable,
      subjects: [EVENTS.tweetCreated],
      deliverPolicy: "new",
      concurrency,
      log,
      handler: async () => {
        await delay(handlerMs);
        handled[i]!++;
      },
    });
    await consumer.started();
    names.push(name);
    consumers.push(consumer);
  }
  return { names, handled, consumers, phaseBuses };
};

/** Waits until every event is handled and acked; resolves with the most unacked seen meanwhile. */
const settled = async (durable: string, handled: number[], want: number, work: Promise<unknown>, everyMs: number): Promise<number> => {
  let peak = 0;
  let done = false;
  void work.then(() => (done = true));
  for (;;) {
    const info = await jsm.consumers.info(EVENT_STREAM, durable);
    peak = Math.max(peak, info.num_ack_pending);
    if (done && handled.reduce((a, b) => a + b, 0) >= want && info.num_ack_pending === 0 && info.num_pending === 0) return peak;
    await delay(everyMs);
  }
};

const runPhase = async (phase: "steady" | "burst" | "shared", concurrency: number): Promise<PhaseResult> => {
  const durable = `bench-${phase}-${concurrency}`;
  const { names, handled, consumers, phaseBuses } = await startConsumers(durable, concurrency, phase === "shared" ? 2 : 1);
  await delay(200); // the initial pulls are in
  const conn0 = await connCounts(names);
  const mon0 = await connCounts(["bench-monitor"]);
  const varz0 = await varz();
  const cpu0 = serverCpuTicks();
  const t0 = performance.now();
  const work = (async () => {
    const pending: Promise<unknown>[] = [];
    const start = performance.now();
    for (let i = 0; i < events; i++) {
      if (phase === "steady") {
        const wait = start + (i * 1000) / rate - performance.now();
        if (wait > 0) await delay(wait);
      }
      pending.push(publish());
    }
    await Promise.all(pending);
  })();
  const peakAckPending = await settled(durable, handled, events, work, phase === "steady" ? 500 : 20);
  // Acks are published without a reply: let the last ones reach the server's counters.
  await delay(200);
  const cpu1 = serverCpuTicks();
  const seconds = (performance.now() - t0) / 1000;
  const conn1 = await connCounts(names);
  const mon1 = await connCounts(["bench-monitor"]);
  const varz1 = await varz();
  for (const c of consumers) await c.stop();
  for (const bus of phaseBuses) await bus.close();
  const acks = handled.reduce((a, b) => a + b, 0);
  const inMsgs = conn1.in_msgs - conn0.in_msgs;
  const outMsgs = conn1.out_msgs - conn0.out_msgs;
  const per = (n: number): number => Math.round((n / events) * 1000) / 1000;
  return {
    phase,
    concurrency,
    events,
    inPerEvent: per(inMsgs),
    outPerEvent: per(outMsgs),
    pullsPerEvent: per(inMsgs - acks),
    statusPerEvent: per(outMsgs - acks),
    bytesInPerEvent: Math.round((conn1.in_bytes - conn0.in_bytes) / events),
    bytesOutPerEvent: Math.round((conn1.out_bytes - conn0.out_bytes) / events),
    serverInPerEvent: per(varz1.in_msgs - varz0.in_msgs - (mon1.in_msgs - mon0.in_msgs)),
    serverOutPerEvent: per(varz1.out_msgs - varz0.out_msgs - (mon1.out_msgs - mon0.out_msgs)),
    peakAckPending,
    serverCpuUsPerEvent: Math.round(((cpu1 - cpu0 - idleTicksPerS * seconds) * CLOCK_TICK_MS * 1000) / events),
    ...(phase === "shared" ? { split: [...handled] } : {}),
  };
};

/** Messages on the consumer's connection per minute with no events, after a burst of --events. */
const runQuiet = async (concurrency: number, seconds: number): Promise<{ concurrency: number; seconds: number; inPerMin: number; outPerMin: number }> => {
  const durable = `bench-quiet-${concurrency}`;
  const { names, handled, consumers, phaseBuses } = await startConsumers(durable, concurrency, 1);
  const work = Promise.all(Array.from({ length: events }, () => publish()));
  await settled(durable, handled, events, work, 20);
  await delay(200);
  const c0 = await connCounts(names);
  await delay(seconds * 1000);
  const c1 = await connCounts(names);
  for (const c of consumers) await c.stop();
  for (const bus of phaseBuses) await bus.close();
  const perMin = (n: number): number => Math.round((n / seconds) * 60 * 10) / 10;
  return { concurrency, seconds, inPerMin: perMin(c1.in_msgs - c0.in_msgs), outPerMin: perMin(c1.out_msgs - c0.out_msgs) };
};

const results: PhaseResult[] = [];
let quiet: Awaited<ReturnType<typeof runQuiet>> | undefined;
let idleTicksPerS = 0;
try {
  say(`nats-server idle for ${args["idle-s"]} s (its CPU rate is taken off each phase)...`);
  const idle0 = serverCpuTicks();
  await delay(Number(args["idle-s"]) * 1000);
  idleTicksPerS = (serverCpuTicks() - idle0) / Number(args["idle-s"]);
  for (const concurrency of concurrencies) {
    for (const phase of ["steady", "burst", "shared"] as const) {
      say(`${phase}, concurrency ${concurrency}: ${events} events${phase === "steady" ? ` at ${rate}/s` : " at once"}...`);
      results.push(await runPhase(phase, concurrency));
    }
  }
  const quietS = Number(args["quiet-s"]);
  if (quietS > 0) {
    say(`quiet, concurrency ${concurrencies[0]}: a burst, then ${quietS} s without events...`);
    quiet = await runQuiet(concurrencies[0]!, quietS);
  }
  console.log("");
  console.log("| phase | concurrency | in / event (pulls + acks) | pulls / event | out / event (deliveries + status) | payload bytes in / out per event | server in / out per event (all conns) | most unacked | nats-server CPU µs / event (noisy) | split of 2 instances |");
  console.log("|---|---|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    console.log(
      `| ${r.phase} | ${r.concurrency} | ${r.inPerEvent} | ${r.pullsPerEvent} | ${r.outPerEvent} | ${r.bytesInPerEvent} / ${r.bytesOutPerEvent} | ${r.serverInPerEvent} / ${r.serverOutPerEvent} | ${r.peakAckPending} | ${r.serverCpuUsPerEvent} | ${r.split?.join(" / ") ?? ""} |`,
    );
  }
  if (quiet !== undefined) {
    console.log("");
    console.log(`quiet (concurrency ${quiet.concurrency}, ${quiet.seconds} s after a burst): ${quiet.inPerMin} messages in and ${quiet.outPerMin} out per minute on the consumer's connection`);
  }
  const out = { when: new Date().toISOString(), natsServer: "2.9.10", events, rate, handlerMs, idleCpuUsPerS: idleTicksPerS * CLOCK_TICK_MS * 1000, results, quiet };
  writeFileSync(args.out, `${JSON.stringify(out, null, 2)}\n`);
  say(`written ${args.out}`);
} finally {
  await pub.close();
  await mon.close();
  for (const bus of buses) await bus.close();
  await nats.proc.stop();
  rmSync(dir, { recursive: true, force: true });
}
