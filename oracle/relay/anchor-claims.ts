/**
 * Claims of anchor copies between the instances of one share group: which instance relays a reading only the anchor
 * sessions caught up (oracle/intake/anchor.ts), so that two instances never put it into two transactions.
 *
 * A reading published while a broker restarted reaches every instance's anchor and no share member, so every
 * instance stores it, held (`relay_after`: `mqtt.anchorHoldMs` plus the instance's spread). The spreads alone set the
 * instances' holds apart by chance: two holds ending within a block of each other both relayed it (the fault drill
 * "Mosquitto restarted 3× (2 instances × 2 connections)" carried 2 of 960 readings twice). So when its hold ends an
 * instance does not relay the copy at once; it claims it:
 * 1. it publishes a claim (its `oracleId` and the device's observation ranges) on the fence topic, which every
 *    instance's anchor receives, and holds the copy {@link ANCHOR_CLAIM_WINDOW_MS} more;
 * 2. an instance receiving another's claim for copies it holds yields them: they wait the claimant's window plus
 *    `mqtt.anchorHoldMs` more, by which time the claimant's transaction is mined and the pre-flight finds them on
 *    chain (`DuplicateSequence`, no gas). A shorter yield would end within the claimant's window: the yielder would
 *    claim again and make the claimant yield in turn (test/oracle/anchor-claims.test.ts saw both relay it);
 *    if the claimant failed (stopped, its transaction lost), the yielded copies' hold ends and they are claimed again;
 * 3. two instances that claim the same copy within each other's window (both in step 1): the lower `oracleId` keeps
 *    it, the other yields; both decide alike, each from the other's claim;
 * 4. when the window ends without a yield, the copy is relayed as any pending item.
 * Nothing is lost on any path: a claim only ever delays a copy (the store keeps it pending), and a yield only by
 * the window plus `mqtt.anchorHoldMs`. The claims are in memory: after a restart, a due copy is claimed again (one more window).
 * A claim that does not reach the other instance within the window (the broker restarting exactly then) can still
 * let both relay it: the chain skips the second copy (its gas wasted, no evidence changed).
 */
import type { Logger } from "../log.js";
import type { OracleMetrics } from "../health/metrics.js";
import type { Store } from "../store/store.js";

/**
 * How long a claimed copy waits for another instance's competing claim before it is relayed: claims travel through
 * the broker both instances use (milliseconds), so 2 s leaves a wide margin at the cost of 2 s on copies that already
 * waited `mqtt.anchorHoldMs`.
 */
export const ANCHOR_CLAIM_WINDOW_MS = 2_000;

/** Most copies one claim message names (a claim of more is sent as several messages). */
export const ANCHOR_CLAIM_MAX_ITEMS = 500;

/** How long after its window an own claim is remembered (a copy still pending then is claimed again: harmless). */
const CLAIM_FORGET_MS = 60_000;

/** A claim as published: the claimant's `oracleId` and `[deviceId, firstObservedAt, lastObservedAt]` per copy. */
export interface AnchorClaim {
  readonly claim: string;
  readonly items: readonly (readonly [string, number, number])[];
}

export interface AnchorClaimsOptions {
  readonly oracleId: string;
  /** `mqtt.anchorHoldMs`: how long a yielded copy waits for the claimant's transaction (after its window). */
  readonly holdMs: number;
  readonly store: Store;
  /** Publishes a claim (JSON) where every instance's anchor receives it (the fence topic; oracle/intake/mqtt.ts). */
  readonly publish: (payload: string) => void;
  readonly metrics: OracleMetrics;
  readonly log: Logger;
}

export class AnchorClaims {
  /** Own claims still in their window or recent: item id → when its window ends. */
  private readonly claimed = new Map<number, number>();

  constructor(private readonly o: AnchorClaimsOptions) {}

  /**
   * Claims the anchor copies whose hold ended by `now` and that are not claimed yet: publishes the claim and holds
   * them for the window. Returns how many it claimed. The planner calls this before it picks a batch, so a copy
   * reaches a batch only once its window ended unyielded.
   */
  claimDue(now: number): number {
    for (const [id, windowEnd] of this.claimed) if (now > windowEnd + CLAIM_FORGET_MS) this.claimed.delete(id);
    const due = this.o.store.dueAnchorCopies(now, ANCHOR_CLAIM_MAX_ITEMS).filter((c) => !this.claimed.has(c.id));
    if (due.length === 0) return 0;
    const windowEnd = now + ANCHOR_CLAIM_WINDOW_MS;
    this.o.store.holdAnchorCopies(
      due.map((c) => c.id),
      windowEnd,
    );
    for (const c of due) this.claimed.set(c.id, windowEnd);
    const claim: AnchorClaim = {
      claim: this.o.oracleId,
      items: due.map((c) => [c.deviceId.toString(), c.first, c.last] as const),
    };
    this.o.publish(JSON.stringify(claim));
    this.o.metrics.anchorClaims.inc({ event: "claimed" }, due.length);
    this.o.log.info(
      { copies: due.length, windowMs: ANCHOR_CLAIM_WINDOW_MS },
      "claimed anchor copies whose hold ended: relayed after the claim window unless another instance claimed them first",
    );
    return due.length;
  }

  /**
   * Another instance's claim (a fence-topic message the anchor received; anything else there is ignored): the copies
   * it names that this instance holds wait the claim window plus `mqtt.anchorHoldMs`, unless this instance claimed them too and its
   * `oracleId` sorts first. Returns how many copies yielded.
   */
  received(payload: Uint8Array, now: number): number {
    const claim = parseClaim(payload);
    if (claim === undefined || claim.claim === this.o.oracleId) return 0;
    const yielded: number[] = [];
    let kept = 0;
    for (const [deviceId, first, last] of claim.items) {
      for (const id of this.o.store.anchorCopiesOf(BigInt(deviceId), first, last)) {
        const windowEnd = this.claimed.get(id);
        if (windowEnd !== undefined && windowEnd >= now && this.o.oracleId < claim.claim) {
          kept++; // both claimed it within the window: the lower oracleId relays it
          continue;
        }
        this.claimed.delete(id);
        yielded.push(id);
      }
    }
    this.o.store.holdAnchorCopies(yielded, now + ANCHOR_CLAIM_WINDOW_MS + this.o.holdMs);
    if (yielded.length > 0) this.o.metrics.anchorClaims.inc({ event: "yielded" }, yielded.length);
    if (kept > 0) this.o.metrics.anchorClaims.inc({ event: "kept" }, kept);
    if (yielded.length > 0 || kept > 0) {
      this.o.log.info(
        { by: claim.claim, yielded: yielded.length, kept, waitMs: ANCHOR_CLAIM_WINDOW_MS + this.o.holdMs },
        "another instance claimed anchor copies this instance holds: yielded ones wait for its transaction (kept: " +
          "claimed here too, and this oracleId sorts first)",
      );
    }
    return yielded.length;
  }
}

/** A claim from a fence-topic payload, or undefined for anything else (fences, or junk: anyone may publish there). */
export function parseClaim(payload: Uint8Array): AnchorClaim | undefined {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(payload));
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const { claim, items } = value as { claim?: unknown; items?: unknown };
  if (typeof claim !== "string" || claim.length === 0 || !Array.isArray(items)) return undefined;
  if (items.length > ANCHOR_CLAIM_MAX_ITEMS) return undefined;
  const ok = items.every(
    (i: unknown) =>
      Array.isArray(i) &&
      i.length === 3 &&
      typeof i[0] === "string" &&
      /^[0-9]{1,78}$/.test(i[0]) &&
      Number.isSafeInteger(i[1]) &&
      Number.isSafeInteger(i[2]) &&
      (i[1] as number) <= (i[2] as number),
  );
  return ok ? { claim, items: items as AnchorClaim["items"] } : undefined;
}
