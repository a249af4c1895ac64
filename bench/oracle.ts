/**
 * Oracle benchmark (not a test): `npm run bench:oracle` writes bench/results/oracle.json.
 *
 * Rows `{ mode, setup, readings, seconds, readingsPerSecond, peakRssMB, lost, duplicates, cpuMicrosPerReading }`:
 * - `per-reading`: single signed readings (secp256k1 and P-256 devices alternating) from MQTT publish to the
 *   durable store (the relay idle): over the embedded broker on TCP with one connection, and over Mosquitto
 *   (when installed) with BENCH_CONNECTIONS connections sharing the stream ($share) and signature workers;
 * - `window`: 256-sample device windows, same path;
 * - `end-to-end`: single readings from publish to on-chain confirmation on the in-process node.
 * Before the rows, `signatureChecksPerSecond`: oracle/verification/signature.ts's FastVerifier on this thread, per curve.
 *
 * Sizes: BENCH_READINGS (default 20,000), BENCH_WINDOW_READINGS (default 200,192 = 782 windows),
 * BENCH_E2E_READINGS (default 3,000). The oracle runs as a child process (`node --import tsx oracle/main.ts`);
 * peakRssMB is its peak resident set (Linux VmHWM); broker, devices and chain live in this process. Payloads
 * are signed and encoded before the clock starts; each publisher keeps up to BENCH_PUBLISH_WINDOW (500)
 * PUBACKs outstanding. The store runs with its default `synchronous = FULL` (an fsync per commit);
 * BENCH_SYNCHRONOUS=NORMAL measures the process-crash-safe mode. BENCH_CPU_PROF=<dir> writes the oracle's
 * V8 CPU profiles (one per thread); BENCH_ONLY=per-reading|shared runs fewer rows.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";

import type { OracleConfig } from "../oracle/config/index.js";
import { FastVerifier, SECP256K1_BACKEND } from "../oracle/verification/signature.js";
import { defaultVerifyWorkers } from "../oracle/verification/pool.js";
import { encodeMqttPayload, mqttReadingsTopic, verificationKeyOf } from "../sdk/protocol/index.js";
import type { SignedItem } from "../sdk/protocol/index.js";
import {
  INTERVAL_SECONDS,
  Publisher,
  REPO_ROOT,
  freePort,
  tempDir,
  waitFor,
  deployWorld,
  fundedOracleKey,
  oracleConfig,
  reading,
  mosquittoAvailable,
  startAedes,
  startChain,
  startMosquitto,
  window,
} from "../test/oracle/support.js";
import type { BrokerHandle, NodeHandle, World } from "../test/oracle/support.js";

interface Row {
  mode: "per-reading" | "window" | "end-to-end";
  /** Broker, MQTT connections of the oracle, signature workers ("inline": the intake thread). */
  setup: string;
  readings: number;
  seconds: number;
  readingsPerSecond: number;
  peakRssMB: number;
  lost: number;
  duplicates: number;
  /**
   * CPU time per reading during the row, µs: the oracle process (all its threads) and everything else in the
   * bench's processes (broker, publishers; the chain idles). Unlike readings per second, this hardly depends on
   * what else the machine runs: 2 cores / (oracle + rest) is what the set-up could do with the machine to itself.
   */
  cpuMicrosPerReading?: { oracle: number; rest: number };
  /**
   * Seconds until the broker had acknowledged every publish (intake rows): close to `seconds` means the
   * publishers, not the oracle, set the pace; well below it, messages waited at the broker for the oracle.
   */
  publishedAfterSeconds?: number;
}

/** CPU seconds (user + system, all threads) a process has used, from /proc (Linux). */
function cpuSecondsOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

/** CPU seconds of this process and of its child processes named `mosquitto` (the broker of the shared row). */
function benchCpuSeconds(): number {
  const own = process.cpuUsage();
  let brokers = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (stat.includes("(mosquitto)") && Number(stat.split(") ")[1]?.split(" ")[1]) === process.pid) {
        brokers += cpuSecondsOf(Number(entry));
      }
    } catch {
      // the process ended meanwhile
    }
  }
  return (own.user + own.system) / 1e6 + brokers;
}

const PER_READING = Number(process.env.BENCH_READINGS ?? 20_000);
const WINDOW_READINGS = Number(process.env.BENCH_WINDOW_READINGS ?? 782 * 256);
const E2E = Number(process.env.BENCH_E2E_READINGS ?? 3000);
const DEVICES = 48;
/** BENCH_CPU_PROF=<dir>: the oracle process writes a V8 CPU profile there (node --cpu-prof). */
const PROFILE_ARGS =
  process.env.BENCH_CPU_PROF === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`];
/**
 * BENCH_ONLY=per-reading: the per-reading rows only; BENCH_ONLY=shared: the shared-subscription per-reading row
 * only; BENCH_ONLY=end-to-end: that row only (quick looks; the results file is then partial).
 */
const ONLY = process.env.BENCH_ONLY;
const ROWS = {
  aedes: ONLY === undefined || ONLY === "per-reading",
  shared: ONLY === undefined || ONLY === "per-reading" || ONLY === "shared",
  window: ONLY === undefined,
  endToEnd: ONLY === undefined || ONLY === "end-to-end",
};
/** Signature workers of the oracle in the shared-subscription row (BENCH_WORKERS, default "auto": one per core). */
const SHARED_WORKERS = process.env.BENCH_WORKERS === undefined ? "auto" : Number(process.env.BENCH_WORKERS);
/** MQTT connections of the oracle in the Mosquitto per-reading row (BENCH_CONNECTIONS). */
const SHARED_CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 128);
/** PUBACKs each publisher waits for at once (BENCH_PUBLISH_WINDOW). */
const PUBLISH_WINDOW = Number(process.env.BENCH_PUBLISH_WINDOW ?? 500);
/** Publisher connections in the shared-subscription row (BENCH_PUBLISHERS). */
const SHARED_PUBLISHERS = Number(process.env.BENCH_PUBLISHERS ?? 4);
/** How often the bench reads the oracle's /metrics while waiting (each read costs the oracle some CPU). */
const POLL_MS = 100;
/** Where intake commits run (BENCH_INTAKE_WRITER=inline|thread, default the oracle's default, thread). */
const INTAKE_WRITER = process.env.BENCH_INTAKE_WRITER === "inline" ? "inline" : "thread";
/** The store's durability mode for the intake rows (default FULL, the oracle's default). */
const SYNCHRONOUS = process.env.BENCH_SYNCHRONOUS === "NORMAL" ? "NORMAL" : "FULL";

function readingsOf(items: readonly SignedItem[]): number {
  return items.reduce((n, i) => n + (i.kind === "reading" ? 1 : i.window.samples.length), 0);
}

/**
 * The time of the last reading each device took (0: none): protocol v2 chains a device's readings, so the bench's
 * items are signed in each device's time order and each names the one before it.
 */
const lastTaken = new Map<bigint, number>();

/** Takes the next reading of a device at `t` (after its previous one) and returns its predecessor's time. */
function take(deviceId: bigint, t: number): number {
  const previous = lastTaken.get(deviceId) ?? 0;
  if (t <= previous) throw new Error(`bench: device ${deviceId} reads at ${t}, not after ${previous}`);
  lastTaken.set(deviceId, t);
  return previous;
}

/**
 * Signed single readings, round robin over the devices, sequences from `firstSeq`: each device's k-th at
 * `from + k * spacingSeconds`, naming its previous reading.
 */
function singles(w: World, count: number, firstSeq: number, from: number, spacingSeconds: number): SignedItem[] {
  return Array.from({ length: count }, (_, i) => {
    const device = w.devices[i % w.devices.length];
    if (device === undefined) throw new Error("no devices");
    const k = Math.floor(i / w.devices.length);
    const observedAt = from + k * spacingSeconds;
    return reading(w, device, firstSeq + k, observedAt, 500, take(device.id, observedAt));
  });
}

/** A message ready to publish (encoded before the clock starts: the devices sign and encode, not the bench). */
interface Message {
  readonly topic: string;
  readonly payload: Buffer;
}

function encodeAll(items: readonly SignedItem[]): Message[] {
  return items.map((item) => ({
    topic: mqttReadingsTopic(item.kind === "reading" ? item.reading.deviceId : item.window.deviceId),
    payload: Buffer.from(encodeMqttPayload(item, "binary")),
  }));
}

/** Publishes everything, the messages dealt round robin, each publisher keeping up to PUBLISH_WINDOW unacknowledged. */
async function publishAll(publishers: readonly Publisher[], messages: readonly Message[]): Promise<void> {
  await Promise.all(
    publishers.map(async (device, p) => {
      const mine = messages.filter((_, i) => i % publishers.length === p);
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < mine.length) {
          const m = mine[next++] as Message;
          await device.raw(m.topic, m.payload);
        }
      };
      await Promise.all(Array.from({ length: Math.min(PUBLISH_WINDOW, mine.length) }, lane));
    }),
  );
}

interface Setup {
  readonly broker: BrokerHandle;
  readonly brokerName: "aedes" | "mosquitto";
  readonly connections: number;
  readonly workers: number | "auto";
  readonly publishers: number;
}

function setupLabel(s: Setup): string {
  const workers = s.workers === 0 ? "inline" : s.workers === "auto" ? defaultVerifyWorkers() : s.workers;
  return `${s.brokerName}, ${s.connections} connection(s), signature workers: ${workers}, intake commits ${INTAKE_WRITER === "thread" ? "on the store writer thread" : "on the intake thread"}, ${s.publishers} publisher(s) with up to ${PUBLISH_WINDOW} PUBACKs outstanding each`;
}

/** The oracle as its own process (so its peak RSS is its own), watched through its /metrics endpoint. */
async function spawnOracle(config: OracleConfig, privateKey: string) {
  const port = await freePort();
  const dir = tempDir("coldchain-bench-");
  const path = join(dir, "oracle.json");
  writeFileSync(
    path,
    JSON.stringify({
      ...config,
      http: { ...config.http, port },
      log: { level: process.env.BENCH_ORACLE_LOG === "info" ? "info" : "warn" },
    }),
  );
  const child = spawn(process.execPath, [...PROFILE_ARGS, "--import", "tsx", "oracle/main.ts", "--config", path], {
    cwd: REPO_ROOT,
    env: { ...process.env, ORACLE_PRIVATE_KEY: privateKey, NODE_NO_WARNINGS: "1" },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const metrics = async (): Promise<Map<string, number>> => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const out = new Map<string, number>();
    for (const line of text.split("\n")) {
      const m = /^(coldchain_oracle_[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
      if (m?.[1] !== undefined && m[3] !== undefined) out.set(m[1], (out.get(m[1]) ?? 0) + Number(m[3]));
    }
    return out;
  };
  await waitFor(
    "the oracle's /metrics",
    async () => (await metrics().catch(() => undefined)) !== undefined,
    60_000,
    50,
  );
  await waitFor(
    "the oracle's MQTT session",
    async () => (await metrics()).get("coldchain_oracle_mqtt_connected") === 1,
  );
  return {
    metrics,
    /** CPU seconds the oracle process has used so far. */
    cpuSeconds: (): number => cpuSecondsOf(child.pid),
    /** Peak resident set of the process so far (Linux VmHWM), MB. */
    peakRssMB(): number {
      const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
      return Math.round(Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024);
    },
    async stop(): Promise<void> {
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
    },
  };
}

async function intakeRow(
  mode: "per-reading" | "window",
  w: World,
  node: NodeHandle,
  setup: Setup,
  allItems: SignedItem[],
): Promise<Row> {
  const config = oracleConfig(w, node, setup.broker.url, {
    mqtt: { connections: setup.connections },
    verify: { workers: setup.workers },
    batch: { maxReadings: 100_000_000, maxAgeMs: 1_000_000_000 },
    store: { synchronous: SYNCHRONOUS, intakeWriter: INTAKE_WRITER },
    backpressure: { maxPendingReadings: 100_000_000 },
  });
  const oracle = await spawnOracle(config, await fundedOracleKey(node));
  const publishers = await Promise.all(
    Array.from({ length: setup.publishers }, () => Publisher.connect(setup.broker.url)),
  );
  // A running oracle knows its devices (the registry's answers are cached, and kept in the store): the first message
  // of each device is published and stored before the clock starts, so the row measures intake, not the cold start's
  // registry reads (128 of them: how fast the chain in this process answers varied the row by ~2x between runs).
  const seen = new Set<bigint>();
  const warm = allItems.filter((item) => {
    const id = item.kind === "reading" ? item.reading.deviceId : item.window.deviceId;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
  await publishAll(publishers, encodeAll(warm));
  const warmReadings = readingsOf(warm);
  await waitFor(
    `${mode}: the devices' first messages stored`,
    async () => ((await oracle.metrics()).get("coldchain_oracle_accepted_readings_total") ?? 0) >= warmReadings,
    120_000,
    POLL_MS,
  );
  const warmSet = new Set(warm);
  const items = allItems.filter((item) => !warmSet.has(item));
  const expected = readingsOf(items);
  const messages = encodeAll(items);
  const started = performance.now();
  const cpuBefore = { oracle: oracle.cpuSeconds(), rest: benchCpuSeconds() };
  await publishAll(publishers, messages);
  const publishedAfterSeconds = round((performance.now() - started) / 1000);
  // Done when every reading is stored, or every message arrived and was handled (stored or dropped): QoS 1 is
  // at least once, so the broker may deliver a message again (the duplicate is dropped and counted).
  const handled = (m: Map<string, number>): boolean =>
    (m.get("coldchain_oracle_accepted_readings_total") ?? 0) - warmReadings >= expected ||
    ((m.get("coldchain_oracle_received_total") ?? 0) - warm.length >= items.length &&
      (m.get("coldchain_oracle_accepted_total") ?? 0) + (m.get("coldchain_oracle_dropped_total") ?? 0) ===
        m.get("coldchain_oracle_received_total"));
  await waitFor(`${mode}: every message handled`, async () => handled(await oracle.metrics()), 600_000, POLL_MS);
  const seconds = (performance.now() - started) / 1000;
  const cpu = { oracle: oracle.cpuSeconds() - cpuBefore.oracle, rest: benchCpuSeconds() - cpuBefore.rest };
  const m = await oracle.metrics();
  const accepted = (m.get("coldchain_oracle_accepted_readings_total") ?? 0) - warmReadings;
  const redelivered = (m.get("coldchain_oracle_received_total") ?? 0) - warm.length - items.length;
  const peakRssMB = oracle.peakRssMB();
  await Promise.all(publishers.map((p) => p.close()));
  await oracle.stop();
  return {
    mode,
    setup: `${setupLabel(setup)}${redelivered > 0 ? `, ${redelivered} message(s) delivered again (dropped as duplicates)` : ""}`,
    readings: expected,
    seconds: round(seconds),
    readingsPerSecond: Math.round(expected / seconds),
    peakRssMB,
    lost: expected - accepted,
    duplicates: Math.max(0, accepted - expected),
    cpuMicrosPerReading: {
      oracle: Math.round((cpu.oracle / expected) * 1e6),
      rest: Math.round((cpu.rest / expected) * 1e6),
    },
    publishedAfterSeconds,
  };
}

async function endToEndRow(w: World, node: NodeHandle, broker: BrokerHandle, items: SignedItem[]): Promise<Row> {
  const config = oracleConfig(w, node, broker.url, {
    batch: { maxReadings: 1000, maxAgeMs: 200 },
    store: { intakeWriter: INTAKE_WRITER },
  });
  const oracle = await spawnOracle(config, await fundedOracleKey(node));
  const device = await Publisher.connect(broker.url);
  const expected = readingsOf(items);
  const messages = encodeAll(items);
  const started = performance.now();
  await publishAll([device], messages);
  const settled = async (): Promise<boolean> => {
    const m = await oracle.metrics();
    return (
      (m.get("coldchain_oracle_recorded_readings_total") ?? 0) +
        (m.get("coldchain_oracle_skipped_readings_total") ?? 0) >=
      expected
    );
  };
  await waitFor("end-to-end: every reading confirmed", settled, 600_000, POLL_MS);
  const seconds = (performance.now() - started) / 1000;
  const m = await oracle.metrics();
  const recorded = m.get("coldchain_oracle_recorded_readings_total") ?? 0;
  const submitted = m.get("coldchain_oracle_batch_readings_sum") ?? 0;
  const peakRssMB = oracle.peakRssMB();
  await device.close();
  await oracle.stop();
  return {
    mode: "end-to-end",
    setup: `aedes, 1 connection, signature check inline, intake commits ${INTAKE_WRITER === "thread" ? "on the store writer thread" : "on the intake thread"}, 1 publisher`,
    readings: expected,
    seconds: round(seconds),
    readingsPerSecond: Math.round(expected / seconds),
    peakRssMB,
    lost: expected - recorded,
    duplicates: submitted - expected,
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

/** FastVerifier checks per second on this thread, per curve (1,000 readings of one device each, key kept). */
function measureSignatures(w: World): Record<"secp256k1" | "p256", number> {
  const verifier = new FastVerifier(w.domain);
  const out = { secp256k1: 0, p256: 0 };
  for (const curve of ["secp256k1", "p256"] as const) {
    const device = w.devices.find((d) => d.key.keyType === curve);
    if (device === undefined) continue;
    const key = verificationKeyOf(device.key);
    // Verified only, never published: the same position of the chain signed over and over is fine here.
    const items = Array.from({ length: 1000 }, (_, i) => reading(w, device, 1_000_000 + i, w.startedAt, 500, 0));
    const started = performance.now();
    for (const item of items)
      if (!verifier.verify(item, key)) throw new Error(`bench: a ${curve} reading did not verify`);
    out[curve] = Math.round(items.length / ((performance.now() - started) / 1000));
  }
  return out;
}

/** The 1-, 5- and 15-minute load averages when the bench started (other work on the host shows here). */
const loadStart = loadavg().map((x) => Math.round(x * 100) / 100);
const node = await startChain();
const broker = await startAedes();
const mosquitto = mosquittoAvailable() ? await startMosquitto() : undefined;
try {
  const w = await deployWorld(node, DEVICES, 20_000n);
  const perDevice = Math.ceil(PER_READING / DEVICES);
  console.log(`signing ${PER_READING + E2E} readings and ${Math.ceil(WINDOW_READINGS / 256)} windows…`);
  // Each device's history, oldest first (each item names the reading before it): its windows (a logger uploading
  // its buffer, days before the shipment), then its single readings of the per-reading rows (the day before), then
  // those of the end-to-end row, observed a second apart from the shipment's start on (inside it, and in the past
  // by the time they are relayed). The intake rows never reach the chain.
  const windows: SignedItem[] = [];
  const windowsPerDevice = Math.ceil(Math.ceil(WINDOW_READINGS / 256) / DEVICES);
  const windowsFrom = w.startedAt - 2 * 86_400 - windowsPerDevice * 256 * INTERVAL_SECONDS;
  let windowSeq = 1;
  for (let made = 0, round = 0; made < WINDOW_READINGS; round++, windowSeq += 256) {
    for (const device of w.devices) {
      if (made >= WINDOW_READINGS) break;
      const count = Math.min(256, WINDOW_READINGS - made);
      const first = windowsFrom + round * 256 * INTERVAL_SECONDS;
      const previous = take(device.id, first);
      lastTaken.set(device.id, first + (count - 1) * INTERVAL_SECONDS);
      windows.push(
        window(
          w,
          device,
          windowSeq,
          first,
          Array.from({ length: count }, () => 500),
          previous,
        ),
      );
      made += count;
    }
  }
  const perReading = singles(w, PER_READING, windowSeq, w.startedAt - 86_400, INTERVAL_SECONDS);
  const e2e = singles(w, E2E, windowSeq + perDevice, w.startedAt + 1, 1);
  const signatureChecksPerSecond = measureSignatures(w);
  console.log({ signatureChecksPerSecond });
  const rows: Row[] = [];
  const aedes: Setup = { broker, brokerName: "aedes", connections: 1, workers: 0, publishers: 1 };
  if (ROWS.aedes) {
    rows.push(await intakeRow("per-reading", w, node, aedes, perReading));
    console.log(rows.at(-1));
  }
  if (!ROWS.shared) {
    // not asked for
  } else if (mosquitto === undefined) {
    console.log("mosquitto is not installed: no shared-subscription row (apt-get install -y mosquitto)");
  } else {
    const shared: Setup = {
      broker: mosquitto,
      brokerName: "mosquitto",
      connections: SHARED_CONNECTIONS,
      workers: SHARED_WORKERS,
      publishers: SHARED_PUBLISHERS,
    };
    rows.push(await intakeRow("per-reading", w, node, shared, perReading));
    console.log(rows.at(-1));
  }
  if (ROWS.window) {
    rows.push(await intakeRow("window", w, node, aedes, windows));
    console.log(rows.at(-1));
  }
  if (ROWS.endToEnd) {
    rows.push(await endToEndRow(w, node, broker, e2e));
    console.log(rows.at(-1));
  }
  const out = join(import.meta.dirname, "results");
  mkdirSync(out, { recursive: true });
  writeFileSync(
    join(out, "oracle.json"),
    `${JSON.stringify(
      {
        generatedBy: "npm run bench:oracle (bench/oracle.ts)",
        machine: { cpus: cpus().length, node: process.version, loadAverage: loadStart },
        signatureChecksPerSecond,
        notes: [
          `per-reading and window: MQTT publish (aedes, TCP) to durable store (SQLite WAL, synchronous=${SYNCHRONOUS}), relay idle`,
          "end-to-end: publish to on-chain confirmation (in-process Hardhat chain, 1 confirmation, batches of 1000)",
          "per-reading rows: aedes (MQTT 3.1.1, no $share) with 1 connection and the signature check on the intake thread: mqtt.js handles one message per connection at a time and acknowledges it after its commit, so this row is one fsync per message; Mosquitto with several connections in one $share group and signature worker threads: messages in flight share one SQLite commit (group commit) made on the store writer thread while the intake thread goes on; the worker answers every 8 checks, so commits and checks overlap",
          `signature checks (oracle/verification/signature.ts): secp256k1 by public-key recovery in libsecp256k1 (${SECP256K1_BACKEND === "native" ? "native N-API binding of the secp256k1 package" : "WebAssembly, tiny-secp256k1: the native binding did not load"}), P-256 as u2·(Q + t·G) with OpenSSL's scalar multiplications (node:crypto ECDH) and the point addition in JS; EIP-712 digests by hand with precomputed type hashes and domain separator; signatureChecksPerSecond is one thread`,
          "per-reading and window rows start warm: each device's first message is published and stored before the clock starts (a running oracle has its devices' registry answers cached), and is not counted in the row",
          "publishedAfterSeconds: when the broker had acknowledged every publish; well below seconds, the oracle (not the publishers) set the pace",
          "cpuMicrosPerReading: CPU time per reading of the oracle process (all threads) and of the rest (broker, publishers): 2 cores / (oracle + rest) is what the set-up could do with the machine to itself; the signature checks are most of the oracle's share",
          "the machine's 2 cores are shared by the oracle, the broker, the publishers and the chain (and, when measured, other work on the host: machine.loadAverage at the start): figures vary by tens of percent between runs",
          "the oracle runs as its own process (npm run oracle's command); peakRssMB is its VmHWM",
        ],
        rows,
      },
      null,
      2,
    )}\n`,
  );
  console.log("wrote bench/results/oracle.json");
} finally {
  await mosquitto?.stop();
  await broker.stop();
  await node.stop();
}
