/**
 * The config file and environment overrides: `ORACLE__<SECTION>__<KEY>=value`, matched case-insensitively with
 * underscores ignored (`ORACLE__CHAIN__RPC_URLS=http://a:8545,http://b:8545`, `ORACLE__BATCH__MAX_READINGS=500`).
 * A value is parsed as JSON when it is valid JSON, else taken as a string; a list also accepts commas.
 */
import { readFileSync } from "node:fs";

import { z } from "zod";

import { OracleError } from "../errors.js";
import { ORACLE_CONFIG_SCHEMA, parseConfig } from "./schema.js";
import type { OracleConfig } from "./schema.js";

/** Reads the JSON config file, applies `ORACLE__…` environment overrides and validates. */
export function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): OracleConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    throw new OracleError("CONFIG_INVALID", `cannot read the config file ${path}; pass --config <file>`, { cause });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new OracleError("CONFIG_INVALID", `the config file ${path} is not valid JSON`, { cause });
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new OracleError("CONFIG_INVALID", `the config file ${path} must hold a JSON object`);
  }
  return parseConfig(applyEnvOverrides(raw as Record<string, unknown>, env));
}

/** Applies `ORACLE__SECTION__KEY` variables onto a raw config object (returns a copy). */
export function applyEnvOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out = structuredClone(raw);
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith("ORACLE__") || value === undefined) continue;
    const segments = name.slice("ORACLE__".length).split("__");
    let shape: z.ZodTypeAny = ORACLE_CONFIG_SCHEMA;
    let target: Record<string, unknown> = out;
    segments.forEach((segment, i) => {
      const keys = Object.keys(objectShape(shape));
      const key = keys.find((k) => normalise(k) === normalise(segment));
      if (key === undefined) {
        throw new OracleError(
          "CONFIG_INVALID",
          `environment variable ${name}: no config key "${segment}" (known here: ${keys.join(", ")})`,
        );
      }
      const child = objectShape(shape)[key] as z.ZodTypeAny;
      if (i === segments.length - 1) {
        target[key] = envValue(value, isArraySchema(child));
      } else {
        const next = target[key];
        const obj = typeof next === "object" && next !== null ? (next as Record<string, unknown>) : {};
        target[key] = obj;
        target = obj;
        shape = child;
      }
    });
  }
  return out;
}

function normalise(key: string): string {
  return key.replaceAll("_", "").toLowerCase();
}

function unwrap(schema: z.ZodTypeAny): z.ZodTypeAny {
  let s = schema;
  for (;;) {
    if (s instanceof z.ZodDefault || s instanceof z.ZodOptional) s = s._def.innerType as z.ZodTypeAny;
    else if (s instanceof z.ZodEffects) s = s._def.schema as z.ZodTypeAny;
    else return s;
  }
}

function objectShape(schema: z.ZodTypeAny): Record<string, unknown> {
  const s = unwrap(schema);
  return s instanceof z.ZodObject ? (s.shape as Record<string, unknown>) : {};
}

function isArraySchema(schema: z.ZodTypeAny): boolean {
  return unwrap(schema) instanceof z.ZodArray;
}

function envValue(value: string, list: boolean): unknown {
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return list ? value.split(",").map((v) => v.trim()) : value;
  }
}
