/**
 * Every figure and verdict the dashboard writes in words: temperatures (°C with a true minus sign), ranges,
 * durations, dates, breach kinds, the verdict, the QA decision and its reason. One place, so the list, the page and
 * the chart say the same thing. Pure; unit-tested in test/app/shaping.test.ts.
 */
import { decodeBytes32String, ZeroHash } from "ethers";

import type { BreachReasonName, LifecycleEvent, ShipmentState, TemperatureProfile } from "../../../sdk/index.js";

/** "5 °C", "−18.5 °C", "8.12 °C" (U+2212 minus, at most two decimals, no trailing zeros). */
export function formatCelsius(centiC: number): string {
  const text = (Math.abs(centiC) / 100).toFixed(2).replace(/\.?0+$/, "");
  return `${centiC < 0 ? "\u2212" : ""}${text} °C`;
}

/** "2 °C to 8 °C", "−50 °C to −15 °C". */
export function formatRange(minCentiC: number, maxCentiC: number): string {
  return `${formatCelsius(minCentiC)} to ${formatCelsius(maxCentiC)}`;
}

/**
 * "1 h 10 min", "45 min", "30 s", "2 d 3 h": rounded to the nearest minute from one minute on, so 9 h 59 min 59 s
 * reads "10 h" like the period it belongs to.
 */
export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.max(0, Math.round(seconds))} s`;
  const minutes = Math.round(seconds / 60);
  const d = Math.floor(minutes / 1440);
  const h = Math.floor((minutes % 1440) / 60);
  const m = minutes % 60;
  if (d > 0) return `${d} d${h > 0 ? ` ${h} h` : ""}${m > 0 && d < 2 ? ` ${m} min` : ""}`;
  return h > 0 ? `${h} h${m > 0 ? ` ${m} min` : ""}` : `${m} min`;
}

/** "2026-12-07 03:10 UTC"; "—" for 0 (not yet). */
export function formatDate(unix: number): string {
  if (unix === 0) return "—";
  return new Date(unix * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

/** What each breach kind means, in a QA manager's words (short, for markers and the list). */
export const BREACH_WORDS: Readonly<Record<BreachReasonName, string>> = {
  None: "no breach",
  AbsoluteLimit: "temperature beyond the absolute limits",
  SingleExcursion: "excursion too long",
  CumulativeExcursion: "too much total excursion time",
  Freeze: "frozen too long",
  MissingData: "readings missing too long",
  DeviceFault: "logger fault or tampering",
  MktExceeded: "mean kinetic temperature too high",
};

/** The same, as a sentence (the page's breach list). */
export const BREACH_TEXT: Readonly<Record<BreachReasonName, string>> = {
  None: "no breach",
  AbsoluteLimit: "the temperature went beyond the absolute limit",
  SingleExcursion: "one excursion out of the allowed range lasted longer than allowed",
  CumulativeExcursion: "a logger's total time out of the allowed range exceeded the allowance",
  Freeze: "a logger stayed at or below the freezing threshold longer than allowed",
  MissingData: "a logger's readings were missing for longer than allowed",
  DeviceFault: "a logger reported a fault or tampering",
  MktExceeded: "a logger's mean kinetic temperature went above the limit",
};

/** "Excursion too long" */
export function breachWords(reason: BreachReasonName): string {
  const w = BREACH_WORDS[reason];
  return w.charAt(0).toUpperCase() + w.slice(1);
}

/** The verdict of the condition: "Compliant" or "Breached: excursion too long, frozen too long". */
export function verdictWords(breaches: readonly BreachReasonName[]): string {
  return breaches.length === 0 ? "Compliant" : `Breached: ${breaches.map((b) => BREACH_WORDS[b]).join(", ")}`;
}

/** Each rule of a profile in words; a rule that is off says "off". */
export function profileRules(p: TemperatureProfile): { rule: string; value: string }[] {
  const gap = p.maxGapIntervals === 0 ? "off" : `a breach after more than ${p.maxGapIntervals} missed intervals`;
  return [
    { rule: "Allowed range", value: formatRange(p.minCentiC, p.maxCentiC) },
    { rule: "Absolute limits", value: formatRange(p.absoluteMinCentiC, p.absoluteMaxCentiC) },
    {
      rule: "One excursion",
      value: p.maxSingleExcursionSeconds === 0 ? "off" : `a breach at ${formatDuration(p.maxSingleExcursionSeconds)}`,
    },
    {
      rule: "Total excursion per logger",
      value:
        p.maxCumulativeExcursionSeconds === 0
          ? "off"
          : `a breach at ${formatDuration(p.maxCumulativeExcursionSeconds)}`,
    },
    {
      rule: "Freezing",
      value:
        p.maxFreezeSeconds === 0
          ? "off"
          : `a breach at ${formatDuration(p.maxFreezeSeconds)} at or below ${formatCelsius(p.freezeCentiC)}`,
    },
    { rule: "Missing readings", value: gap },
    {
      rule: "Mean kinetic temperature per logger",
      value: p.mktEnabled ? `a breach above ${formatCelsius(p.mktLimitCentiC)}` : "off",
    },
    {
      rule: "Adaptation after start",
      value: p.adaptationSeconds === 0 ? "none" : `${formatDuration(p.adaptationSeconds)} not judged`,
    },
  ];
}

/** Reason codes the dashboard offers when rejecting, with their words (stored on chain as bytes32 text). */
export const REJECT_REASONS: Readonly<Record<string, string>> = {
  TEMPERATURE_EXCURSION: "temperature excursion",
  TEMPERATURE_BREACH: "temperature breach",
  MISSING_DATA: "temperature record incomplete",
  DEVICE_FAULT: "logger fault or tampering",
  DAMAGED: "goods or packaging damaged",
  DOCUMENTATION: "documentation incomplete",
  OTHER: "other reason",
};

/** A rejection code in words: the known codes' words, any other short text as it is, a hash as "unreadable code". */
export function reasonWords(code: string | undefined): string {
  if (code === undefined || code === ZeroHash) return "no reason given";
  let text: string;
  try {
    text = decodeBytes32String(code);
  } catch {
    return `unreadable code ${code.slice(0, 10)}… (not text)`;
  }
  const words = REJECT_REASONS[text];
  return words === undefined ? text : `${words} (${text})`;
}

/** The QA decision: released or rejected, by whom, when, why. */
export interface Decision {
  readonly kind: "released" | "rejected";
  readonly by: string;
  readonly at: number;
  readonly reasonCode: string | undefined;
  readonly reason: string;
  readonly transactionHash: string;
  readonly blockNumber: number;
}

/** The decision from a shipment's lifecycle events, undefined while undecided. */
export function decisionOf(lifecycle: readonly LifecycleEvent[]): Decision | undefined {
  const e = [...lifecycle].reverse().find((x) => x.kind === "released" || x.kind === "rejected");
  if (e === undefined) return undefined;
  return {
    kind: e.kind === "released" ? "released" : "rejected",
    by: e.by,
    at: e.at,
    reasonCode: e.reasonCode,
    reason: e.kind === "released" ? "" : reasonWords(e.reasonCode),
    transactionHash: e.transactionHash,
    blockNumber: e.blockNumber,
  };
}

/**
 * The shipment's business reference: the text of a bytes32 that holds one (what `cli shipment create --ref` and the
 * dashboard store, e.g. an SSCC), else undefined (a hash: only whoever made it can tell what it stands for).
 */
export function referenceText(externalRef: string): string | undefined {
  if (externalRef === ZeroHash) return undefined;
  try {
    const text = decodeBytes32String(externalRef);
    return /^[\x20-\x7e]+$/.test(text) ? text : undefined;
  } catch {
    return undefined;
  }
}

/** Who is liable for the recorded breaches (custodians with breaches charged), in custody order. */
export function liableParties(state: Pick<ShipmentState, "liability">): string[] {
  return state.liability.filter((l) => l.breaches.length > 0).map((l) => l.custodian);
}
