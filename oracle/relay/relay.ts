/**
 * The relay: batches pending items into `submitReadings` transactions and sees each one through to finality. One
 * relay per signing key, and one loop per relay (the only writer of that key's nonces). This file is the loop; the
 * parts it runs, and where each fault is handled:
 * - ./planner.ts: which items go into the next batch, the pre-flight (dry run) and the holds of items the chain
 *   would skip for a retryable reason (`CustodyPending`, `SequenceGap`, `FutureTimestamp`), a receipt's outcome
 *   per item;
 * - ./fees.ts: the fees offered (`eth_feeHistory`), replacements' bumps, the fee ceiling against the base fee;
 * - ./tx-manager.ts: nonces, signing, recording before broadcast, broadcast, re-pricing and re-sending (underpriced,
 *   dropped, not mined), nonce-gap re-sync, confirmation and the reorg re-check until finality.
 *
 * Each tick, in order:
 * 1. the head (number and hash); registry events are followed (device cache);
 * 2. the transaction manager: confirmed batches not yet final are re-checked (when the head changed), mined batches
 *    confirmed once `confirmations` deep, batches in flight checked (mined, re-priced, re-sent, nonce gaps);
 * 3. when fewer than `maxInFlight` batches are in flight: held gaps whose device's chain moved are released, and the
 *    planner's next batch (if one is due) is handed to the transaction manager to sign, record and broadcast.
 *
 * Every state change is in the store before it has an effect outside the process, so a kill at any point
 * resumes correctly from the store.
 */
import { EventEmitter } from "node:events";

import type { Wallet } from "ethers";

import { backoffMs } from "../chain.js";
import type { RpcPool } from "../chain.js";
import type { OracleConfig } from "../config/index.js";
import { isOracleError, messageOf } from "../errors.js";
import type { Logger } from "../log.js";
import { RateLimitedLog } from "../log-limit.js";
import type { OracleMetrics } from "../health/metrics.js";
import type { Clock, DeviceCache } from "../verification/registry.js";
import type { Store } from "../store/store.js";
import { Sleeper } from "../sleeper.js";
import type { AnchorClaims } from "./anchor-claims.js";
import { Planner } from "./planner.js";
import type { HoldReason } from "./planner.js";
import { TxManager } from "./tx-manager.js";
import type { Head, TxStatus } from "./tx-manager.js";

export { CUSTODY_RETRY_MAX_MS, GAP_RETRY_MAX_MS, GAP_WARN_AFTER_MS } from "./planner.js";
export type { HoldReason } from "./planner.js";

/** Events of the relay (tests and the composition root listen). */
export interface RelayEvents {
  "batch-sent": [{ batchId: number; nonce: number; readings: number }];
  "attempt-sent": [{ batchId: number; nonce: number; kind: "new" | "replacement" | "rebroadcast"; hash: string }];
  "batch-mined": [{ batchId: number; blockNumber: number }];
  "batch-confirmed": [{ batchId: number; recorded: number; skipped: number; deferred: number }];
  "batch-released": [{ batchId: number; state: "dropped" | "reverted" }];
  reorg: [{ batchId: number; blockNumber: number | null }];
  "preflight-skipped": [{ itemIds: number[]; reason: "DuplicateSequence" | "StaleSequence" }];
  /** Items held back, still pending: the chain would skip them (preflight) or skipped them (receipt) as retryable. */
  deferred: [
    {
      itemIds: number[];
      reason: HoldReason;
      stage: "preflight" | "receipt";
      shipmentId: bigint | undefined;
      /** The device whose chain has the gap (SequenceGap). */
      deviceId?: bigint;
      retryInMs: number;
    },
  ];
  /** Protocol v1 items of an older store moved to `unrelayable` (kept as evidence, never relayed). */
  unrelayable: [{ itemIds: number[]; readings: number }];
  /** A tick ended; a failed one carries its error (a store failure makes the oracle pause intake). */
  tick: [{ ok: boolean; error?: unknown }];
}

export interface RelayOptions {
  readonly config: OracleConfig;
  readonly rpc: RpcPool;
  readonly store: Store;
  readonly devices: DeviceCache;
  readonly wallet: Wallet;
  readonly metrics: OracleMetrics;
  readonly log: Logger;
  readonly clock: Clock;
  /** Most batches in flight (sent, not mined) at once. */
  readonly maxInFlight?: number;
  /** With several instances in one share group: claims of anchor copies (./anchor-claims.ts). */
  readonly anchorClaims?: AnchorClaims;
}

/**
 * Longest back-off between failing ticks. A tick is a few cheap reads, so a short cap costs the node little, and the
 * relay finds a returning RPC node soon (the fault drill "RPC unreachable 5 s" took 14–27 s to recover with 30 s).
 * Any registry answer (the set-aside retrier's probe) also wakes the loop at once (oracle.ts).
 */
export const RELAY_BACKOFF_MAX_MS = 5_000;

export class Relay {
  readonly events = new EventEmitter<RelayEvents>();
  readonly planner: Planner;
  readonly txManager: TxManager;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private readonly sleeper = new Sleeper();
  private failures = 0;
  private readonly limited: RateLimitedLog;
  private lastTickOkAt = 0;

  constructor(private readonly o: RelayOptions) {
    this.limited = new RateLimitedLog(o.log);
    this.planner = new Planner({
      config: o.config,
      rpc: o.rpc,
      store: o.store,
      metrics: o.metrics,
      log: o.log,
      clock: o.clock,
      from: o.wallet.address,
      events: this.events,
      ...(o.anchorClaims === undefined ? {} : { anchorClaims: o.anchorClaims }),
    });
    this.txManager = new TxManager({
      config: o.config,
      rpc: o.rpc,
      store: o.store,
      wallet: o.wallet,
      metrics: o.metrics,
      log: o.log,
      clock: o.clock,
      events: this.events,
      confirm: (batch, receipt) => this.planner.applyReceipt(batch, receipt),
    });
  }

  /** Starts the loop (resuming whatever the store holds). */
  start(): void {
    this.loop ??= this.run();
  }

  /** Finishes the current tick and stops; batches in flight stay in the store and resume at the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.sleeper.stop();
    await this.loop;
  }

  /** Wakes the loop now (the store can write again: no need to wait out the back-off). */
  poke(): void {
    this.sleeper.wake();
  }

  /** Called when readings were stored: wakes the loop when a full batch is waiting. */
  notify(): void {
    if (this.o.store.pendingReadings() - this.planner.heldReadings >= this.o.config.batch.maxReadings)
      this.sleeper.wake();
  }

  /** Readings pending in the store but held back: a retryable skip (CustodyPending, SequenceGap, FutureTimestamp) or an anchor copy within its hold (mqtt.anchorHoldMs). */
  get heldReadings(): number {
    return this.planner.heldReadings;
  }

  /** Unix ms of the last tick that completed without error (0 before the first). */
  get lastSuccessAt(): number {
    return this.lastTickOkAt;
  }

  /** The transaction manager's view (nonces, fee ceiling, last confirmation) for /healthz. */
  get tx(): TxStatus {
    return this.txManager.status();
  }

  private async run(): Promise<void> {
    const poll = this.o.config.chain.pollIntervalMs;
    while (!this.stopping) {
      let delay: number;
      try {
        delay = await this.tick();
        this.failures = 0;
        this.lastTickOkAt = this.o.clock();
        this.events.emit("tick", { ok: true });
      } catch (error) {
        if (this.stopping) {
          // The stop closed what the step was using; the store has the step's state (as after a crash).
          this.o.log.debug({ err: messageOf(error) }, "relay step ended by the stop");
          break;
        }
        this.failures++;
        delay = backoffMs(this.failures, poll, RELAY_BACKOFF_MAX_MS);
        // One line per error code and interval (with the count): a store or RPC outage fails every tick.
        this.limited.error(
          `tick:${isOracleError(error) ? error.code : "error"}`,
          { err: messageOf(error), retryInMs: delay },
          "relay tick failed; backing off",
        );
        this.events.emit("tick", { ok: false, error });
      }
      await this.sleeper.sleep(delay);
    }
    this.limited.flush();
    this.txManager.flush();
    this.o.log.info("relay stopped");
  }

  /** One pass; returns the delay before the next. */
  /** One pass; returns the delay before the next. */
  private async tick(): Promise<number> {
    const { rpc, config } = this.o;
    const poll = config.chain.pollIntervalMs;
    const block = await rpc.call("getBlock", (p) => p.getBlock("latest"));
    if (block === null || block.hash === null) throw new Error("the node has no latest block");
    const head: Head = { number: block.number, hash: block.hash };
    await this.o.devices.sync(head.number);
    const inFlight = await this.txManager.check(head);
    // A free nonce below our batches in flight: they wait for it, so a batch is planned to fill it whatever is in flight.
    if (this.stopping || (inFlight >= (this.o.maxInFlight ?? 4) && !this.txManager.nonceGap)) return poll;
    await this.planner.releaseAdvancedGaps(head.number);
    const plan = await this.planner.plan();
    if (typeof plan === "number") return plan;
    if (this.stopping) return poll;
    // The fee ceiling below the base fee: nothing sent (reported once by the transaction manager); asked again.
    if (!(await this.txManager.send(plan, head))) return poll;
    return this.o.store.pendingReadings() - this.planner.heldReadings >= config.batch.maxReadings ? 0 : poll;
  }
}
