/**
 * Oracle configuration: one strict zod schema, a JSON file, and environment overrides. Every key has a
 * default or, when required, a clear error naming it. Secrets are never in the file: the signing key and the
 * MQTT password come from environment variables (their names are configurable) and are never logged.
 *
 * Environment overrides: `ORACLE__<SECTION>__<KEY>=value`, matched case-insensitively with underscores
 * ignored (`ORACLE__CHAIN__RPC_URLS=http://a:8545,http://b:8545`, `ORACLE__BATCH__MAX_READINGS=500`).
 * A value is parsed as JSON when it is valid JSON, else taken as a string; a list also accepts commas.
 */
import { readFileSync } from "node:fs";

import { isAddress } from "ethers";
import { z } from "zod";

import { deploymentStartBlock } from "../sdk/deployment.js";
import { loadDeployment } from "../sdk/node/deployment.js";
import { OracleError } from "./errors.js";

const GWEI = 1_000_000_000;

const url = z.string().url();

/** The schema; `z.infer` of it is {@link OracleConfig}. */
export const ORACLE_CONFIG_SCHEMA = z
  .object({
    /** Name of this instance: status topic, MQTT client id, metrics label. */
    oracleId: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, "1..64 characters of [A-Za-z0-9_.-]")
      .default("oracle-1"),
    mqtt: z
      .object({
        url: url.default("mqtt://127.0.0.1:1883"),
        /** Default `coldchain-oracle-<oracleId>`; must be stable across restarts (persistent session). */
        clientId: z.string().min(1).max(128).optional(),
        username: z.string().optional(),
        /** Environment variable holding the MQTT password (if the broker needs one). */
        passwordEnv: z.string().default("ORACLE_MQTT_PASSWORD"),
        /** 5, 4 (3.1.1), or "auto": try 5 and fall back to 3.1.1 when the broker refuses it. */
        protocolVersion: z.union([z.literal(5), z.literal(4), z.literal("auto")]).default("auto"),
        /** MQTT 5 shared subscription group: instances with the same group share the stream. */
        shareGroup: z
          .string()
          .regex(/^[A-Za-z0-9_.-]{1,64}$/)
          .optional(),
        /** How long the broker keeps the session (and queues QoS 1 messages) while the oracle is away. */
        sessionExpirySeconds: z
          .number()
          .int()
          .min(0)
          .default(7 * 24 * 3600),
        keepaliveSeconds: z.number().int().min(5).max(3600).default(30),
        reconnectPeriodMs: z.number().int().min(100).default(1000),
        /**
         * MQTT connections sharing the stream (MQTT 5 `$share`): messages handled at once, their commits
         * grouped. 1 on MQTT 3.1.1 brokers (aedes) whatever this says.
         */
        connections: z.number().int().min(1).max(64).default(1),
        /** Payloads above this size are dropped (`too_large`). A 256-sample JSON window is about 4 KB. */
        maxPayloadBytes: z.number().int().min(128).default(16_384),
      })
      .strict()
      .default({}),
    chain: z
      .object({
        /**
         * A network name whose `deployments/<network>.json` supplies `chainId`, `coldChain` and (unless given)
         * `registryFromBlock`; an alternative to setting those two keys by hand.
         */
        deployment: z.string().min(1).optional(),
        /** One or more JSON-RPC endpoints of the same chain; the oracle fails over in order. */
        rpcUrls: z.array(url).min(1, "at least one RPC endpoint"),
        chainId: z.number().int().positive(),
        /** Address of the ColdChain contract (the registry address is read from it). */
        coldChain: z.string().refine((a) => isAddress(a), "an address"),
        /** Blocks (the mined one included) before a batch counts as confirmed. */
        confirmations: z.number().int().min(1).default(2),
        /** Confirmed batches are re-checked for reorgs while less than this many blocks deep. */
        reorgWatchBlocks: z.number().int().min(1).default(64),
        pollIntervalMs: z.number().int().min(10).default(1000),
        rpcTimeoutMs: z.number().int().min(100).default(10_000),
        /** First block to read registry events from (the deployment block). */
        registryFromBlock: z.number().int().min(0).default(0),
      })
      .strict(),
    signer: z
      .object({
        /** Environment variable holding the oracle's 32-byte hex private key. */
        privateKeyEnv: z.string().default("ORACLE_PRIVATE_KEY"),
      })
      .strict()
      .default({}),
    fees: z
      .object({
        /** Ceiling of maxFeePerGas; the oracle waits rather than pay more. */
        maxFeePerGasGwei: z.number().positive().default(200),
        maxPriorityFeePerGasGwei: z.number().min(0).default(1),
        /** Each replacement raises both fees by this much (nodes require at least 10 %). */
        bumpPercent: z.number().int().min(10).max(500).default(25),
        /** A transaction not mined after this long is replaced with the same nonce and higher fees. */
        replaceAfterMs: z.number().int().min(10).default(60_000),
      })
      .strict()
      .default({}),
    batch: z
      .object({
        maxReadings: z.number().int().min(1).default(1000),
        /** A pending reading waits at most this long for a fuller batch. */
        maxAgeMs: z.number().int().min(0).default(5000),
        /** Gas limit of one batch transaction (EIP-7825 caps a transaction at 16,777,216). */
        gasCap: z.number().int().min(100_000).max(16_777_216).default(8_000_000),
        /** Calldata bytes of one batch (128 KB is the common mempool limit of a whole transaction). */
        maxCalldataBytes: z.number().int().min(1024).max(131_072).default(120_000),
        /** Planning estimates (the node's estimateGas is the final word): per batch, per reading, per window. */
        gasPerBatch: z.number().int().min(0).default(60_000),
        gasPerSecp256k1Reading: z.number().int().min(0).default(9_000),
        gasPerP256Reading: z.number().int().min(0).default(14_000),
        gasPerWindow: z.number().int().min(0).default(40_000),
        gasPerWindowSample: z.number().int().min(0).default(2_500),
      })
      .strict()
      .default({}),
    verify: z
      .object({
        /** A reading observed further than this in the future (oracle clock) is dropped. */
        maxFutureSkewSeconds: z.number().int().min(0).default(300),
        /** An unknown device is looked up on-chain again after this long. */
        unknownDeviceRetryMs: z.number().int().min(0).default(30_000),
        /** Signature-verification worker threads: "auto" (one per core) or a number; 0 verifies on the intake thread. */
        workers: z.union([z.literal("auto"), z.number().int().min(0).max(64)]).default(0),
        /** Devices whose public key is kept with a precomputed table (per worker); 0 keeps none. */
        keyCacheSize: z.number().int().min(0).max(100_000).default(128),
      })
      .strict()
      .default({}),
    store: z
      .object({
        path: z.string().min(1).default("oracle.db"),
        /** FULL: fsync every commit (survives power loss); NORMAL: survives a process crash only. */
        synchronous: z.enum(["FULL", "NORMAL"]).default("FULL"),
      })
      .strict()
      .default({}),
    backpressure: z
      .object({
        /** Above this many pending readings on disk, intake pauses (the broker queues) until batches drain. */
        maxPendingReadings: z.number().int().min(1).default(1_000_000),
      })
      .strict()
      .default({}),
    http: z
      .object({
        host: z.string().default("127.0.0.1"),
        /** 0 picks a free port. */
        port: z.number().int().min(0).max(65535).default(9464),
        enabled: z.boolean().default(true),
      })
      .strict()
      .default({}),
    log: z
      .object({ level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info") })
      .strict()
      .default({}),
  })
  .strict();

/** A validated oracle configuration. */
export type OracleConfig = z.infer<typeof ORACLE_CONFIG_SCHEMA>;
/** What a config file may hold (defaults not yet applied). */
export type OracleConfigInput = z.input<typeof ORACLE_CONFIG_SCHEMA>;

/** Secrets read from the environment; never logged, never stored. */
export interface OracleSecrets {
  readonly privateKey: string;
  readonly mqttPassword: string | undefined;
}

/** Validates a config object (after env overrides). Throws CONFIG_INVALID naming every bad key. */
export function parseConfig(input: unknown): OracleConfig {
  const result = ORACLE_CONFIG_SCHEMA.safeParse(resolveDeployment(input));
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new OracleError("CONFIG_INVALID", `the oracle config is invalid: ${problems}`);
  }
  return result.data;
}

/**
 * Fills `chain.chainId`, `chain.coldChain` and a missing `chain.registryFromBlock` from `chain.deployment`
 * (`deployments/<network>.json`, honouring COLDCHAIN_DEPLOYMENTS_DIR). Keys given by hand must agree with it.
 */
function resolveDeployment(input: unknown): unknown {
  const chain = (input as { chain?: unknown } | null)?.chain;
  if (typeof chain !== "object" || chain === null) return input;
  const network = (chain as { deployment?: unknown }).deployment;
  if (typeof network !== "string" || network === "") return input;
  let deployment;
  try {
    deployment = loadDeployment(network);
  } catch (cause) {
    throw new OracleError("CONFIG_INVALID", `chain.deployment: ${(cause as Error).message}`, { cause });
  }
  const given = chain as { chainId?: unknown; coldChain?: unknown; registryFromBlock?: unknown };
  const coldChain = deployment.contracts.ColdChain.address;
  if (given.chainId !== undefined && given.chainId !== deployment.chainId) {
    throw new OracleError(
      "CONFIG_INVALID",
      `chain.chainId ${JSON.stringify(given.chainId)} disagrees with chain.deployment "${network}" (chain ${deployment.chainId}); remove one`,
    );
  }
  if (typeof given.coldChain === "string" && given.coldChain.toLowerCase() !== coldChain.toLowerCase()) {
    throw new OracleError(
      "CONFIG_INVALID",
      `chain.coldChain ${given.coldChain} disagrees with chain.deployment "${network}" (${coldChain}); remove one`,
    );
  }
  return {
    ...(input as Record<string, unknown>),
    chain: {
      ...chain,
      chainId: deployment.chainId,
      coldChain,
      registryFromBlock: given.registryFromBlock ?? deploymentStartBlock(deployment),
    },
  };
}

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

/** Reads the secrets named by the config from the environment. Throws SECRET_MISSING. */
export function readSecrets(config: OracleConfig, env: NodeJS.ProcessEnv = process.env): OracleSecrets {
  const privateKey = env[config.signer.privateKeyEnv];
  if (privateKey === undefined || !/^(0x)?[0-9a-fA-F]{64}$/.test(privateKey)) {
    throw new OracleError(
      "SECRET_MISSING",
      `set ${config.signer.privateKeyEnv} to the oracle's 32-byte hex private key (the account that pays gas)`,
    );
  }
  return {
    privateKey: privateKey.startsWith("0x") ? privateKey : `0x${privateKey}`,
    mqttPassword: env[config.mqtt.passwordEnv],
  };
}

/** Wei of a gwei amount given as a (possibly fractional) number. */
export function gweiToWei(gwei: number): bigint {
  return BigInt(Math.round(gwei * GWEI));
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
