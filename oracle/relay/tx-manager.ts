/**
 * Transaction manager: everything between a planned batch and a final one, for one signing key.
 *
 * Owns, in tick order ({@link TxManager.check}):
 * 1. **Reorgs, until finality** ({@link TxManager.recheckUnfinal}): every confirmed batch whose block is not final is
 *    re-checked whenever the head changes (its block hash at its height); final is the node's `finalized` block
 *    where it has one (anvil: 64 blocks below the head, 0 on a young chain; a node answering its head or nothing:
 *    `chain.reorgWatchBlocks` below the head). A batch whose block left the chain is re-opened: its items are
 *    `batched` again (no longer `recorded`) and its signed transaction goes back in flight (step 3).
 * 2. **Confirmation** ({@link TxManager.checkMined}): a mined batch `confirmations` deep is confirmed (the planner
 *    applies its receipt: items recorded or skipped); its receipt is read again each tick until then (reorg).
 * 3. **Batches in flight** ({@link TxManager.checkSent}), lowest nonce first: every attempt's hash is checked;
 *    - mined → step 2 (reverted → items back to pending);
 *    - the nonce went to a transaction that is none of ours (seen on two ticks) → items back to pending;
 *    - the fee ceiling is below the base fee → nothing is sent (it would be refused): one error line naming
 *      `fees.maxFeePerGasGwei` and the base fee, `/healthz` 503, until the base fee falls;
 *    - the attempt offers less than the next base fee, or a send was refused as underpriced → **re-priced**: new fees
 *      from the policy (./fees.ts), at least `bumpPercent` above the attempt, same nonce, recorded, then broadcast;
 *    - unknown to the node (dropped from its pool, or forgotten after a reorg) but still priced above the base fee →
 *      the same signed bytes are broadcast again (a refusal as underpriced re-prices it at once);
 *    - pending longer than `fees.replaceAfterMs` → re-priced as above.
 *    Sends of one nonce after a refusal or a disappearance are at least `fees.resendIntervalMs` apart, and their log
 *    lines are rate-limited with counts: a node that keeps refusing never makes a hot loop.
 * 4. **Nonce gaps** ({@link TxManager.resyncNonces}): the chain's `latest` nonce is compared with our lowest
 *    unmined one. A free nonce below our batches in flight is either held by a batch of ours the store thinks mined
 *    or confirmed (a reorg took it out and the node forgot it: re-opened, re-sent) or by nothing of ours (the next
 *    batch takes it: {@link TxManager.send} signs with the lowest nonce at or above the chain's that no batch of
 *    ours holds). No nonce is skipped; none is used for two contents without the store knowing (every attempt,
 *    with its nonce, is committed before its broadcast).
 * 5. **Sending a planned batch** ({@link TxManager.send}): fees, nonce, signature, the batch and its first attempt
 *    committed to the store, then the broadcast.
 *
 * What "recorded" means: an item is marked `recorded` when its batch is `confirmations` deep, and goes back to
 * `batched` (in flight) the moment a re-check finds its block gone, until the block is final; a reading the store
 * says is recorded is therefore on chain, or is found off it at the next head change and relayed again.
 *
 * Health ({@link TxManager.status}): the lowest unmined nonce and since when, the fee ceiling against the base fee,
 * the last confirmation.
 */
import type { EventEmitter } from "node:events";

import { Transaction, getAddress } from "ethers";
import type { TransactionReceipt, Wallet } from "ethers";

import { isAlreadyKnownError, isLogicalRpcError, isUnderpricedError } from "../chain.js";
import type { RpcPool } from "../chain.js";
import type { OracleConfig } from "../config/index.js";
import { messageOf } from "../errors.js";
import type { Logger } from "../log.js";
import { RateLimitedLog } from "../log-limit.js";
import type { OracleMetrics } from "../health/metrics.js";
import type { Clock } from "../verification/registry.js";
import type { StoredAttempt, StoredBatch, Store } from "../store/store.js";
import { FEE_CEILING_KEY, FeePolicy } from "./fees.js";
import type { FeeQuote } from "./fees.js";
import type { BatchPlan } from "./planner.js";
import type { RelayEvents } from "./relay.js";

/** The head the tick works at. */
export interface Head {
  readonly number: number;
  readonly hash: string;
}

/** Why an attempt was re-priced (label `reason` of `coldchain_oracle_tx_reprices_total`). */
export type RepriceReason = "below_base_fee" | "refused_underpriced" | "dropped" | "not_mined";

/** The manager's view for /healthz and the gauges. */
export interface TxStatus {
  /** Our lowest nonce in flight (signed, not mined), and since when (unix ms) it has been the lowest. */
  readonly lowestUnminedNonce?: number;
  readonly lowestUnminedSince?: number;
  /** The chain's nonces of our account at the last check. */
  readonly chainNonce?: number;
  readonly pendingNonce?: number;
  /** Batches in flight. */
  readonly inFlight: number;
  /** Unix ms of the last confirmation (the start, before the first). */
  readonly lastConfirmationAt: number;
  /** While the fee ceiling is below the base fee: both, in gwei, and since when. */
  readonly feeCeilingBelowBaseFee?: { readonly baseFeeGwei: number; readonly ceilingGwei: number; since: number };
}

export interface TxManagerOptions {
  readonly config: OracleConfig;
  readonly rpc: RpcPool;
  readonly store: Store;
  readonly wallet: Wallet;
  readonly metrics: OracleMetrics;
  readonly log: Logger;
  readonly clock: Clock;
  readonly events: EventEmitter<RelayEvents>;
  /** Applies a confirmed batch's receipt to its items (the planner). */
  readonly confirm: (batch: StoredBatch, receipt: TransactionReceipt) => Promise<void>;
}

/** Gwei as a number, for logs and /healthz. */
function gwei(wei: bigint): number {
  return Number(wei) / 1e9;
}

export class TxManager {
  readonly fees: FeePolicy;
  private readonly coldChain: string;
  private readonly from: string;
  private readonly limited: RateLimitedLog;
  /** Batches whose nonce the chain has passed with no receipt of ours, and on how many ticks. */
  private readonly nonceTaken = new Map<number, number>();
  /** Batches the store thinks mined or confirmed whose nonce the chain says is free, and on how many ticks. */
  private readonly nonceFree = new Map<number, number>();
  /** Per batch: when one of its nonce's sends after a refusal or disappearance last went out. */
  private readonly lastResendAt = new Map<number, number>();
  /** Batches whose last broadcast was refused as underpriced (re-priced at the next check). */
  private readonly refused = new Set<number>();
  /** The fee quote of the current head (one feeHistory read per block). */
  private quoteAt: { head: string; quote: FeeQuote } | undefined;
  /** The head hash at which non-final batches were last re-checked. */
  private recheckedAt = "";
  /** The node has no usable `finalized` tag: the window is used. */
  private noFinalizedTag = false;
  private lowest: { nonce: number; since: number } | undefined;
  /** A nonce below our batches in flight is free and no batch of ours holds it (the next batch must fill it). */
  private gap = false;
  private chainNonce: number | undefined;
  private pendingNonce: number | undefined;
  private inFlight = 0;
  private lastConfirmationAt: number;
  private ceilingBlocked: { baseFee: bigint; ceiling: bigint; since: number } | undefined;

  constructor(private readonly o: TxManagerOptions) {
    this.coldChain = getAddress(o.config.chain.coldChain);
    this.from = o.wallet.address;
    this.limited = new RateLimitedLog(o.log);
    this.fees = new FeePolicy(o.config.fees, o.rpc, o.log);
    this.lastConfirmationAt = o.clock();
    o.metrics.lastConfirmationTimestamp.set(Math.floor(this.lastConfirmationAt / 1000));
  }

  /** Steps 1–4 at `head`; returns how many batches are still in flight. */
  async check(head: Head): Promise<number> {
    await this.recheckUnfinal(head);
    await this.checkMined(head);
    return this.checkSent(head);
  }

  /**
   * Whether a nonce below our batches in flight is free with no batch of ours for it: the relay then plans a batch
   * even with `maxInFlight` batches in flight (they cannot be mined before it).
   */
  get nonceGap(): boolean {
    return this.gap;
  }

  /** Writes the counts of rate-limited lines still held (at stop). */
  flush(): void {
    this.limited.flush();
  }

  status(): TxStatus {
    const blocked = this.ceilingBlocked;
    return {
      ...(this.lowest === undefined
        ? {}
        : { lowestUnminedNonce: this.lowest.nonce, lowestUnminedSince: this.lowest.since }),
      ...(this.chainNonce === undefined ? {} : { chainNonce: this.chainNonce }),
      ...(this.pendingNonce === undefined ? {} : { pendingNonce: this.pendingNonce }),
      inFlight: this.inFlight,
      lastConfirmationAt: this.lastConfirmationAt,
      ...(blocked === undefined
        ? {}
        : {
            feeCeilingBelowBaseFee: {
              baseFeeGwei: gwei(blocked.baseFee),
              ceilingGwei: gwei(blocked.ceiling),
              since: blocked.since,
            },
          }),
    };
  }

  /**
   * The fee quote at `head` (read once per block), and the ceiling judgement: while the ceiling is below the base
   * fee, one error line when it starts and one info line when it ends (not a line per batch and tick).
   */
  async quote(head: Head): Promise<FeeQuote> {
    if (this.quoteAt?.head !== head.hash) this.quoteAt = { head: head.hash, quote: await this.fees.quote() };
    const q = this.quoteAt.quote;
    this.o.metrics.baseFeeGwei.set(gwei(q.baseFee));
    if (q.belowBaseFee && this.ceilingBlocked === undefined) {
      this.ceilingBlocked = { baseFee: q.baseFee, ceiling: q.ceiling, since: this.o.clock() };
      this.o.metrics.feeCeilingBelowBaseFee.set(1);
      const sent = this.o.store.batchesIn("sent");
      this.o.log.error(
        {
          setting: FEE_CEILING_KEY,
          ceilingGwei: gwei(q.ceiling),
          baseFeeGwei: gwei(q.baseFee),
          batchesWaiting: sent.length,
          nonces: sent.length === 0 ? [] : [sent[0]?.nonce, sent.at(-1)?.nonce],
        },
        `the fee ceiling ${FEE_CEILING_KEY} = ${gwei(q.ceiling)} gwei is below the chain's base fee of ` +
          `${gwei(q.baseFee)} gwei: no transaction can be mined, none is sent or re-priced until the base fee ` +
          `falls below it (${sent.length} batches wait); raise ${FEE_CEILING_KEY} to pay more`,
      );
    } else if (!q.belowBaseFee && this.ceilingBlocked !== undefined) {
      const seconds = Math.round((this.o.clock() - this.ceilingBlocked.since) / 1000);
      this.o.log.info(
        {
          setting: FEE_CEILING_KEY,
          ceilingGwei: gwei(q.ceiling),
          baseFeeGwei: gwei(q.baseFee),
          blockedSeconds: seconds,
        },
        `the chain's base fee (${gwei(q.baseFee)} gwei) is below ${FEE_CEILING_KEY} again after ${seconds} s: sending`,
      );
      this.ceilingBlocked = undefined;
      this.o.metrics.feeCeilingBelowBaseFee.set(0);
    } else if (q.belowBaseFee && this.ceilingBlocked !== undefined) {
      this.ceilingBlocked.baseFee = q.baseFee;
    }
    return q;
  }

  /**
   * Signs `plan` with fresh fees and the lowest free nonce, commits the batch and its attempt, then broadcasts it.
   * Returns false (nothing sent) while the fee ceiling is below the base fee.
   */
  async send(plan: BatchPlan, head: Head): Promise<boolean> {
    const { store, clock } = this.o;
    const q = await this.quote(head);
    if (q.belowBaseFee) return false;
    const nonce = await this.nextNonce();
    const attempt = await this.sign(nonce, plan.data, plan.gasLimit, q.maxFeePerGas, q.maxPriorityFeePerGas);
    const batchId = store.createBatch(plan.itemIds, plan.readings, attempt, clock());
    this.o.metrics.batchReadings.observe(plan.readings);
    this.o.log.info(
      {
        batchId,
        nonce,
        readings: plan.readings,
        items: plan.items,
        gasLimit: plan.gasLimit.toString(),
        maxFeePerGasGwei: gwei(q.maxFeePerGas),
        maxPriorityFeePerGasGwei: gwei(q.maxPriorityFeePerGas),
        baseFeeGwei: gwei(q.baseFee),
        fees: q.source,
        tx: attempt.hash,
      },
      "batch %d sending",
      batchId,
    );
    this.o.events.emit("batch-sent", { batchId, nonce, readings: plan.readings });
    const outcome = await this.broadcast(batchId, attempt, "new");
    if (outcome === "underpriced") this.refused.add(batchId);
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // Reorgs and finality
  // -------------------------------------------------------------------------------------------

  /** The highest final block: the node's `finalized` tag, else `reorgWatchBlocks` below the head. */
  async finalizedBlock(head: Head): Promise<number> {
    const window = head.number - this.o.config.chain.reorgWatchBlocks;
    if (this.o.config.chain.finality === "window" || this.noFinalizedTag) return window;
    let block: { number?: unknown } | null;
    try {
      block = await this.o.rpc.call(
        "getBlock(finalized)",
        async (p) => (await p.send("eth_getBlockByNumber", ["finalized", false])) as { number?: unknown } | null,
      );
    } catch (error) {
      if (!isLogicalRpcError(error)) throw error;
      block = null;
    }
    const n = typeof block?.number === "string" ? Number(BigInt(block.number)) : undefined;
    // A node whose finalized block is its head (a dev chain that calls every block final) tells nothing.
    if (n !== undefined && n < head.number) return n;
    this.noFinalizedTag = true;
    this.o.log.info(
      { finalized: n ?? null, head: head.number, reorgWatchBlocks: this.o.config.chain.reorgWatchBlocks },
      "the node has no usable finalized block (it answered %s at head %d): confirmed batches are re-checked for " +
        "reorgs while less than chain.reorgWatchBlocks (%d) deep",
      n === undefined ? "none" : String(n),
      head.number,
      this.o.config.chain.reorgWatchBlocks,
    );
    return window;
  }

  /** Re-checks every confirmed batch above the final block, once per head (bounded: non-final batches only). */
  private async recheckUnfinal(head: Head): Promise<void> {
    if (head.hash === this.recheckedAt) return;
    const final = await this.finalizedBlock(head);
    const hashes = new Map<number, string | undefined>();
    for (const b of this.o.store.recentConfirmed(final + 1)) {
      const number = b.blockNumber ?? 0;
      if (!hashes.has(number)) {
        const block = number > head.number ? null : await this.o.rpc.call("getBlock", (p) => p.getBlock(number));
        hashes.set(number, block?.hash ?? undefined);
      }
      if (hashes.get(number) !== b.blockHash) this.reorged(b, "its block left the chain");
    }
    this.recheckedAt = head.hash;
  }

  private async checkMined(head: Head): Promise<void> {
    for (const b of this.o.store.batchesIn("mined")) {
      const receipt = await this.o.rpc.call("getTransactionReceipt", (p) => p.getTransactionReceipt(b.txHash ?? ""));
      if (receipt === null || receipt.blockHash !== b.blockHash) {
        this.reorged(b, "its block left the chain before confirmation");
      } else if (head.number - receipt.blockNumber + 1 >= this.o.config.chain.confirmations) {
        await this.o.confirm(b, receipt);
        this.lastConfirmationAt = this.o.clock();
        this.o.metrics.lastConfirmationTimestamp.set(Math.floor(this.lastConfirmationAt / 1000));
      }
    }
  }

  private reorged(b: StoredBatch, why: string): void {
    const wasConfirmed = b.state === "confirmed";
    this.o.store.reopenBatch(b.id);
    this.lastResendAt.delete(b.id);
    this.o.metrics.reorgs.inc();
    this.limited.warn(
      "reorg",
      {
        batchId: b.id,
        nonce: b.nonce,
        blockNumber: b.blockNumber,
        blockHash: b.blockHash,
        readings: b.readingCount,
        wasConfirmed,
      },
      `batch ${b.id} (nonce ${b.nonce}, ${b.readingCount} readings) is no longer on chain: ${why} (reorg); ` +
        `its readings are in flight again${wasConfirmed ? " (no longer recorded)" : ""} and its transaction is sent again`,
    );
    this.o.events.emit("reorg", { batchId: b.id, blockNumber: b.blockNumber });
  }

  // -------------------------------------------------------------------------------------------
  // Batches in flight
  // -------------------------------------------------------------------------------------------

  private async checkSent(head: Head): Promise<number> {
    const { rpc, store } = this.o;
    let sent = store.batchesIn("sent");
    // Read every tick, idle or not: a deep reorg with no traffic must still be found (nonce re-sync below).
    const chainNonce = await rpc.call("getTransactionCount", (p) => p.getTransactionCount(this.from, "latest"));
    this.chainNonce = chainNonce;
    if (sent.length > 0) {
      this.pendingNonce = await rpc.call("getTransactionCount", (p) => p.getTransactionCount(this.from, "pending"));
    }
    if (await this.resyncNonces(chainNonce, sent)) sent = store.batchesIn("sent");
    if (sent.length === 0) {
      this.setLowest(undefined);
      this.inFlight = 0;
      return 0;
    }
    let inFlight = 0;
    for (const b of sent) {
      const attempts = store.attemptsOf(b.id);
      let receipt: TransactionReceipt | null = null;
      for (const a of [...attempts].reverse()) {
        receipt = await rpc.call("getTransactionReceipt", (p) => p.getTransactionReceipt(a.hash));
        if (receipt !== null) break;
      }
      if (receipt !== null) {
        this.forget(b.id);
        if (receipt.status === 1) {
          store.markMined(b.id, receipt.hash, receipt.blockNumber, receipt.blockHash, receipt.gasUsed);
          this.o.log.info({ batchId: b.id, tx: receipt.hash, block: receipt.blockNumber }, "batch %d mined", b.id);
          this.o.events.emit("batch-mined", { batchId: b.id, blockNumber: receipt.blockNumber });
        } else {
          store.releaseBatch(b.id, "reverted");
          this.o.log.error(
            { batchId: b.id, tx: receipt.hash },
            "batch %d reverted on-chain (paused contract?); its readings go back to pending",
            b.id,
          );
          this.o.events.emit("batch-released", { batchId: b.id, state: "reverted" });
        }
        continue;
      }
      const latest = attempts.at(-1);
      if (latest === undefined || chainNonce > b.nonce) {
        // The nonce was used by a transaction that is none of our attempts: the batch will never be mined. Seen
        // on two ticks in a row before acting, so a node that is a block behind another cannot fake it.
        const seen = (this.nonceTaken.get(b.id) ?? 0) + 1;
        this.nonceTaken.set(b.id, seen);
        if (seen < 2) {
          inFlight++;
          continue;
        }
        this.forget(b.id);
        store.releaseBatch(b.id, "dropped");
        this.o.log.warn(
          { batchId: b.id, nonce: b.nonce, chainNonce },
          "batch %d dropped: its nonce %d went to a transaction that is none of ours; its readings go back to pending",
          b.id,
          b.nonce,
        );
        this.o.events.emit("batch-released", { batchId: b.id, state: "dropped" });
        continue;
      }
      this.nonceTaken.delete(b.id);
      inFlight++;
      await this.keepMoving(b, latest, head);
    }
    this.inFlight = inFlight;
    const lowest = store.batchesIn("sent")[0];
    this.setLowest(lowest?.nonce);
    return inFlight;
  }

  /** An unmined batch: re-price it, re-send it, or leave it, as its attempt and the node say. */
  private async keepMoving(b: StoredBatch, latest: StoredAttempt, head: Head): Promise<void> {
    const q = await this.quote(head);
    // Nothing can be mined below the base fee, and nothing may be offered above the ceiling: wait (reported once).
    if (q.belowBaseFee) return;
    const now = this.o.clock();
    const resendDue = now - (this.lastResendAt.get(b.id) ?? 0) >= this.o.config.fees.resendIntervalMs;
    if (this.refused.has(b.id)) {
      if (resendDue) await this.reprice(b, latest, q, "refused_underpriced");
      return;
    }
    if (latest.maxFeePerGas < q.baseFee) {
      // The base fee outgrew the attempt: it cannot be mined until the base fee falls (the node may also drop it).
      if (resendDue) await this.reprice(b, latest, q, "below_base_fee");
      return;
    }
    const known = await this.o.rpc.call("getTransaction", (p) => p.getTransaction(latest.hash));
    if (known === null) {
      // Dropped from the node's pool, or forgotten after a reorg; its bytes are still valid (priced above the base
      // fee): the same signed transaction again. Refused as underpriced, it is re-priced at the next check.
      if (!resendDue) return;
      this.lastResendAt.set(b.id, now);
      this.o.metrics.txResends.inc({ reason: "dropped" });
      this.limited.warn(
        "resend:dropped",
        { batchId: b.id, nonce: b.nonce, tx: latest.hash },
        `batch ${b.id} (nonce ${b.nonce}) is unknown to the node (dropped from its pool, or out of the chain after a ` +
          "reorg) and not mined: broadcasting the same signed transaction again",
      );
      const outcome = await this.broadcast(b.id, latest, "rebroadcast");
      if (outcome === "underpriced") this.refused.add(b.id);
    } else if (now - latest.createdAt >= this.o.config.fees.replaceAfterMs) {
      if (resendDue) await this.reprice(b, latest, q, "not_mined");
    }
  }

  /** A new attempt of `b` at the same nonce with the policy's fees, at least `bumpPercent` above `latest`'s. */
  private async reprice(b: StoredBatch, latest: StoredAttempt, q: FeeQuote, reason: RepriceReason): Promise<void> {
    const now = this.o.clock();
    this.lastResendAt.set(b.id, now);
    this.refused.delete(b.id);
    const fees = this.fees.replacement(latest, q);
    if (fees === undefined) {
      // Already at the ceiling, and the ceiling is above the base fee: it can be mined; keep it in the node's pool.
      this.limited.warn(
        "reprice:ceiling",
        {
          batchId: b.id,
          nonce: b.nonce,
          reason,
          maxFeePerGasGwei: gwei(latest.maxFeePerGas),
          baseFeeGwei: gwei(q.baseFee),
          setting: FEE_CEILING_KEY,
        },
        `batch ${b.id} (nonce ${b.nonce}) offers ${gwei(latest.maxFeePerGas)} gwei, at ${FEE_CEILING_KEY}: no ` +
          `higher replacement is allowed; it stays in the node's pool (base fee ${gwei(q.baseFee)} gwei)`,
      );
      this.o.metrics.txResends.inc({ reason: "at_ceiling" });
      const outcome = await this.broadcast(b.id, latest, "rebroadcast");
      if (outcome === "underpriced") this.refused.add(b.id);
      return;
    }
    const data = Transaction.from(latest.rawTx).data;
    const attempt = await this.sign(b.nonce, data, latest.gasLimit, fees.maxFeePerGas, fees.maxPriorityFeePerGas);
    this.o.store.addAttempt(b.id, attempt);
    this.o.metrics.txReprices.inc({ reason });
    const why: Record<RepriceReason, string> = {
      below_base_fee: `its max fee is below the base fee of ${gwei(q.baseFee)} gwei`,
      refused_underpriced: "the node refused it as underpriced",
      dropped: "the node dropped it",
      not_mined: `not mined after ${this.o.config.fees.replaceAfterMs} ms (fees.replaceAfterMs)`,
    };
    this.limited.warn(
      `reprice:${reason}`,
      {
        batchId: b.id,
        nonce: b.nonce,
        reason,
        replaces: latest.hash,
        maxFeePerGasGwei: gwei(fees.maxFeePerGas),
        maxPriorityFeePerGasGwei: gwei(fees.maxPriorityFeePerGas),
        previousMaxFeePerGasGwei: gwei(latest.maxFeePerGas),
        baseFeeGwei: gwei(q.baseFee),
      },
      `batch ${b.id} (nonce ${b.nonce}) re-priced: ${why[reason]}; replaced with the same nonce at ` +
        `${gwei(fees.maxFeePerGas)} gwei (tip ${gwei(fees.maxPriorityFeePerGas)})`,
    );
    const outcome = await this.broadcast(b.id, attempt, "replacement");
    if (outcome === "underpriced") this.refused.add(b.id);
  }

  // -------------------------------------------------------------------------------------------
  // Nonces
  // -------------------------------------------------------------------------------------------

  /**
   * Finds nonces the chain says are unused (at or above its `latest` nonce) below our lowest batch in flight (all of
   * them when none is in flight). One held by a batch of ours the store thinks mined or confirmed (seen on two ticks,
   * as a lagging endpoint could fake one) is out of the chain (a reorg deeper than the re-check, or one the node
   * forgot): its receipt decides, and if it is gone the batch is re-opened and its transaction sent again. One held
   * by nothing of ours below a batch in flight: the next batch takes it ({@link nextNonce}). Returns whether a batch
   * was re-opened.
   */
  private async resyncNonces(chainNonce: number, sent: readonly StoredBatch[]): Promise<boolean> {
    const lowest = sent[0]?.nonce ?? Number.POSITIVE_INFINITY;
    const held = this.o.store.heldNonces(chainNonce);
    let reopened = false;
    const suspects = new Set<number>();
    for (const n of held) {
      if (n >= lowest) break;
      const b = this.o.store.batchAtNonce(n);
      if (b === undefined || b.state === "sent") continue;
      suspects.add(b.id);
      const seen = (this.nonceFree.get(b.id) ?? 0) + 1;
      this.nonceFree.set(b.id, seen);
      if (seen < 2) continue;
      this.nonceFree.delete(b.id);
      // The store says mined or confirmed, the chain says its nonce is unused: its receipt decides.
      const receipt = await this.o.rpc.call("getTransactionReceipt", (p) => p.getTransactionReceipt(b.txHash ?? ""));
      if (receipt !== null && receipt.blockHash === b.blockHash) continue;
      this.o.metrics.nonceResyncs.inc({ kind: "reopened" });
      this.reorged(b, `the chain's nonce is ${chainNonce}, so its nonce ${n} is unused`);
      reopened = true;
    }
    for (const id of this.nonceFree.keys()) if (!suspects.has(id)) this.nonceFree.delete(id);
    const unheld: number[] = [];
    if (Number.isFinite(lowest)) for (let n = chainNonce; n < lowest; n++) if (!held.has(n)) unheld.push(n);
    this.gap = unheld.length > 0;
    if (unheld.length > 0) {
      this.limited.warn(
        "nonce-gap",
        { chainNonce, pendingNonce: this.pendingNonce, lowestInFlight: lowest, free: unheld },
        `nonces ${unheld.join(", ")} are free below our lowest transaction in flight (nonce ${lowest}; the chain's ` +
          `nonce is ${chainNonce}) and no batch of ours holds them: later transactions wait behind them; the next ` +
          "batch takes the lowest",
      );
    }
    return reopened;
  }

  /** The lowest nonce at or above the chain's (`latest`) that no batch of ours holds (in flight, mined, confirmed). */
  private async nextNonce(): Promise<number> {
    const chainNonce = await this.o.rpc.call("getTransactionCount", (p) => p.getTransactionCount(this.from, "latest"));
    const held = this.o.store.heldNonces(chainNonce);
    let nonce = chainNonce;
    while (held.has(nonce)) nonce++;
    const highest = held.size === 0 ? -1 : Math.max(...held);
    if (nonce < highest) {
      this.o.metrics.nonceResyncs.inc({ kind: "gap" });
      this.o.log.warn(
        { nonce, chainNonce, highestHeld: highest },
        "nonce %d is free below our transactions in flight (up to nonce %d): the new batch fills it",
        nonce,
        highest,
      );
    }
    return nonce;
  }

  private setLowest(nonce: number | undefined): void {
    if (nonce === undefined) this.lowest = undefined;
    else if (this.lowest?.nonce !== nonce) this.lowest = { nonce, since: this.o.clock() };
    const stuck =
      this.lowest !== undefined && this.o.clock() - this.lowest.since >= this.o.config.health.stuckNonceAfterMs;
    this.o.metrics.stuckNonce.set(stuck ? 1 : 0);
  }

  private forget(batchId: number): void {
    this.nonceTaken.delete(batchId);
    this.lastResendAt.delete(batchId);
    this.refused.delete(batchId);
  }

  // -------------------------------------------------------------------------------------------
  // Signing and broadcasting
  // -------------------------------------------------------------------------------------------

  /**
   * Broadcasts a signed attempt (committed to the store before). `underpriced`: the node refused it for its fees (the
   * caller re-prices it); `refused`: for another reason (nonce too low: the next check sees who took it).
   */
  private async broadcast(
    batchId: number,
    attempt: Pick<StoredAttempt, "rawTx" | "hash" | "nonce">,
    kind: "new" | "replacement" | "rebroadcast",
  ): Promise<"sent" | "underpriced" | "refused"> {
    try {
      await this.o.rpc.call("broadcastTransaction", (p) => p.send("eth_sendRawTransaction", [attempt.rawTx]));
    } catch (error) {
      if (!isLogicalRpcError(error)) throw error;
      if (isAlreadyKnownError(error)) return "sent";
      const underpriced = isUnderpricedError(error);
      this.o.metrics.txRefusals.inc({ reason: underpriced ? "underpriced" : "other" });
      // One line per kind of refusal and interval, with the count: a node refusing every send cannot flood the log.
      this.limited.warn(
        `refused:${underpriced ? "underpriced" : "other"}`,
        { batchId, nonce: attempt.nonce, kind, tx: attempt.hash, err: messageOf(error) },
        underpriced
          ? `the node refused batch ${batchId}'s transaction (nonce ${attempt.nonce}) as underpriced: re-pricing it`
          : `the node refused batch ${batchId}'s transaction (nonce ${attempt.nonce}); looking again at the next check`,
      );
      return underpriced ? "underpriced" : "refused";
    }
    this.o.metrics.txAttempts.inc({ kind });
    this.o.events.emit("attempt-sent", { batchId, nonce: attempt.nonce, kind, hash: attempt.hash });
    return "sent";
  }

  private async sign(
    nonce: number,
    data: string,
    gasLimit: bigint,
    maxFeePerGas: bigint,
    maxPriorityFeePerGas: bigint,
  ): Promise<StoredAttempt> {
    const rawTx = await this.o.wallet.signTransaction({
      type: 2,
      chainId: this.o.config.chain.chainId,
      nonce,
      to: this.coldChain,
      data,
      value: 0n,
      gasLimit,
      maxFeePerGas,
      maxPriorityFeePerGas,
    });
    return {
      id: 0,
      batchId: 0,
      nonce,
      maxFeePerGas,
      maxPriorityFeePerGas,
      gasLimit,
      rawTx,
      hash: Transaction.from(rawTx).hash ?? "",
      createdAt: this.o.clock(),
    };
  }
}
