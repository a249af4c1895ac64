/**
 * `shipmentHistory`: a shipment's history rebuilt from the contracts' events — lifecycle, custody handovers,
 * every reading recorded on chain, skipped readings, breaches and (derived) excursions — and
 * `temperatureTimeline`, the per-device series a chart draws. The one source for the CLI's `show`, the EPCIS
 * export, the demo report and the web app. Browser-safe.
 *
 * Events are read with {@link getLogsPaged}, so a history works against public RPC limits. Readings come from
 * `ReadingsRecorded` (12-byte records) and `WindowRecorded` (windows), decoded with the protocol's
 * `expandReadings` / `expandWindow`. `ReadingSkipped` is indexed by device, not shipment: the skips of the
 * shipment's devices between its creation and its end (release, rejection or cancellation) are attributed to it.
 * Only the skips emitted after the device's signature verified (`isAuthenticatedSkip`, sdk/names.ts) are its
 * evidence (`skipped`); the others anyone can cause, and are kept apart as `unauthenticatedSkips`. A
 * `FutureTimestamp`, `CustodyPending` or `SequenceGap` skip is evidence that is not final (`isRetryableSkip`): the
 * reading waited (for the block time, a pending custody handover, its predecessor to be recorded) and is normally in
 * `readings` too, relayed again later.
 *
 * Breaches (`BreachRecorded`) come once per device, custody period and kind: two loggers crossing the same limit
 * in one period are two breaches (each charged to the period's custodian).
 *
 * A single-excursion or freeze run that crossed its limit under one custodian but began under earlier ones is
 * shared out by `BreachRunShared` events (one per custody period the run spans): `runShares`, and
 * {@link runSharesOf} for the shares of one breach.
 *
 * Keys are bound to time: the DeviceRegistry's `DeviceKeyValidFrom` / `DeviceKeySet` (a rotation) and
 * `DeviceDistrusted` (a revocation) of the shipment's devices while it was open are `deviceKeyEvents`.
 */
import { ZeroAddress, ZeroHash, toBeHex, zeroPadValue } from "ethers";
import type { Log, LogDescription } from "ethers";

import type { ColdChainSuite } from "./contracts.js";
import { deploymentStartBlock } from "./deployment.js";
import { getLogsPaged } from "./logs.js";
import type { GetLogsPagedOptions, LogsProgress } from "./logs.js";
import { breachReasonName, deviceKeyTypeName, isAuthenticatedSkip, skipReasonName } from "./names.js";
import type { BreachReasonName, DeviceKeyTypeName, SkipReasonName } from "./names.js";
import { expandReadings, expandWindow } from "./protocol/events.js";
import { FLAG_SENSOR_FAULT } from "./protocol/constants.js";
import { toTemperatureProfile } from "./state.js";
import type { TemperatureProfile } from "./state.js";

/** Where an event was emitted. `blockTime` is the block's timestamp (unix seconds). */
export interface EventRef {
  readonly blockNumber: number;
  readonly blockTime: number;
  readonly transactionHash: string;
  readonly logIndex: number;
}

export type LifecycleKind =
  | "created"
  | "started"
  | "custodyOffered"
  | "custodyOfferCancelled"
  | "delivered"
  | "released"
  | "rejected"
  | "cancelled";

/** Where a reading's event was emitted; `blockTime` may be unknown (see {@link HistoryReading}). */
export interface ReadingRef extends Omit<EventRef, "blockTime"> {
  readonly blockTime: number | undefined;
}

/** A status or offer change. `at` is the time the contract recorded (unix seconds; the block time if none). */
export interface LifecycleEvent extends EventRef {
  readonly kind: LifecycleKind;
  readonly at: number;
  /** Who acted: shipper (created), custodian (offers), receiver (delivered), decider (released/…). */
  readonly by: string;
  /** Offer recipient. */
  readonly to?: string;
  /** Offer deadline (unix seconds). */
  readonly deadline?: number;
  /** Rejection reason code (bytes32 hex); `decodeDecisionReason` (sdk/reasons.ts) puts it in words. */
  readonly reasonCode?: string;
  /** The decider's free-text note on a release or rejection (`DecisionNoted` of the same transaction). */
  readonly note?: string;
}

/** A custody period's start: `from` is the zero address for the shipper's first period (index 0). */
export interface CustodyHandover extends EventRef {
  readonly periodIndex: number;
  readonly from: string;
  readonly to: string;
  readonly since: number;
}

/**
 * A reading accepted on chain. Its time is `observedAt`; `blockTime` (when the relayer's batch was mined) is set
 * only when that block's time was read anyway, or with the `readingBlockTimes` option.
 */
export interface HistoryReading extends ReadingRef {
  readonly deviceId: bigint;
  readonly sequence: number;
  readonly observedAt: number;
  readonly tempCentiC: number;
  /** °C (tempCentiC / 100). */
  readonly tempC: number;
  readonly flags: number;
  /** Which event carried it. */
  readonly source: "readings" | "window";
}

/**
 * A `ReadingSkipped` event: readings the contract refused (`count` consecutive sequences from `sequence`). Whether
 * the device signed them depends on `reason` (`isAuthenticatedSkip`).
 */
export interface SkippedReadings extends EventRef {
  readonly deviceId: bigint;
  readonly sequence: number;
  readonly count: number;
  readonly reason: SkipReasonName;
}

/** A breach, charged to the custodian of `periodIndex`. */
export interface HistoryBreach extends EventRef {
  readonly reason: BreachReasonName;
  readonly custodian: string;
  readonly periodIndex: number;
  readonly deviceId: bigint;
  readonly sequence: number;
  readonly observedAt: number;
}

/**
 * A `BreachRunShared` event: a single-excursion or freeze run that crossed its limit in a custody period but
 * began under an earlier custodian; `runSeconds` of it fall in period `periodIndex`, held by `custodian`. One per
 * period the run spans, the crossing period's first, then the earlier ones, all in the transaction of the
 * crossing period's {@link HistoryBreach} (same `transactionHash`, `reason` and `deviceId`).
 */
export interface RunShare extends EventRef {
  readonly reason: BreachReasonName;
  readonly custodian: string;
  readonly periodIndex: number;
  readonly deviceId: bigint;
  readonly runSeconds: number;
}

/**
 * A run of one device's evaluated readings outside [minCentiC, maxCentiC], derived off chain from the readings
 * (the contract's `cumulativeExcursionSeconds` remains the authority). Ends at the first reading back in range.
 */
export interface Excursion {
  readonly deviceId: bigint;
  readonly direction: "high" | "low";
  readonly startedAt: number;
  /** Observation time of the first reading back in range, or of the last reading when `ongoing`. */
  readonly endedAt: number;
  readonly durationSeconds: number;
  readonly ongoing: boolean;
  /** Highest (high) or lowest (low) temperature of the run. */
  readonly peakCentiC: number;
  readonly readings: number;
}

/**
 * A key rotation of one of the shipment's devices while the shipment was open (registry `DeviceKeyValidFrom` with
 * its `DeviceKeySet`): key number `keyIndex` verifies the device's readings observed from `validFrom` on, the
 * previous key those observed before (a rotation is never retroactive).
 */
export interface DeviceKeyRotation extends EventRef {
  readonly kind: "keyRotated";
  readonly deviceId: bigint;
  readonly keyIndex: number;
  /** Observation time (unix seconds) from which the new key verifies readings. */
  readonly validFrom: number;
  readonly keyType: DeviceKeyTypeName;
  /** The secp256k1 key's address (zero for P-256). */
  readonly signer: string;
  /** The P-256 public key (zero for secp256k1). */
  readonly qx: string;
  readonly qy: string;
}

/**
 * A revocation of one of the shipment's devices while the shipment was open (registry `DeviceDistrusted`): its
 * readings observed from `distrustedFrom` on are refused; those observed before still count (and stay recorded).
 */
export interface DeviceDistrust extends EventRef {
  readonly kind: "distrusted";
  readonly deviceId: bigint;
  /** Observation time (unix seconds) from which the device's readings are refused. */
  readonly distrustedFrom: number;
  /** Who revoked it: the owner or a device manager (now), or a device manager (`revokeDeviceFrom`, earlier). */
  readonly by: string;
}

/** A key change or revocation of a shipment's device. */
export type DeviceKeyEvent = DeviceKeyRotation | DeviceDistrust;

export interface ShipmentHistory {
  readonly shipmentId: bigint;
  readonly chainId: number;
  readonly coldChain: string;
  /** Block range read. */
  readonly fromBlock: number;
  readonly toBlock: number;
  readonly shipper: string;
  readonly receiver: string;
  readonly owner: string;
  readonly profileId: number;
  readonly profile: TemperatureProfile;
  readonly externalRef: string;
  readonly devices: readonly { readonly deviceId: bigint; readonly intervalSeconds: number }[];
  readonly createdAt: number;
  /** 0 until started / delivered. */
  readonly startedAt: number;
  readonly deliveredAt: number;
  /** In chain order. */
  readonly lifecycle: readonly LifecycleEvent[];
  readonly custody: readonly CustodyHandover[];
  /** Sorted by observation time, then device and sequence. */
  readonly readings: readonly HistoryReading[];
  /**
   * The shipment's devices' readings the contract refused after their signature verified (`StaleSequence`,
   * `DuplicateSequence`, `FutureTimestamp`, `OutsideShipmentWindow`, `CustodyPending`, `SequenceGap`): the device
   * signed them. `CustodyPending` and `SequenceGap` are not final: the readings waited for a pending custody
   * handover or for their predecessor, and were normally relayed again and recorded after it (see `readings`).
   * `StaleSequence` readings do not continue the device's recorded chain: lost. In chain order.
   */
  readonly skipped: readonly SkippedReadings[];
  /**
   * Relay noise: anyone can cause these; never evidence. `ReadingSkipped` events naming the shipment's devices
   * that no device signature backs (`BadSignature`, `RevokedDevice`, `UnboundDevice`, `ShipmentNotActive`,
   * `MalformedItem`, …): any caller of `submitReadings` can make the contract emit them with made-up sequences.
   * In chain order.
   */
  readonly unauthenticatedSkips: readonly SkippedReadings[];
  readonly breaches: readonly HistoryBreach[];
  /**
   * Shares of single-excursion and freeze runs that began under an earlier custodian than the one whose period
   * they crossed their limit in (`BreachRunShared`); see {@link runSharesOf}. In chain order.
   */
  readonly runShares: readonly RunShare[];
  readonly excursions: readonly Excursion[];
  /**
   * Key rotations and revocations of the shipment's devices from its creation to its end (release, rejection or
   * cancellation), or to `toBlock` while it is open, from the DeviceRegistry's events. A rotation shows which key
   * verified which readings; a revocation from which observation time the device's readings were refused. In
   * chain order.
   */
  readonly deviceKeyEvents: readonly DeviceKeyEvent[];
}

export interface ShipmentHistoryOptions {
  /** First block to read; default the deployment's start block. */
  readonly fromBlock?: number;
  /** Last block; default the latest. */
  readonly toBlock?: number;
  /** Largest block range of one `eth_getLogs`; see {@link getLogsPaged}. */
  readonly maxRange?: number;
  readonly onProgress?: (progress: LogsProgress) => void;
  readonly signal?: AbortSignal;
  /**
   * Also read the time of every block that only carries readings (default false: one `eth_getBlockByNumber` per
   * relayed batch is a lot of requests on a public endpoint, and readings carry their own `observedAt`).
   */
  readonly readingBlockTimes?: boolean;
}

/** Raised when no ShipmentCreated event for the id is in the range read. */
export class ShipmentHistoryError extends Error {
  override readonly name = "ShipmentHistoryError";
}

const SHIPMENT_EVENTS = [
  "ShipmentCreated",
  "ShipmentStarted",
  "CustodyOffered",
  "CustodyOfferCancelled",
  "CustodyTransferred",
  "ShipmentDelivered",
  "ShipmentReleased",
  "ShipmentRejected",
  "ShipmentCancelled",
  "DecisionNoted",
  "ReadingsRecorded",
  "WindowRecorded",
  "BreachRecorded",
  "BreachRunShared",
] as const;

function uint64Topic(value: bigint): string {
  return zeroPadValue(toBeHex(value), 32);
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function compareLogs(a: Log, b: Log): number {
  return a.blockNumber - b.blockNumber || a.index - b.index;
}

/**
 * Rebuilds the history of `shipmentId` from events between `fromBlock` (default: the deployment's start block)
 * and `toBlock`. Throws {@link ShipmentHistoryError} when the shipment's creation is not in that range.
 */
export async function shipmentHistory(
  suite: ColdChainSuite,
  shipmentId: bigint | number,
  options: ShipmentHistoryOptions = {},
): Promise<ShipmentHistory> {
  const id = BigInt(shipmentId);
  const provider = suite.runner.provider;
  if (provider == null) throw new Error("the suite's runner has no provider");
  const { coldChain, registry, deployment } = suite;
  const iface = coldChain.interface;
  const address = deployment.contracts.ColdChain.address;
  const fromBlock = options.fromBlock ?? deploymentStartBlock(deployment);
  const toBlock = options.toBlock ?? (await provider.getBlockNumber());
  const paging: GetLogsPagedOptions = {
    fromBlock,
    toBlock,
    ...(options.maxRange === undefined ? {} : { maxRange: options.maxRange }),
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  };

  const topics = SHIPMENT_EVENTS.map((name) => iface.getEvent(name).topicHash);
  const shipmentLogs = await getLogsPaged(provider, { address, topics: [topics, uint64Topic(id)] }, paging);
  const parsed = shipmentLogs.map((log) => ({ log, event: iface.parseLog(log) }));
  const createdEntry = parsed.find((p) => p.event?.name === "ShipmentCreated");
  if (createdEntry?.event == null) {
    throw new ShipmentHistoryError(
      `no ShipmentCreated event for shipment ${id} in blocks ${fromBlock}..${toBlock} of ColdChain ${address}; ` +
        "check the shipment id and the deployment (or pass an earlier fromBlock)",
    );
  }
  const created = createdEntry.event.args;
  const deviceIds = (created.deviceIds as bigint[]).map((d) => BigInt(d));
  const endEntry = parsed.find((p) =>
    ["ShipmentReleased", "ShipmentRejected", "ShipmentCancelled"].includes(p.event?.name ?? ""),
  );
  const skippedTo = endEntry?.log.blockNumber ?? toBlock;
  const skippedLogs = await getLogsPaged(
    provider,
    { address, topics: [iface.getEvent("ReadingSkipped").topicHash, deviceIds.map(uint64Topic)] },
    { ...paging, fromBlock: createdEntry.log.blockNumber, toBlock: skippedTo },
  );

  const registryIface = registry.interface;
  const keyTopics = (["DeviceKeyValidFrom", "DeviceKeySet", "DeviceDistrusted"] as const).map(
    (name) => registryIface.getEvent(name).topicHash,
  );
  const keyLogs = await getLogsPaged(
    provider,
    { address: deployment.contracts.DeviceRegistry.address, topics: [keyTopics, deviceIds.map(uint64Topic)] },
    { ...paging, fromBlock: createdEntry.log.blockNumber, toBlock: skippedTo },
  );

  const [profileRaw, devices] = await Promise.all([
    coldChain.profile(created.profileId as bigint),
    Promise.all(
      deviceIds.map(async (deviceId) => ({
        deviceId,
        intervalSeconds: Number((await registry.device(deviceId)).intervalSeconds),
      })),
    ),
  ]);
  const profile = toTemperatureProfile(profileRaw);

  const readingTopics = new Set([
    iface.getEvent("ReadingsRecorded").topicHash,
    iface.getEvent("WindowRecorded").topicHash,
  ]);
  const timed = [...shipmentLogs, ...skippedLogs, ...keyLogs]
    .filter((l) => options.readingBlockTimes === true || !readingTopics.has(l.topics[0] ?? ""))
    .sort(compareLogs);
  const blocks = [...new Set(timed.map((l) => l.blockNumber))];
  const times = await mapLimit(blocks, 8, async (n) => {
    const block = await provider.getBlock(n);
    if (block === null) throw new Error(`block ${n} not found`);
    return block.timestamp;
  });
  const blockTime = new Map(blocks.map((n, i) => [n, times[i] ?? 0]));
  const ref = (log: Log): EventRef => ({
    blockNumber: log.blockNumber,
    blockTime: blockTime.get(log.blockNumber) ?? 0,
    transactionHash: log.transactionHash,
    logIndex: log.index,
  });
  const readingRef = (log: Log): ReadingRef => ({
    blockNumber: log.blockNumber,
    blockTime: blockTime.get(log.blockNumber),
    transactionHash: log.transactionHash,
    logIndex: log.index,
  });

  const lifecycle: LifecycleEvent[] = [];
  const custody: CustodyHandover[] = [];
  const readings: HistoryReading[] = [];
  const breaches: HistoryBreach[] = [];
  const runShares: RunShare[] = [];
  for (const { log, event } of parsed) {
    if (event === null) continue;
    const r = ref(log);
    handleShipmentEvent(event, r, readingRef(log), lifecycle, custody, readings, breaches, runShares);
  }
  const skipped: SkippedReadings[] = [];
  const unauthenticatedSkips: SkippedReadings[] = [];
  for (const log of skippedLogs) {
    const event = iface.parseLog(log);
    if (event === null) continue;
    const skip: SkippedReadings = {
      ...ref(log),
      deviceId: BigInt(event.args.deviceId as bigint),
      sequence: Number(event.args.sequence),
      count: Number(event.args.count),
      reason: skipReasonName(event.args.reason as bigint),
    };
    (isAuthenticatedSkip(skip.reason) ? skipped : unauthenticatedSkips).push(skip);
  }
  const deviceKeyEvents = deviceKeyEventsOf(
    keyLogs.map((log) => ({ log, event: registryIface.parseLog(log) })),
    ref,
  );
  readings.sort(
    (a, b) =>
      a.observedAt - b.observedAt ||
      (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0) ||
      a.sequence - b.sequence,
  );

  const startedAt = lifecycle.find((e) => e.kind === "started")?.at ?? 0;
  const deliveredAt = lifecycle.find((e) => e.kind === "delivered")?.at ?? 0;
  const excursions = deriveExcursions(readings, profile, startedAt, deliveredAt);
  const createdRef = ref(createdEntry.log);

  return {
    shipmentId: id,
    chainId: deployment.chainId,
    coldChain: address,
    fromBlock,
    toBlock,
    shipper: created.shipper as string,
    receiver: created.receiver as string,
    owner: created.owner as string,
    profileId: Number(created.profileId),
    profile,
    externalRef: created.externalRef as string,
    devices,
    createdAt: createdRef.blockTime,
    startedAt,
    deliveredAt,
    lifecycle,
    custody,
    readings,
    skipped,
    unauthenticatedSkips,
    breaches,
    runShares,
    excursions,
    deviceKeyEvents,
  };
}

/** Rotations (DeviceKeyValidFrom with the DeviceKeySet of the same transaction and device) and distrusts. */
function deviceKeyEventsOf(
  logs: readonly { log: Log; event: LogDescription | null }[],
  ref: (log: Log) => EventRef,
): DeviceKeyEvent[] {
  const sorted = [...logs].sort((a, b) => compareLogs(a.log, b.log));
  const out: DeviceKeyEvent[] = [];
  for (const { log, event } of sorted) {
    if (event === null) continue;
    const deviceId = BigInt(event.args.deviceId as bigint);
    if (event.name === "DeviceKeyValidFrom") {
      // The registry emits the DeviceKeySet right after, in the same transaction.
      const set = sorted.find(
        (s) =>
          s.event?.name === "DeviceKeySet" &&
          s.log.transactionHash === log.transactionHash &&
          s.log.index > log.index &&
          BigInt(s.event.args.deviceId as bigint) === deviceId,
      )?.event?.args;
      out.push({
        ...ref(log),
        kind: "keyRotated",
        deviceId,
        keyIndex: Number(event.args.keyIndex),
        validFrom: Number(event.args.validFrom),
        keyType: deviceKeyTypeName((set?.keyType as bigint | undefined) ?? 0n),
        signer: (set?.signer as string | undefined) ?? ZeroAddress,
        qx: (set?.qx as string | undefined) ?? ZeroHash,
        qy: (set?.qy as string | undefined) ?? ZeroHash,
      });
    } else if (event.name === "DeviceDistrusted") {
      out.push({
        ...ref(log),
        kind: "distrusted",
        deviceId,
        distrustedFrom: Number(event.args.distrustedFrom),
        by: event.args.by as string,
      });
    }
  }
  return out;
}

/**
 * The shares of a breach's run among custodians (`BreachRunShared` of the same transaction, reason and device),
 * the crossing period's first; empty when the run began in the breach's own period, and for the other reasons.
 */
export function runSharesOf(
  history: Pick<ShipmentHistory, "runShares">,
  breach: Pick<HistoryBreach, "transactionHash" | "reason" | "deviceId">,
): RunShare[] {
  return history.runShares.filter(
    (x) => x.transactionHash === breach.transactionHash && x.reason === breach.reason && x.deviceId === breach.deviceId,
  );
}

function handleShipmentEvent(
  event: LogDescription,
  r: EventRef,
  rr: ReadingRef,
  lifecycle: LifecycleEvent[],
  custody: CustodyHandover[],
  readings: HistoryReading[],
  breaches: HistoryBreach[],
  runShares: RunShare[],
): void {
  const a = event.args;
  switch (event.name) {
    case "ShipmentCreated":
      lifecycle.push({ ...r, kind: "created", at: r.blockTime, by: a.shipper as string });
      break;
    case "ShipmentStarted":
      lifecycle.push({ ...r, kind: "started", at: Number(a.startedAt), by: ZeroAddress });
      break;
    case "CustodyOffered":
      lifecycle.push({
        ...r,
        kind: "custodyOffered",
        at: r.blockTime,
        by: a.from as string,
        to: a.to as string,
        deadline: Number(a.deadline),
      });
      break;
    case "CustodyOfferCancelled":
      lifecycle.push({
        ...r,
        kind: "custodyOfferCancelled",
        at: r.blockTime,
        by: a.from as string,
        to: a.to as string,
      });
      break;
    case "CustodyTransferred":
      custody.push({
        ...r,
        periodIndex: Number(a.periodIndex),
        from: a.from as string,
        to: a.to as string,
        since: Number(a.since),
      });
      break;
    case "ShipmentDelivered":
      lifecycle.push({ ...r, kind: "delivered", at: Number(a.deliveredAt), by: a.receiver as string });
      break;
    case "ShipmentReleased":
      lifecycle.push({ ...r, kind: "released", at: r.blockTime, by: a.by as string });
      break;
    case "ShipmentRejected":
      lifecycle.push({
        ...r,
        kind: "rejected",
        at: r.blockTime,
        by: a.by as string,
        reasonCode: a.reasonCode as string,
      });
      break;
    case "ShipmentCancelled":
      lifecycle.push({ ...r, kind: "cancelled", at: r.blockTime, by: a.by as string });
      break;
    case "DecisionNoted": {
      // Emitted right after the decision's event, in the same transaction.
      const i = lifecycle.findLastIndex(
        (e) => e.transactionHash === r.transactionHash && (e.kind === "released" || e.kind === "rejected"),
      );
      const decision = lifecycle[i];
      if (decision !== undefined) lifecycle[i] = { ...decision, note: a.note as string };
      break;
    }
    case "ReadingsRecorded":
      for (const reading of expandReadings({ deviceId: a.deviceId as bigint, readings: a.readings as string })) {
        readings.push({ ...rr, ...reading, tempC: reading.tempCentiC / 100, source: "readings" });
      }
      break;
    case "WindowRecorded":
      for (const reading of expandWindow({
        deviceId: a.deviceId as bigint,
        firstSequence: a.firstSequence as bigint,
        firstObservedAt: a.firstObservedAt as bigint,
        intervalSeconds: a.intervalSeconds as bigint,
        samples: a.samples as string,
      })) {
        readings.push({ ...rr, ...reading, tempC: reading.tempCentiC / 100, source: "window" });
      }
      break;
    case "BreachRecorded":
      breaches.push({
        ...r,
        reason: breachReasonName(a.reason as bigint),
        custodian: a.custodian as string,
        periodIndex: Number(a.periodIndex),
        deviceId: BigInt(a.deviceId as bigint),
        sequence: Number(a.sequence),
        observedAt: Number(a.observedAt),
      });
      break;
    case "BreachRunShared":
      runShares.push({
        ...r,
        reason: breachReasonName(a.reason as bigint),
        custodian: a.custodian as string,
        periodIndex: Number(a.periodIndex),
        deviceId: BigInt(a.deviceId as bigint),
        runSeconds: Number(a.runSeconds),
      });
      break;
    default:
      break;
  }
}

/**
 * Whether the contract evaluates `reading` for temperature (min/max, limits, excursions, MKT): observed at or after
 * `startedAt + adaptationSeconds` and without the sensor-fault flag (TemperatureRules: `evaluateFrom`,
 * FLAG_SENSOR_FAULT). Unstarted shipments (`startedAt` 0) evaluate nothing.
 */
export function isEvaluatedReading(
  reading: Pick<HistoryReading, "observedAt" | "flags">,
  startedAt: number,
  adaptationSeconds: number,
): boolean {
  return (
    startedAt !== 0 && (reading.flags & FLAG_SENSOR_FAULT) === 0 && reading.observedAt >= startedAt + adaptationSeconds
  );
}

/**
 * Out-of-range runs per device among the evaluated readings ({@link isEvaluatedReading}: after start + adaptation,
 * no sensor fault; up to delivery).
 */
export function deriveExcursions(
  readings: readonly HistoryReading[],
  profile: TemperatureProfile,
  startedAt: number,
  deliveredAt: number,
): Excursion[] {
  if (startedAt === 0) return [];
  const out: Excursion[] = [];
  const byDevice = new Map<bigint, HistoryReading[]>();
  for (const reading of readings) {
    if (!isEvaluatedReading(reading, startedAt, profile.adaptationSeconds)) continue;
    if (deliveredAt > 0 && reading.observedAt > deliveredAt) continue;
    const list = byDevice.get(reading.deviceId) ?? [];
    list.push(reading);
    byDevice.set(reading.deviceId, list);
  }
  for (const [deviceId, list] of byDevice) {
    let run: { direction: "high" | "low"; startedAt: number; peak: number; count: number; last: number } | undefined;
    for (const reading of list) {
      const t = reading.tempCentiC;
      const direction = t > profile.maxCentiC ? "high" : t < profile.minCentiC ? "low" : undefined;
      if (run !== undefined && direction !== run.direction) {
        out.push({
          deviceId,
          direction: run.direction,
          startedAt: run.startedAt,
          endedAt: reading.observedAt,
          durationSeconds: reading.observedAt - run.startedAt,
          ongoing: false,
          peakCentiC: run.peak,
          readings: run.count,
        });
        run = undefined;
      }
      if (direction === undefined) continue;
      if (run === undefined) {
        run = { direction, startedAt: reading.observedAt, peak: t, count: 0, last: reading.observedAt };
      }
      run.peak = direction === "high" ? Math.max(run.peak, t) : Math.min(run.peak, t);
      run.count++;
      run.last = reading.observedAt;
    }
    if (run !== undefined) {
      out.push({
        deviceId,
        direction: run.direction,
        startedAt: run.startedAt,
        endedAt: run.last,
        durationSeconds: run.last - run.startedAt,
        ongoing: true,
        peakCentiC: run.peak,
        readings: run.count,
      });
    }
  }
  return out.sort((a, b) => a.startedAt - b.startedAt);
}

/** A gap between two consecutive readings of a device longer than the profile allows. */
export interface TimelineGap {
  /** Observation times of the readings either side. */
  readonly from: number;
  readonly to: number;
  readonly seconds: number;
}

/** One device's series, oldest first, as parallel arrays (what uPlot and most chart libraries take). */
export interface DeviceTimeline {
  readonly deviceId: bigint;
  readonly intervalSeconds: number;
  /** Unix seconds. */
  readonly times: readonly number[];
  /** °C. */
  readonly tempsC: readonly number[];
  readonly flags: readonly number[];
  /** Gaps longer than `intervalSeconds x profile.maxGapIntervals` (none when the gap rule is off). */
  readonly gaps: readonly TimelineGap[];
}

export interface TemperatureTimeline {
  /** One per device of the shipment, in the shipment's device order. */
  readonly devices: readonly DeviceTimeline[];
  /** The allowed range, for drawing bands (°C). */
  readonly minC: number;
  readonly maxC: number;
}

/** Per-device temperature series of a history, with the gaps the profile's gap rule would count. */
export function temperatureTimeline(history: ShipmentHistory): TemperatureTimeline {
  const devices = history.devices.map((device): DeviceTimeline => {
    const own = history.readings
      .filter((r) => r.deviceId === device.deviceId)
      .sort((a, b) => a.observedAt - b.observedAt || a.sequence - b.sequence);
    const limit = history.profile.maxGapIntervals * device.intervalSeconds;
    const gaps: TimelineGap[] = [];
    if (limit > 0) {
      for (let i = 1; i < own.length; i++) {
        const prev = own[i - 1] as HistoryReading;
        const cur = own[i] as HistoryReading;
        const seconds = cur.observedAt - prev.observedAt;
        if (seconds > limit) gaps.push({ from: prev.observedAt, to: cur.observedAt, seconds });
      }
    }
    return {
      deviceId: device.deviceId,
      intervalSeconds: device.intervalSeconds,
      times: own.map((r) => r.observedAt),
      tempsC: own.map((r) => r.tempC),
      flags: own.map((r) => r.flags),
      gaps,
    };
  });
  return { devices, minC: history.profile.minCentiC / 100, maxC: history.profile.maxCentiC / 100 };
}
