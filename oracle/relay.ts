/**
 * The relay: batches pending items into `submitReadings` transactions and sees each one through to
 * confirmation. One relay per signing key, and one loop per relay (the only writer of that key's nonces).
 *
 * Each tick, in order:
 * 1. registry events are followed (device cache);
 * 2. confirmed batches still near the head are re-checked: a batch whose block left the canonical chain is
 *    re-opened and its signed transaction sent again (same nonce);
 * 3. mined batches are confirmed once `confirmations` deep: every item without a `ReadingSkipped` event in
 *    the receipt is recorded, the others are stored with the contract's reason, except a retryable one
 *    (`CustodyPending`, a custody handover of the shipment still waiting for acceptance): such an item goes back
 *    to pending and is held back for a while (see "Held items" below);
 * 4. batches in flight are checked against every attempt's hash: mined → step 3; unknown to the node →
 *    the raw transaction is broadcast again; pending longer than `replaceAfterMs` → replaced with the same
 *    nonce and higher fees (up to the ceiling); nonce taken by nothing of ours → items released;
 * 5. a new batch is built when there is room in flight and enough readings (count) or an old enough one
 *    (age): capped by count, planned gas, calldata bytes, then dry-run (`eth_call`); items the chain holds
 *    already (duplicates) or will never accept (older than the device's replay window: lost, an error) removed
 *    without spending gas, and items the chain would skip as `CustodyPending` held back (they stay pending);
 *    sized by `estimateGas`, signed, recorded, and only then broadcast.
 *
 * Held items: while a custody offer of a shipment is pending, the contract skips (`CustodyPending`, retryable)
 * every reading of its devices observed at or after the offer's agreed boundary (`custodyOffer.handoverAt`); the
 * same signed item is accepted once the offer is accepted, withdrawn or expired. Such items are never dropped:
 * they stay `pending` in the store and are left out of batches until a back-off per shipment (from
 * `chain.pollIntervalMs`, doubling, at most {@link CUSTODY_RETRY_MAX_MS}) runs out, then checked again. The hold
 * is in memory only: after a restart the pre-flight finds them again.
 *
 * Every state change is in the store before it has an effect outside the process, so a kill at any point
 * resumes correctly from the store.
 */
import { EventEmitter } from "node:events";

import { Transaction, getAddress } from "ethers";
import type { TransactionReceipt, Wallet } from "ethers";

import { isRetryableSkip } from "../sdk/names.js";
import { decodeMqttPayload, encodeBatch } from "../sdk/protocol/index.js";
import { COLD_CHAIN_ABI, REPLAY_WINDOW_SIZE, SKIP_REASONS, backoffMs, isLogicalRpcError } from "./chain.js";
import type { RpcPool } from "./chain.js";
import { gweiToWei } from "./config.js";
import type { OracleConfig } from "./config.js";
import { messageOf } from "./errors.js";
import type { Logger } from "./log.js";
import type { OracleMetrics } from "./metrics.js";
import type { Clock, DeviceCache } from "./registry.js";
import type { ItemOutcome, StoredAttempt, StoredBatch, StoredItem, Store } from "./store.js";

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
      reason: "CustodyPending";
      stage: "preflight" | "receipt";
      shipmentId: bigint | undefined;
      retryInMs: number;
    },
  ];
  tick: [{ ok: boolean }];
}

/** ABI head of `submitReadings(bytes)` calldata: selector, offset, length. */
const CALLDATA_OVERHEAD_BYTES = 4 + 32 + 32 + 32;
const SKIPPED_TOPIC = COLD_CHAIN_ABI.getEvent("ReadingSkipped")?.topicHash ?? "";
/** Longest back-off before readings held for a pending custody handover are checked again. */
export const CUSTODY_RETRY_MAX_MS = 30_000;

/** A pending custody offer, as `custodyOffer(shipmentId)` returns it. */
interface PendingOffer {
  readonly to: string;
  readonly deadline: number;
  readonly handoverAt: number;
}

/** An item held back: pending in the store, left out of batches until `retryAt` (ms). */
interface Hold {
  readonly retryAt: number;
  readonly readings: number;
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
}

export class Relay {
  readonly events = new EventEmitter<RelayEvents>();
  private stopping = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private failures = 0;
  private lastTickOkAt = 0;
  /** After estimateGas exceeded the cap: the next batch takes at most this many items. */
  private itemLimit: number | undefined;
  /** Batches whose nonce the chain has passed with no receipt of ours, and on how many ticks. */
  private readonly nonceTaken = new Map<number, number>();
  private readonly coldChain: string;
  private readonly from: string;
  /** Items held back for a retryable skip (CustodyPending), by item id. */
  private readonly held = new Map<number, Hold>();
  /** Readings of the held items. */
  private heldCount = 0;
  /** Per shipment (or "?" when unknown): consecutive holds (the back-off) and the offer last logged at info. */
  private readonly holdStreak = new Map<string, { attempts: number; logged: string }>();

  constructor(private readonly o: RelayOptions) {
    this.coldChain = getAddress(o.config.chain.coldChain);
    this.from = o.wallet.address;
  }

  /** Starts the loop (resuming whatever the store holds). */
  start(): void {
    this.loop ??= this.run();
  }

  /** Finishes the current tick and stops; batches in flight stay in the store and resume at the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
  }

  /** Called when readings were stored: wakes the loop when a full batch is waiting. */
  notify(): void {
    if (this.o.store.pendingReadings() - this.heldCount >= this.o.config.batch.maxReadings) this.wake?.();
  }

  /** Readings pending in the store but held back for a retryable skip (CustodyPending). */
  get heldReadings(): number {
    return this.heldCount;
  }

  /** Unix ms of the last tick that completed without error (0 before the first). */
  get lastSuccessAt(): number {
    return this.lastTickOkAt;
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
        this.failures++;
        delay = backoffMs(this.failures, poll, 30_000);
        this.o.log.error({ err: messageOf(error), retryInMs: delay }, "relay tick failed; backing off");
        this.events.emit("tick", { ok: false });
      }
      if (!this.stopping) await this.sleep(delay);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  /** One pass; returns the delay before the next. */
  private async tick(): Promise<number> {
    const { rpc } = this.o;
    const head = await rpc.call("getBlockNumber", (p) => p.getBlockNumber());
    await this.o.devices.sync(head);
    await this.watchConfirmed(head);
    await this.checkMined(head);
    const inFlight = await this.checkSent();
    if (this.stopping || inFlight >= (this.o.maxInFlight ?? 4)) return this.o.config.chain.pollIntervalMs;
    return this.maybeBuild();
  }

  // -------------------------------------------------------------------------------------------
  // Confirmation and reorgs
  // -------------------------------------------------------------------------------------------

  private async watchConfirmed(head: number): Promise<void> {
    for (const b of this.o.store.recentConfirmed(head - this.o.config.chain.reorgWatchBlocks)) {
      const block = await this.o.rpc.call("getBlock", (p) => p.getBlock(b.blockNumber ?? 0));
      if (block?.hash !== b.blockHash) this.reorged(b);
    }
  }

  private async checkMined(head: number): Promise<void> {
    for (const b of this.o.store.batchesIn("mined")) {
      const receipt = await this.o.rpc.call("getTransactionReceipt", (p) => p.getTransactionReceipt(b.txHash ?? ""));
      if (receipt === null || receipt.blockHash !== b.blockHash) {
        this.reorged(b);
      } else if (head - receipt.blockNumber + 1 >= this.o.config.chain.confirmations) {
        await this.confirm(b, receipt);
      }
    }
  }

  private reorged(b: StoredBatch): void {
    this.o.store.reopenBatch(b.id);
    this.o.metrics.reorgs.inc();
    this.o.log.warn(
      { batchId: b.id, nonce: b.nonce, blockNumber: b.blockNumber, blockHash: b.blockHash },
      "batch %d left the canonical chain (reorg); sending it again",
      b.id,
    );
    this.events.emit("reorg", { batchId: b.id, blockNumber: b.blockNumber });
  }

  private async confirm(b: StoredBatch, receipt: TransactionReceipt): Promise<void> {
    const skipped = new Map<string, string>();
    for (const log of receipt.logs) {
      if (getAddress(log.address) !== this.coldChain || log.topics[0] !== SKIPPED_TOPIC) continue;
      const parsed = COLD_CHAIN_ABI.parseLog(log);
      if (parsed === null) continue;
      const [deviceId, sequence, , reason] = parsed.args as unknown as [bigint, bigint, bigint, bigint];
      skipped.set(`${deviceId}:${sequence}`, SKIP_REASONS[Number(reason)] ?? `Reason${reason}`);
    }
    const items = this.o.store.itemsOfBatch(b.id);
    const outcomes: ItemOutcome[] = items.map((item) => {
      const skipReason = skipped.get(`${item.deviceId}:${item.firstSequence}`);
      return skipReason !== undefined && isRetryableSkip(skipReason)
        ? { itemId: item.id, skipReason, retry: true }
        : { itemId: item.id, skipReason };
    });
    const retried = items.filter((_, i) => outcomes[i]?.retry === true);
    // Read before the store changes (a failed read retries the whole confirmation on the next tick): which
    // shipment each retried item's device travels with, for the log.
    const shipmentOf = new Map<bigint, bigint>();
    for (const item of retried) {
      if (!shipmentOf.has(item.deviceId)) {
        shipmentOf.set(item.deviceId, (await this.track(item.deviceId, receipt.blockNumber)).shipmentId);
      }
    }
    this.o.store.confirmBatch(b.id, outcomes);
    const now = this.o.clock();
    let recorded = 0;
    let skippedReadings = 0;
    let deferred = 0;
    items.forEach((item, i) => {
      const reason = outcomes[i]?.skipReason;
      if (outcomes[i]?.retry === true) deferred += item.count;
      else if (reason === undefined) recorded += item.count;
      else {
        skippedReadings += item.count;
        this.o.metrics.skippedReadings.inc({ reason }, item.count);
        if (reason === "StaleSequence") this.logLost(item, undefined, `refused by the contract in batch ${b.id}`);
      }
      if (outcomes[i]?.retry !== true) this.o.metrics.confirmationLatency.observe((now - item.receivedAt) / 1000);
    });
    const readings = recorded + skippedReadings + deferred;
    this.o.metrics.recordedReadings.inc(recorded);
    this.o.metrics.gasUsed.inc(Number(receipt.gasUsed));
    if (readings > 0) this.o.metrics.gasPerReading.observe(Number(receipt.gasUsed) / readings);
    this.o.log.info(
      { batchId: b.id, tx: receipt.hash, block: receipt.blockNumber, recorded, skipped: skippedReadings, deferred },
      "batch %d confirmed",
      b.id,
    );
    if (skippedReadings > 0) {
      const final = [...skipped].filter(([, reason]) => !isRetryableSkip(reason));
      this.o.log.warn({ batchId: b.id, reasons: Object.fromEntries(final) }, "the contract skipped readings");
    }
    // A race: the offer was made after the dry run. The readings are not lost: back to pending, held, retried.
    const byShipment = new Map<bigint, StoredItem[]>();
    for (const item of retried) {
      const shipmentId = shipmentOf.get(item.deviceId) ?? 0n;
      byShipment.set(shipmentId, [...(byShipment.get(shipmentId) ?? []), item]);
    }
    for (const [shipmentId, list] of byShipment) {
      this.hold(list, shipmentId === 0n ? undefined : shipmentId, undefined, "receipt", `in batch ${b.id}`);
    }
    this.events.emit("batch-confirmed", { batchId: b.id, recorded, skipped: skippedReadings, deferred });
  }

  // -------------------------------------------------------------------------------------------
  // Batches in flight
  // -------------------------------------------------------------------------------------------

  /** Checks every batch in flight; returns how many are still in flight. */
  private async checkSent(): Promise<number> {
    const sent = this.o.store.batchesIn("sent");
    if (sent.length === 0) return 0;
    const { rpc } = this.o;
    const chainNonce = await rpc.call("getTransactionCount", (p) => p.getTransactionCount(this.from, "latest"));
    let inFlight = 0;
    for (const b of sent) {
      const attempts = this.o.store.attemptsOf(b.id);
      let receipt: TransactionReceipt | null = null;
      for (const a of [...attempts].reverse()) {
        receipt = await rpc.call("getTransactionReceipt", (p) => p.getTransactionReceipt(a.hash));
        if (receipt !== null) break;
      }
      if (receipt !== null) {
        this.nonceTaken.delete(b.id);
        if (receipt.status === 1) {
          this.o.store.markMined(b.id, receipt.hash, receipt.blockNumber, receipt.blockHash, receipt.gasUsed);
          this.o.log.info({ batchId: b.id, tx: receipt.hash, block: receipt.blockNumber }, "batch %d mined", b.id);
          this.events.emit("batch-mined", { batchId: b.id, blockNumber: receipt.blockNumber });
        } else {
          this.o.store.releaseBatch(b.id, "reverted");
          this.o.log.error(
            { batchId: b.id, tx: receipt.hash },
            "batch %d reverted on-chain (paused contract?); its readings go back to pending",
            b.id,
          );
          this.events.emit("batch-released", { batchId: b.id, state: "reverted" });
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
        this.nonceTaken.delete(b.id);
        this.o.store.releaseBatch(b.id, "dropped");
        this.o.log.warn({ batchId: b.id, nonce: b.nonce, chainNonce }, "batch %d dropped: nonce taken", b.id);
        this.events.emit("batch-released", { batchId: b.id, state: "dropped" });
        continue;
      }
      this.nonceTaken.delete(b.id);
      inFlight++;
      const known = await rpc.call("getTransaction", (p) => p.getTransaction(latest.hash));
      if (known === null) {
        await this.broadcast(b.id, latest, "rebroadcast");
      } else if (this.o.clock() - latest.createdAt >= this.o.config.fees.replaceAfterMs) {
        await this.replace(b, latest);
      }
    }
    return inFlight;
  }

  private async replace(b: StoredBatch, latest: StoredAttempt): Promise<void> {
    const { fees } = this.o.config;
    const ceiling = gweiToWei(fees.maxFeePerGasGwei);
    const bump = (v: bigint): bigint => (v * BigInt(100 + fees.bumpPercent) + 99n) / 100n;
    const baseFee = await this.baseFee();
    let priority = bump(latest.maxPriorityFeePerGas);
    const configured = gweiToWei(fees.maxPriorityFeePerGasGwei);
    if (priority < configured) priority = configured;
    let maxFee = bump(latest.maxFeePerGas);
    if (maxFee < 2n * baseFee + priority) maxFee = 2n * baseFee + priority;
    if (maxFee > ceiling) maxFee = ceiling;
    if (priority > maxFee) priority = maxFee;
    if (maxFee <= latest.maxFeePerGas) {
      this.o.log.warn(
        { batchId: b.id, nonce: b.nonce, maxFeePerGas: latest.maxFeePerGas.toString(), baseFee: baseFee.toString() },
        "batch %d is stuck at the fee ceiling (fees.maxFeePerGasGwei); waiting",
        b.id,
      );
      await this.broadcast(b.id, latest, "rebroadcast");
      return;
    }
    const tx = Transaction.from(latest.rawTx);
    const attempt = await this.sign(b.nonce, tx.data, latest.gasLimit, maxFee, priority);
    this.o.store.addAttempt(b.id, attempt);
    this.o.log.warn(
      { batchId: b.id, nonce: b.nonce, replaces: latest.hash, maxFeePerGas: maxFee.toString() },
      "batch %d not mined after %d ms: replacing it with higher fees",
      b.id,
      this.o.config.fees.replaceAfterMs,
    );
    await this.broadcast(b.id, attempt, "replacement");
  }

  private async broadcast(
    batchId: number,
    attempt: Pick<StoredAttempt, "rawTx" | "hash" | "nonce">,
    kind: "new" | "replacement" | "rebroadcast",
  ): Promise<void> {
    try {
      await this.o.rpc.call("broadcastTransaction", (p) => p.send("eth_sendRawTransaction", [attempt.rawTx]));
    } catch (error) {
      if (!isLogicalRpcError(error)) throw error;
      // The node refused it (already known, nonce too high while an earlier one is missing, underpriced):
      // the next tick looks again.
      this.o.log.warn({ batchId, nonce: attempt.nonce, kind, err: messageOf(error) }, "broadcast refused");
      return;
    }
    this.o.metrics.txAttempts.inc({ kind });
    this.events.emit("attempt-sent", { batchId, nonce: attempt.nonce, kind, hash: attempt.hash });
  }

  // -------------------------------------------------------------------------------------------
  // Building a batch
  // -------------------------------------------------------------------------------------------

  private async maybeBuild(): Promise<number> {
    const { store, config, clock } = this.o;
    const poll = config.chain.pollIntervalMs;
    const held = this.heldIds();
    const pending = store.pendingReadings() - this.heldCount;
    if (pending <= 0) return poll;
    const oldest = store.oldestPendingAt(held) ?? clock();
    const age = clock() - oldest;
    if (pending < config.batch.maxReadings && age < config.batch.maxAgeMs) {
      return Math.max(1, Math.min(poll, config.batch.maxAgeMs - age));
    }
    const chosen = this.select(
      store.pendingItems(Math.min(config.batch.maxReadings, this.itemLimit ?? Infinity), held),
    );
    if (chosen.length === 0) return poll;
    const signed = chosen
      .map((item) => ({ item, signed: decodeMqttPayload(item.body).item }))
      .sort((a, b) => compareItems(a.item, b.item));
    const data = COLD_CHAIN_ABI.encodeFunctionData("submitReadings", [encodeBatch(signed.map((s) => s.signed))]);
    const call = { from: this.from, to: this.coldChain, data };

    // Dry run: a revert is an operator problem (paused contract, wrong address); duplicates and stale items cost
    // no gas, and items waiting for a custody handover are held back.
    const out = await this.o.rpc.call("eth_call", (p) => p.call(call));
    const [, skipped] = COLD_CHAIN_ABI.decodeFunctionResult("submitReadings", out) as unknown as [bigint, bigint];
    if (skipped > 0n && (await this.removeRefused(chosen))) return 0;

    const estimate = await this.o.rpc.call("estimateGas", (p) => p.estimateGas(call));
    if (estimate > BigInt(config.batch.gasCap)) {
      this.itemLimit = Math.max(1, Math.floor(chosen.length / 2));
      this.o.log.info(
        { estimate: estimate.toString(), gasCap: config.batch.gasCap, items: chosen.length, next: this.itemLimit },
        "batch estimate above batch.gasCap; splitting",
      );
      return 0;
    }
    this.itemLimit = undefined;
    let gasLimit = (estimate * 12n) / 10n;
    if (gasLimit > BigInt(config.batch.gasCap)) gasLimit = BigInt(config.batch.gasCap);

    const ceiling = gweiToWei(config.fees.maxFeePerGasGwei);
    const baseFee = await this.baseFee();
    if (baseFee >= ceiling) {
      this.o.log.warn(
        { baseFee: baseFee.toString(), ceiling: ceiling.toString() },
        "base fee at or above fees.maxFeePerGasGwei: not sending until it falls",
      );
      return poll;
    }
    let priority = gweiToWei(config.fees.maxPriorityFeePerGasGwei);
    let maxFee = 2n * baseFee + priority;
    if (maxFee > ceiling) maxFee = ceiling;
    if (priority > maxFee) priority = maxFee;
    const chainNonce = await this.o.rpc.call("getTransactionCount", (p) => p.getTransactionCount(this.from, "latest"));
    const localNext = (store.maxNonce() ?? -1) + 1;
    const nonce = Math.max(localNext, chainNonce);
    const attempt = await this.sign(nonce, data, gasLimit, maxFee, priority);
    const readings = chosen.reduce((n, item) => n + item.count, 0);
    const batchId = store.createBatch(
      chosen.map((item) => item.id),
      readings,
      attempt,
      clock(),
    );
    this.o.metrics.batchReadings.observe(readings);
    this.o.log.info(
      { batchId, nonce, readings, items: chosen.length, gasLimit: gasLimit.toString(), tx: attempt.hash },
      "batch %d sending",
      batchId,
    );
    this.events.emit("batch-sent", { batchId, nonce, readings });
    await this.broadcast(batchId, attempt, "new");
    return store.pendingReadings() >= config.batch.maxReadings ? 0 : poll;
  }

  /** Items in arrival order that fit the count, planned gas and calldata caps; windows stay whole. */
  private select(candidates: readonly StoredItem[]): StoredItem[] {
    const b = this.o.config.batch;
    const chosen: StoredItem[] = [];
    let readings = 0;
    let gas = b.gasPerBatch;
    let bytes = CALLDATA_OVERHEAD_BYTES + 1;
    for (const item of candidates) {
      const itemGas =
        item.kind === "window"
          ? b.gasPerWindow + item.count * b.gasPerWindowSample
          : item.curve === "p256"
            ? b.gasPerP256Reading
            : b.gasPerSecp256k1Reading;
      const itemBytes = item.body.length - 1; // a one-item envelope minus its version byte (upper bound)
      if (
        chosen.length > 0 &&
        (readings + item.count > b.maxReadings || gas + itemGas > b.gasCap || bytes + itemBytes > b.maxCalldataBytes)
      ) {
        break;
      }
      chosen.push(item);
      readings += item.count;
      gas += itemGas;
      bytes += itemBytes;
    }
    return chosen;
  }

  /**
   * Called when the dry run says the contract would skip part of the batch: takes out of the pending queue,
   * without spending gas, the items the chain can be seen to refuse. Every read is at one block, so a device's
   * highest sequence and its window bits agree:
   * - StaleSequence: every sequence of the item is older than the device's replay window (at or below
   *   `highestSequence - 256`): the chain will never accept it, so the reading is lost as evidence (error log);
   * - DuplicateSequence: the item's first sequence is within the window and its bit is set: the chain holds it;
   * - CustodyPending: a custody offer of the device's shipment is pending (`custodyOffer`: a recipient, deadline
   *   not passed) and the item's last observation is at or after the offer's `handoverAt`: the item is held back,
   *   still pending, and checked again after a back-off (never dropped: accepted once the offer is settled).
   * An item only partly older than the window stays in the batch: the contract judges it. (`isSequenceUsed`
   * alone cannot tell the two apart: it is also true for a sequence older than the window.)
   * Returns whether any item was taken out (the batch is then built again).
   */
  private async removeRefused(items: readonly StoredItem[]): Promise<boolean> {
    const { rpc } = this.o;
    const blockTag = await rpc.call("getBlockNumber", (p) => p.getBlockNumber());
    const tracks = new Map<bigint, { highestSequence: number; shipmentId: bigint }>();
    const offers = new Map<bigint, PendingOffer | undefined>();
    let blockTime: number | undefined;
    const stale: { item: StoredItem; highest: number }[] = [];
    const recorded: StoredItem[] = [];
    const waiting = new Map<bigint, { offer: PendingOffer; items: StoredItem[] }>();
    for (const item of items) {
      let track = tracks.get(item.deviceId);
      if (track === undefined) {
        track = await this.track(item.deviceId, blockTag);
        tracks.set(item.deviceId, track);
      }
      const highest = track.highestSequence;
      const last = item.firstSequence + item.count - 1;
      if (last + REPLAY_WINDOW_SIZE <= highest) {
        stale.push({ item, highest });
        continue;
      }
      // Partly older than the window, or above the highest (no bit to read): the contract judges it.
      if (item.firstSequence + REPLAY_WINDOW_SIZE > highest && item.firstSequence <= highest) {
        const data = COLD_CHAIN_ABI.encodeFunctionData("isSequenceUsed", [item.deviceId, item.firstSequence]);
        const out = await rpc.call("isSequenceUsed", (p) => p.call({ to: this.coldChain, data, blockTag }));
        if ((COLD_CHAIN_ABI.decodeFunctionResult("isSequenceUsed", out)[0] as boolean) === true) {
          recorded.push(item);
          continue;
        }
      }
      if (track.shipmentId === 0n) continue;
      if (!offers.has(track.shipmentId)) {
        blockTime ??= await this.blockTime(blockTag);
        offers.set(track.shipmentId, await this.pendingOffer(track.shipmentId, blockTag, blockTime));
      }
      const offer = offers.get(track.shipmentId);
      if (offer !== undefined && lastObservedAt(item) >= offer.handoverAt) {
        const entry = waiting.get(track.shipmentId) ?? { offer, items: [] };
        entry.items.push(item);
        waiting.set(track.shipmentId, entry);
      }
    }
    // A shipment seen without a pending offer starts its back-off afresh next time.
    for (const [shipmentId, offer] of offers) if (offer === undefined) this.holdStreak.delete(shipmentId.toString());
    if (stale.length > 0) {
      const ids = stale.map((s) => s.item.id);
      this.o.store.skipPending(ids, "StaleSequence");
      this.o.metrics.skippedReadings.inc(
        { reason: "StaleSequence" },
        stale.reduce((n, s) => n + s.item.count, 0),
      );
      for (const s of stale) this.logLost(s.item, s.highest, "removed before submission (no gas spent)");
      this.events.emit("preflight-skipped", { itemIds: ids, reason: "StaleSequence" });
    }
    if (recorded.length > 0) {
      const ids = recorded.map((i) => i.id);
      this.o.store.skipPending(ids, "DuplicateSequence");
      const readings = recorded.reduce((n, i) => n + i.count, 0);
      this.o.metrics.skippedReadings.inc({ reason: "DuplicateSequence" }, readings);
      this.o.log.warn({ items: ids.length, readings }, "already on-chain: skipped before submission (no gas spent)");
      this.events.emit("preflight-skipped", { itemIds: ids, reason: "DuplicateSequence" });
    }
    for (const [shipmentId, { offer, items: list }] of waiting) {
      this.hold(list, shipmentId, offer, "preflight", "left out of the batch (no gas spent)");
    }
    return stale.length > 0 || recorded.length > 0 || waiting.size > 0;
  }

  /** `deviceTrack(deviceId)` at `blockTag`: the device's highest sequence and the shipment it is bound to. */
  private async track(deviceId: bigint, blockTag: number): Promise<{ highestSequence: number; shipmentId: bigint }> {
    const data = COLD_CHAIN_ABI.encodeFunctionData("deviceTrack", [deviceId]);
    const out = await this.o.rpc.call("deviceTrack", (p) => p.call({ to: this.coldChain, data, blockTag }));
    const [track] = COLD_CHAIN_ABI.decodeFunctionResult("deviceTrack", out) as unknown as [
      { highestSequence: bigint; shipmentId: bigint },
    ];
    return { highestSequence: Number(track.highestSequence), shipmentId: BigInt(track.shipmentId) };
  }

  private async blockTime(blockTag: number): Promise<number> {
    const block = await this.o.rpc.call("getBlock", (p) => p.getBlock(blockTag));
    if (block === null) throw new Error(`block ${blockTag} not found`);
    return block.timestamp;
  }

  /**
   * The shipment's custody offer at `blockTag` if it is pending: a recipient, and a deadline not before the
   * block's time (ShipmentLedger's test is `block.timestamp <= deadline` at the next block: holding an item one
   * block too long only delays it).
   */
  private async pendingOffer(shipmentId: bigint, blockTag: number, time: number): Promise<PendingOffer | undefined> {
    const data = COLD_CHAIN_ABI.encodeFunctionData("custodyOffer", [shipmentId]);
    const out = await this.o.rpc.call("custodyOffer", (p) => p.call({ to: this.coldChain, data, blockTag }));
    const [offer] = COLD_CHAIN_ABI.decodeFunctionResult("custodyOffer", out) as unknown as [
      { to: string; deadline: bigint; handoverAt: bigint },
    ];
    if (BigInt(offer.to) === 0n || Number(offer.deadline) < time) return undefined;
    return { to: offer.to, deadline: Number(offer.deadline), handoverAt: Number(offer.handoverAt) };
  }

  /** Ids of the items held back now; releases those whose back-off ran out (checked again at the next build). */
  private heldIds(): number[] {
    const now = this.o.clock();
    for (const [id, h] of this.held) {
      if (h.retryAt <= now) {
        this.held.delete(id);
        this.heldCount -= h.readings;
      }
    }
    this.o.metrics.heldReadings.set({ reason: "CustodyPending" }, this.heldCount);
    return [...this.held.keys()];
  }

  /**
   * Holds back pending items the chain would skip (`preflight`) or skipped (`receipt`) as `CustodyPending`: they
   * stay pending, out of batches, for a back-off that doubles while the shipment's handover stays pending.
   */
  private hold(
    items: readonly StoredItem[],
    shipmentId: bigint | undefined,
    offer: PendingOffer | undefined,
    stage: "preflight" | "receipt",
    what: string,
  ): void {
    const key = shipmentId?.toString() ?? "?";
    const streak = this.holdStreak.get(key) ?? { attempts: 0, logged: "" };
    streak.attempts++;
    this.holdStreak.set(key, streak);
    const retryInMs = backoffMs(streak.attempts, this.o.config.chain.pollIntervalMs, CUSTODY_RETRY_MAX_MS);
    const retryAt = this.o.clock() + retryInMs;
    let readings = 0;
    for (const item of items) {
      const before = this.held.get(item.id);
      if (before !== undefined) this.heldCount -= before.readings;
      this.held.set(item.id, { retryAt, readings: item.count });
      this.heldCount += item.count;
      readings += item.count;
    }
    this.o.metrics.deferredReadings.inc({ reason: "CustodyPending", stage }, readings);
    this.o.metrics.heldReadings.set({ reason: "CustodyPending" }, this.heldCount);
    const shipment = shipmentId === undefined ? "(unknown)" : shipmentId.toString();
    const fields = {
      reason: "CustodyPending",
      stage,
      shipmentId: shipmentId?.toString(),
      offeredTo: offer?.to,
      handoverAt: offer?.handoverAt,
      deadline: offer?.deadline,
      items: items.length,
      readings,
      retryInMs,
    };
    const message =
      "readings held, not dropped: waiting for the custody handover of shipment %s to be accepted " +
      "(CustodyPending: observed at or after the agreed boundary of a pending offer); %s; retried in %d ms";
    // One info line per offer (a warn when the chain already skipped them); re-checks log at debug.
    const offerKey = offer === undefined ? "" : `${offer.to}:${offer.handoverAt}:${offer.deadline}`;
    if (stage === "receipt") {
      this.o.log.warn(fields, message, shipment, what, retryInMs);
    } else if (streak.logged !== offerKey) {
      streak.logged = offerKey;
      this.o.log.info(fields, message, shipment, what, retryInMs);
    } else {
      this.o.log.debug(fields, message, shipment, what, retryInMs);
    }
    this.events.emit("deferred", {
      itemIds: items.map((i) => i.id),
      reason: "CustodyPending",
      stage,
      shipmentId,
      retryInMs,
    });
  }

  /** The error line of a stale item (StaleSequence): its readings will never be on-chain. */
  private logLost(item: StoredItem, highestSequence: number | undefined, what: string): void {
    const lastSequence = item.firstSequence + item.count - 1;
    this.o.log.error(
      {
        reason: "StaleSequence",
        itemId: item.id,
        deviceId: item.deviceId.toString(),
        firstSequence: item.firstSequence,
        lastSequence,
        readings: item.count,
        highestSequence,
      },
      "readings LOST as evidence: device %s sequences %d..%d arrived more than %d sequences behind the device's latest on chain (StaleSequence); the chain will never accept them; %s",
      item.deviceId.toString(),
      item.firstSequence,
      lastSequence,
      REPLAY_WINDOW_SIZE - 1,
      what,
    );
  }

  private async baseFee(): Promise<bigint> {
    const block = await this.o.rpc.call("getBlock", (p) => p.getBlock("latest"));
    return block?.baseFeePerGas ?? 0n;
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

/** The observation time of an item's last reading (a window's last sample). */
function lastObservedAt(item: StoredItem): number {
  const signed = decodeMqttPayload(item.body).item;
  return signed.kind === "reading"
    ? signed.reading.observedAt
    : signed.window.firstObservedAt + (signed.window.samples.length - 1) * signed.window.intervalSeconds;
}

/** Batch order: by device, then sequence (so each device's readings are applied in order). */
function compareItems(a: StoredItem, b: StoredItem): number {
  if (a.deviceId !== b.deviceId) return a.deviceId < b.deviceId ? -1 : 1;
  return a.firstSequence - b.firstSequence;
}
