/**
 * The device cache: what the registry says about each device (key, interval, revocation), kept in memory and
 * in the store. A device seen for the first time is read with `verificationKey(deviceId)`; afterwards the
 * cache follows the registry's events (`DeviceRegistered`, `DeviceKeySet`, `DeviceRevoked`) and re-reads a
 * device whenever one names it. Unknown devices are asked again after `unknownDeviceRetryMs`.
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

export class DeviceCache {
  private readonly memory = new Map<bigint, CachedDevice>();
  private registryAddress: string | undefined;

  constructor(
    private readonly rpc: RpcPool,
    private readonly store: Store,
    private readonly coldChain: string,
    private readonly fromBlock: number,
    private readonly unknownRetryMs: number,
    private readonly clock: Clock,
    private readonly log: Logger,
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
    const registry = await this.registry();
    const key = await this.rpc.call("verificationKey", async (p) => {
      const out = await p.call({
        to: registry,
        data: DEVICE_REGISTRY_ABI.encodeFunctionData("verificationKey", [deviceId]),
      });
      return DEVICE_REGISTRY_ABI.decodeFunctionResult("verificationKey", out)[0] as {
        keyType: bigint;
        intervalSeconds: bigint;
        revokedAtBlock: bigint;
        signer: string;
        qx: string;
        qy: string;
      };
    });
    const device: CachedDevice = {
      deviceId,
      keyType: Number(key.keyType),
      intervalSeconds: Number(key.intervalSeconds),
      revokedAtBlock: Number(key.revokedAtBlock),
      signer: key.signer,
      qx: key.qx,
      qy: key.qy,
      fetchedAt: this.clock(),
    };
    this.memory.set(deviceId, device);
    this.store.putDevice(device);
    return device;
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
    const topics = ["DeviceRegistered", "DeviceKeySet", "DeviceRevoked"].map(
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
