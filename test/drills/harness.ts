/**
 * The fault drills' harness (issue 16): the oracle as operators run it, and the faults production brings.
 *
 * One drill = a fresh anvil (Foundry's node: reorgs, base-fee jumps, dropped transactions, interval mining), a fresh
 * Mosquitto with persistence on (restartable on its port and persistence directory), the suite deployed with a few
 * devices, one or more real oracle processes (`node --import tsx oracle/main.ts --config …`, test/oracle/
 * oracle-process.ts), and a fleet of simulated devices, each its own MQTT client that publishes at QoS 1, keeps a
 * message until its PUBACK, and reconnects and flushes its backlog within ~0.2 s (as the devices did).
 * A drill injects its fault mid-flow, lets the flow go on, and waits for quiescence; the counts come from the chain
 * (`isRecorded` per reading, the oracles' mined transactions decoded) and from the stores, never from the oracle's
 * own word.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";

import { Contract, Wallet, getAddress } from "ethers";
import { connectAsync } from "mqtt";
import type { MqttClient } from "mqtt";

import { COLD_CHAIN_ABI } from "../../oracle/chain.js";
import type { OracleConfig } from "../../oracle/config/index.js";
import { encodeMqttPayload, mqttReadingsTopic } from "../../sdk/protocol/index.js";
import { startAnvil } from "../oracle/anvil.js";
import type { AnvilHandle } from "../oracle/anvil.js";
import { OracleProcess } from "../oracle/oracle-process.js";
import {
  INTERVAL_SECONDS,
  deployWorld,
  freePort,
  fundedOracleKey,
  oracleConfig,
  reading,
  readingsCarried,
  startMosquitto,
  tempDir,
  waitFor,
} from "../oracle/support.js";
import type { ConfigOverrides, Device, MosquittoHandle, World } from "../oracle/support.js";

/** The drill sizes: `short` (in `npm test`) or `full` (ORACLE_DRILLS=full: more readings, several repetitions). */
export interface Profile {
  readonly name: "short" | "full";
  readonly devices: number;
  readonly readingsPerDevice: number;
  /** Pause of each device between two readings. */
  readonly paceMs: number;
  readonly repetitions: number;
}

export const PROFILES: Record<Profile["name"], Profile> = {
  short: { name: "short", devices: 3, readingsPerDevice: 30, paceMs: 150, repetitions: 1 },
  full: { name: "full", devices: 6, readingsPerDevice: 80, paceMs: 60, repetitions: 2 },
};

/**
 * The profile ORACLE_DRILLS names (`full`, else `short`), its repetitions overridden by ORACLE_DRILLS_RUNS (CI runs
 * the full profile once, to stay within its time budget; `npm run drills` runs it twice for the table).
 */
export function currentProfile(): Profile {
  const profile = process.env.ORACLE_DRILLS === "full" ? PROFILES.full : PROFILES.short;
  const runs = process.env.ORACLE_DRILLS_RUNS;
  if (runs === undefined || runs === "") return profile;
  const repetitions = Number(runs);
  if (!Number.isInteger(repetitions) || repetitions < 1 || repetitions > 20) {
    throw new Error(`ORACLE_DRILLS_RUNS must be a whole number from 1 to 20, not "${runs}"`);
  }
  return { ...profile, repetitions };
}

/**
 * How long a backlog may take to reach the chain once a fault clears. Generous on purpose (a loaded 2-core host):
 * the fixed oracle takes seconds; the faults of issue 16 take for ever (a stuck nonce) or half a minute (waiting for
 * a base fee to decay), and the bound tells them apart.
 */
export const RECOVERY_BOUND_MS = 45_000;

/** A reading as a device published it (the key the chain records it under: device id and observation time). */
export interface Published {
  readonly deviceId: bigint;
  readonly sequence: number;
  readonly observedAt: number;
  /** Unix ms the device handed it to its MQTT client. */
  readonly at: number;
}

/** One row of the drills' table; `problems` lists every assertion the drill failed (empty: passed). */
export interface DrillResult {
  readonly fault: string;
  readonly runs: number;
  readonly published: number;
  readonly onChain: number;
  readonly lost: number;
  readonly doubled: number;
  readonly wastedTx: number;
  readonly oracleTx: number;
  /** Fault cleared (or injected, for a fault that stays) → the readings published before it on chain; per run. */
  readonly recoveryMs: readonly (number | undefined)[];
  /** The bound recovery is held to. */
  readonly boundMs: number;
  readonly notes: readonly string[];
  readonly problems: readonly string[];
}

/** The chain's and the stores' account of a drill's end state. */
export interface Tally {
  readonly published: number;
  readonly onChain: number;
  readonly lost: number;
  readonly doubled: number;
  readonly wastedTx: number;
  readonly oracleTx: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A simulated device: its own MQTT client, QoS 1, a message kept until its PUBACK, reconnect every 200 ms. */
class SimulatedDevice {
  private readonly inFlight = new Set<Promise<unknown>>();
  private sequence = 0;

  private constructor(
    readonly device: Device,
    private readonly client: MqttClient,
  ) {}

  static async connect(url: string, device: Device): Promise<SimulatedDevice> {
    const client = await connectAsync(url, {
      clientId: `drill-device-${device.id}-${Math.random().toString(16).slice(2, 8)}`,
      protocolVersion: 4,
      reconnectPeriod: 200,
      connectTimeout: 2_000,
    });
    // A broker restart is routine for a device: mqtt.js queues what is published meanwhile and flushes on reconnect.
    client.on("error", () => undefined);
    return new SimulatedDevice(device, client);
  }

  /** Takes and publishes the next reading without waiting for its PUBACK (a device does not stop measuring). */
  publishNext(w: World): Published {
    this.sequence++;
    const observedAt = w.startedAt + this.sequence * INTERVAL_SECONDS;
    const item = reading(w, this.device, this.sequence, observedAt, 450);
    const sent = this.client.publishAsync(
      mqttReadingsTopic(this.device.id),
      Buffer.from(encodeMqttPayload(item, "binary")),
      {
        qos: 1,
      },
    );
    this.inFlight.add(sent);
    void sent.finally(() => this.inFlight.delete(sent)).catch(() => undefined);
    return { deviceId: this.device.id, sequence: this.sequence, observedAt, at: Date.now() };
  }

  /** Resolves once every reading published so far is acknowledged by the broker. */
  async flushed(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

/** The devices of a drill publishing in rounds; `unregistered` devices publish too, but their readings are not valid. */
export class Fleet {
  readonly published: Published[] = [];
  readonly unregisteredPublished: Published[] = [];
  private stopped = false;
  private running: Promise<void> | undefined;

  private constructor(
    private readonly w: World,
    private readonly devices: SimulatedDevice[],
    private readonly unregistered: SimulatedDevice[],
  ) {}

  static async connect(w: World, url: string, unregistered: readonly Device[] = []): Promise<Fleet> {
    const devices = await Promise.all(w.devices.map((d) => SimulatedDevice.connect(url, d)));
    const strangers = await Promise.all(unregistered.map((d) => SimulatedDevice.connect(url, d)));
    return new Fleet(w, devices, strangers);
  }

  /**
   * Unregistered devices publish only while this is true (a drill turns it on when their first message should meet
   * its fault: a device the oracle has not yet looked up).
   */
  unregisteredOn = false;

  /**
   * Publishes `perDevice` more readings per device, `paceMs` apart (after what an earlier call started); the
   * unregistered devices one every `unregisteredEvery` rounds. `done()` resolves once all are acknowledged.
   */
  start(perDevice: number, paceMs: number, unregisteredEvery = 2): void {
    const before = this.running ?? Promise.resolve();
    this.running = before.then(async () => {
      for (let round = 0; round < perDevice && !this.stopped; round++) {
        for (const d of this.devices) this.published.push(d.publishNext(this.w));
        if (this.unregisteredOn && round % unregisteredEvery === 0) {
          for (const d of this.unregistered) this.unregisteredPublished.push(d.publishNext(this.w));
        }
        await sleep(paceMs);
      }
    });
  }

  /** Resolves once `count` valid readings are published (a moment mid-flow to inject a fault at). */
  async reached(count: number): Promise<void> {
    await waitFor(`${count} readings published`, () => this.published.length >= count, 120_000, 20);
  }

  async done(): Promise<void> {
    await this.running;
    await Promise.all([...this.devices, ...this.unregistered].map((d) => d.flushed()));
  }

  publishedBefore(at: number): Published[] {
    return this.published.filter((p) => p.at <= at);
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.running;
    await Promise.all([...this.devices, ...this.unregistered].map((d) => d.close()));
  }
}

export interface DrillOptions {
  /** Interval mining (seconds a block); automine when absent. */
  readonly blockTime?: number;
  readonly devices: number;
  readonly firstDeviceId: bigint;
}

/** A drill's world: anvil, Mosquitto, the deployed suite, and the oracle processes started in it. */
export class Drill {
  /** Drills started and not yet stopped: a drill that throws midway is stopped by {@link stopLiveDrills}. */
  private static readonly live = new Set<Drill>();
  readonly oracles: OracleProcess[] = [];
  readonly addresses: string[] = [];
  /** The stores of the oracles started (one per instance; a restarted instance keeps its store). */
  readonly storePaths = new Set<string>();
  private readonly cleanups: (() => Promise<void> | void)[] = [];

  private constructor(
    readonly anvil: AnvilHandle,
    readonly broker: MosquittoHandle,
    readonly world: World,
    readonly span: number,
    readonly dir: string,
    readonly firstBlock: number,
  ) {}

  /** Starts anvil (automine while the suite deploys, then `blockTime` interval mining) and Mosquitto; deploys. */
  static async start(options: DrillOptions): Promise<Drill> {
    const [anvil, broker] = await Promise.all([startAnvil(), startMosquitto()]);
    try {
      const world = await deployWorld(anvil, options.devices, options.firstDeviceId);
      // The readings span hours from the shipment's start (one per interval): the chain's clock goes past them.
      const span = 1_000 * INTERVAL_SECONDS;
      await anvil.rpc("evm_increaseTime", [span]);
      await anvil.rpc("evm_mine");
      if (options.blockTime !== undefined) {
        await anvil.rpc("evm_setAutomine", [false]);
        await anvil.rpc("evm_setIntervalMining", [options.blockTime]);
      }
      const dir = tempDir("coldchain-drill-");
      mkdirSync(join(dir, "logs"), { recursive: true });
      const drill = new Drill(anvil, broker, world, span, dir, await anvil.provider.getBlockNumber());
      Drill.live.add(drill);
      return drill;
    } catch (error) {
      await Promise.allSettled([anvil.stop(), broker.stop()]);
      throw error;
    }
  }

  /** An oracle config for this drill: 1 confirmation, fast polling, small batches, logs at info. */
  config(overrides: ConfigOverrides = {}): OracleConfig {
    return oracleConfig(this.world, this.anvil, this.broker.url, {
      batch: { maxReadings: 40, maxAgeMs: 200 },
      log: { level: "info" },
      ...overrides,
      chain: { pollIntervalMs: 100, confirmations: 1, ...overrides.chain },
      verify: { maxFutureSkewSeconds: this.span + 600, ...overrides.verify },
    });
  }

  /** A funded key for a new oracle instance (its own account, as in production). */
  async oracleKey(): Promise<string> {
    const key = await fundedOracleKey(this.anvil);
    this.addresses.push(getAddress(new Wallet(key).address));
    return key;
  }

  /** Starts an oracle process and waits until it is subscribed ("oracle running"). */
  async startOracle(config: OracleConfig, privateKey: string): Promise<OracleProcess> {
    const oracle = OracleProcess.start(
      config,
      join(this.dir, "logs"),
      privateKey,
      await freePort(),
      `oracle-${this.oracles.length + 1}`,
    );
    this.oracles.push(oracle);
    this.storePaths.add(config.store.path);
    await oracle.waitForLog(/^oracle running$/, 60_000);
    return oracle;
  }

  onCleanup(fn: () => Promise<void> | void): void {
    this.cleanups.push(fn);
  }

  /**
   * Where a loss happened: readings published that no store holds (lost before intake: the broker or the
   * subscription), and readings two stores hold (delivered to two instances). Read from the stores' `observations`.
   */
  intake(published: readonly Published[]): { neverStored: number; storedTwice: number } {
    const seen = new Map<string, number>();
    for (const path of this.storePaths) {
      const db = new DatabaseSync(path, { readOnly: true });
      try {
        for (const row of db.prepare("SELECT device_id, observed_at FROM observations").all()) {
          const key = `${String(row.device_id)}:${String(row.observed_at)}`;
          seen.set(key, (seen.get(key) ?? 0) + 1);
        }
      } finally {
        db.close();
      }
    }
    let neverStored = 0;
    let storedTwice = 0;
    for (const p of published) {
      const n = seen.get(`${p.deviceId}:${p.observedAt}`) ?? 0;
      if (n === 0) neverStored++;
      if (n > 1) storedTwice++;
    }
    return { neverStored, storedTwice };
  }

  /** The readings of `list` the chain holds (`isRecorded`), read at the latest block. */
  async recorded(list: readonly Published[]): Promise<Published[]> {
    const coldChain = new Contract(this.world.domain.verifyingContract, COLD_CHAIN_ABI, this.anvil.provider);
    const out: Published[] = [];
    for (let i = 0; i < list.length; i += 64) {
      const chunk = list.slice(i, i + 64);
      const flags = await Promise.all(
        chunk.map((p) => coldChain.getFunction("isRecorded").staticCall(p.deviceId, p.observedAt) as Promise<boolean>),
      );
      chunk.forEach((p, j) => {
        if (flags[j] === true) out.push(p);
      });
    }
    return out;
  }

  /**
   * Measures recovery: resolves with the ms from `from` until every reading of `backlog` is on chain, or undefined
   * after `boundMs`. Each reading is asked about until the chain holds it (a shrinking set, so polling stays cheap).
   */
  async recovery(
    backlog: readonly Published[],
    from: number,
    boundMs = RECOVERY_BOUND_MS,
  ): Promise<number | undefined> {
    let outstanding = [...backlog];
    while (Date.now() - from <= boundMs) {
      const held = new Set(await this.recorded(outstanding));
      outstanding = outstanding.filter((p) => !held.has(p));
      if (outstanding.length === 0) return Date.now() - from;
      await sleep(200);
    }
    return undefined;
  }

  /**
   * Waits (until `deadline`, unix ms) for quiescence: every published reading on chain and no oracle transaction
   * pending, twice in a row a second apart. Then counts.
   */
  async settle(published: readonly Published[], deadline: number): Promise<Tally> {
    let quietPolls = 0;
    while (Date.now() < deadline && quietPolls < 2) {
      const onChain = (await this.recorded(published)).length;
      let pending = false;
      for (const address of this.addresses) {
        const [latest, inPool] = await Promise.all([
          this.anvil.provider.getTransactionCount(address, "latest"),
          this.anvil.provider.getTransactionCount(address, "pending"),
        ]);
        pending ||= inPool > latest;
      }
      quietPolls = onChain === published.length && !pending ? quietPolls + 1 : 0;
      await sleep(1_000);
    }
    return this.tally(published);
  }

  /**
   * Counts from the chain: readings on chain (`isRecorded`), lost (published, valid, not on chain), doubled (a
   * reading carried by more than one mined transaction of the oracles: gas paid twice), wasted transactions (mined
   * transactions of the oracles that reverted or recorded nothing: every item skipped).
   */
  async tally(published: readonly Published[]): Promise<Tally> {
    const onChain = (await this.recorded(published)).length;
    const oracles = new Set(this.addresses);
    const skippedTopic = COLD_CHAIN_ABI.getEvent("ReadingSkipped")?.topicHash;
    const carried = new Map<string, number>();
    let wastedTx = 0;
    let oracleTx = 0;
    const head = await this.anvil.provider.getBlockNumber();
    for (let b = this.firstBlock + 1; b <= head; b++) {
      const block = await this.anvil.provider.getBlock(b, true);
      for (const tx of block?.prefetchedTransactions ?? []) {
        if (!oracles.has(getAddress(tx.from))) continue;
        oracleTx++;
        const receipt = await this.anvil.provider.getTransactionReceipt(tx.hash);
        const keys = readingsCarried(tx.data);
        for (const key of keys) carried.set(key, (carried.get(key) ?? 0) + 1);
        const readings = keys.length;
        const skipped = (receipt?.logs ?? [])
          .filter((l) => l.topics[0] === skippedTopic)
          .reduce((n, l) => n + Number(COLD_CHAIN_ABI.parseLog(l)?.args.count ?? 0), 0);
        if (receipt?.status !== 1 || skipped >= readings) wastedTx++;
      }
    }
    let doubled = 0;
    for (const n of carried.values()) if (n > 1) doubled += n - 1;
    return {
      published: published.length,
      onChain,
      lost: published.length - onChain,
      doubled,
      wastedTx,
      oracleTx,
    };
  }

  /** Stops every oracle (SIGKILL: the drill has counted), the broker, the node, and whatever the drill added. */
  async stop(): Promise<void> {
    if (!Drill.live.delete(this)) return;
    for (const oracle of this.oracles) await oracle.stop("SIGKILL");
    for (const cleanup of this.cleanups.reverse()) await cleanup();
    await Promise.allSettled([this.broker.stop(), this.anvil.stop()]);
  }

  /** Stops every drill still running (after one threw: its processes must not outlive it). */
  static async stopLiveDrills(): Promise<void> {
    for (const drill of [...Drill.live]) await drill.stop();
  }
}

/** What every drill asserts: nothing lost, nothing doubled, no gas wasted, recovery within the bound. */
export function standardProblems(t: Tally, recoveryMs: number | undefined, boundMs = RECOVERY_BOUND_MS): string[] {
  const problems: string[] = [];
  if (t.lost !== 0) problems.push(`${t.lost} of ${t.published} readings lost (not on chain at the end)`);
  if (t.onChain !== t.published) problems.push(`${t.onChain} on chain, ${t.published} published`);
  if (t.doubled !== 0) problems.push(`${t.doubled} readings carried by two mined transactions`);
  if (t.wastedTx !== 0) problems.push(`${t.wastedTx} mined transactions recorded nothing or reverted`);
  if (recoveryMs === undefined || recoveryMs > boundMs) {
    problems.push(`the backlog was not on chain within ${boundMs / 1000} s of the fault`);
  }
  return problems;
}

/** Sums the runs of one drill into its row. */
export function combine(
  fault: string,
  runs: readonly {
    tally: Tally;
    recoveryMs: number | undefined;
    boundMs: number;
    notes: string[];
    problems: string[];
  }[],
): DrillResult {
  const sum = (f: (t: Tally) => number): number => runs.reduce((n, r) => n + f(r.tally), 0);
  return {
    fault,
    runs: runs.length,
    published: sum((t) => t.published),
    onChain: sum((t) => t.onChain),
    lost: sum((t) => t.lost),
    doubled: sum((t) => t.doubled),
    wastedTx: sum((t) => t.wastedTx),
    oracleTx: sum((t) => t.oracleTx),
    recoveryMs: runs.map((r) => r.recoveryMs),
    boundMs: Math.max(0, ...runs.map((r) => r.boundMs)),
    notes: runs.flatMap((r, i) => r.notes.map((n) => (runs.length > 1 ? `run ${i + 1}: ${n}` : n))),
    problems: runs.flatMap((r, i) => r.problems.map((p) => (runs.length > 1 ? `run ${i + 1}: ${p}` : p))),
  };
}

function recoveryText(list: readonly (number | undefined)[], boundMs: number): string {
  if (list.length === 0) return "-";
  if (list.some((ms) => ms === undefined)) return `> ${Math.max(boundMs, RECOVERY_BOUND_MS) / 1000} s`;
  const secs = list.map((ms) => (ms ?? 0) / 1000);
  const lo = Math.min(...secs);
  const hi = Math.max(...secs);
  const text = lo === hi ? `${lo.toFixed(1)} s` : `${lo.toFixed(1)}–${hi.toFixed(1)} s`;
  return hi * 1000 > boundMs ? `${text} (> ${boundMs / 1000} s)` : text;
}

/** The drills' table, as printed after the suite and by `npm run drills`. */
export function formatTable(results: readonly DrillResult[], profile: Profile): string {
  const header = ["fault", "published", "on chain", "lost", "doubled", "wasted tx", "recovery time", "result"];
  const rows = results.map((r) => [
    r.runs > 1 ? `${r.fault} (×${r.runs})` : r.fault,
    String(r.published),
    String(r.onChain),
    String(r.lost),
    String(r.doubled),
    `${r.wastedTx} of ${r.oracleTx}`,
    recoveryText(r.recoveryMs, r.boundMs),
    r.problems.length === 0 ? "pass" : "FAIL",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]?.length ?? 0)));
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(" | ")} |`;
  const out = [
    `Fault drills (profile ${profile.name}: ${profile.devices} devices × ${profile.readingsPerDevice} readings, ` +
      `${profile.repetitions} run(s) each; recovery bound ${RECOVERY_BOUND_MS / 1000} s unless a note says otherwise)`,
    line(header),
    `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`,
    ...rows.map(line),
  ];
  for (const r of results) {
    for (const note of r.notes) out.push(`  ${r.fault}: ${note}`);
    for (const problem of r.problems) out.push(`  ${r.fault}: FAIL: ${problem}`);
  }
  return out.join("\n");
}
