/**
 * Intake: one MQTT message in, either one item stored durably or one drop with a reason. The checks run
 * cheapest first: size, schema, topic, device (registry cache), distrust, window interval, time skew, duplicate
 * observation, then the signature (P-256 high-s normalised first), then the insert (UNIQUE (device, observation
 * time): protocol v2 chains a device's readings by time, and its sequence numbers may start again from 0 after the
 * device lost its state). The item is stored with its predecessor's time (`previousObservedAt`), which the relay
 * orders and holds readings by.
 * Judged as the contract judges, by observation time: a revoked device's readings observed before its distrust
 * time (`revokedFrom`) still count, later ones are dropped (`revoked_device`); a reading (a window: its first and
 * last sample) observed before the current key's `keyValidFrom` verifies under the key of its time (registry
 * `verificationKeyAt`, cached), never a later one. A signature that fails under the cached current key re-reads the
 * device once (bounded) in case a rotation is not synced yet.
 * Only when this resolves does the ingest acknowledge the message; a thrown error (the store down) leaves it
 * unacknowledged so the broker delivers it again.
 *
 * A message that cannot be judged now is set aside, never dropped unheard and never left to block the connection:
 * its device is not cached and the registry is unreachable (or does not answer within `verify.lookupTimeoutMs`),
 * or the look-up budget for devices not cached is spent (`verify.lookupRatePerSecond`: a flood of made-up ids),
 * or a cached device needs a registry read (a past key, a re-read after a failed signature) while the registry is
 * unreachable. Its topic and payload are committed to the store's `set_aside` table (group commit, like items)
 * before the acknowledgement, and the set-aside retrier (oracle/verification/set-aside.ts) judges it later through
 * {@link Intake.judgeSetAside}, the same checks in the same order. Messages of cached devices meanwhile go on as
 * usual. Only when `verify.setAsideMaxMessages` are set aside already does a message wait for its verdict (the
 * broker queues the rest).
 */
import {
  decodeMqttPayload,
  encodeMqttPayload,
  isP256HighS,
  normaliseP256S,
  parseMqttReadingsTopic,
  verifySignedItem,
} from "../../sdk/protocol/index.js";
import type { ColdChainDomain, DeviceVerificationKey, SignedItem } from "../../sdk/protocol/index.js";
import { messageOf } from "../errors.js";
import type { Logger } from "../log.js";
import { RateLimitedLog } from "../log-limit.js";
import type { DropReason, OracleMetrics, SetAsideReason } from "../health/metrics.js";
import { isUnavailable } from "./registry.js";
import type { Clock, DeviceCache, LookupMode, Unavailable } from "./registry.js";
import type {
  CachedDevice,
  InsertResult,
  KeyCurve,
  NewItem,
  NewSetAsideMessage,
  SetAsideMessage,
  Store,
} from "../store/store.js";

/** The verdict on one message: stored, or dropped with a reason. */
export type IntakeResult =
  | { readonly ok: true; readonly itemId: number; readonly readings: number }
  | { readonly ok: false; readonly reason: DropReason; readonly message: string };

/** A message that could not be judged now: stored as received (committed), acknowledged, judged later. */
export interface SetAsideResult {
  readonly ok: false;
  readonly setAside: true;
  /** Its row in the store's `set_aside` table. */
  readonly id: number;
  readonly reason: SetAsideReason;
  readonly message: string;
}

/** What became of a message when it came: a verdict, or set aside for one later. */
export type IntakeOutcome = IntakeResult | SetAsideResult;

/** Whether an outcome is a message set aside (no verdict yet). */
export function isSetAside(outcome: IntakeOutcome): outcome is SetAsideResult {
  return "setAside" in outcome;
}

/** Why a message cannot be judged now, with its device. */
type Postponed = Unavailable & { readonly deviceId: bigint };

/** Verifies signatures; a worker pool can stand in for the inline verifier. */
export type SignatureCheck = (item: SignedItem, key: DeviceVerificationKey) => Promise<boolean>;

export interface IntakeOptions {
  readonly domain: ColdChainDomain;
  readonly maxPayloadBytes: number;
  readonly maxFutureSkewSeconds: number;
  readonly store: Store;
  readonly devices: DeviceCache;
  readonly metrics: OracleMetrics;
  readonly log: Logger;
  readonly clock: Clock;
  /** The time readings are checked against for `future_timestamp` (default `clock`; a simulation's clock). */
  readonly observationClock?: Clock;
  /** Called after each stored item (the relay wakes up). */
  readonly onStored?: (readings: number) => void;
  /** Verifies signatures; default: sdk/protocol on this thread (a worker pool can stand in). */
  readonly signatureCheck?: SignatureCheck;
  /** Commits a group of items; default `store.insertItems` on this thread (a StoreWriter thread can stand in). */
  readonly insertItems?: InsertItems;
  /** Messages set aside at most (`verify.setAsideMaxMessages`); default unbounded. */
  readonly setAsideMaxMessages?: number;
  /** Called after a message was set aside (the retrier wakes up). */
  readonly onSetAside?: () => void;
  /**
   * With several instances in one share group (`mqtt.anchorHoldMs` > 0): when an anchor copy received at the given
   * time may be relayed (oracle/intake/anchor.ts `anchorHoldMs`). Absent: anchor copies are relayed as any item.
   */
  readonly anchorHold?: (receivedAt: number) => number;
}

/** Stores items in one transaction, each with its result; resolves (or returns) after the commit. */
export type InsertItems = (items: readonly NewItem[]) => InsertResult[] | Promise<InsertResult[]>;

export class Intake {
  private readonly check: SignatureCheck;
  readonly commits: GroupCommit;
  /** Commits of messages set aside (one transaction for those in flight together, as items). */
  private readonly setAsideCommits: GroupCommit<NewSetAsideMessage, number>;
  private readonly logs: RateLimitedLog;
  private closed = false;

  constructor(private readonly o: IntakeOptions) {
    this.check = o.signatureCheck ?? ((item, key) => Promise.resolve(verifySignedItem(o.domain, item, key)));
    this.commits = new GroupCommit(o.insertItems ?? ((items) => o.store.insertItems(items)), () => this.inFlight);
    this.setAsideCommits = new GroupCommit(
      (rows) => o.store.setAside(rows, o.clock()),
      () => this.inFlight,
    );
    this.logs = new RateLimitedLog(o.log, undefined, o.clock);
  }

  /** MQTT messages being handled now (several with several MQTT connections). */
  private inFlight = 0;

  /** Stops waiting (a message held while the set-aside table is full is left for redelivery). */
  close(): void {
    this.closed = true;
    this.logs.flush();
  }

  /**
   * Handles one MQTT message; resolves once it is stored, dropped or set aside (committed in each case but a drop).
   * Throws only when it could do none of these (the store failed, or the oracle stops while it waits).
   * `origin` "anchor": a copy from the anchor session catching up (oracle/intake/anchor.ts); its reading stored
   * already is expected (a share member's copy came first) and is counted as an anchor duplicate, not a drop.
   * With `anchorHold`, an anchor copy is stored held (not relayed before its time), and a share member's copy of a
   * reading stored held releases it (the group gave the message to this instance: it relays it now).
   */
  async handle(topic: string, payload: Uint8Array, origin?: "anchor"): Promise<IntakeOutcome> {
    this.o.metrics.received.inc();
    this.inFlight++;
    let outcome: IntakeOutcome;
    try {
      // While messages are set aside, messages of devices not cached join them rather than start look-ups here.
      let verdict = await this.evaluate(topic, payload, this.o.store.setAsideCount() > 0 ? "queue" : "intake", origin);
      while (isUnavailable(verdict) && this.o.store.setAsideCount() >= (this.o.setAsideMaxMessages ?? Infinity)) {
        // The set-aside table is full: this message waits for its verdict here (the broker queues the rest).
        if (this.closed) throw new Error("oracle stopping: message left for redelivery");
        this.logs.warn(
          "set-aside-full",
          { setAside: this.o.store.setAsideCount(), reason: verdict.unavailable, err: verdict.message },
          `${this.o.store.setAsideCount()} messages are set aside (verify.setAsideMaxMessages): intake waits for ` +
            `the registry before taking more (${verdict.message})`,
        );
        await this.waitForRegistry(1000);
        verdict = await this.evaluate(topic, payload, "retry", origin);
      }
      outcome = isUnavailable(verdict) ? await this.setAside(topic, payload, verdict) : verdict;
    } finally {
      this.inFlight--;
      this.commits.poke();
      this.setAsideCommits.poke();
    }
    if (isSetAside(outcome)) {
      this.o.metrics.setAside.inc({ reason: outcome.reason });
      this.o.onSetAside?.();
    } else if (origin === "anchor" && !outcome.ok && outcome.reason === "duplicate") {
      this.o.metrics.anchorDuplicates.inc();
    } else {
      this.finish(outcome, topic, payload.length);
    }
    return outcome;
  }

  /**
   * Judges a message set aside (the retrier's call), the same checks as {@link handle}, waiting for a look-up token
   * rather than setting it aside again. Returns the verdict (stored or dropped; the caller deletes the row), or
   * Unavailable when the registry still cannot be read.
   */
  async judgeSetAside(message: SetAsideMessage): Promise<IntakeResult | Unavailable> {
    // Not counted in flight: the group commit waits for MQTT messages only (a judgment waiting for a look-up token
    // would hold every intake commit for its maximum wait).
    const verdict = await this.evaluate(message.topic, message.payload, "retry");
    if (isUnavailable(verdict)) return verdict;
    this.o.metrics.setAsideJudged.inc({ outcome: verdict.ok ? "stored" : "dropped" });
    this.finish(verdict, message.topic, message.payload.length);
    return verdict;
  }

  private finish(result: IntakeResult, topic: string, bytes: number): void {
    if (result.ok) {
      this.o.metrics.accepted.inc();
      this.o.metrics.acceptedReadings.inc(result.readings);
      this.o.onStored?.(result.readings);
    } else {
      this.o.metrics.dropped.inc({ reason: result.reason });
      // One line per reason and interval, with the count: a flood of bad messages is not a line each.
      this.logs.warn(
        `drop:${result.reason}`,
        { reason: result.reason, topic, bytes },
        `message dropped: ${result.message}`,
      );
    }
  }

  private async setAside(topic: string, payload: Uint8Array, why: Postponed): Promise<SetAsideResult> {
    const id = await this.setAsideCommits.insert({
      topic,
      payload,
      deviceId: why.deviceId.toString(),
      reason: why.unavailable,
      receivedAt: this.o.clock(),
    });
    this.logs.warn(
      `set-aside:${why.unavailable}`,
      { reason: why.unavailable, deviceId: why.deviceId.toString(), setAside: this.o.store.setAsideCount() },
      `message of device ${why.deviceId} set aside (stored, judged later): ${why.message}`,
    );
    return { ok: false, setAside: true, id, reason: why.unavailable, message: why.message };
  }

  /** Waits until the registry answers again, at most `ms`. */
  private waitForRegistry(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.o.devices.events.off("available", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.o.devices.events.on("available", done);
    });
  }

  private async evaluate(
    topic: string,
    payload: Uint8Array,
    mode: LookupMode,
    origin?: "anchor",
  ): Promise<IntakeResult | Postponed> {
    if (payload.length > this.o.maxPayloadBytes) {
      return drop("too_large", `${payload.length} bytes exceed mqtt.maxPayloadBytes (${this.o.maxPayloadBytes})`);
    }
    let item: SignedItem;
    try {
      item = decodeMqttPayload(payload).item;
    } catch (error) {
      return drop("malformed", messageOf(error));
    }
    const deviceId = item.kind === "reading" ? item.reading.deviceId : item.window.deviceId;
    const topicDevice = parseMqttReadingsTopic(topic);
    if (topicDevice !== deviceId) {
      return drop("topic_mismatch", `payload of device ${deviceId} on topic ${topic}`);
    }
    const found = await this.o.devices.lookup(deviceId, mode);
    if (isUnavailable(found)) return { ...found, deviceId };
    let device = found;
    if (device.keyType === 0) return drop("unknown_device", `device ${deviceId} is not in the registry`);
    const first = item.kind === "reading" ? item.reading.sequence : item.window.firstSequence;
    const count = item.kind === "reading" ? 1 : item.window.samples.length;
    const firstObservedAt = item.kind === "reading" ? item.reading.observedAt : item.window.firstObservedAt;
    const lastObservedAt =
      item.kind === "reading" ? firstObservedAt : firstObservedAt + (count - 1) * item.window.intervalSeconds;
    // Distrust is by observation time, as on chain: readings observed before it still count.
    if (device.revokedFrom !== 0 && lastObservedAt >= device.revokedFrom) return revokedDrop(device, lastObservedAt);
    if (item.kind === "window" && item.window.intervalSeconds !== device.intervalSeconds) {
      return drop(
        "interval_mismatch",
        `window interval ${item.window.intervalSeconds} s differs from the registered ${device.intervalSeconds} s`,
      );
    }
    const nowSeconds = Math.floor((this.o.observationClock ?? this.o.clock)() / 1000);
    if (lastObservedAt > nowSeconds + this.o.maxFutureSkewSeconds) {
      return drop(
        "future_timestamp",
        `observed at ${lastObservedAt}, more than ${this.o.maxFutureSkewSeconds} s after now (${nowSeconds})`,
      );
    }
    const intervalSeconds = item.kind === "reading" ? 0 : item.window.intervalSeconds;
    if (this.o.store.hasAnyObservation(deviceId, firstObservedAt, count, intervalSeconds)) {
      if (origin !== "anchor") this.releaseAnchorCopies(deviceId, firstObservedAt, lastObservedAt);
      return drop("duplicate", duplicateMessage(deviceId, first, count, firstObservedAt, lastObservedAt));
    }
    // Keys are bound to time: the current key for readings observed from its keyValidFrom on (the common case, no
    // registry call), else the key of the item's time, which must cover its last sample too.
    const keyOf = (d: CachedDevice): Promise<JudgedKey | Unavailable> | JudgedKey =>
      firstObservedAt >= d.keyValidFrom
        ? { key: verificationKey(d), current: true }
        : this.pastKey(d, firstObservedAt, lastObservedAt, mode);
    const verifies = async (key: DeviceVerificationKey | undefined): Promise<boolean> => {
      if (key === undefined) return false;
      if (key.keyType === "p256" && isHighS(item.signature)) {
        item = { ...item, signature: normaliseP256S(item.signature) };
      }
      return this.check(item, key);
    };
    let judged = await keyOf(device);
    if (isUnavailable(judged)) return { ...judged, deviceId };
    let verified = await verifies(judged.key);
    if (!verified && judged.current) {
      // A rotation mined since the registry sync: read the device again (bounded) before dropping; with the
      // registry unreachable, the message waits (set aside) rather than be dropped under a key that may be stale.
      const fresh = await this.o.devices.refreshStale(deviceId, mode);
      if (isUnavailable(fresh)) return { ...fresh, deviceId };
      if (fresh !== undefined && changed(device, fresh)) {
        device = fresh;
        if (device.revokedFrom !== 0 && lastObservedAt >= device.revokedFrom) {
          return revokedDrop(device, lastObservedAt);
        }
        judged = await keyOf(device);
        if (isUnavailable(judged)) return { ...judged, deviceId };
        verified = await verifies(judged.key);
      }
    }
    const key = judged.key;
    if (key === undefined || !verified) {
      return drop(
        "bad_signature",
        judged.failure ?? `the signature does not verify under device ${deviceId}'s ${key?.keyType ?? "unknown"} key`,
      );
    }
    const curve: KeyCurve = key.keyType;
    const receivedAt = this.o.clock();
    const relayAfter = origin === "anchor" ? this.o.anchorHold?.(receivedAt) : undefined;
    const inserted = await this.commits.insert({
      deviceId,
      firstSequence: first,
      count,
      kind: item.kind,
      curve,
      firstObservedAt,
      intervalSeconds,
      previousObservedAt: item.kind === "reading" ? item.reading.previousObservedAt : item.window.previousObservedAt,
      body: encodeMqttPayload(item, "binary"),
      receivedAt,
      ...(relayAfter === undefined ? {} : { relayAfter }),
    });
    if (!inserted.ok) {
      // Stored meanwhile by another connection's message (in the same group commit, or the one before).
      if (origin !== "anchor") this.releaseAnchorCopies(deviceId, firstObservedAt, lastObservedAt);
      return drop("duplicate", duplicateMessage(deviceId, first, count, firstObservedAt, lastObservedAt));
    }
    return { ok: true, itemId: inserted.id, readings: count };
  }

  /**
   * A share member's copy of a reading the anchor stored held: the group gave the message to this instance, so its
   * hold ends now (oracle/intake/anchor.ts). A read first: most duplicates are no anchor copy.
   */
  private releaseAnchorCopies(deviceId: bigint, first: number, last: number): void {
    if (this.o.anchorHold === undefined || !this.o.store.holdsAnchorCopy(deviceId, first, last)) return;
    const released = this.o.store.releaseAnchorCopies(deviceId, first, last);
    if (released > 0) {
      this.o.metrics.anchorReleased.inc(released);
      this.o.log.debug(
        { deviceId: deviceId.toString(), observedAt: first, items: released },
        "the share group delivered a reading the anchor holds: relayed now",
      );
    }
  }

  /**
   * The key of an item observed from `from` to `until`, before the cached current key's `keyValidFrom`: the
   * registry's key of `from` (`verificationKeyAt`, cached), as the contract chooses it; it must still be valid at
   * `until` (a window across a rotation verifies under no key).
   */
  private async pastKey(
    device: CachedDevice,
    from: number,
    until: number,
    mode: LookupMode,
  ): Promise<JudgedKey | Unavailable> {
    const id = device.deviceId;
    const past = await this.o.devices.keyAt(id, from, mode);
    if (isUnavailable(past)) return past;
    if (past === undefined) {
      // The registry's current key covers `from`: the cache is behind (a reorg); the refresh sorts it out.
      return {
        key: undefined,
        current: true,
        failure: `no key of device ${id} verifies readings observed at ${iso(from)}`,
      };
    }
    if (until >= past.validUntil) {
      return {
        key: undefined,
        current: false,
        failure:
          `the window spans device ${id}'s key rotation at ${iso(past.validUntil)} (observed ${iso(from)} to ` +
          `${iso(until)}): no key verifies it`,
      };
    }
    const key = verificationKey({ ...device, keyType: past.keyType, signer: past.signer, qx: past.qx, qy: past.qy });
    const since = past.validFrom === 0 ? "" : ` from ${iso(past.validFrom)}`;
    return {
      key,
      current: false,
      failure:
        `the signature does not verify under device ${id}'s ${key?.keyType ?? "unknown"} key of ${iso(from)} ` +
        `(valid${since} until ${iso(past.validUntil)}; a later key never verifies earlier readings)`,
    };
  }
}

/** The key chosen for an item; `current`: the cached current key (a stale cache may explain a failure). */
interface JudgedKey {
  readonly key: DeviceVerificationKey | undefined;
  readonly current: boolean;
  /** The drop message should the signature not verify (default: names the current key). */
  readonly failure?: string;
}

/** Whether a re-read device differs in what judges its readings. */
function changed(a: CachedDevice, b: CachedDevice): boolean {
  return (
    a.keyType !== b.keyType ||
    a.signer !== b.signer ||
    a.qx !== b.qx ||
    a.qy !== b.qy ||
    a.keyValidFrom !== b.keyValidFrom ||
    a.revokedFrom !== b.revokedFrom
  );
}

function duplicateMessage(deviceId: bigint, first: number, count: number, from: number, until: number): string {
  const sequences = count > 1 ? `sequences ${first}..${first + count - 1}` : `sequence ${first}`;
  const times = count > 1 ? `${iso(from)} to ${iso(until)}` : iso(from);
  return `device ${deviceId} ${sequences}: a reading of the device observed at ${times} is already stored`;
}

function revokedDrop(device: CachedDevice, observedAt: number): IntakeResult {
  return drop(
    "revoked_device",
    `device ${device.deviceId} is distrusted from ${iso(device.revokedFrom)} (revoked in block ${device.revokedAtBlock}); ` +
      `readings observed from then on are refused, this one at ${iso(observedAt)}`,
  );
}

/** Unix seconds as ISO 8601 with the number (e.g. 2026-12-06T18:00:00Z (1796580000)). */
function iso(seconds: number): string {
  const date = new Date(seconds * 1000);
  const text = Number.isNaN(date.getTime()) ? "?" : date.toISOString().replace(".000Z", "Z");
  return `${text} (${seconds})`;
}

/**
 * Group commit: inserts of messages in flight together (several MQTT connections) go into one SQLite
 * transaction — one fsync for all. The commit runs once every message in flight waits for it (or the others
 * were dropped), or after `maxWaitMs` at most; with one message in flight it runs at once. With an asynchronous
 * `insertItems` (the writer thread) one commit runs at a time: items arriving meanwhile form the next group,
 * which starts when the commit under way ends, so the commit groups grow with what is in flight. Each caller
 * resolves only after the commit that holds its item, so the acknowledgement still follows the durable commit;
 * if the commit fails, every caller of that group gets the error (nothing of the group is stored or acknowledged).
 */
export class GroupCommit<T = NewItem, R = InsertResult> {
  private queue: { item: T; resolve(r: R): void; reject(e: unknown): void }[] = [];
  private scheduled = false;
  /** Items of the commit under way (asynchronous insertItems). */
  private committing = 0;
  /** Commits made and items they held, and the largest group (for tests and logs). */
  readonly stats = { commits: 0, items: 0, largest: 0 };

  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly insertItems: (items: readonly T[]) => R[] | Promise<R[]>,
    private readonly inFlight: () => number = () => 1,
    private readonly maxWaitMs = 2,
  ) {}

  insert(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.poke();
    });
  }

  /** Schedules the commit: now if every message in flight waits for it, else after maxWaitMs. */
  poke(): void {
    if (this.queue.length === 0 || this.scheduled || this.committing > 0) return;
    if (this.queue.length >= this.inFlight()) {
      this.scheduled = true;
      clearTimeout(this.timer);
      this.timer = undefined;
      setImmediate(() => this.flush());
    } else {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.scheduled = true;
        this.flush();
      }, this.maxWaitMs);
    }
  }

  private flush(): void {
    this.scheduled = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    const group = this.queue;
    this.queue = [];
    if (group.length === 0) return;
    this.stats.commits++;
    this.stats.items += group.length;
    this.stats.largest = Math.max(this.stats.largest, group.length);
    let results: R[] | Promise<R[]>;
    try {
      results = this.insertItems(group.map((g) => g.item));
    } catch (error) {
      for (const g of group) g.reject(error);
      return;
    }
    if (Array.isArray(results)) {
      settle(group, results);
      return;
    }
    this.committing = group.length;
    results.then(
      (r) => settle(group, r),
      (error: unknown) => {
        for (const g of group) g.reject(error);
      },
    );
    void results
      .catch(() => undefined)
      .then(() => {
        // What arrived during this commit goes next, at once (the messages still being verified join later).
        this.committing = 0;
        if (this.queue.length > 0 && !this.scheduled) {
          this.scheduled = true;
          clearTimeout(this.timer);
          this.timer = undefined;
          setImmediate(() => this.flush());
        }
      });
  }
}

function settle<R>(group: readonly { resolve(r: R): void; reject(e: unknown): void }[], results: readonly R[]): void {
  group.forEach((g, i) => {
    const r = results[i];
    if (r === undefined) g.reject(new Error("group commit lost a result"));
    else g.resolve(r);
  });
}

function drop(reason: DropReason, message: string): IntakeResult {
  return { ok: false, reason, message };
}

function isHighS(signature: string): boolean {
  try {
    return isP256HighS(signature);
  } catch {
    return false; // r or s out of range: verification fails below
  }
}

/** The sdk verification key of a cached registry entry, or undefined for an unknown device. */
export function verificationKey(device: CachedDevice): DeviceVerificationKey | undefined {
  switch (device.keyType) {
    case 1:
      return { keyType: "secp256k1", address: device.signer };
    case 2:
      return { keyType: "p256", x: device.qx, y: device.qy };
    default:
      return undefined;
  }
}
