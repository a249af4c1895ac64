/**
 * The dashboard's words for figures, verdicts and decisions: the SDK's (sdk/format.ts, sdk/verdict.ts,
 * sdk/reasons.ts), so that the list, the page, the CLI and the reports say the same thing. What is here only adapts
 * them to the page (a "—" for a time not yet reached, minutes without seconds) or covers what the SDK does not word
 * (the shipment reference, the rules of a profile as a list). Pure; unit-tested in test/app/shaping.test.ts.
 */
import { decodeBytes32String, ZeroHash } from "ethers";

import {
  BREACH_REASONS,
  BREACH_KIND_WORDS,
  breachRuleText,
  formatCelsius,
  formatCelsiusRange,
  formatDateTime,
  formatDuration,
  formatLimitSeconds,
} from "../../../sdk/index.js";
import type { BreachReasonName, ShipmentState, TemperatureProfile } from "../../../sdk/index.js";

export { BREACH_KIND_WORDS, breachRuleText, formatCelsius, formatDuration };

/** "2 °C to 8 °C", "−50 °C to −15 °C" (the SDK's range). */
export const formatRange = (minCentiC: number, maxCentiC: number): string => formatCelsiusRange(minCentiC, maxCentiC);

/** "2026-12-07 03:10 UTC" (the SDK's date, to the minute); "—" for 0 (not yet). */
export function formatDate(unix: number): string {
  return unix === 0 ? "—" : formatDateTime(unix, { minutes: true });
}

/** Breach kinds in words, joined: "Single excursion, Absolute limit". */
export function breachKinds(kinds: readonly BreachReasonName[]): string {
  return kinds.map((k) => BREACH_KIND_WORDS[k]).join(", ");
}

/** Whether a profile's rule for a breach kind is on (the contracts' convention: 0 = off). */
export function ruleIsOn(kind: BreachReasonName, p: TemperatureProfile): boolean {
  switch (kind) {
    case "SingleExcursion":
      return p.maxSingleExcursionSeconds !== 0;
    case "CumulativeExcursion":
      return p.maxCumulativeExcursionSeconds !== 0;
    case "Freeze":
      return p.maxFreezeSeconds !== 0;
    case "MissingData":
      return p.maxGapIntervals !== 0;
    case "DeviceFault":
      return p.faultFlagMask !== 0;
    case "MktExceeded":
      return p.mktEnabled;
    case "AbsoluteLimit":
      return true;
    case "None":
      return false;
  }
}

/** The rules a profile has: every breach reason but "None", in the contract's order. */
const RULE_KINDS = BREACH_REASONS.filter((kind): kind is Exclude<BreachReasonName, "None"> => kind !== "None");

/** Each rule of a profile in words (the SDK's rule text); a rule that is off says "off". */
export function profileRules(p: TemperatureProfile): { rule: string; value: string }[] {
  return [
    { rule: "Allowed range", value: formatRange(p.minCentiC, p.maxCentiC) },
    ...RULE_KINDS.map((kind) => {
      const words = BREACH_KIND_WORDS[kind];
      if (!ruleIsOn(kind, p)) return { rule: words, value: "off" };
      const text = breachRuleText(kind, p);
      return { rule: words, value: text.startsWith(`${words}: `) ? text.slice(words.length + 2) : text };
    }),
    {
      rule: "Adaptation after start",
      value: p.adaptationSeconds === 0 ? "none" : `${formatLimitSeconds(p.adaptationSeconds)} not judged`,
    },
  ];
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
