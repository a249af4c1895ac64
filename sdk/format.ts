/**
 * Formatting for people: temperatures (°C with a real minus sign), ranges, durations, disabled limits and dates,
 * shared by the CLI, the dashboard, the `npm start` report and the PDF report so that one figure reads the same
 * everywhere. Also the inverse for input: degrees typed by a person to the centi-degrees the contracts store.
 * Browser-safe (Intl only).
 */

/** U+2212 MINUS SIGN: typographically correct, and not mistaken for a dash in a range. */
export const MINUS = "\u2212";

export interface CelsiusOptions {
  /**
   * Decimal places. Default "auto": as many as the value needs, at most two (centi-degree resolution), so
   * 800 → "8 °C", −50 → "−0.5 °C", 1234 → "12.34 °C".
   */
  readonly decimals?: number | "auto";
  /** Append " °C" (default true). */
  readonly unit?: boolean;
}

function signed(value: number, text: string): string {
  return value < 0 ? `${MINUS}${text}` : text;
}

/** A temperature in centi-°C as °C: `formatCelsius(-50)` → "−0.5 °C", `formatCelsius(800, { decimals: 1 })` → "8.0 °C". */
export function formatCelsius(centiC: number, options: CelsiusOptions = {}): string {
  if (!Number.isFinite(centiC)) throw new RangeError(`not a temperature: ${String(centiC)}`);
  const decimals = options.decimals ?? "auto";
  const abs = Math.abs(centiC) / 100;
  let digits: string;
  if (decimals === "auto") {
    digits = abs.toFixed(2).replace(/\.?0+$/, "");
  } else {
    digits = abs.toFixed(decimals);
  }
  // -0.001 rounds to "0": no minus sign in front of a zero.
  const text = /^[0.]+$/.test(digits) ? digits : signed(centiC, digits);
  return options.unit === false ? text : `${text} °C`;
}

/** A range of centi-°C: "−50 °C to −15 °C" (never "-50–-15 °C"). */
export function formatCelsiusRange(minCentiC: number, maxCentiC: number, options: CelsiusOptions = {}): string {
  return `${formatCelsius(minCentiC, options)} to ${formatCelsius(maxCentiC, options)}`;
}

/**
 * A duration in words, rounded to the nearest unit shown (never down: 35,999 s is "10 h", not "9 h 59 min").
 * Under a minute: seconds ("45 s"); under an hour: minutes and seconds ("12 min 30 s"); from an hour on: hours and
 * minutes ("25 h 45 min"; in hours, as stability budgets and transport times are stated, never days). Zero parts
 * are left out ("10 h", "5 min").
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) throw new RangeError(`not a duration: ${String(seconds)}`);
  if (seconds < 59.5) return `${Math.round(seconds)} s`;
  if (seconds < 3600 - 0.5) {
    const s = Math.round(seconds);
    const min = Math.floor(s / 60);
    const sec = s % 60;
    if (min === 60) return "1 h";
    return sec === 0 ? `${min} min` : `${min} min ${sec} s`;
  }
  const totalMin = Math.round(seconds / 60);
  const hours = Math.floor(totalMin / 60);
  const min = totalMin % 60;
  return min === 0 ? `${hours} h` : `${hours} h ${min} min`;
}

/** A duration limit where 0 means the rule is off (the contracts' convention): "off" or the duration. */
export function formatLimitSeconds(seconds: number): string {
  return seconds === 0 ? "off" : formatDuration(seconds);
}

/** Unix seconds as ISO 8601 UTC without milliseconds: "2026-12-07T03:00:00Z". */
export function formatIsoTime(unix: number): string {
  if (!Number.isFinite(unix)) throw new RangeError(`not a time: ${String(unix)}`);
  return new Date(unix * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

export interface DateTimeOptions {
  /** IANA time zone (default "UTC"; pass `Intl.DateTimeFormat().resolvedOptions().timeZone` for the viewer's). */
  readonly timeZone?: string;
  /** Leave out the seconds (default false). */
  readonly minutes?: boolean;
}

/**
 * Unix seconds as a readable date and time in a time zone, with the zone's name: "2026-12-07 03:00:00 UTC",
 * `{ timeZone: "Europe/Amsterdam" }` → "2026-12-07 04:00:00 CET". The same wording in every locale (ISO order).
 */
export function formatDateTime(unix: number, options: DateTimeOptions = {}): string {
  if (!Number.isFinite(unix)) throw new RangeError(`not a time: ${String(unix)}`);
  const timeZone = options.timeZone ?? "UTC";
  const parts = new Intl.DateTimeFormat("en-GB", {
    timeZone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
    timeZoneName: "short",
  }).formatToParts(new Date(unix * 1000));
  const get = (type: Intl.DateTimeFormatPartTypes): string => parts.find((p) => p.type === type)?.value ?? "";
  const time =
    options.minutes === true ? `${get("hour")}:${get("minute")}` : `${get("hour")}:${get("minute")}:${get("second")}`;
  return `${get("year")}-${get("month")}-${get("day")} ${time} ${get("timeZoneName")}`;
}

/** Raised by {@link parseCelsius} for input that is not a temperature in °C. */
export class TemperatureInputError extends Error {
  override readonly name = "TemperatureInputError";
}

/** Centi-°C bounds of the contracts' int16 temperatures. */
const INT16_MIN = -32768;
const INT16_MAX = 32767;

/**
 * A temperature typed by a person, in °C, to centi-°C: "2", "-0.5", "−0.5", "8°C", "8 °C", "2.25 C". Refuses other
 * units ("46 °F", "275 K"), more than two decimals, and values outside what the contracts store (±327.67 °C).
 */
export function parseCelsius(input: string | number): number {
  let degrees: number;
  if (typeof input === "number") {
    degrees = input;
  } else {
    const text = input.trim().replace(/\u2212/g, "-");
    const match = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*(°\s*C|C|°|℃)?$/i.exec(text);
    if (match === null) {
      if (/[FK]\s*$/i.test(text)) throw new TemperatureInputError(`"${input}": give the temperature in °C`);
      throw new TemperatureInputError(`"${input}" is not a temperature in °C (e.g. 2, -0.5, 8 °C)`);
    }
    degrees = Number(match[1]);
  }
  if (!Number.isFinite(degrees)) throw new TemperatureInputError(`"${String(input)}" is not a temperature in °C`);
  const centi = Math.round(degrees * 100);
  if (Math.abs(centi - degrees * 100) > 1e-6) {
    throw new TemperatureInputError(
      `"${String(input)}": at most two decimals (the chain stores hundredths of a degree)`,
    );
  }
  if (centi < INT16_MIN || centi > INT16_MAX) {
    throw new TemperatureInputError(`"${String(input)}" °C is outside what the chain stores (−327.68 °C to 327.67 °C)`);
  }
  return centi === 0 ? 0 : centi;
}
