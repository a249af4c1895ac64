/**
 * Temperature profiles for `profile create` and `shipment create`: named presets, and profile files (YAML or
 * JSON) validated with zod. Field names are those of `IShipments.TemperatureProfile`, units in the names
 * (centi-degrees Celsius, seconds). A file may start from a preset (`extends: vaccine-2-8`) and override fields.
 * Temperatures may also be given in degrees (`minC: 2`, `maxC: "8 °C"`): converted to centi-degrees here. Centi
 * fields whose values are clearly degrees (`minCentiC: -2, maxCentiC: 8`: a band of 0.1 °C) are refused with the
 * values meant.
 */
import { readFileSync } from "node:fs";
import { extname } from "node:path";

import { parse as parseYaml } from "yaml";
import { z } from "zod";

import { TemperatureInputError, formatCelsius, parseCelsius } from "../sdk/format.js";
import type { TemperatureProfile } from "../sdk/state.js";
import { usageError } from "./command.js";

/** `IShipments.TemperatureProfile` with numbers (one definition, in the SDK). */
export type { TemperatureProfile } from "../sdk/state.js";

/** Reading flags (docs/protocol.md): 0x01 sensor fault, 0x04 tamper. */
const FAULT_AND_TAMPER = 0x05;
const HOUR = 3600;

/**
 * Named presets. Sources (numbers as read from them; check the current edition before relying on one):
 * - `vaccine-2-8`: refrigerated 2–8 °C (USP <659> "refrigerator"; WHO vaccine storage), freeze alarm at
 *   −0.5 °C for 1 h, 1 h single / 10 h cumulative excursion, MKT ≤ 8 °C over ≥ 24 h, 10 min adaptation.
 * - `crt-15-25`: controlled room temperature 15–25 °C (Ph. Eur. / EU GDP "store between 15 and 25 °C"), spikes up to
 *   40 °C tolerated as excursions (USP <659> CRT), MKT ≤ 25 °C over ≥ 24 h, no freeze rule.
 * - `frozen-below-minus-15`: frozen ≤ −15 °C (CDC storage range −50 to −15 °C for frozen varicella-type vaccines),
 *   any reading above 0 °C a breach, 1 h single excursion, no MKT (below the Arrhenius table's useful range).
 * - `who-10-day-type1`: WHO 10-day electronic shipping indicator, Type 1 (WHO/PQS/E006/TR07; WHO "Step-by-step
 *   interpretation of 10-day electronic temperature monitoring devices"): ≥ 30 °C for 10 h cumulative, ≤ −0.5 °C for
 *   1 h; the ≥ 45 °C for 1 h alarm is approximated by an absolute limit (one reading ≥ 45 °C is a breach).
 */
export const PROFILE_PRESETS = {
  "vaccine-2-8": {
    minCentiC: 200,
    maxCentiC: 800,
    absoluteMinCentiC: -500,
    absoluteMaxCentiC: 2500,
    freezeCentiC: -50,
    maxFreezeSeconds: HOUR,
    maxSingleExcursionSeconds: HOUR,
    maxCumulativeExcursionSeconds: 10 * HOUR,
    adaptationSeconds: 600,
    maxGapIntervals: 3,
    faultFlagMask: FAULT_AND_TAMPER,
    mktLimitCentiC: 800,
    mktMinCoverageSeconds: 24 * HOUR,
    mktEnabled: true,
  },
  "crt-15-25": {
    minCentiC: 1500,
    maxCentiC: 2500,
    absoluteMinCentiC: 0,
    absoluteMaxCentiC: 4000,
    freezeCentiC: -8000,
    maxFreezeSeconds: 0,
    maxSingleExcursionSeconds: 24 * HOUR,
    maxCumulativeExcursionSeconds: 0,
    adaptationSeconds: 600,
    maxGapIntervals: 3,
    faultFlagMask: FAULT_AND_TAMPER,
    mktLimitCentiC: 2500,
    mktMinCoverageSeconds: 24 * HOUR,
    mktEnabled: true,
  },
  "frozen-below-minus-15": {
    minCentiC: -5000,
    maxCentiC: -1500,
    absoluteMinCentiC: -8000,
    absoluteMaxCentiC: 0,
    freezeCentiC: -8000,
    maxFreezeSeconds: 0,
    maxSingleExcursionSeconds: HOUR,
    maxCumulativeExcursionSeconds: 0,
    adaptationSeconds: 600,
    maxGapIntervals: 3,
    faultFlagMask: FAULT_AND_TAMPER,
    mktLimitCentiC: 0,
    mktMinCoverageSeconds: 0,
    mktEnabled: false,
  },
  "who-10-day-type1": {
    minCentiC: -49,
    maxCentiC: 2999,
    absoluteMinCentiC: -3000,
    absoluteMaxCentiC: 4499,
    freezeCentiC: -50,
    maxFreezeSeconds: HOUR,
    maxSingleExcursionSeconds: 0,
    maxCumulativeExcursionSeconds: 10 * HOUR,
    adaptationSeconds: 0,
    maxGapIntervals: 0,
    faultFlagMask: FAULT_AND_TAMPER,
    mktLimitCentiC: 0,
    mktMinCoverageSeconds: 0,
    mktEnabled: false,
  },
} as const satisfies Record<string, TemperatureProfile>;

export type PresetName = keyof typeof PROFILE_PRESETS;
export const PRESET_NAMES = Object.keys(PROFILE_PRESETS) as PresetName[];

export function isPresetName(name: string): name is PresetName {
  return Object.hasOwn(PROFILE_PRESETS, name);
}

const int16 = z.number().int().min(-32768).max(32767);
const uint32 = z
  .number()
  .int()
  .min(0)
  .max(2 ** 32 - 1);
const uint8 = z.number().int().min(0).max(255);

const PROFILE_FIELDS = {
  minCentiC: int16,
  maxCentiC: int16,
  absoluteMinCentiC: int16,
  absoluteMaxCentiC: int16,
  freezeCentiC: int16,
  maxFreezeSeconds: uint32,
  maxSingleExcursionSeconds: uint32,
  maxCumulativeExcursionSeconds: uint32,
  adaptationSeconds: uint32,
  maxGapIntervals: uint8,
  faultFlagMask: uint8,
  mktLimitCentiC: int16,
  mktMinCoverageSeconds: uint32,
  mktEnabled: z.boolean(),
};

/** The temperature fields that may be given in degrees, by their degree name: `minC: 2` is `minCentiC: 200`. */
export const DEGREE_FIELDS = {
  minC: "minCentiC",
  maxC: "maxCentiC",
  absoluteMinC: "absoluteMinCentiC",
  absoluteMaxC: "absoluteMaxCentiC",
  freezeC: "freezeCentiC",
  mktLimitC: "mktLimitCentiC",
} as const satisfies Record<string, keyof TemperatureProfile>;

export type DegreeField = keyof typeof DEGREE_FIELDS;
type CentiField = (typeof DEGREE_FIELDS)[DegreeField];
const CENTI_FIELDS = Object.values(DEGREE_FIELDS);

/** A profile file: every field, or `extends: <preset>` plus the fields that differ; temperatures in centi or degrees. */
export const PROFILE_FILE_SCHEMA = z
  .object({
    extends: z.enum(PRESET_NAMES as [PresetName, ...PresetName[]]).optional(),
    ...Object.fromEntries(Object.entries(PROFILE_FIELDS).map(([k, v]) => [k, v.optional()])),
    ...Object.fromEntries(Object.keys(DEGREE_FIELDS).map((k) => [k, z.union([z.number(), z.string()]).optional()])),
  })
  .strict();

/**
 * Centi-degrees from degrees typed in a file or on the command line (`2`, `-0.5`, `"8 °C"`); a usage error naming
 * `what` for anything else.
 */
export function degreesToCenti(value: number | string, what: string): number {
  try {
    return parseCelsius(value);
  } catch (error) {
    if (error instanceof TemperatureInputError) usageError(`${what}: ${error.message}`);
    throw error;
  }
}

/**
 * When the centi-degree fields a person wrote (`given`) look like degrees — every one non-zero under 100 in size,
 * and the resulting band narrower than 1 °C or the profile invalid — the message that says what was probably meant.
 */
export function degreesTypedAsCenti(
  given: Partial<Record<CentiField, number>>,
  profile: TemperatureProfile,
): string | undefined {
  const entries = Object.entries(given) as [CentiField, number][];
  const nonZero = entries.filter(([, v]) => v !== 0);
  if (nonZero.length === 0 || nonZero.some(([, v]) => Math.abs(v) >= 100)) return undefined;
  const band = profile.maxCentiC - profile.minCentiC;
  if (band >= 100 && checkProfile(profile) === undefined) return undefined;
  const written = entries.map(([k, v]) => `${k}: ${v}`).join(", ");
  const meant = entries.map(([k, v]) => `${k}: ${v * 100}`).join(", ");
  const degrees = entries
    .map(([k, v]) => `${Object.keys(DEGREE_FIELDS).find((d) => DEGREE_FIELDS[d as DegreeField] === k)}: ${v}`)
    .join(", ");
  return (
    `${written} reads as ${formatCelsius(profile.minCentiC)} to ${formatCelsius(profile.maxCentiC)} ` +
    `(centi-degrees: hundredths of a °C); did you mean ${meant} (or, in degrees, ${degrees})?`
  );
}

/** The same checks as `ShipmentBook.validateProfile` (on chain), as messages that name the field. */
export function checkProfile(p: TemperatureProfile): string | undefined {
  if (p.minCentiC < -20000 || p.maxCentiC > 8000) {
    return "minCentiC and maxCentiC must lie between -20000 and 8000 (-200.00 .. +80.00 °C)";
  }
  if (p.minCentiC >= p.maxCentiC) return "minCentiC must be below maxCentiC";
  if (p.absoluteMinCentiC > p.minCentiC) return "absoluteMinCentiC must be at most minCentiC";
  if (p.absoluteMaxCentiC < p.maxCentiC) return "absoluteMaxCentiC must be at least maxCentiC";
  if (p.maxFreezeSeconds !== 0 && (p.freezeCentiC < -20000 || p.freezeCentiC >= p.maxCentiC)) {
    return "freezeCentiC must be below maxCentiC (and at least -20000) while the freeze alarm is on (maxFreezeSeconds > 0)";
  }
  if (p.mktEnabled && (p.mktLimitCentiC % 10 !== 0 || p.mktLimitCentiC < -8000 || p.mktLimitCentiC > 8000)) {
    return "mktLimitCentiC must be a multiple of 10 between -8000 and 8000 when mktEnabled";
  }
  return undefined;
}

/** Parses and validates a profile document (already decoded from YAML/JSON); throws a usage error naming `source`. */
export function parseProfile(value: unknown, source: string): TemperatureProfile {
  const parsed = PROFILE_FILE_SCHEMA.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? "" : `${issue.path.join(".")}: `;
    usageError(`${source} is not a valid profile: ${where}${issue?.message ?? "invalid"}; see docs/deploying.md`);
  }
  const { extends: base, ...all } = parsed.data as { extends?: PresetName } & Partial<TemperatureProfile> &
    Partial<Record<DegreeField, number | string>>;
  const fields: Partial<Record<keyof TemperatureProfile, unknown>> = {};
  const givenCenti: Partial<Record<CentiField, number>> = {};
  for (const [key, value] of Object.entries(all)) {
    if (value === undefined) continue;
    if (Object.hasOwn(DEGREE_FIELDS, key)) {
      const centiKey = DEGREE_FIELDS[key as DegreeField];
      if (all[centiKey] !== undefined) {
        usageError(`${source} is not a valid profile: give ${key} (°C) or ${centiKey} (centi-°C), not both`);
      }
      fields[centiKey] = degreesToCenti(value as number | string, `${source}: ${key}`);
    } else {
      fields[key as keyof TemperatureProfile] = value;
      if ((CENTI_FIELDS as readonly string[]).includes(key)) givenCenti[key as CentiField] = value as number;
    }
  }
  const missing = Object.keys(PROFILE_FIELDS).filter((k) => fields[k as keyof TemperatureProfile] === undefined);
  if (base === undefined && missing.length > 0) {
    usageError(`${source} is not a valid profile: missing ${missing.join(", ")} (or add \`extends: <preset>\`)`);
  }
  const profile = { ...(base === undefined ? {} : PROFILE_PRESETS[base]), ...fields } as TemperatureProfile;
  const suspicious = degreesTypedAsCenti(givenCenti, profile);
  if (suspicious !== undefined) usageError(`${source} is not a valid profile: ${suspicious}`);
  const problem = checkProfile(profile);
  if (problem !== undefined) usageError(`${source} is not a valid profile: ${problem}`);
  return profile;
}

/** Reads a `.yaml`/`.yml`/`.json` profile file. */
export function loadProfileFile(path: string): TemperatureProfile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    return usageError(`cannot read profile file ${path} (${(error as NodeJS.ErrnoException).code ?? "error"})`);
  }
  let value: unknown;
  try {
    value = extname(path) === ".json" ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    return usageError(`${path} is not valid ${extname(path) === ".json" ? "JSON" : "YAML"}: ${firstLine(error)}`);
  }
  return parseProfile(value, path);
}

/** A preset name or a file path. */
export function resolveProfile(presetOrFile: string): TemperatureProfile {
  if (isPresetName(presetOrFile)) return { ...PROFILE_PRESETS[presetOrFile] };
  if (/\.(ya?ml|json)$/i.test(presetOrFile)) return loadProfileFile(presetOrFile);
  return usageError(
    `"${presetOrFile}" is neither a preset (${PRESET_NAMES.join(", ")}) nor a .yaml/.json profile file`,
  );
}

function firstLine(error: unknown): string {
  const message = (error as Error).message;
  return message.split("\n")[0] ?? message;
}
