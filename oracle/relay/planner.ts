/**
 * Batch planning: which pending items go into the next `submitReadings` transaction, the pre-flight that keeps gas
 * off items the chain would refuse, the holds of items the chain would skip for a retryable reason, and what a
 * confirmed receipt means for each item. It builds a batch's calldata and gas limit; fees, nonces, signing and
 * broadcasting are the transaction manager's (./tx-manager.ts), the loop is the relay's (./relay.ts).
 *
 * Building a batch: when there is room in flight and enough readings (count) or an old enough one (age): pending
 * protocol v2 items device by device, each device's in observation order (a protocol v1 item of an older store is
 * retired as unrelayable evidence first: store.ts), capped by count, planned gas, calldata bytes, then dry-run
 * (`eth_call`); items the chain holds already (duplicates) or will never accept (they do not continue the device's
 * recorded chain: lost, an error) removed without spending gas, and items the chain would skip as `CustodyPending`,
 * `SequenceGap` or `FutureTimestamp` held back (they stay pending); sized by `estimateGas`.
 *
 * Confirming a batch ({@link Planner.applyReceipt}): every item without a `ReadingSkipped` event in the receipt is
 * recorded, the others are stored with the contract's reason, except a retryable one (`CustodyPending`, a custody
 * handover of the shipment still waiting for acceptance; `SequenceGap`, the reading's predecessor not recorded yet;
 * `FutureTimestamp`): such an item goes back to pending and is held back for a while (see "Held items" below).
 *
 * Protocol v2 chains each device's readings by time: the contract accepts a reading only if its
 * `previousObservedAt` is the device's latest recorded observation (`deviceTrack.lastObservedAt`; for the first
 * reading in a shipment, a predecessor before the shipment's start). The relay sends each device's readings in
 * observation order, and counts its own batches in flight as recorded (they are mined in nonce order), so a single
 * oracle never makes a gap itself; gaps come from readings another oracle of a shared subscription holds, or from
 * readings still on their way.
 *
 * Held items (never dropped: they stay `pending` in the store, left out of batches, no gas spent on them):
 * - `CustodyPending`: while a custody offer of a shipment is pending, the contract skips every reading of its
 *   devices observed at or after the offer's agreed boundary (`custodyOffer.handoverAt`); the same signed item is
 *   accepted once the offer is accepted, withdrawn or expired. Held for a back-off per shipment (from
 *   `chain.pollIntervalMs`, doubling, at most {@link CUSTODY_RETRY_MAX_MS}), then checked again.
 * - `SequenceGap`: the reading's predecessor is not recorded yet (and is not in this oracle's batch before it, nor
 *   in one of its batches in flight); the reading and the device's later ones wait. They are checked again as soon
 *   as the device's `deviceTrack.lastObservedAt` moves (read once per new block), or after a back-off per device
 *   (at most {@link GAP_RETRY_MAX_MS}). A device whose predecessor stays missing for {@link GAP_WARN_AFTER_MS} is
 *   reported (warn): if no relayer ever records it, the device's later readings can never be recorded.
 * - `FutureTimestamp`: observed after the block time plus the contract's `maxFutureSkewSeconds`; retried after a
 *   back-off per device.
 * The holds are in memory only: after a restart the pre-flight finds them again.
 *
 * Anchor copies (oracle/intake/anchor.ts), with several instances in one share group: a reading the anchor caught
 * up is stored with `relay_after` (`mqtt.anchorHoldMs` plus the instance's spread) and left out of batches until
 * then, in the store (a restart does not relay it early): the share member the group gave the message to relays
 * it meanwhile and the pre-flight here then finds it on chain (`DuplicateSequence`, no gas). The device's later
 * items are not held with it: the pre-flight finds their predecessor on chain (another instance relayed it) or
 * holds them for the gap as above. They count as held (`heldReadings`, the gauge's `AnchorHold`), not as due.
 * When its hold ends, a copy is claimed first (./anchor-claims.ts): held for the claim window, and relayed only if no
 * other instance claimed it before (so that two instances never relay the same copy).
 */
import type { EventEmitter } from "node:events";

import { getAddress } from "ethers";
import type { TransactionReceipt } from "ethers";

import { isRetryableSkip } from "../../sdk/names.js";
import { decodeMqttPayload, encodeBatch } from "../../sdk/protocol/index.js";
import { COLD_CHAIN_ABI, SKIP_REASONS, backoffMs } from "../chain.js";
import type { RpcPool } from "../chain.js";
import type { OracleConfig } from "../config/index.js";
import type { Logger } from "../log.js";
import type { OracleMetrics } from "../health/metrics.js";
import type { Clock } from "../verification/registry.js";
import { PROTOCOL_V1_REASON } from "../store/store.js";

import type { AnchorClaims } from "./anchor-claims.js";
import type { ItemOutcome, StoredBatch, StoredItem, Store } from "../store/store.js";
import type { RelayEvents } from "./relay.js";

const CALLDATA_OVERHEAD_BYTES = 4 + 32 + 32 + 32;
const SKIPPED_TOPIC = COLD_CHAIN_ABI.getEvent("ReadingSkipped")?.topicHash ?? "";
/** Longest back-off before readings held for a pending custody handover are checked again. */
export const CUSTODY_RETRY_MAX_MS = 30_000;
/** Longest back-off before readings held for a missing predecessor are checked again (also checked on each block). */
export const GAP_RETRY_MAX_MS = 30_000;
/** A device's readings held this long for a missing predecessor are reported (warn, once per gap). */
export const GAP_WARN_AFTER_MS = 10 * 60_000;

/**
 * The `held_readings` label of anchor copies within their hold (`mqtt.anchorHoldMs`): not a skip reason, a wait
 * in the store (`relay_after`) for the share member the group gave the message to.
 */
export const ANCHOR_HOLD = "AnchorHold";

/** The retryable skip reasons the relay holds items for. */
export type HoldReason = "CustodyPending" | "SequenceGap" | "FutureTimestamp";
const HOLD_REASONS: readonly HoldReason[] = ["CustodyPending", "SequenceGap", "FutureTimestamp"];

/**
 * Whether the relay submits an item the contract skipped with `reason` again: the SDK's retryable reasons
 * (`FutureTimestamp`, `CustodyPending`, `SequenceGap`). Under protocol v2 a reading given up would block every later
 * reading of its device (each names its predecessor), so the relay never gives one up for a retryable reason.
 */
function relayRetries(reason: string): boolean {
  return isRetryableSkip(reason);
}

/** `IShipments.ShipmentStatus` values the pre-flight reads. */
const STATUS_CREATED = 1;
const STATUS_IN_TRANSIT = 2;
const STATUS_DELIVERED = 3;
const STATUS_CANCELLED = 6;

/** A pending custody offer, as `custodyOffer(shipmentId)` returns it. */
interface PendingOffer {
  readonly to: string;
  readonly deadline: number;
  readonly handoverAt: number;
}

/** An item held back: pending in the store, left out of batches until `retryAt` (ms) or, for a gap, sooner. */
interface Hold {
  readonly retryAt: number;
  readonly readings: number;
  readonly reason: HoldReason;
  readonly deviceId: bigint;
}

/** A device whose readings wait for a predecessor: the chain's latest observation when they were held. */
interface GapWatch {
  lastObservedAt: number;
  /** The predecessor awaited first (the earliest held item's previousObservedAt). */
  awaiting: number;
  /** Unix ms the device's gap was first seen, and whether it was reported as long. */
  since: number;
  warned: boolean;
}

/** What the pre-flight reads of a device, at one block. */
interface DeviceTrackView {
  readonly shipmentId: bigint;
  readonly lastObservedAt: number;
}

/** What the pre-flight reads of a shipment, at one block: where the contract accepts readings. */
interface ShipmentWindow {
  /** Whether the contract records readings for it (else it skips them, ShipmentNotActive: final). */
  readonly active: boolean;
  /** Effective start: a created shipment whose first handover is pending starts at its boundary. */
  readonly start: number;
  /** End (delivery, or cancellation after the start), 0 while open. */
  readonly end: number;
  readonly offer: PendingOffer | undefined;
}

export interface PlannerOptions {
  readonly config: OracleConfig;
  readonly rpc: RpcPool;
  readonly store: Store;
  readonly metrics: OracleMetrics;
  readonly log: Logger;
  readonly clock: Clock;
  /** The signing account (the dry run's `from`). */
  readonly from: string;
  readonly events: EventEmitter<RelayEvents>;
  /** With several instances in one share group: the claims that decide which instance relays an anchor copy. */
  readonly anchorClaims?: AnchorClaims;
}

/** A batch ready to be signed: its items, calldata and gas limit (fees and nonce are the transaction manager's). */
export interface BatchPlan {
  readonly itemIds: readonly number[];
  readonly items: number;
  readonly readings: number;
  readonly data: string;
  readonly gasLimit: bigint;
}

/** How old the count of anchor copies within their hold may be in {@link Planner.heldReadings}. */
const ANCHOR_HELD_REFRESH_MS = 250;

export class Planner {
  /** Readings of anchor copies within their hold, as last counted (see heldReadings). */
  private anchorHeld = { at: Number.NEGATIVE_INFINITY, readings: 0 };
  /** After estimateGas exceeded the cap: the next batch takes at most this many items. */
  private itemLimit: number | undefined;
  private readonly coldChain: string;
  private readonly from: string;
  /** Items held back for a retryable skip (CustodyPending, SequenceGap, FutureTimestamp), by item id. */
  private readonly held = new Map<number, Hold>();
  /** Readings of the held items. */
  private heldCount = 0;
  /**
   * Per shipment (CustodyPending; "?" when unknown) or device (SequenceGap): consecutive holds (the back-off) and
   * what was last logged at info.
   */
  private readonly holdStreak = new Map<string, { attempts: number; logged: string }>();
  /** Devices with readings held for a gap, by decimal id. */
  private readonly gaps = new Map<string, GapWatch>();
  /** The block at which held gaps were last checked against the chain. */
  private gapsCheckedAt = -1;

  constructor(private readonly o: PlannerOptions) {
    this.coldChain = getAddress(o.config.chain.coldChain);
    this.from = o.from;
  }

  /**
   * Readings pending in the store but held back: for a retryable skip, or anchor copies within their hold
   * (`mqtt.anchorHoldMs`, the store's `relay_after`).
   */
  get heldReadings(): number {
    // The anchor copies' count is a query over the pending items; the intake asks for this after every stored message
    // (Relay.notify), where the query took a fifth of the oracle's CPU (per-reading benchmark: 4,102 -> ~700
    // readings/s). A count at most 250 ms old is enough for deciding when to wake the loop.
    const now = this.o.clock();
    if (now - this.anchorHeld.at >= ANCHOR_HELD_REFRESH_MS || now < this.anchorHeld.at) {
      this.anchorHeld = { at: now, readings: this.o.store.anchorHeldReadings(now) };
    }
    return this.heldCount + this.anchorHeld.readings;
  }

  async applyReceipt(b: StoredBatch, receipt: TransactionReceipt): Promise<void> {
    // The contract the batch was sent to (the one configured when it was signed).
    const contract = getAddress(receipt.to ?? this.coldChain);
    const skipped = new Map<string, string>();
    for (const log of receipt.logs) {
      if (getAddress(log.address) !== contract || log.topics[0] !== SKIPPED_TOPIC) continue;
      const parsed = COLD_CHAIN_ABI.parseLog(log);
      if (parsed === null) continue;
      const [deviceId, sequence, , reason] = parsed.args as unknown as [bigint, bigint, bigint, bigint];
      skipped.set(`${deviceId}:${sequence}`, SKIP_REASONS[Number(reason)] ?? `Reason${reason}`);
    }
    const items = this.o.store.itemsOfBatch(b.id);
    const outcomes: ItemOutcome[] = items.map((item) => {
      const skipReason = skipped.get(`${item.deviceId}:${item.firstSequence}`);
      return skipReason !== undefined && relayRetries(skipReason)
        ? { itemId: item.id, skipReason, retry: true }
        : { itemId: item.id, skipReason };
    });
    const retried = items.filter((_, i) => outcomes[i]?.retry === true);
    // Read before the store changes (a failed read retries the whole confirmation on the next tick): which
    // shipment each retried item's device travels with, and how far its chain is, for the hold and the log.
    const tracks = new Map<bigint, DeviceTrackView>();
    for (const item of retried) {
      if (!tracks.has(item.deviceId)) tracks.set(item.deviceId, await this.track(item.deviceId, receipt.blockNumber));
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
      const final = [...skipped].filter(([, reason]) => !relayRetries(reason));
      this.o.log.warn({ batchId: b.id, reasons: Object.fromEntries(final) }, "the contract skipped readings");
    }
    // A race (the offer was made after the dry run; a batch in flight before it was dropped; a reorg): the readings
    // are not lost: back to pending, held, retried.
    const custody = new Map<bigint, StoredItem[]>();
    const gaps = new Map<bigint, StoredItem[]>();
    const early: StoredItem[] = [];
    items.forEach((item, i) => {
      const o = outcomes[i];
      if (o?.retry !== true) return;
      if (o.skipReason === "SequenceGap") {
        gaps.set(item.deviceId, [...(gaps.get(item.deviceId) ?? []), item]);
      } else if (o.skipReason === "FutureTimestamp") {
        early.push(item);
      } else {
        const shipmentId = tracks.get(item.deviceId)?.shipmentId ?? 0n;
        custody.set(shipmentId, [...(custody.get(shipmentId) ?? []), item]);
      }
    });
    for (const [shipmentId, list] of custody) {
      this.hold(list, shipmentId === 0n ? undefined : shipmentId, undefined, "receipt", `in batch ${b.id}`);
    }
    for (const [deviceId, list] of gaps) {
      const track = tracks.get(deviceId);
      this.holdGap(list, track, "receipt", `in batch ${b.id}`);
    }
    if (early.length > 0) this.holdEarly(early, "receipt", `in batch ${b.id}`, undefined);
    this.o.events.emit("batch-confirmed", { batchId: b.id, recorded, skipped: skippedReadings, deferred });
  }

  // -------------------------------------------------------------------------------------------
  // Building a batch
  // -------------------------------------------------------------------------------------------

  /**
   * The next batch when one is due (a full batch waiting, or the oldest pending reading older than
   * `batch.maxAgeMs`), dry-run and sized; else the delay before the relay asks again (0: at once, the pre-flight
   * changed the pending set or the batch was split).
   */
  async plan(): Promise<BatchPlan | number> {
    const { store, config, clock } = this.o;
    const poll = config.chain.pollIntervalMs;
    this.retireV1();
    const held = this.heldIds();
    const now = clock();
    this.o.anchorClaims?.claimDue(now); // claimed copies wait for their window, left out below
    const pending = store.pendingReadings() - this.heldCount - store.anchorHeldReadings(now);
    if (pending <= 0) return poll;
    const oldest = store.oldestPendingAt(held, now) ?? now;
    const age = now - oldest;
    if (pending < config.batch.maxReadings && age < config.batch.maxAgeMs) {
      return Math.max(1, Math.min(poll, config.batch.maxAgeMs - age));
    }
    const { chosen, plannedGas, devices } = this.select(
      store.pendingItems(Math.min(config.batch.maxReadings, this.itemLimit ?? Infinity), held, now),
    );
    if (chosen.length === 0) return poll;
    const signed = chosen
      .map((item) => ({ item, signed: decodeMqttPayload(item.body).item }))
      .sort((a, b) => compareItems(a.item, b.item));
    const data = COLD_CHAIN_ABI.encodeFunctionData("submitReadings", [encodeBatch(signed.map((s) => s.signed))]);
    const call = { from: this.from, to: this.coldChain, data };

    // Dry run: a revert is an operator problem (paused contract, wrong address); duplicates and lost items cost
    // no gas, and items waiting for a custody handover or a predecessor are held back.
    const out = await this.o.rpc.call("eth_call", (p) => p.call(call));
    const [, skipped] = COLD_CHAIN_ABI.decodeFunctionResult("submitReadings", out) as unknown as [bigint, bigint];
    let expectsMore = false;
    if (skipped > 0n) {
      const judged = await this.removeRefused(chosen);
      if (judged.removed) return 0;
      // The dry run skipped readings whose predecessors are in this oracle's batches in flight: mined first (nonce
      // order), they let these be recorded, which costs more gas than the dry run's skips.
      expectsMore = judged.afterInFlight;
    }

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
    // Readings behind this oracle's batches in flight: the dry run skipped them (SequenceGap), so its estimate is far
    // too low. The floor is the plan plus each device's first record in the batch (its track, evidence and condition
    // slots). Measured in the fault drill "base fee jumps": 6 readings of 3 devices needed 281,425 gas; with the plan
    // alone (129,000) or 40,000 per device (249,000) the batch ran out of gas, and every later batch of those devices
    // was mined with its readings skipped behind it.
    const floor = plannedGas + devices * config.batch.gasPerDevice;
    if (expectsMore && gasLimit < BigInt(floor)) gasLimit = BigInt(floor);
    if (gasLimit > BigInt(config.batch.gasCap)) gasLimit = BigInt(config.batch.gasCap);

    const readings = chosen.reduce((n, item) => n + item.count, 0);
    return { itemIds: chosen.map((item) => item.id), items: chosen.length, readings, data, gasLimit };
  }

  /**
   * Items in the store's order (device by device, each in observation order) that fit the count, planned gas and
   * calldata caps; windows stay whole. Two items of one device with the same first sequence (a device that lost its
   * state counts again from 0) never share a batch: the contract's `ReadingSkipped` names an item by them.
   */
  private select(candidates: readonly StoredItem[]): { chosen: StoredItem[]; plannedGas: number; devices: number } {
    const b = this.o.config.batch;
    const chosen: StoredItem[] = [];
    const names = new Set<string>();
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
      const name = `${item.deviceId}:${item.firstSequence}`;
      if (names.has(name)) continue;
      names.add(name);
      chosen.push(item);
      readings += item.count;
      gas += itemGas;
      bytes += itemBytes;
    }
    return { chosen, plannedGas: gas, devices: new Set(chosen.map((item) => item.deviceId)).size };
  }

  /**
   * Called when the dry run says the contract would skip part of the batch: takes out of the pending queue,
   * without spending gas, the items the chain can be seen to refuse, judging each device's items in observation
   * order as the contract does (every read at one block):
   * - DuplicateSequence: the item is at or before the device's latest recorded observation
   *   (`deviceTrack.lastObservedAt`) and the chain holds its last sample (`isRecorded`): already on-chain;
   * - StaleSequence: the item is after the device's latest recorded observation but its predecessor
   *   (`previousObservedAt`) is before it: it does not continue the recorded chain and never will (the device
   *   signed two histories, or lost its state mid-shipment), so the reading is lost as evidence (error log);
   * - CustodyPending: a custody offer of the device's shipment is pending (`custodyOffer`: a recipient, deadline
   *   not passed) and the item's last observation is at or after the offer's `handoverAt`: held back;
   * - SequenceGap: the item's predecessor is not recorded, nor in this batch before it, nor in one of this
   *   oracle's batches in flight (mined first, in nonce order): held back with the device's later items.
   * Held items stay pending and are checked again later (never dropped). Items the contract judges on other
   * grounds (outside the shipment, unbound device, a chain conflict with this oracle's own readings) stay in the
   * batch: the contract judges them.
   * Returns whether any item was taken out (the batch is then built again), and whether the batch counts on this
   * oracle's batches in flight (the dry run skipped readings that will be recorded).
   */
  private async removeRefused(items: readonly StoredItem[]): Promise<{ removed: boolean; afterInFlight: boolean }> {
    const { rpc } = this.o;
    const blockTag = await rpc.call("getBlockNumber", (p) => p.getBlockNumber());
    const byDevice = groupByDevice([...items].sort(compareItems));
    const inFlight = groupByDevice(this.o.store.batchedItemsOf([...byDevice.keys()]));
    const shipments = new Map<bigint, ShipmentWindow>();
    const blockTime = await this.blockTime(blockTag);
    // The contract refuses readings observed after this (FutureTimestamp): the next block is at least as late.
    const latestObservable = blockTime + (await this.maxFutureSkewSeconds(blockTag));
    const early: StoredItem[] = [];
    const stale: { item: StoredItem; chainLast: number }[] = [];
    const recorded: StoredItem[] = [];
    const waiting = new Map<bigint, { offer: PendingOffer; items: StoredItem[] }>();
    const gapped: { track: DeviceTrackView; items: StoredItem[] }[] = [];
    let afterInFlight = false;
    for (const [deviceId, list] of byDevice) {
      const track = await this.track(deviceId, blockTag);
      if (track.shipmentId === 0n) continue; // UnboundDevice: final, the contract judges
      let shipment = shipments.get(track.shipmentId);
      if (shipment === undefined) {
        shipment = await this.shipmentWindow(track.shipmentId, blockTag, blockTime);
        shipments.set(track.shipmentId, shipment);
      }
      if (!shipment.active) continue; // ShipmentNotActive: final, the contract judges
      const chainLast = track.lastObservedAt;
      // The device's chain once this oracle's batches in flight are mined (before this one: nonce order).
      let expected = chainLast;
      for (const f of inFlight.get(deviceId) ?? []) {
        if (f.firstObservedAt > expected && continues(f, expected, shipment.start)) expected = f.lastObservedAt;
      }
      let last = expected;
      const gap: StoredItem[] = [];
      const custody: StoredItem[] = [];
      let waits: StoredItem[] | undefined;
      for (const item of list) {
        // A device's later readings wait with the first one that waits.
        if (waits !== undefined) {
          waits.push(item);
          continue;
        }
        if (item.lastObservedAt > latestObservable) {
          early.push(item);
          waits = early;
          continue;
        }
        if (item.firstObservedAt <= chainLast) {
          // Recorded already if the chain holds its last sample; else (partly recorded, before the start) the
          // contract judges.
          if (await this.isRecorded(deviceId, item.lastObservedAt, blockTag)) recorded.push(item);
          continue;
        }
        // Overlaps one of this oracle's own readings before it (two histories): the contract judges.
        if (item.firstObservedAt <= last) continue;
        // Outside the shipment (OutsideShipmentWindow, final): the contract judges.
        if (item.lastObservedAt < shipment.start || (shipment.end !== 0 && item.firstObservedAt > shipment.end)) {
          continue;
        }
        if (shipment.offer !== undefined && item.lastObservedAt >= shipment.offer.handoverAt) {
          custody.push(item);
          waits = custody;
          continue;
        }
        const previous = item.previousObservedAt ?? 0;
        if (continues(item, last, shipment.start)) {
          if (expected !== chainLast) afterInFlight = true;
          last = item.lastObservedAt;
        } else if (chainLast !== 0 && previous < chainLast) {
          stale.push({ item, chainLast });
        } else if (previous > last || (last === 0 && previous >= shipment.start)) {
          gap.push(item);
          waits = gap;
        }
        // Else its predecessor is one of this oracle's own readings before it but not the latest (two histories):
        // the contract judges.
      }
      if (gap.length > 0) gapped.push({ track, items: gap });
      if (custody.length > 0 && shipment.offer !== undefined) {
        const entry = waiting.get(track.shipmentId) ?? { offer: shipment.offer, items: [] };
        entry.items.push(...custody);
        waiting.set(track.shipmentId, entry);
      }
    }
    // A shipment seen without a pending offer starts its back-off afresh next time.
    for (const [shipmentId, s] of shipments) {
      if (s.offer === undefined) this.holdStreak.delete(`CustodyPending:${shipmentId}`);
    }
    if (stale.length > 0) {
      const ids = stale.map((s) => s.item.id);
      this.o.store.skipPending(ids, "StaleSequence");
      this.o.metrics.skippedReadings.inc(
        { reason: "StaleSequence" },
        stale.reduce((n, s) => n + s.item.count, 0),
      );
      for (const s of stale) this.logLost(s.item, s.chainLast, "removed before submission (no gas spent)");
      this.o.events.emit("preflight-skipped", { itemIds: ids, reason: "StaleSequence" });
    }
    if (recorded.length > 0) {
      const ids = recorded.map((i) => i.id);
      this.o.store.skipPending(ids, "DuplicateSequence");
      const readings = recorded.reduce((n, i) => n + i.count, 0);
      this.o.metrics.skippedReadings.inc({ reason: "DuplicateSequence" }, readings);
      this.o.log.warn({ items: ids.length, readings }, "already on-chain: skipped before submission (no gas spent)");
      this.o.events.emit("preflight-skipped", { itemIds: ids, reason: "DuplicateSequence" });
    }
    for (const [shipmentId, { offer, items: list }] of waiting) {
      this.hold(list, shipmentId, offer, "preflight", "left out of the batch (no gas spent)");
    }
    for (const { track, items: list } of gapped) {
      this.holdGap(list, track, "preflight", "left out of the batch (no gas spent)");
    }
    if (early.length > 0) this.holdEarly(early, "preflight", "left out of the batch (no gas spent)", latestObservable);
    const removed =
      stale.length > 0 || recorded.length > 0 || waiting.size > 0 || gapped.length > 0 || early.length > 0;
    return { removed, afterInFlight };
  }

  /** `deviceTrack(deviceId)` at `blockTag`: the shipment the device is bound to and its latest recorded observation. */
  private async track(deviceId: bigint, blockTag: number): Promise<DeviceTrackView> {
    const data = COLD_CHAIN_ABI.encodeFunctionData("deviceTrack", [deviceId]);
    const out = await this.o.rpc.call("deviceTrack", (p) => p.call({ to: this.coldChain, data, blockTag }));
    const [track] = COLD_CHAIN_ABI.decodeFunctionResult("deviceTrack", out) as unknown as [
      { shipmentId: bigint; lastObservedAt: bigint },
    ];
    return { shipmentId: BigInt(track.shipmentId), lastObservedAt: Number(track.lastObservedAt) };
  }

  /** `isRecorded(deviceId, observedAt)` at `blockTag`: the device's current shipment holds its reading of that time. */
  private async isRecorded(deviceId: bigint, observedAt: number, blockTag: number): Promise<boolean> {
    const data = COLD_CHAIN_ABI.encodeFunctionData("isRecorded", [deviceId, observedAt]);
    const out = await this.o.rpc.call("isRecorded", (p) => p.call({ to: this.coldChain, data, blockTag }));
    return (COLD_CHAIN_ABI.decodeFunctionResult("isRecorded", out)[0] as boolean) === true;
  }

  /**
   * Where shipment `shipmentId` accepts readings at `blockTag` (ReadingsInbox `_selectShipment`): active when in
   * transit, delivered, cancelled after its start, or created with its first handover pending (it then starts at
   * the offer's boundary); open from its effective start to its delivery (or cancellation).
   */
  private async shipmentWindow(shipmentId: bigint, blockTag: number, time: number): Promise<ShipmentWindow> {
    const data = COLD_CHAIN_ABI.encodeFunctionData("shipment", [shipmentId]);
    const out = await this.o.rpc.call("shipment", (p) => p.call({ to: this.coldChain, data, blockTag }));
    const [info] = COLD_CHAIN_ABI.decodeFunctionResult("shipment", out) as unknown as [
      { status: bigint; startedAt: bigint; deliveredAt: bigint; decidedAt: bigint },
    ];
    const offer = await this.pendingOffer(shipmentId, blockTag, time);
    const status = Number(info.status);
    const startedAt = Number(info.startedAt);
    const cancelled = status === STATUS_CANCELLED && startedAt !== 0;
    const starting = status === STATUS_CREATED && offer !== undefined;
    return {
      active: status === STATUS_IN_TRANSIT || status === STATUS_DELIVERED || cancelled || starting,
      start: starting ? offer.handoverAt : startedAt,
      end: cancelled ? Number(info.decidedAt) : Number(info.deliveredAt),
      offer,
    };
  }

  /** `maxFutureSkewSeconds()` at `blockTag`. */
  private async maxFutureSkewSeconds(blockTag: number): Promise<number> {
    const data = COLD_CHAIN_ABI.encodeFunctionData("maxFutureSkewSeconds", []);
    const out = await this.o.rpc.call("maxFutureSkewSeconds", (p) => p.call({ to: this.coldChain, data, blockTag }));
    return Number(COLD_CHAIN_ABI.decodeFunctionResult("maxFutureSkewSeconds", out)[0] as bigint);
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

  // -------------------------------------------------------------------------------------------
  // Held items and unrelayable ones
  // -------------------------------------------------------------------------------------------

  /** Ids of the items held back now; releases those whose back-off ran out (checked again at the next build). */
  private heldIds(): number[] {
    const now = this.o.clock();
    for (const [id, h] of this.held) if (h.retryAt <= now) this.release(id, h);
    this.updateHeldGauge();
    return [...this.held.keys()];
  }

  private release(id: number, h: Hold): void {
    this.held.delete(id);
    this.heldCount -= h.readings;
  }

  private updateHeldGauge(): void {
    const by: Record<HoldReason, number> = { CustodyPending: 0, SequenceGap: 0, FutureTimestamp: 0 };
    for (const h of this.held.values()) by[h.reason] += h.readings;
    for (const reason of HOLD_REASONS) this.o.metrics.heldReadings.set({ reason }, by[reason]);
    this.o.metrics.heldReadings.set({ reason: ANCHOR_HOLD }, this.o.store.anchorHeldReadings(this.o.clock()));
  }

  /**
   * Readings held for a gap are judged again as soon as their device's chain moves (another relayer recorded the
   * predecessor, or anything later): read once per new block for each device with held gap readings.
   */
  async releaseAdvancedGaps(head: number): Promise<void> {
    if (head === this.gapsCheckedAt) return;
    const devices = new Set<bigint>();
    for (const h of this.held.values()) if (h.reason === "SequenceGap") devices.add(h.deviceId);
    for (const deviceId of devices) {
      const key = deviceId.toString();
      const watch = this.gaps.get(key);
      const track = await this.track(deviceId, head);
      if (watch !== undefined && track.shipmentId !== 0n && track.lastObservedAt === watch.lastObservedAt) continue;
      let readings = 0;
      for (const [id, h] of this.held) {
        if (h.reason === "SequenceGap" && h.deviceId === deviceId) {
          readings += h.readings;
          this.release(id, h);
        }
      }
      this.holdStreak.delete(`SequenceGap:${key}`);
      if (watch === undefined || track.lastObservedAt >= watch.awaiting) this.gaps.delete(key);
      this.o.log.debug(
        { reason: "SequenceGap", deviceId: key, chainLastObservedAt: track.lastObservedAt, readings },
        "device %s's chain moved (latest recorded reading observed at %s): its held readings are judged again",
        key,
        iso(track.lastObservedAt),
      );
    }
    this.gapsCheckedAt = head;
    this.updateHeldGauge();
  }

  /** Marks items held: pending, out of batches until `retryAt`. */
  private holdItems(items: readonly StoredItem[], reason: HoldReason, retryAt: number): number {
    let readings = 0;
    for (const item of items) {
      const before = this.held.get(item.id);
      if (before !== undefined) this.heldCount -= before.readings;
      this.held.set(item.id, { retryAt, readings: item.count, reason, deviceId: item.deviceId });
      this.heldCount += item.count;
      readings += item.count;
    }
    this.updateHeldGauge();
    return readings;
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
    const key = `CustodyPending:${shipmentId?.toString() ?? "?"}`;
    const streak = this.holdStreak.get(key) ?? { attempts: 0, logged: "" };
    streak.attempts++;
    this.holdStreak.set(key, streak);
    const retryInMs = backoffMs(streak.attempts, this.o.config.chain.pollIntervalMs, CUSTODY_RETRY_MAX_MS);
    const readings = this.holdItems(items, "CustodyPending", this.o.clock() + retryInMs);
    this.o.metrics.deferredReadings.inc({ reason: "CustodyPending", stage }, readings);
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
    this.o.events.emit("deferred", {
      itemIds: items.map((i) => i.id),
      reason: "CustodyPending",
      stage,
      shipmentId,
      retryInMs,
    });
  }

  /**
   * Holds back a device's pending items the chain would skip (`preflight`) or skipped (`receipt`) as
   * `SequenceGap` (all of one device, in observation order): they stay pending, out of batches, until the
   * device's chain moves ({@link releaseAdvancedGaps}) or a back-off per device runs out. Logged at debug (routine
   * with a shared subscription); a gap that stays open for {@link GAP_WARN_AFTER_MS} is reported once (warn).
   */
  private holdGap(
    items: readonly StoredItem[],
    track: DeviceTrackView | undefined,
    stage: "preflight" | "receipt",
    what: string,
  ): void {
    const first = items[0];
    if (first === undefined) return;
    const deviceId = first.deviceId;
    const key = deviceId.toString();
    const awaiting = first.previousObservedAt ?? 0;
    const now = this.o.clock();
    const streakKey = `SequenceGap:${key}`;
    const streak = this.holdStreak.get(streakKey) ?? { attempts: 0, logged: "" };
    streak.attempts++;
    this.holdStreak.set(streakKey, streak);
    const retryInMs = backoffMs(streak.attempts, this.o.config.chain.pollIntervalMs, GAP_RETRY_MAX_MS);
    const readings = this.holdItems(items, "SequenceGap", now + retryInMs);
    this.o.metrics.deferredReadings.inc({ reason: "SequenceGap", stage }, readings);
    let watch = this.gaps.get(key);
    if (watch === undefined || watch.awaiting !== awaiting) {
      watch = { lastObservedAt: track?.lastObservedAt ?? 0, awaiting, since: now, warned: false };
      this.gaps.set(key, watch);
    } else if (track !== undefined) {
      watch.lastObservedAt = track.lastObservedAt;
    }
    const fields = {
      reason: "SequenceGap",
      stage,
      deviceId: key,
      shipmentId: track?.shipmentId.toString(),
      observedAt: first.firstObservedAt,
      previousObservedAt: awaiting,
      chainLastObservedAt: track?.lastObservedAt,
      items: items.length,
      readings,
      retryInMs,
    };
    const message =
      "readings held, not dropped: device %s's reading observed at %s waits for its predecessor (observed at %s) " +
      "to be recorded; the device's latest recorded reading was observed at %s (SequenceGap); %s; judged again " +
      "when the device's chain moves, at the latest in %d ms";
    const args = [key, iso(first.firstObservedAt), iso(awaiting), iso(track?.lastObservedAt ?? 0), what, retryInMs];
    // A gap is routine with a shared subscription (the other member relays the predecessor a batch later): debug,
    // and a warning once it lasts (below); a warn when the chain already skipped them.
    if (stage === "receipt") this.o.log.warn(fields, message, ...args);
    else this.o.log.debug(fields, message, ...args);
    if (!watch.warned && now - watch.since >= GAP_WARN_AFTER_MS) {
      watch.warned = true;
      this.o.log.warn(
        { ...fields, heldForMs: now - watch.since },
        "device %s's readings have waited %d min for their predecessor observed at %s, which no relayer has " +
          "recorded: if it never reaches a relayer (lost by the device or the broker), the device's later readings " +
          "can never be recorded in this shipment; check the device and the other oracles' stores",
        key,
        Math.round((now - watch.since) / 60_000),
        iso(awaiting),
      );
    }
    this.o.events.emit("deferred", {
      itemIds: items.map((i) => i.id),
      reason: "SequenceGap",
      stage,
      shipmentId: track?.shipmentId,
      deviceId,
      retryInMs,
    });
  }

  /**
   * Holds back items observed after what the chain accepts now (`FutureTimestamp`: the block time plus the
   * contract's `maxFutureSkewSeconds`), with the device's later items: they wait for the block time, with a
   * back-off per device (at most {@link GAP_RETRY_MAX_MS}). Never given up: a device's later readings name them.
   */
  private holdEarly(
    items: readonly StoredItem[],
    stage: "preflight" | "receipt",
    what: string,
    latestObservable: number | undefined,
  ): void {
    for (const [deviceId, list] of groupByDevice(items)) {
      const key = `FutureTimestamp:${deviceId}`;
      const streak = this.holdStreak.get(key) ?? { attempts: 0, logged: "" };
      streak.attempts++;
      this.holdStreak.set(key, streak);
      const retryInMs = backoffMs(streak.attempts, this.o.config.chain.pollIntervalMs, GAP_RETRY_MAX_MS);
      const readings = this.holdItems(list, "FutureTimestamp", this.o.clock() + retryInMs);
      this.o.metrics.deferredReadings.inc({ reason: "FutureTimestamp", stage }, readings);
      const first = list[0];
      const fields = {
        reason: "FutureTimestamp",
        stage,
        deviceId: deviceId.toString(),
        observedAt: first?.lastObservedAt,
        latestObservable,
        items: list.length,
        readings,
        retryInMs,
      };
      const message =
        "readings held, not dropped: device %s's reading observed at %s is ahead of what the chain accepts now " +
        "(FutureTimestamp: block time plus maxFutureSkewSeconds); %s; retried in %d ms";
      const args = [deviceId.toString(), iso(first?.lastObservedAt ?? 0), what, retryInMs];
      if (stage === "receipt" || streak.attempts === 1) this.o.log.warn(fields, message, ...args);
      else this.o.log.debug(fields, message, ...args);
      this.o.events.emit("deferred", {
        itemIds: list.map((i) => i.id),
        reason: "FutureTimestamp",
        stage,
        shipmentId: undefined,
        deviceId,
        retryInMs,
      });
    }
  }

  /**
   * Moves pending protocol v1 items (a store of before protocol v2) to `unrelayable`: kept as evidence, never sent
   * (a v2 contract verifies another digest and needs each reading's predecessor). One error line per retirement.
   */
  private retireV1(): void {
    const retired = this.o.store.retireV1Pending();
    if (retired.length === 0) return;
    const readings = retired.reduce((n, i) => n + i.count, 0);
    this.o.metrics.unrelayableReadings.inc({ reason: PROTOCOL_V1_REASON }, readings);
    const devices = [...new Set(retired.map((i) => i.deviceId.toString()))];
    this.o.log.error(
      {
        reason: PROTOCOL_V1_REASON,
        items: retired.length,
        readings,
        devices,
        itemIds: [retired[0]?.id, retired.at(-1)?.id],
        observedFrom: Math.min(...retired.map((i) => i.firstObservedAt)),
        observedUntil: Math.max(...retired.map((i) => i.lastObservedAt)),
      },
      "%d readings of protocol v1 (signed without previousObservedAt) from an older store cannot be relayed to " +
        "this protocol v2 contract: kept in the store as evidence (state unrelayable), not sent, not deleted; " +
        "see docs/operations.md, Upgrading to protocol v2",
      readings,
    );
    this.o.events.emit("unrelayable", { itemIds: retired.map((i) => i.id), readings });
  }

  /** The error line of a lost item (StaleSequence): its readings will never be on-chain. */
  private logLost(item: StoredItem, chainLastObservedAt: number | undefined, what: string): void {
    const lastSequence = item.firstSequence + item.count - 1;
    const chain =
      chainLastObservedAt === undefined
        ? "the device's latest recorded reading"
        : `the device's latest recorded reading, observed at ${iso(chainLastObservedAt)}`;
    this.o.log.error(
      {
        reason: "StaleSequence",
        itemId: item.id,
        deviceId: item.deviceId.toString(),
        firstSequence: item.firstSequence,
        lastSequence,
        readings: item.count,
        observedAt: item.firstObservedAt,
        previousObservedAt: item.previousObservedAt,
        chainLastObservedAt,
      },
      "readings LOST as evidence: device %s sequences %d..%d observed at %s (predecessor observed at %s) do not " +
        "continue the device's recorded chain: their predecessor is older than %s (StaleSequence: the device " +
        "signed two histories, or lost its state mid-shipment); the chain will never accept them; %s",
      item.deviceId.toString(),
      item.firstSequence,
      lastSequence,
      iso(item.firstObservedAt),
      iso(item.previousObservedAt ?? 0),
      chain,
      what,
    );
  }
}

/** Whether `item` continues a device's chain whose latest recorded observation is `last` (0: none yet). */
function continues(item: StoredItem, last: number, start: number): boolean {
  const previous = item.previousObservedAt ?? 0;
  return last === 0 ? previous < start : previous === last;
}

/** Items by device, each device's in the given order. */
function groupByDevice(items: readonly StoredItem[]): Map<bigint, StoredItem[]> {
  const out = new Map<bigint, StoredItem[]>();
  for (const item of items) {
    const list = out.get(item.deviceId);
    if (list === undefined) out.set(item.deviceId, [item]);
    else list.push(item);
  }
  return out;
}

/** Batch order: by device, then observation time (so each device's readings are applied in order). */
function compareItems(a: StoredItem, b: StoredItem): number {
  if (a.deviceId !== b.deviceId) return a.deviceId < b.deviceId ? -1 : 1;
  return a.firstObservedAt - b.firstObservedAt || a.id - b.id;
}

/** Unix seconds as ISO 8601 with the number (e.g. 2026-12-06T18:00:00Z (1796580000)); "-" for 0. */
function iso(seconds: number): string {
  if (seconds === 0) return "- (0)";
  const date = new Date(seconds * 1000);
  const text = Number.isNaN(date.getTime()) ? "?" : date.toISOString().replace(".000Z", "Z");
  return `${text} (${seconds})`;
}
