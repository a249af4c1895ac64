/**
 * Oracle benchmark (not a test): `npm run bench:oracle` writes bench/results/oracle.json.
 *
 * Rows `{ mode, readings, seconds, readingsPerSecond, peakRssMB, lost, duplicates }`:
 * - `per-reading`: single signed readings (secp256k1 and P-256 devices alternating) from MQTT publish to the
 *   durable store (the relay idle): over the embedded broker on TCP with one connection, and over Mosquitto
 *   (when installed) with BENCH_CONNECTIONS connections sharing the stream and signature workers;
 * - `window`: 256-sample device windows, same path;
 * - `end-to-end`: single readings from publish to on-chain confirmation on the in-process node.
 *
 * Sizes: BENCH_READINGS (default 3,000), BENCH_WINDOW_READINGS (default 200,192 = 782 windows),
 * BENCH_E2E_READINGS (default 3,000). The oracle runs as a child process (`node --import tsx oracle/main.ts`);
 * peakRssMB is its peak resident set (Linux VmHWM); broker, devices and chain live in this process.
 * The store runs with its default `synchronous = FULL` (an fsync per accepted message); BENCH_SYNCHRONOUS=NORMAL
 * measures the process-crash-safe mode.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";

import type { OracleConfig } from "../oracle/config.js";
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
}

const PER_READING = Number(process.env.BENCH_READINGS ?? 3000);
const WINDOW_READINGS = Number(process.env.BENCH_WINDOW_READINGS ?? 782 * 256);
const E2E = Number(process.env.BENCH_E2E_READINGS ?? 3000);
const DEVICES = 48;
/** BENCH_CPU_PROF=<dir>: the oracle process writes a V8 CPU profile there (node --cpu-prof). */
const PROFILE_ARGS =
  process.env.BENCH_CPU_PROF === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`];
/** BENCH_ONLY=per-reading: the per-reading rows only (a quick look; the results file is then partial). */
const ONLY_PER_READING = process.env.BENCH_ONLY === "per-reading";
/** MQTT connections of the oracle in the Mosquitto per-reading row (BENCH_CONNECTIONS). */
const SHARED_CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
/** The store's durability mode for the intake rows (default FULL, the oracle's default). */
const SYNCHRONOUS = process.env.BENCH_SYNCHRONOUS === "NORMAL" ? "NORMAL" : "FULL";

function readingsOf(items: readonly SignedItem[]): number {
  return items.reduce((n, i) => n + (i.kind === "reading" ? 1 : i.window.samples.length), 0);
}

/** Signed single readings, round robin over the devices, sequences from `firstSeq`. */
function singles(w: World, count: number, firstSeq: number): SignedItem[] {
  return Array.from({ length: count }, (_, i) => {
    const device = w.devices[i % w.devices.length];
    if (device === undefined) throw new Error("no devices");
    return reading(w, device, firstSeq + Math.floor(i / w.devices.length), w.startedAt + 1);
  });
}

/** Publishes everything with up to 500 PUBACKs outstanding per publisher, the items dealt round robin. */
async function publishAll(publishers: readonly Publisher[], items: readonly SignedItem[]): Promise<void> {
  await Promise.all(
    publishers.map(async (device, p) => {
      const mine = items.filter((_, i) => i % publishers.length === p);
      for (let i = 0; i < mine.length; i += 500) {
        await Promise.all(mine.slice(i, i + 500).map((item) => device.publish(item, "binary")));
      }
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
  const workers = s.workers === 0 ? "inline" : s.workers === "auto" ? cpus().length : s.workers;
  return `${s.brokerName}, ${s.connections} connection(s), signature workers: ${workers}, ${s.publishers} publisher(s)`;
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
  items: SignedItem[],
): Promise<Row> {
  const config = oracleConfig(w, node, setup.broker.url, {
    mqtt: { connections: setup.connections },
    verify: { workers: setup.workers },
    batch: { maxReadings: 100_000_000, maxAgeMs: 1_000_000_000 },
    store: { synchronous: SYNCHRONOUS },
    backpressure: { maxPendingReadings: 100_000_000 },
  });
  const oracle = await spawnOracle(config, await fundedOracleKey(node));
  const publishers = await Promise.all(
    Array.from({ length: setup.publishers }, () => Publisher.connect(setup.broker.url)),
  );
  const expected = readingsOf(items);
  const started = performance.now();
  await publishAll(publishers, items);
  await waitFor(
    `${mode}: every message handled`,
    async () => (await oracle.metrics()).get("coldchain_oracle_received_total") === items.length,
    600_000,
    20,
  );
  const seconds = (performance.now() - started) / 1000;
  const m = await oracle.metrics();
  const accepted = m.get("coldchain_oracle_accepted_readings_total") ?? 0;
  const peakRssMB = oracle.peakRssMB();
  await Promise.all(publishers.map((p) => p.close()));
  await oracle.stop();
  return {
    mode,
    setup: setupLabel(setup),
    readings: expected,
    seconds: round(seconds),
    readingsPerSecond: Math.round(expected / seconds),
    peakRssMB,
    lost: expected - accepted,
    duplicates: Math.max(0, accepted - expected),
  };
}

async function endToEndRow(w: World, node: NodeHandle, broker: BrokerHandle, items: SignedItem[]): Promise<Row> {
  const config = oracleConfig(w, node, broker.url, { batch: { maxReadings: 1000, maxAgeMs: 200 } });
  const oracle = await spawnOracle(config, await fundedOracleKey(node));
  const device = await Publisher.connect(broker.url);
  const expected = readingsOf(items);
  const started = performance.now();
  await publishAll([device], items);
  const settled = async (): Promise<boolean> => {
    const m = await oracle.metrics();
    return (
      (m.get("coldchain_oracle_recorded_readings_total") ?? 0) +
        (m.get("coldchain_oracle_skipped_readings_total") ?? 0) >=
      expected
    );
  };
  await waitFor("end-to-end: every reading confirmed", settled, 600_000, 20);
  const seconds = (performance.now() - started) / 1000;
  const m = await oracle.metrics();
  const recorded = m.get("coldchain_oracle_recorded_readings_total") ?? 0;
  const submitted = m.get("coldchain_oracle_batch_readings_sum") ?? 0;
  const peakRssMB = oracle.peakRssMB();
  await device.close();
  await oracle.stop();
  return {
    mode: "end-to-end",
    setup: "aedes, 1 connection, signature check inline, 1 publisher",
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

const node = await startChain();
const broker = await startAedes();
const mosquitto = mosquittoAvailable() ? await startMosquitto() : undefined;
try {
  const w = await deployWorld(node, DEVICES, 20_000n);
  const perDevice = Math.ceil(PER_READING / DEVICES);
  console.log(`signing ${PER_READING + E2E} readings and ${Math.ceil(WINDOW_READINGS / 256)} windows…`);
  const perReading = singles(w, PER_READING, 1);
  const e2e = singles(w, E2E, perDevice + 1);
  const windows: SignedItem[] = [];
  let nextWindowSeq = perDevice + Math.ceil(E2E / DEVICES) + 1;
  for (let made = 0; made < WINDOW_READINGS; nextWindowSeq += 256) {
    for (const device of w.devices) {
      if (made >= WINDOW_READINGS) break;
      const count = Math.min(256, WINDOW_READINGS - made);
      // A full window spans 255 intervals (4 h 15 min): observed in the past, as a logger uploading its buffer.
      // (The intake rows never reach the chain, so the shipment's start does not matter here.)
      const first = Math.min(w.startedAt, Math.floor(Date.now() / 1000)) - 256 * INTERVAL_SECONDS;
      windows.push(
        window(
          w,
          device,
          nextWindowSeq,
          first,
          Array.from({ length: count }, () => 500),
        ),
      );
      made += count;
    }
  }
  const rows: Row[] = [];
  const aedes: Setup = { broker, brokerName: "aedes", connections: 1, workers: 0, publishers: 1 };
  rows.push(await intakeRow("per-reading", w, node, aedes, perReading));
  console.log(rows.at(-1));
  if (mosquitto === undefined) {
    console.log("mosquitto is not installed: no shared-subscription row (apt-get install -y mosquitto)");
  } else {
    const shared: Setup = {
      broker: mosquitto,
      brokerName: "mosquitto",
      connections: SHARED_CONNECTIONS,
      workers: "auto",
      publishers: 4,
    };
    rows.push(await intakeRow("per-reading", w, node, shared, perReading));
    console.log(rows.at(-1));
  }
  if (!ONLY_PER_READING) {
    rows.push(await intakeRow("window", w, node, aedes, windows));
    console.log(rows.at(-1));
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
        machine: { cpus: cpus().length, node: process.version },
        notes: [
          `per-reading and window: MQTT publish (aedes, TCP) to durable store (SQLite WAL, synchronous=${SYNCHRONOUS}), relay idle`,
          "end-to-end: publish to on-chain confirmation (in-process Hardhat chain, 1 confirmation, batches of 1000)",
          "per-reading rows: aedes (MQTT 3.1.1, no $share) with 1 connection and the signature check on the intake thread; Mosquitto with several connections in one $share group and signature worker threads (group commit: messages in flight share one SQLite commit)",
          "signature checks: pure JS with per-device cached keys and precomputed tables (oracle/verify.ts); the synchronous fsync per commit on the intake thread is the largest single cost, then signatures",
          "the machine's 2 cores are shared by the oracle, the broker, the publishers and the chain (and, when measured, other work on the host): figures vary by tens of percent between runs",
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
