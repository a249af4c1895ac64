/**
 * Words and numbers of the temperature report: °C with a minus sign, durations, UTC dates, breach kinds in words.
 * Browser-safe. What the report prints goes through these, so the PDF, its `--json` model and the tests agree.
 */
import type { BreachReasonName } from "../names.js";

/** "−20.00 °C" (U+2212 minus sign), "-" when unknown. */
export function celsius(centiC: number | undefined): string {
  if (centiC === undefined) return "-";
  const text = (Math.abs(centiC) / 100).toFixed(2);
  return `${centiC < 0 ? "\u2212" : ""}${text} °C`;
}

/** "2.00 to 8.00 °C" (the word "to" keeps negative ranges readable: "−25.00 to −15.00 °C"). */
export function celsiusRange(minCentiC: number, maxCentiC: number): string {
  return `${celsius(minCentiC).replace(" °C", "")} to ${celsius(maxCentiC)}`;
}

/** "3 h 30 min", "45 min", "20 s", "2 d 4 h". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  if (d > 0) return h > 0 ? `${d} d ${h} h` : `${d} d`;
  if (h > 0) return m > 0 ? `${h} h ${m} min` : `${h} h`;
  if (m > 0) return rest > 0 ? `${m} min ${rest} s` : `${m} min`;
  return `${rest} s`;
}

/** "2026-12-07 22:43:39 UTC"; "-" for 0 (not yet). */
export function utc(seconds: number): string {
  if (seconds === 0) return "-";
  return `${new Date(seconds * 1000).toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** What each breach kind means, in the words a QA manager reads. */
export const BREACH_WORDS: Readonly<Record<BreachReasonName, string>> = {
  None: "no breach",
  AbsoluteLimit: "temperature beyond an absolute limit",
  SingleExcursion: "one excursion lasted longer than allowed",
  CumulativeExcursion: "a logger's total time out of range above the allowance",
  Freeze: "at or below the freeze threshold longer than allowed",
  MissingData: "readings missing for longer than allowed",
  DeviceFault: "a logger reported a fault or tampering",
  MktExceeded: "a logger's mean kinetic temperature above the limit",
};

/** "Single excursion" from "SingleExcursion". */
export function breachTitle(reason: BreachReasonName): string {
  const words = reason.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
  return reason === "MktExceeded" ? "MKT exceeded" : words.charAt(0).toUpperCase() + words.slice(1);
}
