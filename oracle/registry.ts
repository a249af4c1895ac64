/**
 * The device cache: what the registry says about each device (current key and the observation time it verifies
 * from, interval, revocation and distrust time), kept in memory and in the store. A device seen for the first time
 * is read with `verificationKey(deviceId)`; afterwards the cache follows the registry's events (`DeviceRegistered`,
 * `DeviceKeySet`, `DeviceKeyValidFrom`, `DeviceRevoked`, `DeviceDistrusted`) and re-reads a device whenever one
 * names it. Unknown devices are asked again after `unknownDeviceRetryMs`. A reading whose signature fails under the
 * cached current key re-reads the device once (`refreshStale`, at most once per `staleKeyRefreshMs` per device): a
 * rotation mined since the last sync is seen before the reading is dropped.
 *
 * Keys are bound to time, as on chain: a reading observed before the current key's `keyValidFrom` verifies under
 * the key of its time, `verificationKeyAt(deviceId, observedAt)`. Those past keys never change once superseded;
 * they are kept in memory by (device, validity interval), for at most `HISTORY_DEVICES` devices (least recently
 * used out).
 */
import { getAddress } from "ethers";

import { DEVICE_REGISTRY_ABI, COLD_CHAIN_ABI } from "./chain.js";
import type { RpcPool } from "./chain.js";
import type { Logger } from "./log.js";
import type { CachedDevice, Store } from "./store.js";

/** A clock in unix milliseconds (tests may pass a fake). */
export type Clock = () => number;

const CURSOR_KEY = "registry.syncedBlock";
/** Most blocks per eth_getLogs call. */
const LOG_RANGE = 5000;
/** Devices whose past keys are kept in memory (each at most the registry's 32 keys). */
export const HISTORY_DEVICES = 1024;
/** Default least time between two re-reads of a device after a signature failed under its cached key. */
export const STALE_KEY_REFRESH_MS = 1000;

/** The registry's VerificationKey tuple. */
interface RegistryKey {
  keyType: bigint;
  intervalSeconds: bigint;
  revokedAtBlock: bigint;
  signer: string;
  qx: string;
  qy: string;
  keyValidFrom: bigint;
  keyValidUntil: bigint;
  revokedFrom: bigint;
}

/** A superseded key of a device: it verifies readings observed in [validFrom, validUntil). */
export interface PastKey {
  /** 1 secp256k1, 2 P-256 (IDeviceRegistry.KeyType). */
  readonly keyType: number;
  readonly signer: string;
  readonly qx: string;
  readonly qy: string;
  readonly validFrom: number;
  readonly validUntil: number;
}

export class DeviceCache {
  private readonly memory = new Map<bigint, CachedDevice>();
  /** Past keys per device (least recently used first). */
  private readonly history = new Map<bigint, PastKey[]>();
  /** Re-reads under way (one per device) and when each device was last re-read after a signature failure. */
  private readonly refreshing = new Map<bigint, Promise<CachedDevice>>();
  private readonly staleRefreshedAt = new Map<bigint, number>();
  private registryAddress: string | undefined;

  constructor(
    private readonly rpc: RpcPool,
    private readonly store: Store,
    private readonly coldChain: string,
    private readonly fromBlock: number,
    private readonly unknownRetryMs: number,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly staleKeyRefreshMs: number = STALE_KEY_REFRESH_MS,
  ) {}

  /** The registry address, read once from ColdChain.DEVICE_REGISTRY(). */
  async registry(): Promise<string> {
    if (this.registryAddress === undefined) {
      const address = await this.rpc.call("DEVICE_REGISTRY", async (p) => {
        const data = COLD_CHAIN_ABI.encodeFunctionData("DEVICE_REGISTRY");
        const out = await p.call({ to: this.coldChain, data });
        return COLD_CHAIN_ABI.decodeFunctionResult("DEVICE_REGISTRY", out)[0] as string;
      });
      this.registryAddress = getAddress(address);
    }
    return this.registryAddress;
  }

  /** The cached device; reads the chain when it was never seen (or was unknown a while ago). */
  async get(deviceId: bigint): Promise<CachedDevice> {
    const cached = this.memory.get(deviceId) ?? this.store.device(deviceId);
    if (cached !== undefined) {
      this.memory.set(deviceId, cached);
      if (cached.keyType !== 0 || this.clock() - cached.fetchedAt < this.unknownRetryMs) return cached;
    }
    return this.refresh(deviceId);
  }

  /** Reads one device from the registry and caches it. */
  async refresh(deviceId: bigint): Promise<CachedDevice> {
    const key = await this.read("verificationKey", [deviceId]);
    const device: CachedDevice = {
      deviceId,
      keyType: Number(key.keyType),
      intervalSeconds: Number(key.intervalSeconds),
      revokedAtBlock: Number(key.revokedAtBlock),
      signer: key.signer,
      qx: key.qx,
      qy: key.qy,
      keyValidFrom: Number(key.keyValidFrom),
      revokedFrom: Number(key.revokedFrom),
      fetchedAt: this.clock(),
    };
    const before = this.memory.get(deviceId);
    // A past key is final, unless a reorg or two rotations in one block changed the history: start it afresh.
    if (before?.keyValidFrom !== device.keyValidFrom) this.history.delete(deviceId);
    this.memory.set(deviceId, device);
    this.store.putDevice(device);
    return device;
  }

  /**
   * Re-reads a device whose signature check failed under the cached current key (a rotation the event sync has not
   * seen yet), at most once per `staleKeyRefreshMs`: returns the fresh entry, or undefined when it was re-read too
   * recently (a flood of forged messages costs at most one registry call per device and interval).
   */
  async refreshStale(deviceId: bigint): Promise<CachedDevice | undefined> {
    const running = this.refreshing.get(deviceId);
    if (running !== undefined) return running;
    const now = this.clock();
    const last = this.staleRefreshedAt.get(deviceId);
    if (last !== undefined && now - last < this.staleKeyRefreshMs) return undefined;
    if (this.staleRefreshedAt.size >= HISTORY_DEVICES) this.staleRefreshedAt.clear();
    this.staleRefreshedAt.set(deviceId, now);
    const refresh = this.refresh(deviceId).finally(() => this.refreshing.delete(deviceId));
    this.refreshing.set(deviceId, refresh);
    return refresh;
  }

  /**
   * The key of the device that verifies readings observed at `observedAt`, a time before the cached current key's
   * `keyValidFrom` (the caller checks): from memory when an interval holds it, else `verificationKeyAt`. Undefined
   * when the registry has no key of that time (unknown device, or a history changed under us).
   */
  async keyAt(deviceId: bigint, observedAt: number): Promise<PastKey | undefined> {
    const keys = this.history.get(deviceId);
    if (keys !== undefined) {
      // Least recently used last out: this device moves to the end.
      this.history.delete(deviceId);
      this.history.set(deviceId, keys);
      const hit = keys.find((k) => k.validFrom <= observedAt && observedAt < k.validUntil);
      if (hit !== undefined) return hit;
    }
    const key = await this.read("verificationKeyAt", [deviceId, observedAt]);
    const validUntil = Number(key.keyValidUntil);
    if (Number(key.keyType) === 0 || validUntil === 0) return undefined;
    const past: PastKey = {
      keyType: Number(key.keyType),
      signer: key.signer,
      qx: key.qx,
      qy: key.qy,
      validFrom: Number(key.keyValidFrom),
      validUntil,
    };
    const list = this.history.get(deviceId) ?? [];
    if (!list.some((k) => k.validFrom === past.validFrom)) list.push(past);
    this.history.delete(deviceId);
    this.history.set(deviceId, list);
    while (this.history.size > HISTORY_DEVICES) {
      const oldest = this.history.keys().next().value;
      if (oldest === undefined) break;
      this.history.delete(oldest);
    }
    return past;
  }

  /** Devices whose past keys are in memory (for tests). */
  get historyDevices(): number {
    return this.history.size;
  }

  private async read(
    fn: "verificationKey" | "verificationKeyAt",
    args: readonly (bigint | number)[],
  ): Promise<RegistryKey> {
    const registry = await this.registry();
    return this.rpc.call(fn, async (p) => {
      const out = await p.call({ to: registry, data: DEVICE_REGISTRY_ABI.encodeFunctionData(fn, args) });
      return DEVICE_REGISTRY_ABI.decodeFunctionResult(fn, out)[0] as RegistryKey;
    });
  }

  /**
   * Follows registry events from the last synced block to `head`, re-reading every device they name that
   * the cache holds. Returns how many devices were refreshed.
   */
  async sync(head: number): Promise<number> {
    const registry = await this.registry();
    let from = Number(this.store.getMeta(CURSOR_KEY) ?? String(this.fromBlock - 1)) + 1;
    if (from > head + 1) {
      // The chain is shorter than our cursor (a reorg or a node reset): read again from a safe point.
      from = Math.max(this.fromBlock, head - 64);
    }
    const topics = ["DeviceRegistered", "DeviceKeySet", "DeviceKeyValidFrom", "DeviceRevoked", "DeviceDistrusted"].map(
      (name) => DEVICE_REGISTRY_ABI.getEvent(name)?.topicHash ?? "",
    );
    const changed = new Set<bigint>();
    for (let start = from; start <= head; start += LOG_RANGE) {
      const end = Math.min(head, start + LOG_RANGE - 1);
      const logs = await this.rpc.call("getLogs", (p) =>
        p.getLogs({ address: registry, fromBlock: start, toBlock: end, topics: [topics] }),
      );
      for (const log of logs) {
        const topic = log.topics[1];
        if (topic !== undefined) changed.add(BigInt(topic));
      }
    }
    let refreshed = 0;
    for (const deviceId of changed) {
      if (this.memory.has(deviceId) || this.store.device(deviceId) !== undefined) {
        await this.refresh(deviceId);
        refreshed++;
      }
    }
    this.store.setMeta(CURSOR_KEY, String(head));
    if (refreshed > 0) this.log.info({ refreshed }, "device cache refreshed from registry events");
    return refreshed;
  }
}
