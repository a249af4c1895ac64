/**
 * Prometheus metrics of one oracle instance (prom-client, a registry per instance so several instances can
 * run in one process in tests). Names and labels are documented in docs/operations.md.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

import { STORE_FAULTS } from "../errors.js";

/** Why a message was dropped before it was stored (label `reason` of `coldchain_oracle_dropped_total`). */
export const DROP_REASONS = [
  "too_large",
  "malformed",
  "topic_mismatch",
  "unknown_device",
  "revoked_device",
  "interval_mismatch",
  "future_timestamp",
  "bad_signature",
  "duplicate",
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/**
 * Why a message was set aside (stored, judged later) instead of judged when it came (label `reason` of
 * `coldchain_oracle_set_aside_total`): the device registry unreachable; look-ups of devices not cached rate-limited
 * (`verify.lookupRatePerSecond`, or the intake's wait budget spent); a look-up slower than `verify.lookupWaitMs`;
 * a device not cached while messages are set aside (`queued`: it waits its turn behind them).
 */
export const SET_ASIDE_REASONS = ["registry_unavailable", "lookup_rate_limited", "lookup_slow", "queued"] as const;
export type SetAsideReason = (typeof SET_ASIDE_REASONS)[number];

export interface OracleMetrics {
  readonly registry: Registry;
  readonly received: Counter;
  readonly accepted: Counter;
  readonly acceptedReadings: Counter;
  readonly dropped: Counter<"reason">;
  readonly pendingReadings: Gauge;
  readonly batchReadings: Histogram;
  readonly txAttempts: Counter<"kind">;
  readonly gasUsed: Counter;
  readonly gasPerReading: Histogram;
  readonly recordedReadings: Counter;
  readonly skippedReadings: Counter<"reason">;
  readonly deferredReadings: Counter<"reason" | "stage">;
  readonly heldReadings: Gauge<"reason">;
  readonly unrelayableReadings: Counter<"reason">;
  readonly confirmationLatency: Histogram;
  readonly rpcErrors: Counter<"endpoint">;
  readonly reorgs: Counter;
  readonly mqttConnected: Gauge;
  /** Messages set aside (stored, judged later), by why they could not be judged when they came. */
  readonly setAside: Counter<"reason">;
  /** Messages set aside that were judged later: `stored` or `dropped` (the drop's reason in `dropped`). */
  readonly setAsideJudged: Counter<"outcome">;
  /** Registry look-ups of devices not cached: `known`, `unknown`, `failed`, `timeout`, or `rate_limited` (not made). */
  readonly registryLookups: Counter<"result">;
  /** 0 while the device registry is unreachable. */
  readonly registryAvailable: Gauge;
  /** Store failures (SQLite's own), by fault: full, io, busy, readonly, corrupt, other. */
  readonly storeErrors: Counter<"fault">;
  /** 1 while the store can write, 0 from a store failure until a write succeeds again. */
  readonly storeWritable: Gauge;
  /** Empty messages on the readings topics: a retained message cleared (nothing to store, not malformed). */
  readonly retainedClears: Counter;
  /** Retained messages delivered again (after a restart or a new subscription) whose reading is stored already. */
  readonly retainedReplays: Counter;
  /** RPC endpoints refused because they serve another chain than `chain.chainId`. */
  readonly rpcEndpointsRefused: Gauge;
  /** Attempts re-priced (same nonce, higher fees), by why: below_base_fee, refused_underpriced, not_mined. */
  readonly txReprices: Counter<"reason">;
  /** The same signed transaction sent again: dropped (unknown to the node), at_ceiling (no higher fee allowed). */
  readonly txResends: Counter<"reason">;
  /** Broadcasts the node refused: underpriced, other. */
  readonly txRefusals: Counter<"reason">;
  /** Nonce gaps re-synced: reopened (a batch of ours out of the chain), gap (a free nonce filled by a new batch). */
  readonly nonceResyncs: Counter<"kind">;
  /** 1 while our lowest unmined nonce has not been mined for `health.stuckNonceAfterMs`. */
  readonly stuckNonce: Gauge;
  /** Unix seconds of the last confirmed batch (the start, before the first). */
  readonly lastConfirmationTimestamp: Gauge;
  /** 1 while `fees.maxFeePerGasGwei` is below the chain's base fee (nothing can be mined). */
  readonly feeCeilingBelowBaseFee: Gauge;
  /** The next block's base fee the fee policy last read, gwei. */
  readonly baseFeeGwei: Gauge;
  /**
   * Messages the anchor session received (oracle/intake/anchor.ts), by what it did: `caught_up` (handed to intake
   * while catching up after a (re)connect) or `discarded` (acknowledged unjudged: the share group has them).
   */
  readonly anchorMessages: Counter<"mode">;
  /** Messages the anchor handed to intake whose reading was stored already (a share member's copy was first). */
  readonly anchorDuplicates: Counter;
  /** Anchor copies held (`mqtt.anchorHoldMs`) released early: the share group gave this instance the message too. */
  readonly anchorReleased: Counter;
  /** Fences the anchor published (one per catch-up, when every shared connection has its SUBACK). */
  readonly anchorFences: Counter;
  /**
   * Anchor copies whose hold ended, by what the claims between instances did with them (oracle/relay/anchor-claims.ts):
   * `claimed` (this instance claimed them), `yielded` (another instance's claim: they wait for its transaction),
   * `kept` (both claimed them; this instance's oracleId sorts first).
   */
  readonly anchorClaims: Counter<"event">;
  /** 1 while the anchor catches up (judges what it receives), 0 after its fence or without an anchor. */
  readonly anchorCatchingUp: Gauge;
}

/** Gauges read at every scrape from the parts that hold them (default 0). */
export interface ScrapedGauges {
  /** Messages set aside now. */
  readonly setAsideMessages?: () => number;
  /** Devices remembered as unknown now. */
  readonly unknownDevices?: () => number;
  /** Age (seconds) of the oldest reading not yet on chain (pending or in flight), 0 when none. */
  readonly oldestPendingAgeSeconds?: () => number;
}

/**
 * Creates the metrics in a fresh registry; `pending` (and `unrelayable`, the readings kept as unrelayable protocol
 * v1 evidence) are read at every scrape.
 */
export function createMetrics(
  oracleId: string,
  pending: () => number,
  defaults = false,
  unrelayable: () => number = () => 0,
  scraped: ScrapedGauges = {},
): OracleMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ oracle: oracleId });
  if (defaults) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const dropped = new Counter({
    name: "coldchain_oracle_dropped_total",
    help: "MQTT messages dropped before storage, by reason",
    labelNames: ["reason"] as const,
    registers,
  });
  for (const reason of DROP_REASONS) dropped.inc({ reason }, 0);
  const anchorMessages = new Counter({
    name: "coldchain_oracle_mqtt_anchor_messages_total",
    help: "messages the anchor session received: caught_up (handed to intake) or discarded (the share group has them)",
    labelNames: ["mode"] as const,
    registers,
  });
  for (const mode of ["caught_up", "discarded"]) anchorMessages.inc({ mode }, 0);
  const skippedReadings = new Counter({
    name: "coldchain_oracle_skipped_readings_total",
    help: "readings the contract (or the pre-flight check) skipped, by SkipReason",
    labelNames: ["reason"] as const,
    registers,
  });
  // StaleSequence is lost evidence (docs/operations.md alerts on it): the series exists from the start, so the
  // first loss is an increase from 0 rather than a new series.
  skippedReadings.inc({ reason: "StaleSequence" }, 0);
  // Readings the chain would skip, or skipped, with a retryable reason (CustodyPending, SequenceGap, FutureTimestamp): kept pending
  // and retried, never dropped.
  const deferredReadings = new Counter({
    name: "coldchain_oracle_deferred_readings_total",
    help: "readings held back for a retryable SkipReason (CustodyPending, SequenceGap, FutureTimestamp), by reason and stage (preflight, receipt)",
    labelNames: ["reason", "stage"] as const,
    registers,
  });
  const heldReadings = new Gauge({
    name: "coldchain_oracle_held_readings",
    help: "pending readings currently held back for a retryable SkipReason (CustodyPending, SequenceGap, FutureTimestamp), or anchor copies within mqtt.anchorHoldMs (AnchorHold), by reason",
    labelNames: ["reason"] as const,
    registers,
  });
  for (const reason of ["CustodyPending", "SequenceGap", "FutureTimestamp"]) {
    for (const stage of ["preflight", "receipt"]) deferredReadings.inc({ reason, stage }, 0);
    heldReadings.set({ reason }, 0);
  }
  heldReadings.set({ reason: "AnchorHold" }, 0);
  // Protocol v1 readings of a store of before protocol v2: kept as evidence, never relayed (an error each time).
  const unrelayableReadings = new Counter({
    name: "coldchain_oracle_unrelayable_readings_total",
    help: "pending readings retired as unrelayable (ProtocolV1: signed before protocol v2), kept in the store as evidence",
    labelNames: ["reason"] as const,
    registers,
  });
  unrelayableReadings.inc({ reason: "ProtocolV1" }, 0);
  new Gauge({
    name: "coldchain_oracle_unrelayable_readings",
    help: "readings the store keeps as unrelayable evidence (ProtocolV1), never relayed",
    registers,
    collect() {
      this.set(unrelayable());
    },
  });
  const setAside = new Counter({
    name: "coldchain_oracle_set_aside_total",
    help: "messages set aside (stored, acknowledged, judged later) because they could not be judged when they came, by reason",
    labelNames: ["reason"] as const,
    registers,
  });
  for (const reason of SET_ASIDE_REASONS) setAside.inc({ reason }, 0);
  const setAsideJudged = new Counter({
    name: "coldchain_oracle_set_aside_judged_total",
    help: "messages set aside and judged later, by outcome (stored, dropped)",
    labelNames: ["outcome"] as const,
    registers,
  });
  for (const outcome of ["stored", "dropped"]) setAsideJudged.inc({ outcome }, 0);
  new Gauge({
    name: "coldchain_oracle_set_aside_messages",
    help: "messages set aside now, waiting to be judged",
    registers,
    collect() {
      this.set(scraped.setAsideMessages?.() ?? 0);
    },
  });
  const registryLookups = new Counter({
    name: "coldchain_oracle_registry_lookups_total",
    help: "registry look-ups of devices not cached, by result (known, unknown, failed, timeout, rate_limited: not made)",
    labelNames: ["result"] as const,
    registers,
  });
  for (const result of ["known", "unknown", "failed", "timeout", "rate_limited"]) registryLookups.inc({ result }, 0);
  const registryAvailable = new Gauge({
    name: "coldchain_oracle_registry_available",
    help: "0 while the device registry is unreachable (messages needing a look-up are set aside)",
    registers,
  });
  registryAvailable.set(1);
  new Gauge({
    name: "coldchain_oracle_unknown_devices_cached",
    help: "device ids remembered as unknown to the registry (bounded by verify.unknownDeviceCacheSize)",
    registers,
    collect() {
      this.set(scraped.unknownDevices?.() ?? 0);
    },
  });
  const storeErrors = new Counter({
    name: "coldchain_oracle_store_errors_total",
    help: "store (SQLite) failures, by fault: full (disk full or store.maxSizeMb), io, busy, readonly, corrupt, other",
    labelNames: ["fault"] as const,
    registers,
  });
  for (const fault of STORE_FAULTS) storeErrors.inc({ fault }, 0);
  const storeWritable = new Gauge({
    name: "coldchain_oracle_store_writable",
    help: "1 while the store can write; 0 from a store failure until a write succeeds again (intake is paused meanwhile)",
    registers,
  });
  storeWritable.set(1);
  new Gauge({
    name: "coldchain_oracle_oldest_pending_age_seconds",
    help: "age of the oldest reading not yet on chain (pending, held or in flight), 0 when none",
    registers,
    collect() {
      this.set(scraped.oldestPendingAgeSeconds?.() ?? 0);
    },
  });
  const labelled = <L extends string>(name: string, help: string, label: L, values: readonly string[]): Counter<L> => {
    const c = new Counter({ name, help, labelNames: [label] as const, registers });
    for (const v of values) c.inc({ [label]: v } as Partial<Record<L, string>>, 0);
    return c;
  };
  return {
    registry,
    txReprices: labelled(
      "coldchain_oracle_tx_reprices_total",
      "transactions re-priced (same nonce, fees from the policy and at least fees.bumpPercent higher), by reason",
      "reason",
      ["below_base_fee", "refused_underpriced", "not_mined"],
    ),
    txResends: labelled(
      "coldchain_oracle_tx_resends_total",
      "the same signed transaction broadcast again: dropped (unknown to the node), at_ceiling (no higher fee allowed)",
      "reason",
      ["dropped", "at_ceiling"],
    ),
    txRefusals: labelled(
      "coldchain_oracle_tx_refusals_total",
      "broadcasts the node refused, by reason (underpriced, other)",
      "reason",
      ["underpriced", "other"],
    ),
    nonceResyncs: labelled(
      "coldchain_oracle_nonce_resyncs_total",
      "nonce gaps below our transactions in flight re-synced: reopened (a batch of ours found out of the chain), gap (a free nonce filled by a new batch)",
      "kind",
      ["reopened", "gap"],
    ),
    stuckNonce: new Gauge({
      name: "coldchain_oracle_stuck_nonce",
      help: "1 while our lowest unmined nonce has not been mined for health.stuckNonceAfterMs",
      registers,
    }),
    lastConfirmationTimestamp: new Gauge({
      name: "coldchain_oracle_last_confirmation_timestamp_seconds",
      help: "unix seconds of the last confirmed batch (the start time before the first)",
      registers,
    }),
    feeCeilingBelowBaseFee: new Gauge({
      name: "coldchain_oracle_fee_ceiling_below_base_fee",
      help: "1 while fees.maxFeePerGasGwei is below the chain's base fee (no transaction can be mined)",
      registers,
    }),
    baseFeeGwei: new Gauge({
      name: "coldchain_oracle_base_fee_gwei",
      help: "the next block's base fee the fee policy last read, gwei",
      registers,
    }),
    setAside,
    setAsideJudged,
    registryLookups,
    registryAvailable,
    storeErrors,
    storeWritable,
    retainedClears: new Counter({
      name: "coldchain_oracle_retained_clears_total",
      help: "empty messages on the readings topics (a retained message cleared): ignored, not counted as malformed",
      registers,
    }),
    retainedReplays: new Counter({
      name: "coldchain_oracle_retained_replays_total",
      help: "retained messages delivered again whose reading is stored already (not counted as dropped duplicates)",
      registers,
    }),
    rpcEndpointsRefused: new Gauge({
      name: "coldchain_oracle_rpc_endpoints_refused",
      help: "RPC endpoints refused (never used) because they serve another chain than chain.chainId",
      registers,
    }),
    received: new Counter({
      name: "coldchain_oracle_received_total",
      help: "MQTT messages received on the readings topics",
      registers,
    }),
    accepted: new Counter({
      name: "coldchain_oracle_accepted_total",
      help: "messages verified and stored (one item each)",
      registers,
    }),
    acceptedReadings: new Counter({
      name: "coldchain_oracle_accepted_readings_total",
      help: "readings verified and stored (a window counts its samples)",
      registers,
    }),
    dropped,
    pendingReadings: new Gauge({
      name: "coldchain_oracle_pending_readings",
      help: "readings stored and not yet in a batch (the queue depth, on disk)",
      registers,
      collect() {
        this.set(pending());
      },
    }),
    batchReadings: new Histogram({
      name: "coldchain_oracle_batch_readings",
      help: "readings per submitted batch",
      buckets: [1, 10, 50, 100, 250, 500, 1000, 2000],
      registers,
    }),
    txAttempts: new Counter({
      name: "coldchain_oracle_tx_attempts_total",
      help: "transactions broadcast, by kind (new, replacement, rebroadcast)",
      labelNames: ["kind"] as const,
      registers,
    }),
    gasUsed: new Counter({ name: "coldchain_oracle_gas_used_total", help: "gas used by mined batches", registers }),
    gasPerReading: new Histogram({
      name: "coldchain_oracle_gas_per_reading",
      help: "gas used per reading of a mined batch",
      buckets: [500, 1000, 2500, 5000, 7500, 10_000, 15_000, 25_000, 50_000],
      registers,
    }),
    recordedReadings: new Counter({
      name: "coldchain_oracle_recorded_readings_total",
      help: "readings confirmed on-chain",
      registers,
    }),
    skippedReadings,
    deferredReadings,
    heldReadings,
    unrelayableReadings,
    confirmationLatency: new Histogram({
      name: "coldchain_oracle_confirmation_latency_seconds",
      help: "seconds from receipt over MQTT to on-chain confirmation",
      buckets: [1, 5, 15, 30, 60, 120, 300, 900, 3600],
      registers,
    }),
    rpcErrors: new Counter({
      name: "coldchain_oracle_rpc_errors_total",
      help: "failed JSON-RPC calls, by endpoint index",
      labelNames: ["endpoint"] as const,
      registers,
    }),
    reorgs: new Counter({
      name: "coldchain_oracle_reorgs_total",
      help: "batches (mined or confirmed, not final) found out of the chain after a reorg, re-opened and sent again",
      registers,
    }),
    mqttConnected: new Gauge({
      name: "coldchain_oracle_mqtt_connected",
      help: "1 while connected to the broker",
      registers,
    }),
    anchorMessages,
    anchorDuplicates: new Counter({
      name: "coldchain_oracle_mqtt_anchor_duplicates_total",
      help: "messages the anchor session handed to intake whose reading was stored already (not counted as dropped)",
      registers,
    }),
    anchorReleased: new Counter({
      name: "coldchain_oracle_mqtt_anchor_released_total",
      help: "anchor copies held by mqtt.anchorHoldMs that a share member's copy released (relayed at once)",
      registers,
    }),
    anchorFences: new Counter({
      name: "coldchain_oracle_mqtt_anchor_fences_total",
      help: "fences the anchor session published (one per catch-up after a (re)connect)",
      registers,
    }),
    anchorClaims: new Counter({
      name: "coldchain_oracle_mqtt_anchor_claims_total",
      help: "anchor copies whose hold ended, by event: claimed (by this instance), yielded (to another instance's claim), kept (claimed by both; this oracleId sorts first)",
      labelNames: ["event"],
      registers,
    }),
    anchorCatchingUp: new Gauge({
      name: "coldchain_oracle_mqtt_anchor_catching_up",
      help: "1 while the anchor session judges what it receives (after a (re)connect, until its fence comes back)",
      registers,
    }),
  };
}
