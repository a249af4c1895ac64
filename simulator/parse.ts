/**
 * Parsing of the CLI's human units: durations (`5m`, `1h30m`, `3d`, `90s`) and speeds (`300x`, `1x`, `0.5x`).
 * Each parser throws a {@link SimulatorInputError} whose message says what a valid value looks like.
 */

/** Bad user input (flag value, scenario parameter); the message says what to give instead. */
export class SimulatorInputError extends Error {
  /** Stable machine-readable code. */
  readonly code = "SIMULATOR_INPUT_INVALID";

  constructor(message: string) {
    super(message);
    this.name = "SimulatorInputError";
  }
}

const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** Seconds of a duration such as `5m`, `1h30m`, `3d`, `45s` or `2d12h`; a bare number is seconds. */
export function parseDuration(text: string, what = "duration"): number {
  const trimmed = text.trim();
  if (/^[0-9]+$/.test(trimmed)) return positive(Number(trimmed), what, text);
  if (!/^([0-9]+(\.[0-9]+)?[smhdw])+$/.test(trimmed)) {
    throw new SimulatorInputError(
      `invalid ${what} "${text}": use a number and a unit (s, m, h, d, w), e.g. 5m, 1h30m, 3d`,
    );
  }
  let seconds = 0;
  for (const match of trimmed.matchAll(/([0-9]+(?:\.[0-9]+)?)([smhdw])/g)) {
    seconds += Number(match[1]) * (UNIT_SECONDS[match[2] ?? "s"] ?? 1);
  }
  return positive(Math.round(seconds), what, text);
}

/** The factor of a speed such as `300x` (300 simulated seconds per real second); `x` is optional. */
export function parseSpeed(text: string): number {
  const match = /^\s*([0-9]+(\.[0-9]+)?)\s*x?\s*$/i.exec(text);
  const value = match === null ? Number.NaN : Number(match[1]);
  if (!Number.isFinite(value) || value <= 0 || value > 1_000_000) {
    throw new SimulatorInputError(
      `invalid speed "${text}": use a positive factor up to 1000000 followed by x, e.g. 300x (5 min per second)`,
    );
  }
  return value;
}

/** Formats seconds as the largest whole units, e.g. 93600 → `1d2h`. */
export function formatDuration(seconds: number): string {
  if (seconds <= 0) return "0s";
  let rest = Math.round(seconds);
  let out = "";
  for (const [unit, size] of [
    ["d", 86_400],
    ["h", 3600],
    ["m", 60],
    ["s", 1],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out;
}

function positive(seconds: number, what: string, text: string): number {
  if (!Number.isSafeInteger(seconds) || seconds <= 0) {
    throw new SimulatorInputError(`invalid ${what} "${text}": it must be at least 1 second`);
  }
  return seconds;
}
