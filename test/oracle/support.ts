/**
 * Test support for the oracle: real brokers (embedded aedes, a spawned Mosquitto), a real chain (Hardhat's
 * JSON-RPC node as a child process), a deployed world with devices on a started shipment, device publishers
 * and oracle configs. Nothing here fakes the broker or the node.
 */
import { spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import type { Server } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { createInterface } from "node:readline";
import { Writable } from "node:stream";

import { Aedes } from "aedes";
import { JsonRpcProvider, Wallet, parseEther } from "ethers";
import { network } from "hardhat";
import { connectAsync } from "mqtt";
import type { MqttClient } from "mqtt";

import type { OracleConfig, OracleConfigInput } from "../../oracle/config/index.js";
import { parseConfig } from "../../oracle/config/index.js";
import type { IntakeResult } from "../../oracle/verification/judge.js";
import { createLogger } from "../../oracle/log.js";
import type { Logger } from "../../oracle/log.js";
import { Oracle } from "../../oracle/oracle.js";
import type { StoredItem } from "../../oracle/store/store.js";
import type { ColdChainDomain, DevicePrivateKey, MqttPayloadFormat, SignedItem } from "../../sdk/protocol/index.js";
import {
  decodeBatch,
  encodeMqttPayload,
  mqttReadingsTopic,
  signReading,
  signWindow,
} from "../../sdk/protocol/index.js";
import { COLD_CHAIN_ABI } from "../../oracle/chain.js";
import { VACCINE_PROFILE, createShipment, deploySuite, registerDevice } from "../support/deploy.js";
import type { Connection, Suite } from "../support/deploy.js";

export const REPO_ROOT = new URL("../../", import.meta.url).pathname;
export const INTERVAL_SECONDS = 60;

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  server.close();
  await once(server, "close");
  return port;
}

/** A fresh temporary directory. */
export function tempDir(prefix = "coldchain-oracle-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Polls `predicate` (for state outside this process: a child's store, the chain) until true. */
export async function waitFor(
  what: string,
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 60_000,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

// ---------------------------------------------------------------------------------------------
// Brokers
// ---------------------------------------------------------------------------------------------

export interface BrokerHandle {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

export interface AedesHandle extends BrokerHandle {
  readonly broker: Aedes;
}

/** The embedded aedes broker (MQTT 3.1.1, in-memory persistence) on a TCP port of 127.0.0.1. */
export async function startAedes(port?: number): Promise<AedesHandle> {
  const broker = new Aedes();
  await broker.listen();
  const server: Server = createServer((socket) => broker.handle(socket));
  const bound = port ?? (await freePort());
  server.listen(bound, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `mqtt://127.0.0.1:${bound}`,
    port: bound,
    broker,
    async stop() {
      server.close();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
}

/** Whether the `mosquitto` binary is installed. */
export function mosquittoAvailable(): boolean {
  return spawnSync("sh", ["-c", "command -v mosquitto"]).status === 0;
}

export interface MosquittoHandle extends BrokerHandle {
  /** Stops it with SIGTERM (it saves its persistence file first) or SIGKILL (it loses what it did not autosave). */
  stop(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** Starts it again on the same port and persistence directory. */
  restart(): Promise<void>;
}

/** Mosquitto on a free port with persistence on and unbounded queues (the settings docs/operations.md gives). */
export async function startMosquitto(): Promise<MosquittoHandle> {
  const dir = tempDir("coldchain-mosquitto-");
  const port = await freePort();
  const conf = join(dir, "mosquitto.conf");
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous true",
      "persistence true",
      `persistence_location ${dir}/`,
      // Saved every second: a SIGKILL loses at most what the broker acknowledged in the second before it.
      "autosave_interval 1",
      "max_queued_messages 0",
      "max_inflight_messages 100",
      "persistent_client_expiration 7d",
      "log_dest stderr",
      "log_type error",
      "log_type warning",
      "log_type notice",
      "log_type information",
      // Mosquitto started as root drops to the `mosquitto` user unless told to stay (it must write `dir`).
      `user ${userInfo().username}`,
      "",
    ].join("\n"),
  );
  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    const proc = spawn("mosquitto", ["-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    try {
      await waitForLine(proc, /running/, "mosquitto to start");
    } catch (error) {
      proc.kill("SIGKILL");
      throw error;
    }
  };
  const halt = async (signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> => {
    const proc = child;
    if (proc === undefined || proc.exitCode !== null) return;
    const exited = once(proc, "exit");
    proc.kill(signal);
    await exited;
  };
  await launch();
  return { url: `mqtt://127.0.0.1:${port}`, port, stop: halt, restart: launch };
}

async function waitForLine(proc: ChildProcess, pattern: RegExp, what: string, timeoutMs = 60_000): Promise<string> {
  const streams = [proc.stdout, proc.stderr].filter((s) => s !== null);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
    const onExit = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`${what}: the process exited with ${code}`));
    };
    proc.once("exit", onExit);
    for (const stream of streams) {
      const lines = createInterface({ input: stream });
      lines.on("line", (line) => {
        if (pattern.test(line)) {
          clearTimeout(timer);
          proc.off("exit", onExit);
          resolve(line);
        }
      });
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Chain
// ---------------------------------------------------------------------------------------------

export interface NodeHandle {
  readonly url: string;
  readonly port: number;
  readonly provider: JsonRpcProvider;
  /** The Hardhat connection tests deploy with (in-process chains only). */
  readonly connection?: Connection;
  /** Takes the JSON-RPC endpoint down (connections refused) and brings it back on the same port, same chain. */
  outage?(): { restore(): Promise<void> };
  stop(): Promise<void>;
}

/**
 * The chain for a test file: the in-process EDR chain served over JSON-RPC HTTP on 127.0.0.1 by this process
 * (default), or, with ORACLE_TEST_CHAIN=node, Hardhat's JSON-RPC node (`hardhat node`) as a child process.
 * ORACLE_TEST_UNLIMITED_CODE=1 lifts the 24 KB contract size limit of the in-process chain (an escape hatch
 * for while a contract under development is over it; the default is the real limit).
 */
export async function startChain(): Promise<NodeHandle> {
  return process.env.ORACLE_TEST_CHAIN === "node" ? startHardhatNode() : startInProcessNode();
}

/** The in-process EDR chain behind a small JSON-RPC HTTP server (what `hardhat node` does, in this process). */
export async function startInProcessNode(): Promise<NodeHandle> {
  const unlimited = process.env.ORACLE_TEST_UNLIMITED_CODE === "1";
  const connection = await network.create(
    unlimited ? { network: "default", override: { allowUnlimitedContractSize: true } } : { network: "default" },
  );
  const handle = async (body: unknown): Promise<unknown> => {
    const request = body as { id?: unknown; method?: string; params?: unknown[] };
    try {
      const result: unknown = await connection.provider.request({
        method: request.method ?? "",
        params: request.params ?? [],
      });
      return { jsonrpc: "2.0", id: request.id ?? null, result };
    } catch (error) {
      const e = error as { code?: unknown; message?: string; data?: unknown };
      return {
        jsonrpc: "2.0",
        id: request.id ?? null,
        error: {
          code: typeof e.code === "number" ? e.code : -32603,
          message: e.message ?? String(error),
          data: e.data,
        },
      };
    }
  };
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        res.writeHead(400).end();
        return;
      }
      const reply = Array.isArray(body) ? Promise.all(body.map(handle)) : handle(body);
      reply.then(
        (out) => {
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify(out, (_k, v: unknown) => (typeof v === "bigint" ? `0x${v.toString(16)}` : v)));
        },
        () => res.writeHead(500).end(),
      );
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  const provider = new JsonRpcProvider(url, undefined, { staticNetwork: true, polling: false, cacheTimeout: -1 });
  return {
    url,
    port,
    provider,
    connection,
    outage() {
      server.closeAllConnections();
      server.close();
      return {
        async restore() {
          server.listen(port, "127.0.0.1");
          await once(server, "listening");
        },
      };
    },
    async stop() {
      provider.destroy();
      server.closeAllConnections();
      server.close();
      await connection.close();
    },
  };
}

/** `hardhat node` on a free port, as a child process. */
export async function startHardhatNode(): Promise<NodeHandle> {
  const port = await freePort();
  const proc = spawn(
    process.execPath,
    [join(REPO_ROOT, "node_modules/hardhat/dist/src/cli.js"), "node", "--port", String(port)],
    {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  await waitForLine(proc, /Started HTTP/, "hardhat node to start");
  const url = `http://127.0.0.1:${port}`;
  const provider = new JsonRpcProvider(url, undefined, { staticNetwork: true, polling: false });
  return {
    url,
    port,
    provider,
    async stop() {
      provider.destroy();
      if (proc.exitCode !== null) return;
      const exited = once(proc, "exit");
      proc.kill("SIGTERM");
      await exited;
    },
  };
}

export interface Device {
  readonly id: bigint;
  readonly key: DevicePrivateKey;
}

export interface World extends Suite {
  readonly connection: Connection;
  readonly domain: ColdChainDomain;
  readonly devices: Device[];
  readonly unboundDevice: Device;
  readonly shipmentId: bigint;
  readonly startedAt: number;
  readonly deployBlock: number;
}

/**
 * Deploys the suite on the node and starts one shipment carrying `deviceCount` devices (alternating
 * secp256k1 and P-256 keys; at most 8 per shipment, more shipments are created for more devices).
 */
export async function deployWorld(node: NodeHandle, deviceCount = 2, firstDeviceId = 1000n): Promise<World> {
  const connection = node.connection ?? (await network.create({ network: "localhost", override: { url: node.url } }));
  const deployBlock = await node.provider.getBlockNumber();
  const suite = await deploySuite(connection);
  await (await suite.coldChain.connect(suite.qa).createProfile(VACCINE_PROFILE)).wait();
  const devices: Device[] = [];
  for (let i = 0; i < deviceCount; i++) {
    const keyType = i % 2 === 0 ? "secp256k1" : "p256";
    const device = {
      id: firstDeviceId + BigInt(i),
      key: { keyType, privateKey: Wallet.createRandom().privateKey },
    } as const;
    await registerDevice(suite, device.id, device.key, INTERVAL_SECONDS);
    devices.push(device);
  }
  const unboundDevice: Device = {
    id: firstDeviceId + 10_000n,
    key: { keyType: "secp256k1", privateKey: Wallet.createRandom().privateKey },
  };
  await registerDevice(suite, unboundDevice.id, unboundDevice.key, INTERVAL_SECONDS);
  let shipmentId = 0n;
  for (let i = 0; i < devices.length; i += 8) {
    const ids = devices.slice(i, i + 8).map((d) => d.id);
    const id = await createShipment(suite, ids, 1n);
    await (await suite.coldChain.connect(suite.shipper).startShipment(id)).wait();
    if (i === 0) shipmentId = id;
  }
  const block = await node.provider.getBlock("latest");
  const domain = { chainId: suite.chainId, verifyingContract: await suite.coldChain.getAddress() };
  return {
    ...suite,
    connection,
    domain,
    devices,
    unboundDevice,
    shipmentId,
    startedAt: block?.timestamp ?? 0,
    deployBlock,
  };
}

/** A funded fresh account for an oracle (its own signing key, as in production). */
export async function fundedOracleKey(node: NodeHandle): Promise<string> {
  const wallet = Wallet.createRandom();
  await node.provider.send("hardhat_setBalance", [wallet.address, `0x${parseEther("1000").toString(16)}`]);
  return wallet.privateKey;
}

// ---------------------------------------------------------------------------------------------
// Devices and oracle configs
// ---------------------------------------------------------------------------------------------

/**
 * Observation times each device signed through {@link reading} and {@link window}, per deployment and device, in
 * ascending order: a device names the reading it took before each one (`previousObservedAt`, protocol v2).
 */
// Keyed by the World object, not by its contract address: every test file deploys on a fresh node, where the same
// deployer nonce gives the same address, and mocha runs all files in one process (a previous file's times would
// become this file's predecessors).
const signedTimes = new WeakMap<World, Map<bigint, number[]>>();

function signedTimesOf(w: World, device: Device): number[] {
  let devices = signedTimes.get(w);
  if (devices === undefined) {
    devices = new Map();
    signedTimes.set(w, devices);
  }
  let times = devices.get(device.id);
  if (times === undefined) {
    times = [];
    devices.set(device.id, times);
  }
  return times;
}

/**
 * The predecessor a device names for a reading observed at `observedAt`: the latest time before it that the
 * device signed through these helpers (as a device that took its readings in time order would), or 0 for its
 * first.
 */
export function predecessorOf(w: World, device: Device, observedAt: number): number {
  let previous = 0;
  for (const t of signedTimesOf(w, device)) if (t < observedAt && t > previous) previous = t;
  return previous;
}

function noteSigned(w: World, device: Device, times: readonly number[]): void {
  const list = signedTimesOf(w, device);
  for (const t of times) if (!list.includes(t)) list.push(t);
  list.sort((a, b) => a - b);
}

/**
 * A signed reading of a device. Its predecessor is `previousObservedAt`, by default the latest time the device
 * signed before `observedAt` through these helpers ({@link predecessorOf}; 0 for its first).
 */
export function reading(
  w: World,
  device: Device,
  sequence: number,
  observedAt: number,
  tempCentiC = 500,
  previousObservedAt = predecessorOf(w, device, observedAt),
): SignedItem {
  noteSigned(w, device, [observedAt]);
  return signReading(
    w.domain,
    { deviceId: device.id, sequence, observedAt, tempCentiC, flags: 0, previousObservedAt },
    device.key,
  );
}

/** A signed window of a device ({@link INTERVAL_SECONDS} apart; predecessor as {@link reading}'s). */
export function window(
  w: World,
  device: Device,
  firstSequence: number,
  firstObservedAt: number,
  temps: number[],
  previousObservedAt = predecessorOf(w, device, firstObservedAt),
): SignedItem {
  noteSigned(
    w,
    device,
    temps.map((_, i) => firstObservedAt + i * INTERVAL_SECONDS),
  );
  return signWindow(
    w.domain,
    {
      deviceId: device.id,
      firstSequence,
      firstObservedAt,
      intervalSeconds: INTERVAL_SECONDS,
      samples: temps.map((tempCentiC) => ({ tempCentiC, flags: 0 })),
      previousObservedAt,
    },
    device.key,
  );
}

/** A device-side MQTT publisher (QoS 1). */
export class Publisher {
  private constructor(readonly client: MqttClient) {}

  static async connect(url: string, clientId = `device-${Math.random().toString(16).slice(2)}`): Promise<Publisher> {
    return new Publisher(await connectAsync(url, { clientId, protocolVersion: 4, reconnectPeriod: 200 }));
  }

  async publish(item: SignedItem, format: MqttPayloadFormat = "binary"): Promise<void> {
    const deviceId = item.kind === "reading" ? item.reading.deviceId : item.window.deviceId;
    await this.raw(mqttReadingsTopic(deviceId), encodeMqttPayload(item, format));
  }

  async raw(topic: string, payload: Uint8Array | string): Promise<void> {
    await this.client.publishAsync(topic, typeof payload === "string" ? payload : Buffer.from(payload), { qos: 1 });
  }

  async close(): Promise<void> {
    await this.client.endAsync();
  }
}

/** A test logger: silent unless ORACLE_TEST_LOG is set (e.g. ORACLE_TEST_LOG=debug). */
export function testLogger(): Logger {
  const level = process.env.ORACLE_TEST_LOG;
  return createLogger(level === "debug" || level === "info" || level === "warn" ? level : "silent");
}

/** An oracle config for a world: fast polling, 1 confirmation, store in a temp dir. */
/** Per-section overrides of a test config. */
export type ConfigOverrides = { [K in keyof OracleConfigInput]?: Partial<Exclude<OracleConfigInput[K], undefined>> };

export function oracleConfig(w: World, node: NodeHandle, brokerUrl: string, extra: ConfigOverrides = {}): OracleConfig {
  const dir = tempDir();
  const base: OracleConfigInput = {
    oracleId: `test-${Math.random().toString(16).slice(2, 10)}`,
    mqtt: { url: brokerUrl, reconnectPeriodMs: 200 },
    chain: {
      rpcUrls: [node.url],
      chainId: Number(w.chainId),
      coldChain: w.domain.verifyingContract,
      confirmations: 1,
      pollIntervalMs: 50,
      registryFromBlock: w.deployBlock,
    },
    batch: { maxAgeMs: 0 },
    store: { path: join(dir, "oracle.db"), synchronous: "NORMAL" },
    http: { port: 0 },
    log: { level: "silent" },
  };
  return parseConfig({
    ...base,
    ...(extra as Record<string, unknown>),
    mqtt: { ...base.mqtt, ...extra.mqtt },
    chain: { ...base.chain, ...extra.chain },
    batch: { ...base.batch, ...extra.batch },
    store: { ...base.store, ...extra.store },
  });
}

/** Readings on-chain of a shipment (ColdChain.condition(id).readingCount). */
export async function onchainReadingCount(w: World, shipmentId = w.shipmentId): Promise<number> {
  const condition = await w.coldChain.condition(shipmentId);
  return Number(condition.readingCount);
}

/** A line of the oracle's JSON log, as the tests read it. */
export interface OracleLogLine {
  level: number;
  msg: string;
  reason?: string;
  stage?: string;
  shipmentId?: string;
  deviceId?: string;
  firstSequence?: number;
  lastSequence?: number;
}

/** A started oracle with its own funded key whose log lines are kept in `logs`. */
export async function startLoggedOracle(
  w: World,
  node: NodeHandle,
  brokerUrl: string,
  extra: ConfigOverrides = {},
  level: "info" | "debug" = "info",
): Promise<{ oracle: Oracle; address: string; logs: OracleLogLine[] }> {
  const logs: OracleLogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (line !== "") logs.push(JSON.parse(line) as OracleLogLine);
      }
      done();
    },
  });
  const privateKey = await fundedOracleKey(node);
  const oracle = new Oracle(
    oracleConfig(w, node, brokerUrl, extra),
    { privateKey, mqttPassword: undefined },
    { log: createLogger(level, sink) },
  );
  await oracle.start();
  return { oracle, address: new Wallet(privateKey).address, logs };
}

/** Publishes `items` through `via` and resolves with their store ids; rejects if the oracle drops any. */
export async function publishStored(oracle: Oracle, via: Publisher, items: SignedItem[]): Promise<number[]> {
  const ids: number[] = [];
  const stored = new Promise<void>((resolve, reject) => {
    const on = (r: IntakeResult): void => {
      if (!r.ok) reject(new Error(`dropped at intake: ${r.reason} (${r.message})`));
      else ids.push(r.itemId);
      if (ids.length === items.length) {
        oracle.events.off("intake", on);
        resolve();
      }
    };
    oracle.events.on("intake", on);
  });
  for (const item of items) await via.publish(item);
  await stored;
  return ids;
}

/** The oracle's stored item `id`; throws if it is not in the store. */
export function storedItem(oracle: Oracle, id: number | undefined): StoredItem {
  const item = oracle.store.item(id ?? -1);
  if (item === undefined) throw new Error(`item ${id} is not in the store`);
  return item;
}

// ---------------------------------------------------------------------------------------------
// Stores of before protocol v2
// ---------------------------------------------------------------------------------------------

/** The tables of a store written before protocol v2 (oracle/store/store.ts at protocol v1). */
export const V1_SCHEMA = `

CREATE TABLE IF NOT EXISTS items (
  id INTEGER PRIMARY KEY,
  device_id TEXT NOT NULL,
  first_seq INTEGER NOT NULL,
  count INTEGER NOT NULL,
  kind TEXT NOT NULL,
  curve TEXT NOT NULL,
  body BLOB NOT NULL,
  received_at INTEGER NOT NULL,
  state TEXT NOT NULL,
  batch_id INTEGER,
  skip_reason TEXT
);
CREATE INDEX IF NOT EXISTS items_by_state ON items (state, id);
CREATE INDEX IF NOT EXISTS items_by_batch ON items (batch_id);
CREATE TABLE IF NOT EXISTS readings (
  device_id TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  item_id INTEGER NOT NULL,
  UNIQUE (device_id, sequence)
);
CREATE TABLE IF NOT EXISTS batches (
  id INTEGER PRIMARY KEY,
  state TEXT NOT NULL,
  nonce INTEGER NOT NULL,
  reading_count INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  tx_hash TEXT,
  block_number INTEGER,
  block_hash TEXT,
  gas_used TEXT
);
CREATE INDEX IF NOT EXISTS batches_by_state ON batches (state, nonce);
CREATE TABLE IF NOT EXISTS attempts (
  id INTEGER PRIMARY KEY,
  batch_id INTEGER NOT NULL,
  nonce INTEGER NOT NULL,
  max_fee TEXT NOT NULL,
  max_priority_fee TEXT NOT NULL,
  gas_limit TEXT NOT NULL,
  raw_tx TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_by_batch ON attempts (batch_id, id);
CREATE TABLE IF NOT EXISTS devices (
  device_id TEXT PRIMARY KEY,
  key_type INTEGER NOT NULL,
  interval_seconds INTEGER NOT NULL,
  revoked_at_block INTEGER NOT NULL,
  signer TEXT NOT NULL,
  qx TEXT NOT NULL,
  qy TEXT NOT NULL,
  fetched_at INTEGER NOT NULL,
  key_valid_from INTEGER NOT NULL DEFAULT 0,
  revoked_from INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

/**
 * A v1 binary MQTT body (version 0x01) of device 7 (or `deviceId`): a READINGS item of one reading, or a WINDOW item
 * of `count` samples 60 s apart (signature bytes 0xab: a store keeps what it verified, nobody checks it again).
 */
export function v1Body(
  kind: "reading" | "window",
  sequence: number,
  observedAt: number,
  count = 1,
  deviceId = 7n,
): Uint8Array {
  const be = (value: number, bytes: number): number[] =>
    Array.from({ length: bytes }, (_, i) => Math.floor(value / 256 ** (bytes - 1 - i)) % 256);
  const device = be(Number(deviceId), 8);
  const signature = new Array<number>(64).fill(0xab);
  if (kind === "reading") {
    return new Uint8Array([
      1,
      1,
      ...device,
      ...be(1, 2),
      ...be(sequence, 4),
      ...be(observedAt, 5),
      1,
      244,
      0,
      ...signature,
    ]);
  }
  const samples = new Array<number>(3 * count).fill(1);
  return new Uint8Array([
    1,
    2,
    ...device,
    ...be(sequence, 4),
    ...be(observedAt, 5),
    ...be(60, 4),
    ...be(count, 2),
    ...samples,
    ...signature,
  ]);
}

/** Item and reading counts of a store by state, read from another connection (read-only), e.g. while its oracle runs. */
export function storeCounts(path: string): { items: number; readings: number; recorded: number; skipped: number } {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const row = db
      .prepare(
        `SELECT COUNT(*) AS items, COALESCE(SUM(count), 0) AS readings,
           COALESCE(SUM(CASE WHEN state = 'recorded' THEN count END), 0) AS recorded,
           COALESCE(SUM(CASE WHEN state = 'skipped' THEN count END), 0) AS skipped FROM items`,
      )
      .get();
    return {
      items: Number(row?.items),
      readings: Number(row?.readings),
      recorded: Number(row?.recorded),
      skipped: Number(row?.skipped),
    };
  } finally {
    db.close();
  }
}

/**
 * The readings a `submitReadings` transaction carries, as `<deviceId>:<observedAt>` (a window: each sample), decoded
 * from its calldata: what the fault drills count to find a reading carried by two mined transactions.
 */
export function readingsCarried(calldata: string): string[] {
  const [batch] = COLD_CHAIN_ABI.decodeFunctionData("submitReadings", calldata) as unknown as [string];
  return decodeBatch(batch).flatMap((item) =>
    item.kind === "readings"
      ? item.readings.map((r) => `${r.reading.deviceId}:${r.reading.observedAt}`)
      : item.window.samples.map(
          (_, i) => `${item.window.deviceId}:${item.window.firstObservedAt + i * item.window.intervalSeconds}`,
        ),
  );
}

// ---------------------------------------------------------------------------------------------
// Full disk
// ---------------------------------------------------------------------------------------------

/**
 * A disk that can be made full: a real 16 MB tmpfs on a fresh directory, filled to its last byte by one file (root:
 * mounting takes CAP_SYS_ADMIN), or, when this process may not mount one (or ORACLE_TEST_FULL_DISK=max_page_count),
 * a plain directory whose store the caller caps with SQLite's max_page_count (`store.maxSizeMb`, see
 * {@link storeSizeMb}).
 */
export interface FillableDisk {
  readonly mode: "tmpfs" | "max_page_count";
  readonly dir: string;
  fill(): void;
  free(): void;
  cleanup(): void;
}

export function fillableDisk(prefix: string): FillableDisk {
  const dir = tempDir(prefix);
  const forced = process.env.ORACLE_TEST_FULL_DISK === "max_page_count";
  const mounted =
    !forced && spawnSync("mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", dir], { stdio: "ignore" }).status === 0;
  const filler = join(dir, "filler");
  return {
    mode: mounted ? "tmpfs" : "max_page_count",
    dir,
    fill() {
      const fd = openSync(filler, "w");
      try {
        for (const size of [1 << 20, 1 << 16, 4096, 512, 1]) {
          const chunk = Buffer.alloc(size, 0xff);
          for (;;) {
            try {
              writeSync(fd, chunk);
            } catch (error) {
              if ((error as { code?: string }).code === "ENOSPC") break;
              throw error;
            }
          }
        }
      } finally {
        closeSync(fd);
      }
    },
    free() {
      unlinkSync(filler);
    },
    cleanup() {
      if (mounted) spawnSync("umount", ["-l", dir], { stdio: "ignore" });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The store's size in MB (page count × page size) as SQLite counts it for max_page_count. */
export function storeSizeMb(path: string): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const pages = Number(db.prepare("PRAGMA page_count").get()?.page_count);
    const pageSize = Number(db.prepare("PRAGMA page_size").get()?.page_size);
    return (pages * pageSize) / (1024 * 1024);
  } finally {
    db.close();
  }
}
