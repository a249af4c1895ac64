/**
 * The anchor session: some durable session always holds the readings topics, so nothing is lost while the broker
 * restores a shared subscription late or not at all.
 *
 * Why. With `mqtt.connections` > 1 the oracle's connections share the stream through one MQTT 5 shared
 * subscription (`$share/<group>/…`, oracle/intake/mqtt.ts). Mosquitto 2.0.11 (Debian's) does not restore a shared
 * subscription of a persistent session after a restart, although it restores plain ones: until the oracle's
 * connections subscribe again (~0.9 s), a message published has no subscriber and the broker discards it, while
 * devices reconnect within 0.5 s and flush their backlog (issue 16: 443–478 of 3,529 readings lost per run).
 * Subscribing again on connect cannot close that window; a session the broker restores can.
 *
 * What. Beside its shared connections, each instance keeps one more connection, `<clientId>-anchor`: a persistent
 * session (clean false, the configured session expiry) with a plain, non-shared QoS 1 subscription to the readings
 * topics. The broker restores it after a restart, so every message published while the share group is gone is
 * queued for it. It does not judge every message for ever (that would serialise intake on one connection):
 * - catch-up: after any (re)connect of the anchor or of any of the instance's shared connections (and while one of
 *   them is down), every message it receives is handed to intake like any other, and acknowledged only after its
 *   commit. A message a share member also got is a duplicate: the store keeps one reading per (device, observation
 *   time), intake finds it stored before any signature check and counts it as an anchor duplicate, not a drop;
 * - the fence: once the anchor and every shared connection of the instance have their SUBACK after that
 *   (re)connect, the anchor publishes a fence (QoS 1, {@link ANCHOR_FENCE_TOPIC}, a random nonce) and stays in
 *   catch-up until it receives that fence itself. A broker that handles packets one after the other (Mosquitto)
 *   routes every message it took before the fence to the anchor's queue ahead of the fence, and delivers a
 *   session's messages in order; mqtt.js hands the anchor one message at a time and only after the previous one is
 *   committed. So when the fence comes back, everything published before the whole share group was back has been
 *   judged and stored;
 * - after its fence, the anchor acknowledges what it receives without judging it (the share members have it: their
 *   subscriptions exist again, and a message queued for a member before a broker restart is restored with the
 *   member's session), until the next (re)connect or a shared connection going down.
 *
 * Several instances in one share group: each has its own anchor (the client ids differ) and catches up the window
 * on its own, so a reading published in the window may be stored by several instances. Relayed at once, two
 * instances would put the same reading into two transactions in flight together (the pre-flight sees the chain,
 * not another instance's batch in flight: the second copy is skipped on chain, its gas wasted). So an anchor copy
 * is stored as usual (acknowledged after its commit) but held: not relayed before {@link anchorHoldMs} after it came
 * (`mqtt.anchorHoldMs` plus this instance's spread), kept in the store (`relay_after`, oracle/store/store.ts):
 * - a message the group also gave a member of this instance: that copy releases the held one (intake,
 *   oracle/verification/judge.ts): the group chose this instance, which relays it now; the other instances' copies
 *   stay held and their pre-flight finds the reading on chain when their hold ends (`DuplicateSequence`, no gas);
 * - a message only the anchors got (published while the group was gone): every instance holds it, and the one whose
 *   hold ends first relays it. The spread (up to half the hold, from `oracleId`) sets the instances' holds apart
 *   so that the others' pre-flight, later, finds it on chain. Two instances whose spreads fall within one
 *   confirmation of each other can still both relay it (the chain skips the second copy); see docs/operations.md.
 * An oracle restart (not the broker's): the anchor's queue holds what was published while the oracle was down; it
 * catches up through it (mostly duplicates of what the share members' sessions deliver).
 *
 * Not needed: with one connection and no share group, or on MQTT 3.1.1 (aedes: no `$share`), the oracle's own
 * subscription is plain and the broker restores it with the session: no anchor (oracle/intake/mqtt.ts). Nor with
 * `mqtt.anchor` false, for a broker that restores shared subscriptions of persistent sessions after its restart.
 *
 * The fence topic matches the plain readings filter (`coldchain/v1/devices/+/readings`) but no reading uses it: the
 * device level is `anchor-fence`, never a decimal device id. Share members and other instances' anchors receive the
 * fences too; every connection acknowledges and ignores a fence that is not its own anchor's current one.
 */
import { createHash, randomBytes } from "node:crypto";

import { MQTT_TOPIC_PREFIX } from "../../sdk/protocol/index.js";
import type { Logger } from "../log.js";
import type { OracleMetrics } from "../health/metrics.js";

/** The reserved topic of anchor fences: matched by the readings filter, used by no reading (not a device id). */
export const ANCHOR_FENCE_TOPIC = `${MQTT_TOPIC_PREFIX}/devices/anchor-fence/readings`;

/** Whether a message is an anchor fence (of this instance or another): acknowledged, never judged. */
export function isFenceTopic(topic: string): boolean {
  return topic === ANCHOR_FENCE_TOPIC;
}

/** The anchor's client id of an instance whose (first) MQTT client id is `clientId`. */
export function anchorClientId(clientId: string): string {
  return `${clientId}-anchor`;
}

/**
 * How long after it came an anchor copy may be relayed: `holdMs` plus this instance's spread, a share of
 * `holdMs / 2` fixed by `oracleId` (the same for every device and at every start, different between instances).
 * 0 with `holdMs` 0 (no hold).
 */
export function anchorHoldMs(oracleId: string, holdMs: number): number {
  return holdMs <= 0 ? 0 : holdMs + Math.floor((anchorSpread(oracleId) * holdMs) / 2);
}

/** A fraction in [0, 1) fixed by `oracleId` (the first 32 bits of its SHA-256). */
export function anchorSpread(oracleId: string): number {
  return createHash("sha256").update(oracleId).digest().readUInt32BE(0) / 2 ** 32;
}

/** A connection the anchor follows: the anchor itself, or the instance's shared connection of that index. */
export type AnchorParty = "anchor" | number;

/**
 * The anchor's mode and its fence: which of the instance's connections have their SUBACK since their last
 * (re)connect, the fence in flight, and whether the anchor catches up. The connections themselves are
 * oracle/intake/mqtt.ts's.
 */
export class AnchorFence {
  private catching = true;
  private anchorSubscribed = false;
  private readonly membersSubscribed: boolean[];
  /** The nonce of the fence published for the present state; undefined: none yet (or a (re)connect since). */
  private nonce: string | undefined;
  /** When the present catch-up began (for the log line at its end). */
  private since = Date.now();
  /** Messages handed to intake during the present catch-up. */
  private caughtUp = 0;
  /** Called when a catch-up ends. */
  private readonly waiting = new Set<() => void>();

  constructor(
    /** Shared connections of the instance. */
    members: number,
    private readonly clientId: string,
    /** Publishes the fence (QoS 1) on the anchor connection. */
    private readonly publish: (payload: string) => void,
    private readonly metrics: OracleMetrics,
    private readonly log: Logger,
  ) {
    this.membersSubscribed = new Array<boolean>(members).fill(false);
    this.metrics.anchorCatchingUp.set(1);
  }

  /** Whether the anchor hands what it receives to intake (else it acknowledges it unjudged). */
  get catchingUp(): boolean {
    return this.catching;
  }

  /**
   * Resolves true once the anchor is caught up (at once if it is), or false after `ms` (a large backlog, a fence
   * the broker refuses) or when `cancelled` resolves first.
   */
  async whenCaughtUp(ms: number, cancelled: Promise<void>): Promise<boolean> {
    if (!this.catching) return true;
    let resolve: (() => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    const caughtUp = new Promise<boolean>((r) => {
      resolve = () => r(true);
      this.waiting.add(resolve);
    });
    const late = new Promise<boolean>((r) => {
      timer = setTimeout(() => r(false), ms);
    });
    try {
      return await Promise.race([caughtUp, late, cancelled.then(() => false)]);
    } finally {
      clearTimeout(timer);
      if (resolve !== undefined) this.waiting.delete(resolve);
    }
  }

  /** A connection (re)connected, or went down: catch up until its SUBACK and a fence after it. */
  reset(party: AnchorParty, why: "connected" | "down"): void {
    if (party === "anchor") this.anchorSubscribed = false;
    else this.membersSubscribed[party] = false;
    this.nonce = undefined;
    if (!this.catching) {
      this.catching = true;
      this.since = Date.now();
      this.caughtUp = 0;
      this.metrics.anchorCatchingUp.set(1);
      this.log.info(
        { connection: party, why },
        "anchor session catching up: judging what it receives until the share group is subscribed again",
      );
    }
  }

  /** A connection has its SUBACK: publishes the fence once the anchor and every shared connection have theirs. */
  subscribed(party: AnchorParty): void {
    if (party === "anchor") this.anchorSubscribed = true;
    else this.membersSubscribed[party] = true;
    if (!this.catching || this.nonce !== undefined) return;
    if (!this.anchorSubscribed || this.membersSubscribed.some((s) => !s)) return;
    this.nonce = randomBytes(16).toString("hex");
    this.metrics.anchorFences.inc();
    this.publish(JSON.stringify({ anchor: this.clientId, nonce: this.nonce }));
  }

  /** A message handed to intake while catching up. */
  handedOver(): void {
    this.caughtUp++;
    this.metrics.anchorMessages.inc({ mode: "caught_up" });
  }

  /** A message acknowledged unjudged (after the fence). */
  discarded(): void {
    this.metrics.anchorMessages.inc({ mode: "discarded" });
  }

  /**
   * A fence received on the anchor connection: if it is this anchor's present fence, every message published before
   * the share group was back has been handed to intake (and committed): the catch-up ends. Others are ignored (a
   * fence of another instance, or one made stale by a (re)connect since).
   */
  received(payload: Uint8Array): void {
    if (!this.catching || this.nonce === undefined) return;
    let fence: { anchor?: unknown; nonce?: unknown };
    try {
      fence = JSON.parse(new TextDecoder().decode(payload)) as { anchor?: unknown; nonce?: unknown };
    } catch {
      return; // not a fence of ours (anyone may publish to the topic)
    }
    if (fence.anchor !== this.clientId || fence.nonce !== this.nonce) return;
    this.catching = false;
    this.metrics.anchorCatchingUp.set(0);
    for (const resolve of this.waiting) resolve();
    this.waiting.clear();
    this.log.info(
      { caughtUp: this.caughtUp, ms: Date.now() - this.since },
      "anchor session caught up (its fence came back): the share group takes the stream",
    );
  }
}
