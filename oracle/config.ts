/**
 * Oracle configuration: one strict zod schema, a JSON file, and environment overrides. Every key has a
 * default or, when required, a clear error naming it. Secrets are never in the file: the signing key and the
 * MQTT password come from environment variables (their names are configurable) or from a Hardhat keystore
 * (`npx hardhat keystore set ORACLE_PRIVATE_KEY`, see oracle/keystore.ts), and are never logged.
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
import {
  KeystoreError,
  KeystoreFile,
  defaultKeystorePath,
  devPasswordPath,
  promptHidden,
  readDevPassword,
} from "./keystore.js";
import type { UnlockedKeystore } from "./keystore.js";

const GWEI = 1_000_000_000;

const url = z.string().url();

/** Default environment variable of a keystore's password. */
export const DEFAULT_KEYSTORE_PASSWORD_ENV = "ORACLE_KEYSTORE_PASSWORD";

/**
 * Where a secret comes from: an environment variable, or a key of a Hardhat keystore (the production one in
 * Hardhat's global config dir unless `dev` or `path` say otherwise). The keystore password comes from the
 * variable `passwordEnv`, else from a prompt when stdin is a terminal; a `dev` keystore needs none.
 */
export const SECRET_SOURCE_SCHEMA = z.discriminatedUnion("from", [
  z.object({ from: z.literal("env"), name: z.string().min(1) }).strict(),
  z
    .object({
      from: z.literal("keystore"),
      key: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "a keystore key name ([A-Za-z_][A-Za-z0-9_]*)"),
      /** The development keystore (`npx hardhat keystore set --dev`): password read from `hardhat.checksum`. */
      dev: z.boolean().default(false),
      /** The keystore file, if not Hardhat's default (`npx hardhat keystore path` prints that). */
      path: z.string().min(1).optional(),
      passwordEnv: z.string().min(1).default(DEFAULT_KEYSTORE_PASSWORD_ENV),
    })
    .strict(),
]);

/** A validated secret source. */
export type SecretSource = z.infer<typeof SECRET_SOURCE_SCHEMA>;

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
        /** The MQTT password (if the broker needs one): `{ from: "env", name }` or `{ from: "keystore", key, … }`. */
        password: SECRET_SOURCE_SCHEMA.optional(),
        /** Short form of `password: { from: "env", name }`; default ORACLE_MQTT_PASSWORD. */
        passwordEnv: z.string().min(1).optional(),
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
        connections: z.number().int().min(1).max(1024).default(1),
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
        /** The oracle's 32-byte hex private key: `{ from: "env", name }` or `{ from: "keystore", key, … }`. */
        privateKey: SECRET_SOURCE_SCHEMA.optional(),
        /** Short form of `privateKey: { from: "env", name }`; default ORACLE_PRIVATE_KEY. */
        privateKeyEnv: z.string().min(1).optional(),
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
        /** A device the registry does not know is remembered as unknown this long, then looked up again. */
        unknownDeviceRetryMs: z.number().int().min(0).default(30_000),
        /** Device ids remembered as unknown, at most (least recently used out); kept in memory only. */
        unknownDeviceCacheSize: z.number().int().min(0).max(10_000_000).default(10_000),
        /**
         * Registry look-ups of devices not cached, per second, and the burst allowed above it: a message of a device
         * the budget cannot look up now is set aside (stored, judged later), never dropped unheard.
         */
        lookupRatePerSecond: z.number().min(1).default(50),
        lookupBurst: z.number().int().min(1).default(100),
        /** How long intake waits for a look-up; a slower one goes on in the background, the message set aside. */
        lookupWaitMs: z.number().int().min(0).default(250),
        /**
         * Intake time per second that may go to waiting for registry answers (bursts of five seconds' worth);
         * beyond, messages that need a registry read are set aside without waiting.
         */
        lookupWaitMsPerSecond: z.number().int().min(1).max(1000).default(100),
        /** A look-up not answered this fast counts as the registry unreachable (the message is set aside). */
        lookupTimeoutMs: z.number().int().min(100).default(2_000),
        /** Messages set aside at most; beyond, intake waits for the registry (the broker queues meanwhile). */
        setAsideMaxMessages: z.number().int().min(1).default(100_000),
        /** Back-off between attempts to reach an unreachable registry: first, and longest. */
        setAsideRetryMinMs: z.number().int().min(10).default(1_000),
        setAsideRetryMaxMs: z.number().int().min(10).default(30_000),
        /**
         * Signature-verification worker threads: "auto" (one per core but one), or a number; 0 verifies on the
         * intake thread. Worth it with several MQTT connections (several messages in flight).
         */
        workers: z.union([z.literal("auto"), z.number().int().min(0).max(64)]).default(0),
        /** Devices whose parsed public key is kept (per verifier: intake thread or each worker); 0 keeps none. */
        keyCacheSize: z.number().int().min(0).max(100_000).default(128),
      })
      .strict()
      .default({}),
    store: z
      .object({
        path: z.string().min(1).default("oracle.db"),
        /** FULL: fsync every commit (survives power loss); NORMAL: survives a process crash only. */
        synchronous: z.enum(["FULL", "NORMAL"]).default("FULL"),
        /**
         * "thread": intake commits run on a writer thread with its own connection, so parsing and signature
         * checks go on during the fsync; "inline": on the intake thread. Either way a message is acknowledged
         * only after the commit holding it.
         */
        intakeWriter: z.enum(["thread", "inline"]).default("thread"),
        /**
         * Optional cap on the store file in MB (SQLite `max_page_count` on each connection): beyond it writes fail as
         * on a full disk (STORE_FULL; intake pauses, nothing is acknowledged), so the oracle cannot fill a shared disk.
         */
        maxSizeMb: z.number().positive().optional(),
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

/** Secrets read from the environment or a Hardhat keystore; never logged, never stored. */
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
  const { signer, mqtt } = result.data;
  if (signer.privateKey !== undefined && signer.privateKeyEnv !== undefined) {
    throw new OracleError(
      "CONFIG_INVALID",
      "the oracle config is invalid: set signer.privateKey or signer.privateKeyEnv, not both",
    );
  }
  if (mqtt.password !== undefined && mqtt.passwordEnv !== undefined) {
    throw new OracleError(
      "CONFIG_INVALID",
      "the oracle config is invalid: set mqtt.password or mqtt.passwordEnv, not both",
    );
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

/** The source of the signing key: `signer.privateKey`, else the environment variable `signer.privateKeyEnv`. */
export function signerKeySource(config: OracleConfig): SecretSource {
  return config.signer.privateKey ?? { from: "env", name: config.signer.privateKeyEnv ?? "ORACLE_PRIVATE_KEY" };
}

/** The source of the MQTT password: `mqtt.password`, else the environment variable `mqtt.passwordEnv`. */
export function mqttPasswordSource(config: OracleConfig): SecretSource {
  return config.mqtt.password ?? { from: "env", name: config.mqtt.passwordEnv ?? "ORACLE_MQTT_PASSWORD" };
}

/** Where each secret comes from, for a log line (names and paths only, never values). */
export function describeSecretSources(
  config: OracleConfig,
  env: NodeJS.ProcessEnv = process.env,
): { signerKeyFrom: string; mqttPasswordFrom: string } {
  const describe = (source: SecretSource): string =>
    source.from === "env" ? `env ${source.name}` : `keystore ${keystorePathOf(source, env)} key ${source.key}`;
  // The MQTT password is optional: an unset variable means none (the signing key's absence fails earlier).
  const mqtt = mqttPasswordSource(config);
  const mqttPasswordFrom =
    mqtt.from === "env" && env[mqtt.name] === undefined ? `none (${mqtt.name} not set)` : describe(mqtt);
  return { signerKeyFrom: describe(signerKeySource(config)), mqttPasswordFrom };
}

/** Keystore passwords obtained interactively, by keystore file path. */
export type KeystorePasswords = Readonly<Record<string, string>>;

/**
 * Reads the secrets the config names, from the environment or a Hardhat keystore (decrypted here: scrypt,
 * about a second, once per keystore file). A keystore's password comes from `passwords` (see
 * {@link promptKeystorePasswords}), else its `passwordEnv` variable. Throws SECRET_MISSING with a one-line
 * message naming the config key and what to do; no message holds a secret.
 */
export function readSecrets(
  config: OracleConfig,
  env: NodeJS.ProcessEnv = process.env,
  passwords: KeystorePasswords = {},
): OracleSecrets {
  const unlocked = new Map<string, UnlockedKeystore>();
  const read = (configKey: string, source: SecretSource): string | undefined => {
    if (source.from === "env") return env[source.name];
    const path = keystorePathOf(source, env);
    let passwordFrom = "";
    try {
      let keystore = unlocked.get(path);
      if (keystore === undefined) {
        const file = KeystoreFile.read(path, { dev: source.dev, key: source.key });
        let password = passwords[path];
        if (source.dev) {
          password = readDevPassword(path);
          passwordFrom = ` (password from ${devPasswordPath(path)})`;
        } else if (password === undefined) {
          password = env[source.passwordEnv];
          passwordFrom = ` (password from ${source.passwordEnv})`;
        }
        if (password === undefined) {
          throw new OracleError(
            "SECRET_MISSING",
            `${configKey}: set ${source.passwordEnv} to the password of the keystore ${path} (or start the oracle on a terminal to be asked)`,
          );
        }
        keystore = file.unlock(password);
        unlocked.set(path, keystore);
      }
      return keystore.get(source.key, source.dev);
    } catch (cause) {
      if (!(cause instanceof KeystoreError)) throw cause;
      const hint = cause.reason === "wrong_password" ? passwordFrom : "";
      throw new OracleError("SECRET_MISSING", `${configKey}: ${cause.message}${hint}`, { cause });
    }
  };

  const keySource = signerKeySource(config);
  const rawKey = read("signer.privateKey", keySource)?.trim();
  if (rawKey === undefined || !/^(0x)?[0-9a-fA-F]{64}$/.test(rawKey)) {
    throw new OracleError(
      "SECRET_MISSING",
      keySource.from === "env"
        ? `set ${keySource.name} to the oracle's 32-byte hex private key (the account that pays gas)`
        : `signer.privateKey: the value of "${keySource.key}" in the keystore ${keystorePathOf(keySource, env)} is not a 32-byte hex private key; replace it with \`npx hardhat keystore set${keySource.dev ? " --dev" : ""} --force ${keySource.key}\``,
    );
  }
  const mqttPassword = read("mqtt.password", mqttPasswordSource(config));
  return {
    privateKey: rawKey.startsWith("0x") ? rawKey : `0x${rawKey}`,
    mqttPassword,
  };
}

/**
 * Asks on the terminal for the password of each production keystore the config reads whose password variable
 * is unset (once per file). Returns nothing to ask when stdin is not a terminal: {@link readSecrets} then
 * says which variable to set.
 */
export async function promptKeystorePasswords(
  config: OracleConfig,
  env: NodeJS.ProcessEnv = process.env,
  ask: (question: string) => Promise<string> = (question) => promptHidden(question),
  interactive: boolean = process.stdin.isTTY === true,
): Promise<KeystorePasswords> {
  const passwords: Record<string, string> = {};
  if (!interactive) return passwords;
  for (const source of [signerKeySource(config), mqttPasswordSource(config)]) {
    if (source.from !== "keystore" || source.dev || env[source.passwordEnv] !== undefined) continue;
    const path = keystorePathOf(source, env);
    passwords[path] ??= await ask(`Password of the Hardhat keystore ${path}: `);
  }
  return passwords;
}

function keystorePathOf(source: SecretSource & { from: "keystore" }, env: NodeJS.ProcessEnv): string {
  return source.path ?? defaultKeystorePath(source.dev, env);
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
