/**
 * The device cache: what the registry says about each device (current key and the observation time it verifies
 * from, interval, revocation and distrust time), kept in memory and in the store. A device seen for the first time
 * is read with `verificationKey(deviceId)`; afterwards the cache follows the registry's events (`DeviceRegistered`,
 * `DeviceKeySet`, `DeviceKeyValidFrom`, `DeviceRevoked`, `DeviceDistrusted`) and re-reads a device whenever one
 * names it. A reading whose signature fails under the cached current key re-reads the device once (`refreshStale`,
 * at most once per `staleKeyRefreshMs` per device): a rotation mined since the last sync is seen before the reading
 * is dropped.
 *
 * Devices the registry does not know cost bounded memory, bounded registry calls and bounded intake time, whatever
 * ids a publisher makes up: the verdict "unknown" is kept in memory only (never in the store), in an LRU map of at
 * most `unknownCacheSize` ids, each for `unknownTtlMs` (an event naming the device forgets it at once); look-ups of
 * devices not cached are rate-limited by a token bucket (`lookupRatePerSecond`, `lookupBurst`); and the intake
 * waits for one at most `lookupWaitMs` (the look-up goes on in the background), and, all reads together, at most
 * `lookupWaitMsPerSecond` of each second (a second bucket, of milliseconds waited). A flood of made-up ids
 * costs the intake one stored row each, not a registry round trip each. Where the intake cannot have its
 * answer now, {@link lookup} returns {@link Unavailable}: the device is neither known nor confirmed unknown, and the
 * intake sets the message aside (stored, judged later by oracle/verification/set-aside.ts, which waits for tokens and answers)
 * instead of dropping it or holding the connection. The same holds for the other registry reads of the intake (a
 * past key, a re-read after a failed signature). Each read has a deadline, `lookupTimeoutMs`.
 *
 * Registry outage: the first failed read opens it (one warning); while it lasts no intake look-up calls the RPC
 * (the messages that need one are set aside at once), and `probe()` (the set-aside retrier) asks the node again
 * with exponential back-off from `retryMinMs` to `retryMaxMs`. Any registry answer (a probe, the relay's event sync,
 * a late look-up) ends it; the `available` event then wakes the retrier.
 *
 * Keys are bound to time, as on chain: a reading observed before the current key's `keyValidFrom` verifies under
 * the key of its time, `verificationKeyAt(deviceId, observedAt)`. Those past keys never change once superseded;
 * they are kept in memory by (device, validity interval), for at most `HISTORY_DEVICES` devices (least recently
 * used out).
 */
import { EventEmitter } from "node:events";

import { getAddress } from "ethers";

import { DEVICE_REGISTRY_ABI, COLD_CHAIN_ABI, backoffMs } from "../chain.js";
import type { RpcPool } from "../chain.js";
import { messageOf } from "../errors.js";
import type { Logger } from "../log.js";
import { ExpiringLru, TokenBucket } from "./lookup-limits.js";
import type { OracleMetrics, SetAsideReason } from "../health/metrics.js";
import type { CachedDevice, Store } from "../store/store.js";

/** A clock in unix milliseconds (tests may pass a fake). */
export type Clock = () => number;

const CURSOR_KEY = "registry.syncedBlock";
/** Most blocks per eth_getLogs call. */
const LOG_RANGE = 5000;
/** Devices whose past keys are kept in memory (each at most the registry's 32 keys). */
export const HISTORY_DEVICES = 1024;
/** Default least time between two re-reads of a device after a signature failed under its cached key. */
export const STALE_KEY_REFRESH_MS = 1000;

/** A registry read that could not be made now: the device is neither known nor confirmed unknown. */
export interface Unavailable {
  readonly unavailable: SetAsideReason;
  /** Why, for the log and the set-aside row. */
  readonly message: string;
}

/** Whether a look-up result is {@link Unavailable}. */
export function isUnavailable(value: unknown): value is Unavailable {
  return typeof value === "object" && value !== null && "unavailable" in value;
}

/**
 * How a registry read for a message may wait:
 * - `intake`: never for a token, and at most `lookupWaitMs` for the answer (the read goes on in the background);
 * - `queue`: the intake while messages are set aside: no new look-up of a device not cached (the message joins
 *   them, in order; the cache still answers);
 * - `retry`: the set-aside retrier: waits for a token and for the answer (up to `lookupTimeoutMs`).
 */
export type LookupMode = "intake" | "queue" | "retry";

/** The bounds of registry look-ups (config `verify.*`, docs/operations.md section 4). */
export interface LookupLimits {
  /** Devices remembered as unknown (LRU). */
  readonly unknownCacheSize: number;
  /** How long an "unknown" verdict is kept (`verify.unknownDeviceRetryMs`). */
  readonly unknownTtlMs: number;
  readonly lookupRatePerSecond: number;
  readonly lookupBurst: number;
  /** How long the intake waits for a look-up before it sets the message aside. */
  readonly lookupWaitMs: number;
  /**
   * Intake time per second that may go to waiting for registry answers (bursts up to five seconds' worth): beyond,
   * messages that need a registry read are set aside without one, so waiting costs the intake a bounded share.
   */
  readonly lookupWaitMsPerSecond: number;
  /** A look-up not answered within this long counts as the registry being unreachable. */
  readonly lookupTimeoutMs: number;
  /** Back-off between probes of an unreachable registry. */
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
}

/** Defaults of {@link LookupLimits} (the config schema's). */
export const DEFAULT_LOOKUP_LIMITS: LookupLimits = {
  unknownCacheSize: 10_000,
  unknownTtlMs: 30_000,
  lookupRatePerSecond: 50,
  lookupBurst: 100,
  lookupWaitMs: 250,
  lookupWaitMsPerSecond: 100,
  lookupTimeoutMs: 2_000,
  retryMinMs: 1_000,
  retryMaxMs: 30_000,
};

/** The registry is unreachable: since when, the last error, failed probes, the next probe. */
export interface RegistryOutage {
  readonly since: number;
  readonly error: string;
  readonly failures: number;
  readonly retryAt: number;
}

export interface DeviceCacheEvents {
  /** The registry answered again after an outage. */
  available: [{ downMs: number }];
  unavailable: [RegistryOutage];
}

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
  readonly events = new EventEmitter<DeviceCacheEvents>();
  /** Devices the registry knows (bounded by the registry itself: registering costs a device manager's gas). */
  private readonly memory = new Map<bigint, CachedDevice>();
  /** Devices the registry said it does not know: bounded in number and age. */
  private readonly unknown: ExpiringLru<bigint, CachedDevice>;
  /** Look-ups under way: messages of a device not cached yet wait for one look-up, not one each. */
  private readonly lookups = new Map<bigint, Promise<CachedDevice | Unavailable>>();
  private readonly bucket: TokenBucket;
  /** Milliseconds the intake may still wait for registry answers. */
  private readonly waitBudget: TokenBucket;
  private outage: RegistryOutage | undefined;
  /** Past keys per device (least recently used first). */
  private readonly history = new Map<bigint, PastKey[]>();
  /** Re-reads under way (one per device) and when each device was last re-read after a signature failure. */
  private readonly refreshing = new Map<bigint, Promise<CachedDevice | Unavailable>>();
  private readonly staleRefreshedAt = new Map<bigint, number>();
  private registryAddress: string | undefined;
  private closed = false;

  constructor(
    private readonly rpc: RpcPool,
    private readonly store: Store,
    private readonly coldChain: string,
    private readonly fromBlock: number,
    private readonly limits: LookupLimits,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly staleKeyRefreshMs: number = STALE_KEY_REFRESH_MS,
    private readonly metrics?: OracleMetrics,
  ) {
    this.unknown = new ExpiringLru(limits.unknownCacheSize, limits.unknownTtlMs, clock);
    this.bucket = new TokenBucket(limits.lookupRatePerSecond, limits.lookupBurst, clock);
    const budget = limits.lookupWaitMsPerSecond;
    this.waitBudget = new TokenBucket(budget, Math.max(5 * budget, limits.lookupWaitMs), clock);
    // Unknown ids were kept in the store by earlier versions, one row each, without bound.
    const purged = store.purgeUnknownDevices();
    if (purged > 0) log.info({ purged }, "removed %d unknown-device rows from the store (kept in memory now)", purged);
  }

  /** Devices remembered as unknown now (at most `unknownCacheSize`). */
  get unknownDevices(): number {
    return this.unknown.size;
  }

  /** The registry outage under way, or undefined when the registry answers. */
  get registryOutage(): RegistryOutage | undefined {
    return this.outage;
  }

  /** Stops waiting for look-up tokens (the oracle stops). */
  close(): void {
    this.closed = true;
  }

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

  /**
   * The device as the registry has it: from memory or the store when known, from the unknown map when the registry
   * said recently that it does not know it, else read from the registry (one read per device however many messages
   * wait for it). {@link Unavailable} when the answer cannot be had now (see {@link LookupMode}): the registry is
   * unreachable or does not answer within `lookupTimeoutMs`; the look-up rate is spent, or messages are set aside
   * already; or the read takes longer than `lookupWaitMs` (it goes on, and caches its answer).
   */
  async lookup(deviceId: bigint, mode: LookupMode = "intake"): Promise<CachedDevice | Unavailable> {
    for (;;) {
      const cached = this.cached(deviceId);
      if (cached !== undefined) return cached;
      const running = this.lookups.get(deviceId);
      if (running !== undefined) return mode === "retry" ? running : this.waitBriefly(running, deviceId);
      if (this.outage !== undefined) return this.unreachable();
      if (mode === "queue") {
        this.metrics?.registryLookups.inc({ result: "rate_limited" });
        return {
          unavailable: "queued",
          message: `messages set aside wait for their look-ups: device ${deviceId} is looked up after them`,
        };
      }
      if (mode === "intake" && !this.waitBudget.hasAny()) {
        this.metrics?.registryLookups.inc({ result: "rate_limited" });
        return this.budgetSpent(deviceId);
      }
      if (this.bucket.tryTake()) break;
      if (mode === "intake") {
        this.metrics?.registryLookups.inc({ result: "rate_limited" });
        return {
          unavailable: "lookup_rate_limited",
          message:
            `registry look-ups of devices not cached are limited to ${this.limits.lookupRatePerSecond}/s ` +
            `(burst ${this.limits.lookupBurst}, verify.lookupRatePerSecond): device ${deviceId} is looked up later`,
        };
      }
      if (!(await this.bucket.waitForToken(() => this.closed))) return this.unreachable("the oracle is stopping");
    }
    const lookup = this.readWithDeadline(deviceId).finally(() => this.lookups.delete(deviceId));
    this.lookups.set(deviceId, lookup);
    return mode === "retry" ? lookup : this.waitBriefly(lookup, deviceId);
  }

  private budgetSpent(deviceId: bigint): Unavailable {
    return {
      unavailable: "lookup_rate_limited",
      message:
        `intake waited its share for registry answers (verify.lookupWaitMsPerSecond, ` +
        `${this.limits.lookupWaitMsPerSecond} ms/s): device ${deviceId}'s read is made later`,
    };
  }

  /**
   * The read's answer if it comes within `lookupWaitMs`, else Unavailable (`lookup_slow`; the read goes on). The
   * time waited is taken from the intake's wait budget; with none left, Unavailable at once.
   */
  private async waitBriefly<T>(read: Promise<T | Unavailable>, deviceId: bigint): Promise<T | Unavailable> {
    if (!this.waitBudget.hasAny()) return this.budgetSpent(deviceId);
    const started = this.clock();
    let timer: NodeJS.Timeout | undefined;
    const slow = new Promise<Unavailable>((resolve) => {
      timer = setTimeout(
        () =>
          resolve({
            unavailable: "lookup_slow",
            message:
              `the registry read of device ${deviceId} takes longer than verify.lookupWaitMs ` +
              `(${this.limits.lookupWaitMs} ms): judged when it answers`,
          }),
        this.limits.lookupWaitMs,
      );
    });
    try {
      return await Promise.race([read, slow]);
    } finally {
      clearTimeout(timer);
      this.waitBudget.spend(this.clock() - started);
    }
  }

  /** A known device, or a device confirmed unknown within `unknownTtlMs`, without a registry call. */
  private cached(deviceId: bigint): CachedDevice | undefined {
    const known = this.memory.get(deviceId) ?? this.store.device(deviceId);
    if (known !== undefined && known.keyType !== 0) {
      this.memory.set(deviceId, known);
      return known;
    }
    return this.unknown.get(deviceId);
  }

  /** Reads a device, or Unavailable when the registry fails or takes longer than `lookupTimeoutMs`. */
  private readWithDeadline(deviceId: bigint): Promise<CachedDevice | Unavailable> {
    return this.withDeadline(this.refresh(deviceId)).then((device) => {
      if (!isUnavailable(device)) {
        this.metrics?.registryLookups.inc({ result: device.keyType === 0 ? "unknown" : "known" });
      }
      return device;
    });
  }

  /**
   * A registry read's answer, or Unavailable when it fails or takes longer than `lookupTimeoutMs` (either opens an
   * outage; an answer ends one).
   */
  private async withDeadline<T>(read: Promise<T>): Promise<T | Unavailable> {
    let timer: NodeJS.Timeout | undefined;
    let expired = false;
    const deadline = new Promise<Unavailable>((resolve) => {
      timer = setTimeout(() => {
        expired = true;
        this.metrics?.registryLookups.inc({ result: "timeout" });
        this.registryFailed(`no answer within verify.lookupTimeoutMs (${this.limits.lookupTimeoutMs} ms)`);
        resolve(this.unreachable());
      }, this.limits.lookupTimeoutMs);
    });
    const answer = read.then(
      (value): T => {
        this.registryAnswered();
        return value;
      },
      (error: unknown): Unavailable => {
        // A read that failed after its deadline was counted then (its late error says nothing new).
        if (!expired) {
          this.metrics?.registryLookups.inc({ result: "failed" });
          this.registryFailed(messageOf(error));
        }
        return this.unreachable();
      },
    );
    try {
      return await Promise.race([answer, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Asks the node whether it answers again (the set-aside retrier calls it once the outage's back-off is over).
   * True when there is no outage or it just ended; on failure the next probe is backed off further.
   */
  async probe(): Promise<boolean> {
    const outage = this.outage;
    if (outage === undefined) return true;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.registry().then(() => this.rpc.call("probe", (p) => p.getBlockNumber())),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within verify.lookupTimeoutMs (${this.limits.lookupTimeoutMs} ms)`)),
            this.limits.lookupTimeoutMs,
          );
        }),
      ]);
      this.registryAnswered();
      return true;
    } catch (error) {
      const current = this.outage;
      if (current !== undefined) {
        const failures = current.failures + 1;
        this.outage = {
          ...current,
          error: messageOf(error),
          failures,
          retryAt: this.clock() + backoffMs(failures, this.limits.retryMinMs, this.limits.retryMaxMs),
        };
      }
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  private unreachable(why?: string): Unavailable {
    const outage = this.outage;
    const since = outage === undefined ? "" : ` since ${new Date(outage.since).toISOString()}`;
    return {
      unavailable: "registry_unavailable",
      message: why ?? `the device registry is unreachable${since} (${outage?.error ?? "no answer"})`,
    };
  }

  private registryFailed(error: string): void {
    if (this.outage !== undefined) {
      this.outage = { ...this.outage, error };
      return;
    }
    const now = this.clock();
    this.outage = {
      since: now,
      error,
      failures: 0,
      retryAt: now + backoffMs(0, this.limits.retryMinMs, this.limits.retryMaxMs),
    };
    this.metrics?.registryAvailable.set(0);
    this.log.warn(
      { err: error, retryInMs: this.outage.retryAt - now },
      "device registry unreachable: messages that need a registry look-up are set aside (stored, acknowledged) " +
        "and judged once it answers; messages of cached devices go on",
    );
    this.events.emit("unavailable", this.outage);
  }

  private registryAnswered(): void {
    const outage = this.outage;
    if (outage === undefined) return;
    this.outage = undefined;
    this.metrics?.registryAvailable.set(1);
    const downMs = this.clock() - outage.since;
    this.log.info({ downMs, probes: outage.failures }, "device registry reachable again after %d ms", downMs);
    this.events.emit("available", { downMs });
  }

  /** Reads one device from the registry and caches it (a known one in memory and the store, an unknown in memory). */
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
    if (device.keyType === 0) {
      this.memory.delete(deviceId);
      this.unknown.set(deviceId, device);
    } else {
      this.unknown.delete(deviceId);
      this.memory.set(deviceId, device);
      this.store.putDevice(device);
    }
    return device;
  }

  /**
   * Re-reads a device whose signature check failed under the cached current key (a rotation the event sync has not
   * seen yet), at most once per `staleKeyRefreshMs`: returns the fresh entry, or undefined when it was re-read too
   * recently (a flood of forged messages costs at most one registry call per device and interval), or Unavailable
   * when the registry cannot be read now.
   */
  async refreshStale(deviceId: bigint, mode: LookupMode = "intake"): Promise<CachedDevice | Unavailable | undefined> {
    let refresh = this.refreshing.get(deviceId);
    if (refresh === undefined) {
      if (this.outage !== undefined) return this.unreachable();
      const now = this.clock();
      const last = this.staleRefreshedAt.get(deviceId);
      if (last !== undefined && now - last < this.staleKeyRefreshMs) return undefined;
      if (this.staleRefreshedAt.size >= HISTORY_DEVICES) this.staleRefreshedAt.clear();
      this.staleRefreshedAt.set(deviceId, now);
      refresh = this.readWithDeadline(deviceId).finally(() => this.refreshing.delete(deviceId));
      this.refreshing.set(deviceId, refresh);
    }
    return mode === "retry" ? refresh : this.waitBriefly(refresh, deviceId);
  }

  /**
   * The key of the device that verifies readings observed at `observedAt`, a time before the cached current key's
   * `keyValidFrom` (the caller checks): from memory when an interval holds it, else `verificationKeyAt`. Undefined
   * when the registry has no key of that time (unknown device, or a history changed under us); Unavailable when
   * the registry cannot be read now (or, but for mode `retry`, not within `lookupWaitMs`: the read goes on and
   * keeps its answer).
   */
  async keyAt(
    deviceId: bigint,
    observedAt: number,
    mode: LookupMode = "intake",
  ): Promise<PastKey | Unavailable | undefined> {
    const keys = this.history.get(deviceId);
    if (keys !== undefined) {
      // Least recently used last out: this device moves to the end.
      this.history.delete(deviceId);
      this.history.set(deviceId, keys);
      const hit = keys.find((k) => k.validFrom <= observedAt && observedAt < k.validUntil);
      if (hit !== undefined) return hit;
    }
    if (this.outage !== undefined) return this.unreachable();
    const read = this.withDeadline(this.read("verificationKeyAt", [deviceId, observedAt])).then((key) =>
      isUnavailable(key) ? key : this.keepPastKey(deviceId, key),
    );
    return mode === "retry" ? read : this.waitBriefly(read, deviceId);
  }

  private keepPastKey(deviceId: bigint, key: RegistryKey): PastKey | undefined {
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
      // A device remembered as unknown is registered now (or changed): its next message reads it again.
      this.unknown.delete(deviceId);
      if (this.memory.has(deviceId) || this.store.device(deviceId) !== undefined) {
        await this.refresh(deviceId);
        refreshed++;
      }
    }
    this.registryAnswered();
    this.store.setMeta(CURSOR_KEY, String(head));
    if (refreshed > 0) this.log.info({ refreshed }, "device cache refreshed from registry events");
    return refreshed;
  }
}
