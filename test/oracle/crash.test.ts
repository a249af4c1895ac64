/**
 * Crash safety: the oracle runs as a child process (`node --import tsx oracle/main.ts --config …`) and is killed
 * with SIGKILL at random moments while devices publish; after each kill a new process resumes from the store.
 * At the end every valid reading is on-chain exactly once, and no transaction carried a reading twice
 * (so no gas went to a duplicate): the calldata of every oracle transaction is decoded and counted.
 *
 * Size: ORACLE_CRASH_READINGS (default 10,000), ORACLE_CRASH_DEVICES (default 50), ORACLE_CRASH_KILLS (default
 * 20): the size, about 85 s here; smaller for a quick look, e.g. `ORACLE_CRASH_READINGS=1200
 * ORACLE_CRASH_DEVICES=16` (about 40 s).
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { appendFileSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { DatabaseSync } from "node:sqlite";

import { expect } from "chai";
import { Wallet, getAddress } from "ethers";

import { COLD_CHAIN_ABI } from "../../oracle/chain.js";
import { decodeBatch } from "../../sdk/protocol/index.js";
import type { SignedItem } from "../../sdk/protocol/index.js";
import {
  INTERVAL_SECONDS,
  Publisher,
  REPO_ROOT,
  mosquittoAvailable,
  startMosquitto,
  deployWorld,
  fundedOracleKey,
  oracleConfig,
  reading,
  startAedes,
  startChain,
  tempDir,
  waitFor,
  window,
} from "./support.js";
import type { AedesHandle, BrokerHandle, ConfigOverrides, MosquittoHandle, NodeHandle, World } from "./support.js";

const READINGS = Number(process.env.ORACLE_CRASH_READINGS ?? 10_000);
const DEVICES = Number(process.env.ORACLE_CRASH_DEVICES ?? 50);
const KILLS = Number(process.env.ORACLE_CRASH_KILLS ?? 20);
const WINDOW_SAMPLES = 3;

/** Seconds the readings of one device span: one reading per interval (protocol v2 chains them by time). */
function workloadSpan(w: World, readings: number): number {
  return (Math.floor(readings / w.devices.length) + 1) * INTERVAL_SECONDS;
}

/**
 * Per device: singles and, every fourth message, a window of WINDOW_SAMPLES, one reading per interval from the
 * shipment's start (each naming the one before it); `READINGS` readings in all.
 */
function workload(w: World, readings: number): SignedItem[] {
  const perDevice = Math.floor(readings / w.devices.length);
  const items: SignedItem[][] = w.devices.map((device) => {
    const out: SignedItem[] = [];
    let seq = 1;
    let n = 0;
    while (seq <= perDevice) {
      const t = w.startedAt + seq * INTERVAL_SECONDS;
      if (n % 4 === 3 && seq + WINDOW_SAMPLES - 1 <= perDevice) {
        out.push(
          window(
            w,
            device,
            seq,
            t,
            Array.from({ length: WINDOW_SAMPLES }, (_, i) => 400 + i),
          ),
        );
        seq += WINDOW_SAMPLES;
      } else {
        out.push(reading(w, device, seq, t, 450));
        seq += 1;
      }
      n++;
    }
    return out;
  });
  // Interleave devices, as a fleet publishes.
  const merged: SignedItem[] = [];
  for (let i = 0; items.some((list) => i < list.length); i++) {
    for (const list of items) {
      const item = list[i];
      if (item !== undefined) merged.push(item);
    }
  }
  return merged;
}

interface CrashRun {
  readonly readings: number;
  readonly devices: number;
  readonly kills: number;
  readonly firstDeviceId: bigint;
  readonly config: ConfigOverrides;
}

/** Runs the oracle as a child process, kills it `run.kills` times while devices publish, and checks the end state. */
async function crashRun(node: NodeHandle, broker: BrokerHandle, run: CrashRun): Promise<void> {
  const w = await deployWorld(node, run.devices, run.firstDeviceId);
  // The readings span hours from the start: the chain's clock goes past them, and the oracle's future check (on the
  // wall clock) is widened to cover them.
  const span = workloadSpan(w, run.readings);
  await node.provider.send("evm_increaseTime", [span]);
  await node.provider.send("evm_mine", []);
  const privateKey = await fundedOracleKey(node);
  const oracleAddress = new Wallet(privateKey).address;
  const config = oracleConfig(w, node, broker.url, {
    batch: { maxReadings: 200, maxAgeMs: 20 },
    chain: { pollIntervalMs: 20 },
    log: { level: "info" },
    verify: { maxFutureSkewSeconds: span + 600 },
    ...run.config,
  });
  const dir = tempDir();
  const configPath = join(dir, "oracle.json");
  writeFileSync(configPath, JSON.stringify({ ...config, http: { ...config.http, port: 0 } }));
  const logFd = openSync(join(dir, "oracle.log"), "a");
  const firstBlock = await node.provider.getBlockNumber();
  const items = workload(w, run.readings);
  const total = items.reduce((n, i) => n + (i.kind === "reading" ? 1 : i.window.samples.length), 0);

  const spawnOracle = (): ChildProcess =>
    spawn(process.execPath, ["--import", "tsx", "oracle/main.ts", "--config", configPath], {
      cwd: REPO_ROOT,
      env: { ...process.env, ORACLE_PRIVATE_KEY: privateKey, NODE_NO_WARNINGS: "1" },
      stdio: ["ignore", "pipe", logFd],
    });
  /** Resolves when the child logs "oracle running" (its log goes on to the log file). */
  const watch = (proc: ChildProcess): Promise<void> =>
    new Promise((resolve, reject) => {
      const lines = createInterface({ input: proc.stdout ?? process.stdin });
      lines.on("line", (line) => {
        appendFileSync(join(dir, "oracle.log"), `${line}\n`);
        if (line.includes('"oracle running"')) resolve();
      });
      proc.once("exit", (code) => reject(new Error(`the oracle exited with ${code} before running`)));
    });
  let running: Promise<void> = Promise.resolve();
  const launch = (): ChildProcess => {
    const proc = spawnOracle();
    running = watch(proc);
    running.catch(() => undefined); // a child killed before it runs is seen by the next await of `running`
    return proc;
  };

  // The first instance creates the persistent session; devices publish only once it is subscribed (it logs
  // "oracle running" after its subscription is acknowledged).
  let child = launch();
  await running;
  const device = await Publisher.connect(broker.url);
  const publishing = (async () => {
    for (const item of items) await device.publish(item, "binary");
  })();

  const store = (): { pending: number; batched: number; recorded: number; skipped: number } => {
    const db = new DatabaseSync(config.store.path, { readOnly: true });
    try {
      const rows = db.prepare("SELECT state, SUM(count) AS n FROM items GROUP BY state").all();
      const out = { pending: 0, batched: 0, recorded: 0, skipped: 0 };
      for (const r of rows) out[r.state as keyof typeof out] = Number(r.n);
      return out;
    } finally {
      db.close();
    }
  };

  for (let kill = 0; kill < run.kills; kill++) {
    await running;
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 700)); // a random moment of the flow
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await exited;
    child = launch();
  }
  await publishing;
  await device.close();
  await waitFor(
    `every reading recorded (oracle log: ${dir}/oracle.log)`,
    () => store().recorded === total,
    300_000,
    200,
  );
  // The last instance may still be starting (an earlier one recorded everything): a clean shutdown needs it up.
  await running;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const [code] = (await exited) as [number | null];
  expect(code, "clean shutdown on SIGTERM").to.equal(0);

  // On-chain: every reading once; no oracle transaction carried a reading twice or one already on-chain.
  let onchain = 0;
  for (let shipmentId = 1n; shipmentId <= BigInt(Math.ceil(run.devices / 8)); shipmentId++) {
    onchain += Number((await w.coldChain.condition(shipmentId)).readingCount);
  }
  expect(onchain).to.equal(total);
  const head = await node.provider.getBlockNumber();
  const seen = new Set<string>();
  let submitted = 0;
  let skippedEvents = 0;
  for (let b = firstBlock + 1; b <= head; b++) {
    const block = await node.provider.getBlock(b, true);
    for (const tx of block?.prefetchedTransactions ?? []) {
      if (getAddress(tx.from) !== oracleAddress) continue;
      const [batch] = COLD_CHAIN_ABI.decodeFunctionData("submitReadings", tx.data) as unknown as [string];
      for (const item of decodeBatch(batch)) {
        const keys =
          item.kind === "readings"
            ? item.readings.map((r) => `${r.reading.deviceId}:${r.reading.sequence}`)
            : item.window.samples.map((_, i) => `${item.window.deviceId}:${item.window.firstSequence + i}`);
        for (const key of keys) {
          expect(seen.has(key), `reading ${key} submitted twice`).to.equal(false);
          seen.add(key);
          submitted++;
        }
      }
      const receipt = await node.provider.getTransactionReceipt(tx.hash);
      skippedEvents +=
        receipt?.logs.filter((l) => l.topics[0] === COLD_CHAIN_ABI.getEvent("ReadingSkipped")?.topicHash).length ?? 0;
    }
  }
  expect(submitted).to.equal(total);
  expect(skippedEvents).to.equal(0);
  expect(store()).to.deep.equal({ pending: 0, batched: 0, recorded: total, skipped: 0 });
}

describe("oracle crash safety (SIGKILL while readings flow)", function () {
  this.timeout(600_000);
  let node: NodeHandle;
  let broker: AedesHandle;
  let mosquitto: MosquittoHandle | undefined;

  before(async () => {
    [node, broker] = await Promise.all([startChain(), startAedes()]);
    if (mosquittoAvailable()) mosquitto = await startMosquitto();
  });
  after(async () => {
    await Promise.all([node?.stop(), broker?.stop(), mosquitto?.stop()]);
  });

  it(`killed ${KILLS} times, relays ${READINGS} readings of ${DEVICES} devices exactly once`, async () => {
    await crashRun(node, broker, {
      readings: READINGS,
      devices: DEVICES,
      kills: KILLS,
      firstDeviceId: 5000n,
      config: {},
    });
  });

  it("with several messages in flight (Mosquitto, 6 connections sharing the stream, 2 signature workers), killed 8 times: exactly once", async function () {
    if (mosquitto === undefined) {
      console.warn("    SKIPPED: the `mosquitto` binary is not installed (apt-get install -y mosquitto)");
      this.skip();
    }
    await crashRun(node, mosquitto, {
      readings: 600,
      devices: 8,
      kills: 8,
      firstDeviceId: 5500n,
      config: { mqtt: { connections: 6 }, verify: { workers: 2, maxFutureSkewSeconds: 24 * 3600 } },
    });
  });
});
