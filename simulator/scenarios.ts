/**
 * Named scenarios. A scenario is data: per device, the spans (simulated unix seconds, `[from, to)`) of each
 * condition, plus for `tamper` the list of bad messages to send with the reason the oracle should drop them
 * (the `DropReason` names of oracle/health/metrics.ts). The same (name, seed, device index, window) always gives the
 * same scenario. docs/simulator.md describes what each one does and what the oracle and contracts make of it.
 */
import type { DropReason } from "../oracle/health/metrics.js";
import { SimulatorInputError } from "./parse.js";
import { createRandom } from "./random.js";

/** The scenario names. */
export const SCENARIO_NAMES = [
  "compliant",
  "heat-excursion",
  "freeze",
  "offline-gap",
  "late-upload",
  "tamper",
] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

/** One line per scenario (for `--help` and the docs). */
export const SCENARIO_SUMMARIES: Readonly<Record<ScenarioName, string>> = {
  compliant: "setpoint with drift, noise and door openings; always inside the band",
  "heat-excursion": "compressor failure: warms above the band inside the span, back inside before it ends",
  freeze: "thermostat stuck on: a cold spike below the band inside the span, back inside before it ends",
  "offline-gap": "device silent for the span (records nothing): a real gap in the data, no backlog",
  "late-upload": "device offline for the span but still recording: the backlog is uploaded when the span ends",
  tamper: "bad signatures, payloads altered after signing, replays and an unknown device id, each with its reason",
};

/**
 * Conditions a span can hold:
 * - `heat` (compressor failure, then recovery in the span's last {@link RECOVERY_SECONDS}),
 * - `freeze` (thermostat stuck on, then recovery likewise),
 * - `silent` (the device records and sends nothing),
 * - `offline` (the device records but is disconnected; it uploads its backlog at the span's end).
 */
export type ConditionKind = "heat" | "freeze" | "silent" | "offline";

/** A condition over simulated time `[from, to)` (unix seconds). */
export interface ConditionSpan {
  readonly kind: ConditionKind;
  readonly from: number;
  readonly to: number;
}

/** The kinds of bad message the tamper scenario sends. */
export const TAMPER_KINDS = ["bad-signature", "altered-payload", "replay", "unknown-device"] as const;
export type TamperKind = (typeof TAMPER_KINDS)[number];

/** Why the oracle drops each kind of bad message (a DropReason of oracle/health/metrics.ts). */
export const TAMPER_DROP_REASON: Readonly<Record<TamperKind, DropReason>> = {
  "bad-signature": "bad_signature",
  "altered-payload": "bad_signature",
  replay: "duplicate",
  "unknown-device": "unknown_device",
};

/** A bad message to send at the device's first recording time at or after `at`. */
export interface TamperEvent {
  readonly at: number;
  readonly kind: TamperKind;
  readonly reason: DropReason;
}

/** What one device does over the run. */
export interface DeviceScenario {
  readonly name: ScenarioName;
  readonly spans: readonly ConditionSpan[];
  readonly tamper: readonly TamperEvent[];
}

/** The last part of a heat or freeze span in which the container recovers (cooling restarts / stops). */
export const RECOVERY_SECONDS = 3600;
/** Shortest heat or freeze span: one hour of failure plus the recovery. */
export const MIN_THERMAL_SPAN_SECONDS = 2 * RECOVERY_SECONDS;

export interface ScenarioOptions {
  /** Seed of the run. */
  readonly seed: number | string;
  /** Index of the device in the fleet (scenarios vary per device). */
  readonly deviceIndex: number;
  /** Simulated start and end of the run (unix seconds). */
  readonly from: number;
  readonly to: number;
  /** The device's recording interval. */
  readonly intervalSeconds: number;
  /**
   * The span of the scenario's condition (heat, freeze, silence, offline period); by default a span in the
   * middle of the run chosen from the seed. The orchestrator passes e.g. a carrier's custody period.
   */
  readonly span?: { readonly from: number; readonly to: number };
  /** offline-gap default span length in recording intervals (default 24, longer than usual gap limits). */
  readonly gapIntervals?: number;
  /** tamper: how many bad messages of each kind (default 2). */
  readonly tamperPerKind?: number;
}

/** Whether `name` is a scenario name. */
export function isScenarioName(name: string): name is ScenarioName {
  return (SCENARIO_NAMES as readonly string[]).includes(name);
}

/** Builds the scenario `name` for one device. Throws a SimulatorInputError on a span that does not fit. */
export function buildScenario(name: ScenarioName, o: ScenarioOptions): DeviceScenario {
  if (!(o.to > o.from)) throw new SimulatorInputError(`the run must end after it starts (from ${o.from}, to ${o.to})`);
  const rng = createRandom(`${String(o.seed)}/scenario/${name}/${o.deviceIndex}`);
  const length = o.to - o.from;
  const defaultSpan = (spanSeconds: number): { from: number; to: number } => {
    const seconds = Math.min(spanSeconds, length);
    const slack = length - seconds;
    const from = Math.floor(o.from + slack * rng.uniform(0.3, 0.7));
    return { from, to: from + seconds };
  };
  switch (name) {
    case "compliant":
      return { name, spans: [], tamper: [] };
    case "heat-excursion":
    case "freeze": {
      const span = o.span ?? defaultSpan(Math.max(MIN_THERMAL_SPAN_SECONDS, Math.floor(length / 4)));
      if (span.to - span.from < MIN_THERMAL_SPAN_SECONDS) {
        throw new SimulatorInputError(
          `a ${name} span must last at least ${MIN_THERMAL_SPAN_SECONDS / 3600} h (failure + recovery), got ${span.to - span.from} s`,
        );
      }
      return { name, spans: [{ kind: name === "freeze" ? "freeze" : "heat", ...span }], tamper: [] };
    }
    case "offline-gap": {
      const span = o.span ?? defaultSpan((o.gapIntervals ?? 24) * o.intervalSeconds);
      return { name, spans: [{ kind: "silent", ...span }], tamper: [] };
    }
    case "late-upload": {
      const span = o.span ?? defaultSpan(Math.max(12 * o.intervalSeconds, Math.floor(length / 6)));
      return { name, spans: [{ kind: "offline", ...span }], tamper: [] };
    }
    case "tamper": {
      const perKind = o.tamperPerKind ?? 2;
      const span = o.span ?? { from: o.from, to: o.to };
      // The first event comes after at least two recordings so a replay has something to replay.
      // Events stop one interval before the span's end so each one meets a recording time and fires.
      const start = Math.min(span.from + 2 * o.intervalSeconds, span.to);
      const end = Math.max(start, span.to - o.intervalSeconds);
      const events: TamperEvent[] = [];
      for (const kind of TAMPER_KINDS) {
        for (let i = 0; i < perKind; i++) {
          events.push({ at: Math.floor(rng.uniform(start, end)), kind, reason: TAMPER_DROP_REASON[kind] });
        }
      }
      events.sort((a, b) => a.at - b.at || TAMPER_KINDS.indexOf(a.kind) - TAMPER_KINDS.indexOf(b.kind));
      return { name, spans: [], tamper: events };
    }
  }
}

/** The condition of `scenario` at simulated time `t`, if any. */
export function conditionAt(scenario: DeviceScenario, t: number): ConditionSpan | undefined {
  return scenario.spans.find((s) => t >= s.from && t < s.to);
}
