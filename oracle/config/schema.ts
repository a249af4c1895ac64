/**
 * The oracle configuration's schema: one strict zod schema, every key with a default or, when required, a clear
 * error naming it (`parseConfig`). Where the values come from: a JSON file and `ORACLE__…` environment overrides
 * (./env.ts); the secrets never come from the file (./secrets.ts).
 */
import { isAddress } from "ethers";
import { z } from "zod";

import { deploymentStartBlock } from "../../sdk/deployment.js";
import { loadDeployment } from "../../sdk/node/deployment.js";
import { OracleError } from "../errors.js";

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

/** `mqtt.anchorHoldMs` when `mqtt.shareGroup` is set and the key is not. */
export const DEFAULT_ANCHOR_HOLD_MS = 20_000;

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
        /**
         * Whether a shared subscription is backed by an anchor session (oracle/intake/anchor.ts): one more
         * connection (`<clientId>-anchor`, persistent, a plain subscription to the readings topics) that the broker
         * restores after a restart, so nothing published while the share group is gone is lost. Only used with a
         * shared subscription (`connections` > 1 or `shareGroup`, MQTT 5). Set false only for a broker that restores
         * shared subscriptions of persistent sessions after its restart (Mosquitto 2.0.11 does not: issue 16).
         */
        anchor: z.boolean().default(true),
        /**
         * How long a reading the anchor caught up (oracle/intake/anchor.ts) waits in the store before this instance
         * relays it, with several instances in one `shareGroup`: by then the member the group gave the message to has
         * relayed it and the pre-flight finds it on chain (no gas). Each instance adds its own spread (up to half of
         * this, from `oracleId`) so that two instances do not relay a reading only their anchors got at once.
         * Default 20 s with `shareGroup`, else 0 (no hold: one instance has no one to wait for).
         */
        anchorHoldMs: z.number().int().min(0).max(600_000).optional(),
        /** Payloads above this size are dropped (`too_large`). A 256-sample JSON window is about 4 KB. */
        maxPayloadBytes: z.number().int().min(128).default(16_384),
      })
      .strict()
      .transform((mqtt) => ({
        ...mqtt,
        anchorHoldMs: mqtt.anchorHoldMs ?? (mqtt.shareGroup === undefined ? 0 : DEFAULT_ANCHOR_HOLD_MS),
      }))
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
        /**
         * Where a batch stops being re-checked for reorgs: "tag" (default), the node's `finalized` block
         * (`eth_getBlockByNumber("finalized")`), or `reorgWatchBlocks` below the head when the node has no such tag (or
         * its finalized block is its head: a dev chain); "window": always `reorgWatchBlocks`.
         */
        finality: z.enum(["tag", "window"]).default("tag"),
        /**
         * Fallback finality window: confirmed batches less than this many blocks deep are re-checked for reorgs when the
         * node has no `finalized` tag (or with `finality` "window").
         */
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
        /** Ceiling of maxFeePerGas; the oracle waits rather than pay more (and says so when the base fee is above it). */
        maxFeePerGasGwei: z.number().positive().default(200),
        /** Most tip (priority fee) offered; also the tip when the node has no `eth_feeHistory`. */
        maxPriorityFeePerGasGwei: z.number().min(0).default(1),
        /** Least tip offered (the market's may be 0 on a quiet chain). */
        minPriorityFeePerGasGwei: z.number().min(0).default(0.01),
        /** The tip is the median over `historyBlocks` recent blocks of this percentile of the tips paid in each. */
        rewardPercentile: z.number().min(0).max(100).default(50),
        historyBlocks: z.number().int().min(1).max(1024).default(10),
        /** maxFeePerGas = baseFeeHeadroom × the next block's base fee + tip (2: survives 6 full blocks in a row). */
        baseFeeHeadroom: z.number().min(1).max(10).default(2),
        /** Each replacement raises both fees by at least this much (nodes require at least 10 %). */
        bumpPercent: z.number().int().min(10).max(500).default(25),
        /** A transaction not mined after this long is replaced with the same nonce and higher fees. */
        replaceAfterMs: z.number().int().min(10).default(60_000),
        /**
         * Least time between two sends of one nonce after a refusal or a disappearance (a re-price or a re-broadcast):
         * the relay never hot-loops on a node that refuses.
         */
        resendIntervalMs: z.number().int().min(10).default(2_000),
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
        /** A device's first record in a batch (its track, evidence and condition slots): the gas floor of a batch
         *  whose readings follow batches in flight, whose dry run cannot see them recorded. */
        gasPerDevice: z.number().int().min(0).default(80_000),
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
    health: z
      .object({
        /** /healthz fails when our lowest unmined nonce has not been mined for this long (a stuck transaction). */
        stuckNonceAfterMs: z
          .number()
          .int()
          .min(1)
          .default(5 * 60_000),
        /** /healthz fails when the oldest reading not yet on chain (pending or in flight) is older than this. */
        maxPendingAgeMs: z
          .number()
          .int()
          .min(1)
          .default(15 * 60_000),
        /** /healthz fails when nothing was confirmed for this long while readings wait (pending or in flight). */
        noConfirmationAfterMs: z
          .number()
          .int()
          .min(1)
          .default(10 * 60_000),
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
    alerts: z
      .object({
        /**
         * Real-time alerts (docs/operations.md, "Real-time alerts"): each accepted reading is judged against its
         * shipment's profile; an excursion, a freeze, a gap or a device fault is published at once. Off by default.
         */
        enabled: z.boolean().default(false),
        /** Publish alerts on `coldchain/v1/alerts/<shipmentId>` (QoS 1, not retained) over the oracle's connection. */
        mqtt: z.boolean().default(true),
        /** How long an MQTT publish waits for the broker's PUBACK before it is retried. */
        mqttTimeoutMs: z.number().int().min(100).max(60_000).default(5_000),
        /** Receivers of signed POSTs (HMAC-SHA256, header X-Coldchain-Signature). */
        webhooks: z
          .array(
            z
              .object({
                url: url.refine((u) => /^https?:/i.test(u), "an http:// or https:// URL"),
                /** The HMAC secret: `{ from: "env", name }` or `{ from: "keystore", key, … }`. */
                secret: SECRET_SOURCE_SCHEMA.optional(),
                /** Short form of `secret: { from: "env", name }`. */
                secretEnv: z.string().min(1).optional(),
                /** An answer not received this fast counts as a failure (retried). */
                timeoutMs: z.number().int().min(100).max(60_000).default(5_000),
              })
              .strict()
              .refine((w) => (w.secret === undefined) !== (w.secretEnv === undefined), {
                message: 'set secret ({ from: "env", name } or { from: "keystore", key }) or secretEnv, exactly one',
              }),
          )
          .max(16)
          .refine((ws) => new Set(ws.map((w) => w.url)).size === ws.length, "each webhook URL at most once")
          .default([]),
        retry: z
          .object({
            /** Back-off of a failed delivery: first wait, and longest (doubling, with jitter). */
            minMs: z.number().int().min(10).default(1_000),
            maxMs: z
              .number()
              .int()
              .min(10)
              .default(5 * 60_000),
            /** A delivery not done this long after its alert was raised is given up (marked failed, counted). */
            giveUpAfterMs: z
              .number()
              .int()
              .min(1_000)
              .default(24 * 3600_000),
          })
          .strict()
          .refine((r) => r.minMs <= r.maxMs, "alerts.retry.minMs must not exceed alerts.retry.maxMs")
          .default({}),
        /** Deliveries in flight at once. */
        deliveryConcurrency: z.number().int().min(1).max(256).default(16),
        /** Devices whose shipment context (shipment, custodian, profile limits) is cached, and for how long. */
        contextCacheSize: z.number().int().min(1).max(1_000_000).default(10_000),
        contextTtlMs: z.number().int().min(0).default(30_000),
        /** How often silent devices are looked for (kind `gap`). */
        gapCheckIntervalMs: z.number().int().min(50).default(5_000),
        /** `GET /alerts` on the HTTP server: Server-Sent Events for dashboards. */
        sse: z
          .object({
            enabled: z.boolean().default(true),
            /** `Access-Control-Allow-Origin` of the stream (the dashboard's origin; "*" lets any page read it). */
            corsOrigin: z.string().min(1).default("*"),
            maxClients: z.number().int().min(1).max(10_000).default(100),
            /** Alerts a resuming client (Last-Event-ID) receives at most from the store. */
            replayLimit: z.number().int().min(0).max(100_000).default(1_000),
            heartbeatMs: z.number().int().min(1_000).default(15_000),
          })
          .strict()
          .default({}),
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

/** Wei of a gwei amount given as a (possibly fractional) number. */
export function gweiToWei(gwei: number): bigint {
  return BigInt(Math.round(gwei * GWEI));
}
