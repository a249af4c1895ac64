/**
 * `readShipment`: a shipment's full current state from the contracts' views (IShipments, IReadingsInbox,
 * IDeviceRegistry, ColdChainLens), all read at one block. Browser-safe.
 */
import type { BlockTag } from "ethers";

import type { ColdChainSuite } from "./contracts.js";
import { onchainMktCentiC } from "./protocol/mkt.js";
import {
  CONDITION_EXCURSION_ACTIVE,
  CONDITION_FREEZE_ACTIVE,
  CONDITION_HAS_TEMPERATURE,
  CONDITION_MKT_ABOVE_LIMIT,
  breachReasonName,
  breachReasonsOf,
  deviceKeyTypeName,
  shipmentStatusName,
} from "./names.js";
import type { BreachReasonName, DeviceKeyTypeName, ShipmentStatusName } from "./names.js";
import { shipmentVerdict } from "./verdict.js";
import type { ShipmentVerdict } from "./verdict.js";

/** A rule profile with plain numbers (temperatures in centi-°C, durations in seconds). */
export interface TemperatureProfile {
  readonly minCentiC: number;
  readonly maxCentiC: number;
  readonly absoluteMinCentiC: number;
  readonly absoluteMaxCentiC: number;
  readonly freezeCentiC: number;
  readonly maxFreezeSeconds: number;
  readonly maxSingleExcursionSeconds: number;
  readonly maxCumulativeExcursionSeconds: number;
  readonly adaptationSeconds: number;
  readonly maxGapIntervals: number;
  readonly faultFlagMask: number;
  readonly mktLimitCentiC: number;
  readonly mktMinCoverageSeconds: number;
  readonly mktEnabled: boolean;
}

/**
 * What one device's (logger's) readings established in the shipment (`IReadingsInbox.deviceEvidence`): the rules
 * judged per device (MktExceeded, CumulativeExcursion) read these, not the pooled figures of the condition.
 */
export interface DeviceEvidence {
  /** The logger's own mean kinetic temperature (centi-°C, as the contract computes it), undefined before any evaluated reading. */
  readonly mktCentiC: number | undefined;
  /** Seconds the logger's MKT covers (its own evaluated readings). */
  readonly mktSeconds: number;
  /** The logger's raw MKT sums. */
  readonly mktWeightedSum: bigint;
  /** The logger's own cumulative time out of range (seconds). */
  readonly cumulativeExcursionSeconds: number;
  /** Custody period of `breachFlags`: the breach kinds already announced for this logger in that period. */
  readonly breachPeriod: number;
  readonly breachFlags: number;
  readonly breaches: readonly BreachReasonName[];
}

export interface ShipmentDevice {
  readonly deviceId: bigint;
  readonly owner: string;
  readonly keyType: DeviceKeyTypeName;
  /** Seconds between the device's readings (the gap rule counts in these). */
  readonly intervalSeconds: number;
  /** Block of revocation, 0 while active. */
  readonly revokedAtBlock: number;
  /** The logger's own evidence in this shipment (per-logger MKT and cumulative excursion). */
  readonly evidence: DeviceEvidence;
}

/** The shipment's aggregate condition (IReadingsInbox.Condition) with names and the lens's MKT. */
export interface ShipmentCondition {
  readonly readingCount: number;
  /** Whether any temperature was evaluated; min/max are meaningful only then. */
  readonly hasTemperature: boolean;
  readonly minCentiC: number | undefined;
  readonly maxCentiC: number | undefined;
  /** Latest observation time accepted (unix seconds), 0 before the first reading. */
  readonly lastObservedAt: number;
  /**
   * Logger-time out of range, summed over the devices (two loggers out of range for an hour add two hours); each
   * logger's own is in its {@link DeviceEvidence}, where the cumulative budget is judged.
   */
  readonly cumulativeExcursionSeconds: number;
  /** Longest continuous out-of-range run of any one device so far (seconds). */
  readonly longestExcursionSeconds: number;
  /** Some device's latest reading is out of range / at or below the freeze threshold. */
  readonly excursionActive: boolean;
  readonly freezeActive: boolean;
  /** How many devices' latest reading is out of range / at or below the freeze threshold. */
  readonly excursionDevices: number;
  readonly freezeDevices: number;
  /** The pooled MKT of all devices' readings is above the limit (MktExceeded itself is judged per device). */
  readonly mktAboveLimit: boolean;
  /** Raw `statusFlags` and `breachFlags` words. */
  readonly statusFlags: number;
  readonly breachFlags: number;
  /** Every kind of breach recorded, and the earliest by observation time (`undefined` while compliant). */
  readonly breaches: readonly BreachReasonName[];
  readonly firstBreach: BreachReasonName | undefined;
  /** Observation time of `firstBreach` (unix seconds), 0 while compliant. */
  readonly firstBreachAt: number;
  /**
   * Mean kinetic temperature of all devices' readings pooled, from ColdChainLens (centi-°C), undefined before any
   * evaluated reading. Pooled over loggers that travelled together, its `mktSeconds` is logger-time (two loggers on
   * a 26 h trip cover 52 h): show each logger's own MKT ({@link DeviceEvidence}) instead where one figure per
   * shipment would mislead.
   */
  readonly mktCentiC: number | undefined;
  /** Logger-seconds the pooled MKT covers (summed over devices). */
  readonly mktSeconds: number;
}

/** One custody period, oldest first; excursion seconds and breaches are those charged to it. */
export interface CustodyPeriod {
  readonly index: number;
  readonly custodian: string;
  /** Unix seconds the period began. */
  readonly since: number;
  /** Unix seconds the next period began; undefined for the current one. */
  readonly until: number | undefined;
  readonly excursionSeconds: number;
  readonly breachFlags: number;
  readonly breaches: readonly BreachReasonName[];
}

/** What one party is answerable for over all its custody periods of the shipment. */
export interface CustodianLiability {
  readonly custodian: string;
  readonly periods: readonly number[];
  /** Total excursion seconds charged to the party over its periods (what `ColdChainLens.excursionSecondsOf` says). */
  readonly excursionSeconds: number;
  readonly breaches: readonly BreachReasonName[];
  /** Seconds the party held the shipment (up to delivery, or up to `now` for an open shipment). */
  readonly heldSeconds: number;
}

export interface ShipmentState {
  readonly shipmentId: bigint;
  /** Block the state was read at. */
  readonly blockNumber: number;
  readonly status: ShipmentStatusName;
  readonly shipper: string;
  readonly receiver: string;
  readonly owner: string;
  readonly custodian: string;
  readonly profileId: number;
  readonly profile: TemperatureProfile;
  /** Unix seconds; 0 = not (yet). */
  readonly createdAt: number;
  readonly plannedStartAt: number;
  readonly startedAt: number;
  readonly deliveredAt: number;
  readonly decidedAt: number;
  /** bytes32 business reference (e.g. an SSCC) and rejection reason code, as 0x hex. */
  readonly externalRef: string;
  readonly rejectionCode: string;
  readonly devices: readonly ShipmentDevice[];
  readonly condition: ShipmentCondition;
  readonly custody: readonly CustodyPeriod[];
  readonly liability: readonly CustodianLiability[];
  /** The pending two-step custody offer, if any. */
  readonly pendingOffer: { readonly to: string; readonly deadline: number } | undefined;
}

/**
 * What {@link readShipment} returns: the state and its verdict from the state alone ({@link shipmentVerdict};
 * pass the shipment's history to `shipmentVerdict` for each breach's time and logger and the decider).
 */
export interface ShipmentStateWithVerdict extends ShipmentState {
  readonly verdict: ShipmentVerdict;
}

/** Raised when the shipment does not exist in the deployment. */
export class ShipmentNotFoundError extends Error {
  override readonly name = "ShipmentNotFoundError";
}

export interface ReadShipmentOptions {
  /** Block to read at; default the latest block. */
  readonly blockTag?: BlockTag;
}

const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000";

/** Converts the contract's profile struct to plain numbers. */
export function toTemperatureProfile(p: {
  minCentiC: bigint;
  maxCentiC: bigint;
  absoluteMinCentiC: bigint;
  absoluteMaxCentiC: bigint;
  freezeCentiC: bigint;
  maxFreezeSeconds: bigint;
  maxSingleExcursionSeconds: bigint;
  maxCumulativeExcursionSeconds: bigint;
  adaptationSeconds: bigint;
  maxGapIntervals: bigint;
  faultFlagMask: bigint;
  mktLimitCentiC: bigint;
  mktMinCoverageSeconds: bigint;
  mktEnabled: boolean;
}): TemperatureProfile {
  return {
    minCentiC: Number(p.minCentiC),
    maxCentiC: Number(p.maxCentiC),
    absoluteMinCentiC: Number(p.absoluteMinCentiC),
    absoluteMaxCentiC: Number(p.absoluteMaxCentiC),
    freezeCentiC: Number(p.freezeCentiC),
    maxFreezeSeconds: Number(p.maxFreezeSeconds),
    maxSingleExcursionSeconds: Number(p.maxSingleExcursionSeconds),
    maxCumulativeExcursionSeconds: Number(p.maxCumulativeExcursionSeconds),
    adaptationSeconds: Number(p.adaptationSeconds),
    maxGapIntervals: Number(p.maxGapIntervals),
    faultFlagMask: Number(p.faultFlagMask),
    mktLimitCentiC: Number(p.mktLimitCentiC),
    mktMinCoverageSeconds: Number(p.mktMinCoverageSeconds),
    mktEnabled: p.mktEnabled,
  };
}

/** Converts the contract's `DeviceEvidence` struct, with the logger's own MKT computed as the lens computes it. */
export function toDeviceEvidence(e: {
  mktWeightedSum: bigint;
  mktSeconds: bigint;
  cumulativeExcursionSeconds: bigint;
  breachPeriod: bigint;
  breachFlags: bigint;
}): DeviceEvidence {
  const mktSeconds = BigInt(e.mktSeconds);
  const mktWeightedSum = BigInt(e.mktWeightedSum);
  return {
    mktCentiC: mktSeconds === 0n ? undefined : onchainMktCentiC(mktWeightedSum, mktSeconds),
    mktSeconds: Number(mktSeconds),
    mktWeightedSum,
    cumulativeExcursionSeconds: Number(e.cumulativeExcursionSeconds),
    breachPeriod: Number(e.breachPeriod),
    breachFlags: Number(e.breachFlags),
    breaches: breachReasonsOf(e.breachFlags),
  };
}

/**
 * The full current state of `shipmentId`: status, parties, profile, devices (each with its own evidence: MKT and
 * cumulative excursion per logger), condition (with the pooled MKT), custody chain and liability per custodian, and
 * the verdict in words (`verdict`). Throws {@link ShipmentNotFoundError} for an unknown id.
 */
export async function readShipment(
  suite: ColdChainSuite,
  shipmentId: bigint | number,
  options: ReadShipmentOptions = {},
): Promise<ShipmentStateWithVerdict> {
  const id = BigInt(shipmentId);
  const provider = suite.runner.provider;
  if (provider == null) throw new Error("the suite's runner has no provider");
  const blockNumber =
    typeof options.blockTag === "number"
      ? options.blockTag
      : (await provider.getBlock(options.blockTag ?? "latest"))?.number;
  if (blockNumber === undefined) throw new Error(`block ${String(options.blockTag)} not found`);
  const at = { blockTag: blockNumber };
  const { coldChain, registry, lens } = suite;

  let info: Awaited<ReturnType<typeof coldChain.shipment>>;
  try {
    info = await coldChain.shipment(id, at);
  } catch (error) {
    const data = (error as { data?: unknown }).data;
    if (typeof data === "string" && coldChain.interface.parseError(data)?.name === "ShipmentUnknown") {
      throw new ShipmentNotFoundError(
        `shipment ${id} does not exist in the ${suite.deployment.network} deployment (ColdChain ${suite.deployment.contracts.ColdChain.address})`,
      );
    }
    if ((error as { code?: unknown }).code === "CALL_EXCEPTION") {
      throw new ShipmentNotFoundError(`shipment ${id} does not exist in the ${suite.deployment.network} deployment`);
    }
    throw error;
  }

  const [profile, periods, conditionRaw, mkt, offer, blockTime] = await Promise.all([
    coldChain.profile(info.profileId, at),
    coldChain.custodyHistory(id, at),
    coldChain.condition(id, at),
    lens.meanKineticTemperature(id, at),
    coldChain.custodyOffer(id, at),
    provider.getBlock(blockNumber).then((b) => b?.timestamp ?? 0),
  ]);
  const devices = await Promise.all(
    info.deviceIds.map(async (deviceId): Promise<ShipmentDevice> => {
      const [d, e] = await Promise.all([registry.device(deviceId, at), coldChain.deviceEvidence(id, deviceId, at)]);
      return {
        deviceId,
        owner: d.owner,
        keyType: deviceKeyTypeName(d.keyType),
        intervalSeconds: Number(d.intervalSeconds),
        revokedAtBlock: Number(d.revokedAtBlock),
        evidence: toDeviceEvidence(e),
      };
    }),
  );

  const statusFlags = Number(conditionRaw.statusFlags);
  const hasTemperature = (statusFlags & CONDITION_HAS_TEMPERATURE) !== 0;
  const firstBreach = breachReasonName(conditionRaw.firstBreach);
  const condition: ShipmentCondition = {
    readingCount: Number(conditionRaw.readingCount),
    hasTemperature,
    minCentiC: hasTemperature ? Number(conditionRaw.minCentiC) : undefined,
    maxCentiC: hasTemperature ? Number(conditionRaw.maxCentiC) : undefined,
    lastObservedAt: Number(conditionRaw.lastObservedAt),
    cumulativeExcursionSeconds: Number(conditionRaw.cumulativeExcursionSeconds),
    longestExcursionSeconds: Number(conditionRaw.longestExcursionSeconds),
    excursionActive: (statusFlags & CONDITION_EXCURSION_ACTIVE) !== 0,
    freezeActive: (statusFlags & CONDITION_FREEZE_ACTIVE) !== 0,
    excursionDevices: Number(conditionRaw.excursionDevices),
    freezeDevices: Number(conditionRaw.freezeDevices),
    mktAboveLimit: (statusFlags & CONDITION_MKT_ABOVE_LIMIT) !== 0,
    statusFlags,
    breachFlags: Number(conditionRaw.breachFlags),
    breaches: breachReasonsOf(conditionRaw.breachFlags),
    firstBreach: firstBreach === "None" ? undefined : firstBreach,
    firstBreachAt: Number(conditionRaw.firstBreachAt),
    mktCentiC: mkt.known ? Number(mkt.mktCentiC) : undefined,
    mktSeconds: Number(conditionRaw.mktSeconds),
  };

  const deliveredAt = Number(info.deliveredAt);
  const custody: CustodyPeriod[] = periods.map((p, index) => ({
    index,
    custodian: p.custodian,
    since: Number(p.since),
    until: index + 1 < periods.length ? Number(periods[index + 1]?.since) : undefined,
    excursionSeconds: Number(p.excursionSeconds),
    breachFlags: Number(p.breachFlags),
    breaches: breachReasonsOf(p.breachFlags),
  }));

  const parties = [...new Set(custody.map((p) => p.custodian))];
  const end = deliveredAt > 0 ? deliveredAt : Number(info.decidedAt) > 0 ? Number(info.decidedAt) : blockTime;
  const liability: CustodianLiability[] = parties.map((party) => {
    const own = custody.filter((p) => p.custodian === party);
    const flags = own.reduce((acc, p) => acc | p.breachFlags, 0);
    const heldSeconds = own.reduce((acc, p) => acc + Math.max(0, Math.min(p.until ?? end, end) - p.since), 0);
    return {
      custodian: party,
      periods: own.map((p) => p.index),
      excursionSeconds: own.reduce((acc, p) => acc + p.excursionSeconds, 0),
      breaches: breachReasonsOf(flags),
      heldSeconds,
    };
  });

  const state: ShipmentState = {
    shipmentId: id,
    blockNumber,
    status: shipmentStatusName(info.status),
    shipper: info.shipper,
    receiver: info.receiver,
    owner: info.owner,
    custodian: info.custodian,
    profileId: Number(info.profileId),
    profile: toTemperatureProfile(profile),
    createdAt: Number(info.createdAt),
    plannedStartAt: Number(info.plannedStartAt),
    startedAt: Number(info.startedAt),
    deliveredAt,
    decidedAt: Number(info.decidedAt),
    externalRef: info.externalRef,
    rejectionCode: info.rejectionCode,
    devices,
    condition,
    custody,
    liability,
    pendingOffer: offer.to === ZERO_ADDRESS ? undefined : { to: offer.to, deadline: Number(offer.deadline) },
  };
  return { ...state, verdict: shipmentVerdict(state) };
}
