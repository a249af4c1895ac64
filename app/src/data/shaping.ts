/**
 * Pure data shaping for the dashboard: a shipment's history and state (from the SDK) turned into what the views
 * draw — the chart model (aligned series, bands, excursion shading, breach markers, gaps), the custody timeline
 * segments and the list rows. No DOM, no chain access: unit-tested in test/app/shaping.test.ts.
 */
import type {
  BreachReasonName,
  ShipmentHistory,
  ShipmentState,
  ShipmentStatusName,
  TemperatureTimeline,
} from "../../../sdk/index.js";

/** A value slot of an aligned series: a number, `null` for a missing-data gap (the line breaks), `undefined` when
 *  the device has no reading at that time (the line joins across it). */
export type SeriesValue = number | null | undefined;

export interface ChartSeries {
  readonly deviceId: bigint;
  readonly label: string;
  readonly values: readonly SeriesValue[];
}

export interface ShadedSpan {
  readonly from: number;
  readonly to: number;
  readonly deviceId: bigint;
}

export interface ExcursionSpan extends ShadedSpan {
  readonly direction: "high" | "low";
  readonly ongoing: boolean;
  readonly peakC: number;
}

export interface GapSpan extends ShadedSpan {
  readonly seconds: number;
}

export interface BreachMarker {
  /** Observation time of the reading that breached (unix seconds). */
  readonly at: number;
  readonly reason: BreachReasonName;
  /** The rule it broke, in the SDK's words: "Single excursion: outside 2 °C to 8 °C for 1 h or more at a stretch". */
  readonly label: string;
  readonly custodian: string;
  readonly periodIndex: number;
  readonly deviceId: bigint;
  readonly transactionHash: string;
}

export interface ChartModel {
  /** Unix seconds, ascending, shared by every series. */
  readonly x: readonly number[];
  readonly series: readonly ChartSeries[];
  /** Allowed range and absolute limits (°C). */
  readonly minC: number;
  readonly maxC: number;
  readonly absoluteMinC: number;
  readonly absoluteMaxC: number;
  readonly excursions: readonly ExcursionSpan[];
  readonly gaps: readonly GapSpan[];
  readonly breaches: readonly BreachMarker[];
  /** Time domain of the chart and of the custody timeline under it. */
  readonly xMin: number;
  readonly xMax: number;
  /** A y range that shows the readings and the allowed range. */
  readonly yMin: number;
  readonly yMax: number;
  readonly readingCount: number;
}

import { shipmentVerdict, CONDITION_WORDS } from "../../../sdk/index.js";
import type { VerdictDecision, VerdictHistory } from "../../../sdk/index.js";
import { breachRuleText, formatDuration, formatRange, liableParties, referenceText } from "./words.js";

export { formatDuration };

/** "Device 7" */
export function deviceLabel(deviceId: bigint): string {
  return `Device ${deviceId.toString()}`;
}

/**
 * The chart model of a shipment. `timeline` is the SDK's {@link TemperatureTimeline} of `history`; `now` (unix
 * seconds) ends the time domain of a shipment still under way.
 */
export function buildChartModel(history: ShipmentHistory, timeline: TemperatureTimeline, now: number): ChartModel {
  const p = history.profile;
  // One extra x point inside each gap carries a null so the device's line breaks there.
  const gapPoints = timeline.devices.map((d) => new Set(d.gaps.map((g) => g.from + 1)));
  const xs = new Set<number>();
  for (const [i, d] of timeline.devices.entries()) {
    for (const t of d.times) xs.add(t);
    for (const t of gapPoints[i] ?? []) xs.add(t);
  }
  const x = [...xs].sort((a, b) => a - b);
  const index = new Map(x.map((t, i) => [t, i]));
  let lo = Infinity;
  let hi = -Infinity;
  const series = timeline.devices.map((d, di): ChartSeries => {
    const values: SeriesValue[] = new Array<SeriesValue>(x.length).fill(undefined);
    for (let i = 0; i < d.times.length; i++) {
      const t = d.times[i] as number;
      const v = d.tempsC[i] as number;
      values[index.get(t) as number] = v;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    for (const t of gapPoints[di] ?? []) {
      const at = index.get(t) as number;
      if (values[at] === undefined) values[at] = null;
    }
    return { deviceId: d.deviceId, label: deviceLabel(d.deviceId), values };
  });

  const minC = p.minCentiC / 100;
  const maxC = p.maxCentiC / 100;
  const first = x[0];
  const last = x[x.length - 1];
  const end =
    history.deliveredAt > 0 ? history.deliveredAt : Math.max(now, last ?? history.createdAt, history.createdAt);
  const xMin = Math.min(history.createdAt, first ?? history.createdAt);
  const xMax = Math.max(end, last ?? end, xMin + 60);
  const readingCount = timeline.devices.reduce((acc, d) => acc + d.times.length, 0);
  const pad = 1;
  return {
    x,
    series,
    minC,
    maxC,
    absoluteMinC: p.absoluteMinCentiC / 100,
    absoluteMaxC: p.absoluteMaxCentiC / 100,
    excursions: history.excursions.map((e) => ({
      from: e.startedAt,
      to: e.endedAt,
      deviceId: e.deviceId,
      direction: e.direction,
      ongoing: e.ongoing,
      peakC: e.peakCentiC / 100,
    })),
    gaps: timeline.devices.flatMap((d) =>
      d.gaps.map((g) => ({ from: g.from, to: g.to, seconds: g.seconds, deviceId: d.deviceId })),
    ),
    breaches: history.breaches.map((b) => ({
      at: b.observedAt,
      reason: b.reason,
      label: breachRuleText(b.reason, p),
      custodian: b.custodian,
      periodIndex: b.periodIndex,
      deviceId: b.deviceId,
      transactionHash: b.transactionHash,
    })),
    xMin,
    xMax,
    yMin: Math.floor(Math.min(lo, minC) - pad),
    yMax: Math.ceil(Math.max(hi, maxC) + pad),
    readingCount,
  };
}

export interface CustodySegment {
  readonly index: number;
  readonly custodian: string;
  readonly from: number;
  readonly to: number;
  /** Still holding it (open shipment, last period). */
  readonly current: boolean;
  readonly excursionSeconds: number;
  readonly breaches: readonly BreachReasonName[];
  /** Answerable for a breach during this period. */
  readonly liable: boolean;
  /** The handover transaction that began the period (the creation for period 0). */
  readonly transactionHash: string | undefined;
  /** Share of the chart's time domain, for drawing under the chart (0..1). */
  readonly left: number;
  readonly width: number;
}

/**
 * Custody periods as segments on the chart's time axis [`xMin`, `xMax`]: who held it when, the excursion time and
 * breaches charged to each period, and the handover transaction.
 */
export function custodySegments(
  state: ShipmentState,
  history: ShipmentHistory,
  xMin: number,
  xMax: number,
): CustodySegment[] {
  const span = Math.max(1, xMax - xMin);
  const closed = state.deliveredAt > 0 || state.decidedAt > 0;
  const end = state.deliveredAt > 0 ? state.deliveredAt : state.decidedAt > 0 ? state.decidedAt : xMax;
  const created = history.lifecycle.find((e) => e.kind === "created");
  return state.custody.map((period, i): CustodySegment => {
    const from = Math.max(xMin, period.since);
    const isLast = i === state.custody.length - 1;
    const to = Math.min(xMax, period.until ?? (isLast ? end : xMax));
    const handover = history.custody.find((h) => h.periodIndex === period.index);
    const clampedFrom = Math.min(Math.max(from, xMin), xMax);
    const clampedTo = Math.max(clampedFrom, Math.min(to, xMax));
    return {
      index: period.index,
      custodian: period.custodian,
      from: period.since,
      to: period.until ?? (isLast ? end : xMax),
      current: isLast && !closed,
      excursionSeconds: period.excursionSeconds,
      breaches: period.breaches,
      liable: period.breaches.length > 0,
      transactionHash: handover?.transactionHash ?? (period.index === 0 ? created?.transactionHash : undefined),
      left: (clampedFrom - xMin) / span,
      width: (clampedTo - clampedFrom) / span,
    };
  });
}

/** The badge a shipment wears in the list (the vocabulary). */
export type StatusBadge = "created" | "in transit" | "delivered" | "released" | "rejected" | "cancelled";

export function statusBadge(status: ShipmentStatusName): StatusBadge {
  switch (status) {
    case "None":
    case "Created":
      return "created";
    case "InTransit":
      return "in transit";
    case "Delivered":
      return "delivered";
    case "Released":
      return "released";
    case "Rejected":
      return "rejected";
    case "Cancelled":
      return "cancelled";
  }
}

/** Filter values of the list: a badge, or "breached" (any breach recorded). */
export type StatusFilter = StatusBadge | "breached" | "all";

export interface ShipmentRow {
  readonly shipmentId: bigint;
  readonly badge: StatusBadge;
  readonly breached: boolean;
  readonly breaches: readonly BreachReasonName[];
  readonly custodian: string;
  readonly shipper: string;
  readonly receiver: string;
  readonly owner: string;
  /** Everyone who held it. */
  readonly custodians: readonly string[];
  /** Unix seconds of the latest reading, 0 before any. */
  readonly lastObservedAt: number;
  readonly readingCount: number;
  /** Down-sampled temperatures (°C) of the first device, for the sparkline. */
  readonly spark: readonly number[];
  readonly minC: number;
  readonly maxC: number;
  readonly externalRef: string;
  /** The reference as text (an SSCC, …), undefined when the chain holds a hash. */
  readonly reference: string | undefined;
  /** The allowed range of the rule profile, in words ("2 °C to 8 °C"). */
  readonly range: string;
  readonly profileId: number;
  /** The condition in the SDK's words: "compliant", "breached", "no temperature evaluated yet". */
  readonly verdict: string;
  /** The SDK's one-line verdict: "Rejected — breached: Single excursion — liable: carrier — reason: …". */
  readonly summary: string;
  /** The first breach and its observation time (0 while compliant). */
  readonly firstBreach: BreachReasonName | undefined;
  readonly firstBreachAt: number;
  /** Custodians liable for the recorded breaches, in custody order. */
  readonly liable: readonly string[];
  /** The QA decision, undefined while undecided. */
  readonly decision: VerdictDecision | undefined;
}

/**
 * A list row from a shipment's state, its history (for the verdict's breach times and the decider) and (for the
 * sparkline) its timeline; `names` gives parties' display names for the verdict's summary.
 */
export function shipmentRow(
  state: ShipmentState,
  timeline: TemperatureTimeline | undefined,
  history?: VerdictHistory,
  names?: (address: string) => string,
): ShipmentRow {
  const first = timeline?.devices[0];
  const verdict = shipmentVerdict(state, history, names);
  return {
    shipmentId: state.shipmentId,
    badge: statusBadge(state.status),
    breached: state.condition.breaches.length > 0,
    breaches: state.condition.breaches,
    custodian: state.custodian,
    shipper: state.shipper,
    receiver: state.receiver,
    owner: state.owner,
    custodians: [...new Set(state.custody.map((p) => p.custodian))],
    lastObservedAt: state.condition.lastObservedAt,
    readingCount: state.condition.readingCount,
    spark: first === undefined ? [] : downsample(first.tempsC, 48),
    minC: state.profile.minCentiC / 100,
    maxC: state.profile.maxCentiC / 100,
    externalRef: state.externalRef,
    reference: referenceText(state.externalRef),
    range: formatRange(state.profile.minCentiC, state.profile.maxCentiC),
    profileId: state.profileId,
    verdict: CONDITION_WORDS[verdict.condition],
    summary: verdict.summary,
    firstBreach: state.condition.firstBreach,
    firstBreachAt: state.condition.firstBreachAt,
    liable: liableParties(state),
    decision: verdict.decision,
  };
}

/** Filter on the verdict: compliant or breached rows only. */
export type VerdictFilter = "all" | "compliant" | "breached";

/**
 * Whether a row passes the status filter, the party filter (part of an address, case-insensitive, or of a party's
 * name from `names`; empty = any) and the verdict filter.
 */
export function matchesFilter(
  row: ShipmentRow,
  status: StatusFilter,
  party: string,
  verdict: VerdictFilter = "all",
  names: (address: string) => string = () => "",
): boolean {
  if (status === "breached" ? !row.breached : status !== "all" && row.badge !== status) return false;
  if (verdict === "breached" && !row.breached) return false;
  if (verdict === "compliant" && row.breached) return false;
  const q = party.trim().toLowerCase();
  if (q === "") return true;
  return [row.shipper, row.receiver, row.owner, row.custodian, ...row.custodians, ...row.liable].some(
    (a) => a.toLowerCase().includes(q) || names(a).toLowerCase().includes(q),
  );
}

/** Sort keys of the list. */
export type SortKey = "newest" | "verdict" | "liable" | "status" | "reference";

const STATUS_ORDER: readonly StatusBadge[] = [
  "delivered",
  "in transit",
  "created",
  "rejected",
  "released",
  "cancelled",
];

/**
 * The rows sorted by `key` (stable; newest first within equal keys): "verdict" puts breached first (earliest breach
 * first), "liable" by the liable party's name (unliable last), "status" delivered (awaiting a decision) first,
 * "reference" alphabetically (hashed references last).
 */
export function sortRows(
  rows: readonly ShipmentRow[],
  key: SortKey,
  names: (address: string) => string = (a) => a,
): ShipmentRow[] {
  const newest = (a: ShipmentRow, b: ShipmentRow) =>
    a.shipmentId > b.shipmentId ? -1 : a.shipmentId < b.shipmentId ? 1 : 0;
  const text = (a: string | undefined, b: string | undefined) =>
    a === b ? 0 : a === undefined ? 1 : b === undefined ? -1 : a.localeCompare(b);
  const liableName = (r: ShipmentRow) => (r.liable.length === 0 ? undefined : r.liable.map(names).join(", "));
  const by: Record<SortKey, (a: ShipmentRow, b: ShipmentRow) => number> = {
    newest: () => 0,
    verdict: (a, b) =>
      Number(b.breached) - Number(a.breached) || (a.breached && b.breached ? a.firstBreachAt - b.firstBreachAt : 0),
    liable: (a, b) => text(liableName(a), liableName(b)),
    status: (a, b) => STATUS_ORDER.indexOf(a.badge) - STATUS_ORDER.indexOf(b.badge),
    reference: (a, b) => text(a.reference, b.reference),
  };
  return [...rows].sort((a, b) => by[key](a, b) || newest(a, b));
}

/** At most `points` values: the mean of each bucket (keeps the sparkline cheap for 10,000 readings). */
export function downsample(values: readonly number[], points: number): number[] {
  if (values.length <= points) return [...values];
  const out: number[] = [];
  const size = values.length / points;
  for (let b = 0; b < points; b++) {
    const from = Math.floor(b * size);
    const to = Math.max(from + 1, Math.floor((b + 1) * size));
    let sum = 0;
    for (let i = from; i < to; i++) sum += values[i] as number;
    out.push(sum / (to - from));
  }
  return out;
}

/** SVG polyline points of a sparkline in a `width` x `height` box; `band` widens the y range to include it. */
export function sparklinePoints(
  values: readonly number[],
  width: number,
  height: number,
  band?: { minC: number; maxC: number },
): string {
  if (values.length === 0) return "";
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (band !== undefined) {
    lo = Math.min(lo, band.minC);
    hi = Math.max(hi, band.maxC);
  }
  const span = hi - lo || 1;
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  return values.map((v, i) => `${(i * step).toFixed(1)},${(height - ((v - lo) / span) * height).toFixed(1)}`).join(" ");
}

/** "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago"; "no readings" for 0. */
export function formatAge(observedAt: number, now: number): string {
  if (observedAt === 0) return "no readings";
  const s = Math.max(0, now - observedAt);
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** "0x1234…abcd" */
export function shortAddress(address: string): string {
  return address.length > 12 ? `${address.slice(0, 6)}…${address.slice(-4)}` : address;
}

/** Approximate width (px) of a breach marker's text at 12 px bold. */
export const markerWidth = (text: string) => 20 + text.length * 7;
const LANE_GAP_PX = 6;

/**
 * Lanes for breach markers so that none covers another: each marker (sorted by x) goes to the first lane whose last
 * marker ends left of it. Returns the lane of each input marker.
 */
export function markerLanes(markers: readonly { x: number; text: string }[]): number[] {
  const order = markers.map((m, i) => i).sort((a, b) => (markers[a]?.x ?? 0) - (markers[b]?.x ?? 0));
  const ends: number[] = [];
  const lanes = new Array<number>(markers.length).fill(0);
  for (const i of order) {
    const m = markers[i] as { x: number; text: string };
    const half = markerWidth(m.text) / 2;
    let lane = ends.findIndex((end) => end + LANE_GAP_PX <= m.x - half);
    if (lane === -1) lane = ends.length;
    ends[lane] = m.x + half;
    lanes[i] = lane;
  }
  return lanes;
}
