/**
 * Mean kinetic temperature (MKT), USP <1079.2>:
 *
 *   T_mk = (ΔH/R) / −ln( Σ tᵢ·e^(−ΔH/(R·Tᵢ)) / Σ tᵢ )      Tᵢ in kelvin = °C + 273.15, ΔH/R = 10,000 K
 *
 * tᵢ is the time (seconds) reading i stands for.
 *
 * ## How the contract computes it
 *
 * The contract cannot take exp / ln, so it uses a lookup table of the Arrhenius factor at 0.1 °C
 * resolution (the `MktTable` data contract, generated from {@link mktTable}):
 *
 *   entry i (0..1600) ↔ T = −80.0 °C + 0.1 °C · i,   entry = round(e^(−10000 / (T + 273.15)) · 1e30)
 *
 * Entries grow from ≈ 3.3e7 (−80 °C) to ≈ 5.03e17 (+80 °C), so they fit uint64, and adjacent
 * entries differ by 1.3 % to 2.7 %, so integer rounding of an entry moves the temperature it stands
 * for by under 1e-6 °C.
 *
 * 1. Accumulate: every evaluated reading adds `seconds` to sumSeconds and
 *    `table[mktFactorIndex(tempCentiC)] · seconds` to sumWeighted ({@link mktAccumulate}).
 *    {@link mktFactorIndex} rounds the reading to the nearest 0.1 °C, halves upward, and clamps
 *    to [−80.0, +80.0] °C. For integer centi-degrees the rounding moves a reading by −0.04 to
 *    +0.05 °C; MKT is monotone in every reading, so the MKT of the rounded readings is within
 *    [−0.04, +0.05] °C of the exact MKT.
 * 2. Invert: the mean factor sumWeighted / sumSeconds lies between table[i] and table[i + 1]; the
 *    contract finds i by binary search on exact integers (table[i] · sumSeconds ≤ sumWeighted) and
 *    interpolates linearly in the factor, flooring to 0.01 °C ({@link onchainMktCentiC}). Flooring
 *    costs up to 0.01 °C (downward). The factor is convex in T, so linear interpolation between two
 *    table points under-reads T by at most h²/8 · (10000/T² − 2/T) with h = 0.1 K: 0.0003 °C at
 *    −80 °C, 0.0001 °C at +25 °C.
 *
 * Net: on-chain MKT − exact MKT ∈ (−0.0503, +0.05] °C for readings within [−80, +80] °C; the
 * worst case needs every reading to sit 0.04 °C above a table point and the floor to lose almost a
 * full 0.01 °C. For a constant temperature on the 0.1 °C grid the result is exact. Readings outside
 * [−80, +80] °C are clamped to the table ends, so MKT then has no error bound (such readings breach
 * any profile's absolute limit anyway).
 */
import { ProtocolError } from "./errors.js";

/** ΔH/R in kelvin (ΔH = 83.144 kJ/mol, R = 8.3144 J/(mol·K)). */
export const MKT_ACTIVATION_OVER_R_KELVIN = 10_000;
/** 0 °C in kelvin. */
export const KELVIN_AT_ZERO_CELSIUS = 273.15;
/** Temperature of table entry 0, °C x 100. */
export const MKT_TABLE_MIN_CENTI_C = -8000;
/** Temperature of the last table entry, °C x 100. */
export const MKT_TABLE_MAX_CENTI_C = 8000;
/** Table step, °C x 100 (0.1 °C). */
export const MKT_TABLE_STEP_CENTI_C = 10;
/** Number of table entries (−80.0 .. +80.0 °C in 0.1 °C steps). */
export const MKT_TABLE_ENTRIES = 1601;
/** Fixed-point scale of the table entries. */
export const MKT_TABLE_SCALE = 10n ** 30n;

/** A reading's contribution to MKT: its temperature and the seconds it stands for. */
export interface MktSample {
  /** °C x 100. */
  readonly tempCentiC: number;
  /** Seconds the reading stands for (tᵢ). */
  readonly seconds: number;
}

/** The contract's MKT accumulators. */
export interface MktSums {
  /** Σ table[index(tᵢ)] · secondsᵢ. */
  readonly sumWeighted: bigint;
  /** Σ secondsᵢ. */
  readonly sumSeconds: bigint;
}

let cachedTable: readonly bigint[] | undefined;

/**
 * The on-chain table: entry i = round(e^(−10000 / (T + 273.15)) · 1e30) with T = −80 + 0.1·i °C.
 * Computed in float64 (`Math.exp` and `Math.round` are deterministic in V8 for these inputs; the
 * generated contracts/MktTable.sol is checked against this function by the tests). Returns a copy.
 */
export function mktTable(): bigint[] {
  if (cachedTable === undefined) {
    const table: bigint[] = [];
    for (let i = 0; i < MKT_TABLE_ENTRIES; i++) {
      // T is taken as (−8000 + 10·i) / 100, the double nearest the exact decimal, not −80 + 0.1·i
      // (two roundings): 64 of the 1601 entries differ between the two (by < 1e-14 relative), so a
      // reimplementation must use this expression to reproduce the table bit for bit.
      const celsius = (MKT_TABLE_MIN_CENTI_C + MKT_TABLE_STEP_CENTI_C * i) / 100;
      table.push(
        BigInt(Math.round(Math.exp(-MKT_ACTIVATION_OVER_R_KELVIN / (celsius + KELVIN_AT_ZERO_CELSIUS)) * 1e30)),
      );
    }
    cachedTable = Object.freeze(table);
  }
  return [...cachedTable];
}

function table(): readonly bigint[] {
  if (cachedTable === undefined) mktTable();
  return cachedTable as readonly bigint[];
}

/**
 * Table index of a temperature: the nearest 0.1 °C, halves upward, clamped to [−80.0, +80.0] °C.
 * = clamp(floor((tempCentiC + 8000 + 5) / 10), 0, 1600), computed on the shifted value, which is
 * non-negative after clamping, so integer division is a plain floor (no rounding toward zero on
 * negatives, which is what Solidity's `/` would do).
 */
export function mktFactorIndex(tempCentiC: number): number {
  if (!Number.isSafeInteger(tempCentiC)) {
    throw new ProtocolError("MKT_INPUT_INVALID", `tempCentiC must be an integer, got ${tempCentiC}`);
  }
  if (tempCentiC < MKT_TABLE_MIN_CENTI_C) return 0;
  const index = Math.floor((tempCentiC - MKT_TABLE_MIN_CENTI_C + MKT_TABLE_STEP_CENTI_C / 2) / MKT_TABLE_STEP_CENTI_C);
  return Math.min(index, MKT_TABLE_ENTRIES - 1);
}

/** The table factor of a temperature: table[mktFactorIndex(tempCentiC)]. */
export function mktFactor(tempCentiC: number): bigint {
  return table()[mktFactorIndex(tempCentiC)] ?? 0n;
}

/** Accumulates readings the way the contract does (sums start at `initial`, default zero). */
export function mktAccumulate(
  samples: readonly MktSample[],
  initial: MktSums = { sumWeighted: 0n, sumSeconds: 0n },
): MktSums {
  let { sumWeighted, sumSeconds } = initial;
  for (const { tempCentiC, seconds } of samples) {
    checkSeconds(seconds);
    sumWeighted += mktFactor(tempCentiC) * BigInt(seconds);
    sumSeconds += BigInt(seconds);
  }
  return { sumWeighted, sumSeconds };
}

/**
 * Mirror of the contract's MKT: °C x 100, an integer.
 *
 * avg = sumWeighted / sumSeconds is kept as an exact rational. i is the largest index with
 * table[i] · sumSeconds ≤ sumWeighted (binary search); then
 *   centi = (−8000 + 10·i) + floor(10 · (sumWeighted − table[i]·sumSeconds) / ((table[i+1] − table[i]) · sumSeconds))
 * An average below table[0] returns −8000, one at or above table[1600] returns 8000.
 * Throws MKT_NO_DATA when sumSeconds is zero.
 */
export function onchainMktCentiC(sumWeighted: bigint, sumSeconds: bigint): number {
  if (sumSeconds <= 0n) {
    throw new ProtocolError(
      "MKT_NO_DATA",
      "no time is covered (sumSeconds = 0); MKT needs at least one evaluated reading",
    );
  }
  if (sumWeighted < 0n) {
    throw new ProtocolError("MKT_INPUT_INVALID", "sumWeighted must not be negative");
  }
  const t = table();
  const at = (i: number): bigint => t[i] ?? 0n;
  const last = MKT_TABLE_ENTRIES - 1;
  if (sumWeighted < at(0) * sumSeconds) return MKT_TABLE_MIN_CENTI_C;
  if (sumWeighted >= at(last) * sumSeconds) return MKT_TABLE_MAX_CENTI_C;
  // Invariant: table[lo]·S ≤ W < table[hi]·S.
  let lo = 0;
  let hi = last;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (at(mid) * sumSeconds <= sumWeighted) lo = mid;
    else hi = mid;
  }
  const numerator = 10n * (sumWeighted - at(lo) * sumSeconds);
  const denominator = (at(lo + 1) - at(lo)) * sumSeconds;
  return MKT_TABLE_MIN_CENTI_C + MKT_TABLE_STEP_CENTI_C * lo + Number(numerator / denominator);
}

/** On-chain MKT of readings: {@link mktAccumulate} then {@link onchainMktCentiC}. */
export function onchainMktOfReadings(samples: readonly MktSample[]): number {
  const { sumWeighted, sumSeconds } = mktAccumulate(samples);
  return onchainMktCentiC(sumWeighted, sumSeconds);
}

/**
 * Reference MKT in float64, °C x 100 (not rounded):
 * T_mk = 10000 / −ln(Σ tᵢ·e^(−10000/Tᵢ) / Σ tᵢ) − 273.15. Throws MKT_NO_DATA when Σ tᵢ = 0.
 */
export function referenceMktCentiC(samples: readonly MktSample[]): number {
  let weighted = 0;
  let seconds = 0;
  for (const s of samples) {
    checkSeconds(s.seconds);
    if (!Number.isFinite(s.tempCentiC)) {
      throw new ProtocolError("MKT_INPUT_INVALID", `tempCentiC must be finite, got ${s.tempCentiC}`);
    }
    const kelvin = s.tempCentiC / 100 + KELVIN_AT_ZERO_CELSIUS;
    weighted += s.seconds * Math.exp(-MKT_ACTIVATION_OVER_R_KELVIN / kelvin);
    seconds += s.seconds;
  }
  if (seconds === 0) {
    throw new ProtocolError("MKT_NO_DATA", "no time is covered (Σ seconds = 0); MKT needs at least one reading");
  }
  const kelvin = MKT_ACTIVATION_OVER_R_KELVIN / -Math.log(weighted / seconds);
  return (kelvin - KELVIN_AT_ZERO_CELSIUS) * 100;
}

function checkSeconds(seconds: number): void {
  if (!Number.isSafeInteger(seconds) || seconds < 0) {
    throw new ProtocolError("MKT_INPUT_INVALID", `seconds must be a non-negative integer, got ${seconds}`);
  }
}
