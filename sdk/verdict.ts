/**
 * A shipment's verdict as data and in words: where it stands (in transit, awaiting the QA decision, released,
 * rejected, cancelled), whether its record is compliant or breached, each breach (what rule, when, on which logger,
 * who had custody and is liable, for how long), the liable parties, and the QA decision (who, when, where on chain,
 * why, with the note). Pure functions over what {@link readShipment} returns, refined by {@link shipmentHistory}
 * when given (breach times per logger, the decision's transaction and note). Browser-safe.
 */
import { formatCelsius, formatCelsiusRange, formatDateTime, formatDuration, formatIsoTime } from "./format.js";
import type { ShipmentHistory, Excursion } from "./history.js";
import type { BreachReasonName, ShipmentStatusName } from "./names.js";
import { decodeDecisionReason } from "./reasons.js";
import type { DecisionReason } from "./reasons.js";
import type { ShipmentState, TemperatureProfile } from "./state.js";

/** Where the shipment stands. */
export type VerdictStage = "not-started" | "in-transit" | "awaiting-decision" | "released" | "rejected" | "cancelled";

/** What the temperature record says: no evaluated reading yet, every rule kept, or at least one breach. */
export type VerdictCondition = "no-data" | "compliant" | "breached";

/** A point in time, as unix seconds and ISO 8601 UTC. */
export interface VerdictTime {
  readonly unix: number;
  readonly iso: string;
}

/** One breach of a rule, charged to the custodian of the custody period it happened in. */
export interface VerdictBreach {
  readonly kind: BreachReasonName;
  /** The rule in words with the profile's figures: "Freeze: at or below −0.5 °C for 30 min or more". */
  readonly rule: string;
  /**
   * Observation time of the reading that broke the rule (history: `BreachRecorded.observedAt`; state only: known
   * for the shipment's first breach). Undefined when the state alone does not say.
   */
  readonly at: VerdictTime | undefined;
  /**
   * From the history's readings: the start of the out-of-range run the breach belongs to (range, absolute-limit and
   * freeze kinds), or of the gap (MissingData: the logger's previous reading; unknown when the gap began at the start).
   */
  readonly runStartedAt: VerdictTime | undefined;
  /** Length of that run or gap (seconds), when known. */
  readonly runSeconds: number | undefined;
  /** The logger whose reading broke the rule (history only). */
  readonly deviceId: bigint | undefined;
  /** Custody period and its custodian: the liable party. */
  readonly periodIndex: number;
  readonly liable: string;
  /** Excursion seconds charged to that custody period. */
  readonly periodExcursionSeconds: number;
  /** Where the breach was recorded on chain (history only). */
  readonly blockNumber: number | undefined;
  readonly transactionHash: string | undefined;
}

/** A party answerable for breaches, with its time. */
export interface VerdictLiableParty {
  readonly party: string;
  readonly breaches: readonly BreachReasonName[];
  /** Seconds the party held the shipment and excursion seconds charged to it. */
  readonly heldSeconds: number;
  readonly excursionSeconds: number;
  readonly periods: readonly number[];
}

/** The QA decision on a delivered shipment. */
export interface VerdictDecision {
  readonly outcome: "released" | "rejected";
  readonly at: VerdictTime;
  /** Who decided (the receiver or QA); history only. */
  readonly by: string | undefined;
  readonly blockNumber: number | undefined;
  readonly transactionHash: string | undefined;
  /** The reason code in words (rejections). */
  readonly reason: DecisionReason | undefined;
  /** The free-text note recorded with the decision (`DecisionNoted`), if any. */
  readonly note: string | undefined;
}

export interface ShipmentVerdict {
  readonly stage: VerdictStage;
  readonly condition: VerdictCondition;
  /** One line: "Rejected — breached: Missing data, liable: 0xabc…". */
  readonly summary: string;
  /** In time order where times are known, else by custody period. */
  readonly breaches: readonly VerdictBreach[];
  readonly liable: readonly VerdictLiableParty[];
  readonly decision: VerdictDecision | undefined;
}

/** What {@link shipmentVerdict} reads from the state. */
export type VerdictState = Pick<
  ShipmentState,
  "status" | "profile" | "custody" | "liability" | "condition" | "decidedAt" | "rejectionCode"
>;

/** The history events the verdict refines itself with (a {@link ShipmentHistory} fits). */
export type VerdictHistory = Pick<ShipmentHistory, "breaches" | "lifecycle" | "excursions" | "readings">;

/** A breach kind's short name: "Missing data". */
export const BREACH_KIND_WORDS: Readonly<Record<BreachReasonName, string>> = {
  None: "None",
  AbsoluteLimit: "Absolute limit",
  SingleExcursion: "Single excursion",
  CumulativeExcursion: "Cumulative excursion",
  Freeze: "Freeze",
  MissingData: "Missing data",
  DeviceFault: "Device fault",
  MktExceeded: "MKT exceeded",
};

/** The rule a breach kind broke, in words with the profile's figures. */
export function breachRuleText(kind: BreachReasonName, profile: TemperatureProfile): string {
  const range = formatCelsiusRange(profile.minCentiC, profile.maxCentiC);
  switch (kind) {
    case "AbsoluteLimit":
      return `Absolute limit: below ${formatCelsius(profile.absoluteMinCentiC)} or above ${formatCelsius(profile.absoluteMaxCentiC)}`;
    case "SingleExcursion":
      return `Single excursion: outside ${range} for ${formatDuration(profile.maxSingleExcursionSeconds)} or more at a stretch`;
    case "CumulativeExcursion":
      return `Cumulative excursion: outside ${range} for ${formatDuration(profile.maxCumulativeExcursionSeconds)} or more in total on one logger`;
    case "Freeze":
      return `Freeze: at or below ${formatCelsius(profile.freezeCentiC)} for ${formatDuration(profile.maxFreezeSeconds)} or more`;
    case "MissingData":
      return `Missing data: a gap of more than ${profile.maxGapIntervals} reading intervals`;
    case "DeviceFault":
      return "Device fault: the logger flagged a fault";
    case "MktExceeded":
      return `MKT exceeded: a logger's mean kinetic temperature above ${formatCelsius(profile.mktLimitCentiC)}`;
    case "None":
      return "None";
  }
}

function time(unix: number): VerdictTime {
  return { unix, iso: formatIsoTime(unix) };
}

function stageOf(status: ShipmentStatusName): VerdictStage {
  switch (status) {
    case "None":
    case "Created":
      return "not-started";
    case "InTransit":
      return "in-transit";
    case "Delivered":
      return "awaiting-decision";
    case "Released":
      return "released";
    case "Rejected":
      return "rejected";
    case "Cancelled":
      return "cancelled";
  }
}

/** The stage in words: "in transit", "delivered, awaiting the QA decision", … */
export const STAGE_WORDS: Readonly<Record<VerdictStage, string>> = {
  "not-started": "not started",
  "in-transit": "in transit",
  "awaiting-decision": "delivered, awaiting the QA decision",
  released: "released",
  rejected: "rejected",
  cancelled: "cancelled",
};

/** The condition in words. */
export const CONDITION_WORDS: Readonly<Record<VerdictCondition, string>> = {
  "no-data": "no temperature evaluated yet",
  compliant: "compliant",
  breached: "breached",
};

/** The history's out-of-range run of `deviceId` that contains `observedAt`, for range-kind breaches. */
function runOf(excursions: readonly Excursion[], deviceId: bigint, observedAt: number): Excursion | undefined {
  return excursions.find((e) => e.deviceId === deviceId && e.startedAt <= observedAt && observedAt <= e.endedAt);
}

const RUN_KINDS: ReadonlySet<BreachReasonName> = new Set([
  "AbsoluteLimit",
  "SingleExcursion",
  "CumulativeExcursion",
  "Freeze",
]);

/** The gap a MissingData breach closed: from the logger's previous reading before `observedAt` to it. */
function gapOf(
  readings: VerdictHistory["readings"],
  deviceId: bigint,
  observedAt: number,
): { from: number; seconds: number } | undefined {
  let previous: number | undefined;
  for (const r of readings) {
    if (r.deviceId !== deviceId || r.observedAt >= observedAt) continue;
    if (previous === undefined || r.observedAt > previous) previous = r.observedAt;
  }
  return previous === undefined ? undefined : { from: previous, seconds: observedAt - previous };
}

/** Shortens an address for a summary line: "0x1234…abcd". */
export function shortAddress(address: string): string {
  return address.length > 12 ? `${address.slice(0, 6)}…${address.slice(-4)}` : address;
}

/**
 * The verdict of a shipment from its state, refined by its history when given (each breach's time, logger and
 * transaction, the decision's decider, transaction and note). `names` maps addresses to display names for the
 * summary (default: shortened addresses).
 */
export function shipmentVerdict(
  state: VerdictState,
  history?: VerdictHistory,
  names: (address: string) => string = shortAddress,
): ShipmentVerdict {
  const stage = stageOf(state.status);
  const periodOf = (index: number) => state.custody[index];
  let breaches: VerdictBreach[];
  if (history !== undefined) {
    breaches = history.breaches.map((b): VerdictBreach => {
      const run = RUN_KINDS.has(b.reason)
        ? runOf(history.excursions, b.deviceId, b.observedAt)
        : b.reason === "MissingData"
          ? gapOf(history.readings, b.deviceId, b.observedAt)
          : undefined;
      const from = run === undefined ? undefined : "startedAt" in run ? run.startedAt : run.from;
      return {
        kind: b.reason,
        rule: breachRuleText(b.reason, state.profile),
        at: time(b.observedAt),
        runStartedAt: from === undefined ? undefined : time(from),
        runSeconds: run === undefined ? undefined : "durationSeconds" in run ? run.durationSeconds : run.seconds,
        deviceId: b.deviceId,
        periodIndex: b.periodIndex,
        liable: b.custodian,
        periodExcursionSeconds: periodOf(b.periodIndex)?.excursionSeconds ?? 0,
        blockNumber: b.blockNumber,
        transactionHash: b.transactionHash,
      };
    });
    breaches.sort((a, b) => (a.at?.unix ?? 0) - (b.at?.unix ?? 0) || a.periodIndex - b.periodIndex);
  } else {
    const first = state.condition.firstBreach;
    const firstAt = state.condition.firstBreachAt;
    // The first breach's period: the last one that began at or before its time and has that kind.
    const firstPeriod =
      first === undefined
        ? undefined
        : [...state.custody].reverse().find((p) => p.since <= firstAt && p.breaches.includes(first))?.index;
    breaches = state.custody.flatMap((p) =>
      p.breaches.map((kind): VerdictBreach => ({
        kind,
        rule: breachRuleText(kind, state.profile),
        at: kind === first && p.index === firstPeriod ? time(firstAt) : undefined,
        runStartedAt: undefined,
        runSeconds: undefined,
        deviceId: undefined,
        periodIndex: p.index,
        liable: p.custodian,
        periodExcursionSeconds: p.excursionSeconds,
        blockNumber: undefined,
        transactionHash: undefined,
      })),
    );
  }

  const liable: VerdictLiableParty[] = state.liability
    .filter((l) => l.breaches.length > 0)
    .map((l) => ({
      party: l.custodian,
      breaches: l.breaches,
      heldSeconds: l.heldSeconds,
      excursionSeconds: l.excursionSeconds,
      periods: l.periods,
    }));

  const condition: VerdictCondition =
    state.condition.breaches.length > 0 ? "breached" : state.condition.hasTemperature ? "compliant" : "no-data";

  let decision: VerdictDecision | undefined;
  if (state.status === "Released" || state.status === "Rejected") {
    const outcome = state.status === "Released" ? "released" : "rejected";
    const event = history?.lifecycle.find((e) => e.kind === outcome);
    const note = event?.note;
    decision = {
      outcome,
      at: time(state.decidedAt),
      by: event?.by,
      blockNumber: event?.blockNumber,
      transactionHash: event?.transactionHash,
      reason: outcome === "rejected" ? decodeDecisionReason(state.rejectionCode) : undefined,
      note,
    };
  }

  return {
    stage,
    condition,
    summary: verdictSummary(stage, condition, breaches, liable, decision, names),
    breaches,
    liable,
    decision,
  };
}

function verdictSummary(
  stage: VerdictStage,
  condition: VerdictCondition,
  breaches: readonly VerdictBreach[],
  liable: readonly VerdictLiableParty[],
  decision: VerdictDecision | undefined,
  names: (address: string) => string,
): string {
  const head = STAGE_WORDS[stage];
  const parts = [`${head.charAt(0).toUpperCase()}${head.slice(1)}`];
  if (condition === "breached") {
    const kinds = [...new Set(breaches.map((b) => BREACH_KIND_WORDS[b.kind]))];
    parts.push(`breached: ${kinds.join(", ")}`);
    if (liable.length > 0) parts.push(`liable: ${liable.map((l) => names(l.party)).join(", ")}`);
  } else {
    parts.push(CONDITION_WORDS[condition]);
  }
  if (decision?.reason !== undefined) parts.push(`reason: ${decision.reason.text}`);
  return parts.join(" — ");
}

/**
 * A breach in one line: "Freeze: at or below −0.5 °C for 30 min or more — at 2026-12-07 03:00:00 UTC on logger
 * 101 — liable: Carrier (period 1)".
 */
export function breachText(
  breach: VerdictBreach,
  names: (address: string) => string = shortAddress,
  timeZone = "UTC",
): string {
  const parts = [breach.rule];
  if (breach.at !== undefined) parts.push(`at ${formatDateTime(breach.at.unix, { timeZone })}`);
  if (breach.deviceId !== undefined) parts.push(`on logger ${breach.deviceId}`);
  if (breach.runStartedAt !== undefined && breach.runSeconds !== undefined) {
    const what = breach.kind === "MissingData" ? "no reading" : "out of range";
    parts.push(
      `${what} from ${formatDateTime(breach.runStartedAt.unix, { timeZone })} for ${formatDuration(breach.runSeconds)}`,
    );
  }
  parts.push(`liable: ${names(breach.liable)} (custody period ${breach.periodIndex})`);
  return parts.join(" — ");
}

/** The decision in words: "rejected by 0x… at 2026-12-07 … UTC (block 322, tx 0x…) — reason: …— note: …". */
export function decisionText(
  decision: VerdictDecision,
  names: (address: string) => string = shortAddress,
  timeZone = "UTC",
): string {
  let head = decision.outcome;
  if (decision.by !== undefined) head += ` by ${names(decision.by)}`;
  head += ` at ${formatDateTime(decision.at.unix, { timeZone })}`;
  if (decision.blockNumber !== undefined) {
    head += ` (block ${decision.blockNumber}${decision.transactionHash === undefined ? "" : `, tx ${decision.transactionHash}`})`;
  }
  const parts = [head];
  if (decision.reason !== undefined) parts.push(`reason: ${decision.reason.code} — ${decision.reason.text}`);
  if (decision.note !== undefined) parts.push(`note: "${decision.note}"`);
  return parts.join(" — ");
}

/**
 * A rule profile in words, one line per rule, disabled rules said to be off: "Allowed range: 2 °C to 8 °C",
 * "Single excursion: off", "Freeze: at or below −0.5 °C for 30 min or more is a breach", …
 */
export function describeProfile(profile: TemperatureProfile): string[] {
  const range = formatCelsiusRange(profile.minCentiC, profile.maxCentiC);
  const on = (seconds: number, text: string): string => (seconds === 0 ? "off" : text);
  return [
    `Allowed range: ${range}`,
    `Absolute limits: a reading below ${formatCelsius(profile.absoluteMinCentiC)} or above ${formatCelsius(profile.absoluteMaxCentiC)} is a breach`,
    `Single excursion: ${on(profile.maxSingleExcursionSeconds, `outside the range for ${formatDuration(profile.maxSingleExcursionSeconds)} or more at a stretch is a breach`)}`,
    `Cumulative excursion: ${on(profile.maxCumulativeExcursionSeconds, `outside the range for ${formatDuration(profile.maxCumulativeExcursionSeconds)} or more in total on one logger is a breach`)}`,
    `Freeze: ${on(profile.maxFreezeSeconds, `at or below ${formatCelsius(profile.freezeCentiC)} for ${formatDuration(profile.maxFreezeSeconds)} or more is a breach`)}`,
    `Missing data: ${on(profile.maxGapIntervals, `a gap of more than ${profile.maxGapIntervals} reading intervals is a breach`)}`,
    `Device fault: ${on(profile.faultFlagMask, `a reading with a fault flag (mask 0x${profile.faultFlagMask.toString(16)}) is a breach`)}`,
    `MKT: ${
      profile.mktEnabled
        ? `a logger's mean kinetic temperature above ${formatCelsius(profile.mktLimitCentiC)} is a breach once it covers ${formatDuration(profile.mktMinCoverageSeconds)}`
        : "off"
    }`,
    `Adaptation: ${profile.adaptationSeconds === 0 ? "none" : `readings in the first ${formatDuration(profile.adaptationSeconds)} after the start are not judged`}`,
  ];
}
