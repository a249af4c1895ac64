/**
 * The set-aside retrier: judges the messages the intake set aside because they could not be judged when they came
 * (oracle/verification/judge.ts: the device registry unreachable, look-ups of new devices rate-limited or slow). One loop; per
 * pass the due messages oldest first, up to {@link CONCURRENCY} devices at once and each device's messages in the
 * order they came, each through {@link Intake.judgeSetAside} (the intake's checks, waiting for a look-up token and
 * the registry's answer instead of setting the message aside again). A verdict (stored, or dropped with its reason) deletes the row,
 * after the item's commit: a kill in between judges it again and finds it a duplicate; nothing is lost or doubled.
 *
 * While the registry is unreachable the loop does not try message after message: it waits for the outage's next
 * probe time (exponential back-off, `verify.setAsideRetryMinMs` to `verify.setAsideRetryMaxMs`), asks the node once
 * (`DeviceCache.probe`), and goes on when it answers, or as soon as anything else saw the registry answer (the
 * relay's event sync, a look-up: the cache's `available` event). Meanwhile it says why it waits (a warning every
 * {@link WAITING_LOG_INTERVAL_MS}: how many messages, since when, the last error, the next try), and `/healthz`
 * says it too (`waitingFor`). When the table is empty again it logs what became of them.
 */
import { EventEmitter } from "node:events";

import { messageOf } from "../errors.js";
import type { Intake, IntakeResult } from "./judge.js";
import type { Logger } from "../log.js";
import type { DropReason } from "../health/metrics.js";
import { isUnavailable } from "./registry.js";
import type { Clock, DeviceCache, RegistryOutage } from "./registry.js";
import type { SetAsideMessage, Store } from "../store/store.js";

/** Messages read from the store per pass. */
const PASS_SIZE = 200;
/** Devices whose messages are judged at once (a device's own messages one after another, in order). */
const CONCURRENCY = 8;
/** Sleep when nothing is set aside (a new message wakes the loop at once). */
const IDLE_MS = 60_000;
/** Least time between two "waiting for the registry" warnings. */
export const WAITING_LOG_INTERVAL_MS = 10_000;

export interface SetAsideRetrierOptions {
  readonly store: Store;
  readonly intake: Intake;
  readonly devices: DeviceCache;
  readonly log: Logger;
  readonly clock: Clock;
}

export interface SetAsideEvents {
  /** A message set aside got its verdict (its row is deleted). */
  judged: [{ message: SetAsideMessage; result: IntakeResult }];
}

export class SetAsideRetrier {
  readonly events = new EventEmitter<SetAsideEvents>();
  private stopping = false;
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** The last pass found nothing set aside (a new message must wake the loop). */
  private idle = false;
  /** Set when woken outside a sleep: the next sleep is skipped (a wake-up between a pass and its sleep is kept). */
  private dirty = false;
  private waitingLoggedAt = Number.NEGATIVE_INFINITY;
  /** Verdicts since the table was last empty (logged when it is empty again). */
  private drained = { stored: 0, dropped: new Map<DropReason, number>(), since: 0 };
  private readonly onAvailable = (): void => this.wakeUp();

  constructor(private readonly o: SetAsideRetrierOptions) {}

  start(): void {
    this.o.devices.events.on("available", this.onAvailable);
    this.running ??= this.run();
  }

  /**
   * A message was set aside: wakes the loop if it sleeps idle (while it works or waits for the registry, the new
   * row is found by the next pass anyway).
   */
  notify(): void {
    if (this.idle) this.wakeUp();
  }

  private wakeUp(): void {
    this.dirty = true;
    this.wake?.();
  }

  /** Stops after the message being judged (its verdict committed, or its row left for the next start). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.o.devices.events.off("available", this.onAvailable);
    this.wake?.();
    await this.running;
  }

  /** Why messages wait, for /healthz; undefined when none is set aside. */
  waitingFor(): string | undefined {
    const count = this.o.store.setAsideCount();
    if (count === 0) return undefined;
    const outage = this.o.devices.registryOutage;
    return outage === undefined
      ? `${count} messages set aside are being judged (each waits for a registry look-up of its device)`
      : `${count} messages set aside wait for the device registry, unreachable since ` +
          `${new Date(outage.since).toISOString()} (${outage.error})`;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      let delay: number;
      try {
        delay = await this.pass();
        failures = 0;
      } catch (error) {
        // The store failed (a verdict's commit, the row's delete): the rows stay, and are tried again.
        failures++;
        delay = Math.min(30_000, 1000 * 2 ** Math.min(failures, 5));
        this.o.log.error({ err: messageOf(error), retryInMs: delay }, "judging messages set aside failed; retrying");
      }
      if (!this.stopping && delay > 0) await this.sleep(delay);
    }
  }

  /** One pass; returns how long to wait before the next. */
  private async pass(): Promise<number> {
    const { store, devices, clock } = this.o;
    this.idle = store.setAsideCount() === 0;
    if (this.idle) {
      this.reportDrained();
      return IDLE_MS;
    }
    if (this.drained.since === 0) this.drained.since = clock();
    let outage = devices.registryOutage;
    if (outage !== undefined) {
      if (clock() < outage.retryAt || !(await devices.probe())) {
        outage = devices.registryOutage ?? outage;
        this.sayWaiting(outage);
        return Math.max(10, outage.retryAt - clock());
      }
    }
    const due = store.setAsideDue(clock(), PASS_SIZE);
    if (due.length === 0) {
      const times = store.setAsideTimes();
      return times === undefined ? 0 : Math.max(10, times.nextAttemptAt - clock());
    }
    const groups = new Map<string, SetAsideMessage[]>();
    for (const message of due) {
      const key = message.deviceId ?? `row ${message.id}`;
      const group = groups.get(key);
      if (group === undefined) groups.set(key, [message]);
      else group.push(message);
    }
    // Each device's messages in the order they came.
    const queue = [...groups.values()].map((group) => group.sort((a, b) => a.id - b.id));
    let halted = false;
    const work = async (): Promise<void> => {
      for (let group = queue.shift(); group !== undefined; group = queue.shift()) {
        for (const message of group) {
          if (halted || this.stopping) return;
          const verdict = await this.o.intake.judgeSetAside(message);
          if (isUnavailable(verdict)) {
            // Still not judged (the registry failed again): the outage's back-off paces the next try.
            store.postponeSetAside(message.id, message.nextAttemptAt, verdict.message);
            if (devices.registryOutage !== undefined) halted = true;
            break;
          }
          store.deleteSetAside(message.id);
          if (verdict.ok) this.drained.stored++;
          else this.drained.dropped.set(verdict.reason, (this.drained.dropped.get(verdict.reason) ?? 0) + 1);
          this.events.emit("judged", { message, result: verdict });
        }
      }
    };
    const settled = await Promise.allSettled(Array.from({ length: Math.min(CONCURRENCY, queue.length) }, work));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed !== undefined) throw failed.reason;
    return 0;
  }

  private sayWaiting(outage: RegistryOutage): void {
    const now = this.o.clock();
    if (now - this.waitingLoggedAt < WAITING_LOG_INTERVAL_MS) return;
    this.waitingLoggedAt = now;
    const times = this.o.store.setAsideTimes();
    this.o.log.warn(
      {
        setAside: this.o.store.setAsideCount(),
        oldestAgeMs: times === undefined ? 0 : now - times.oldestReceivedAt,
        registryDownMs: now - outage.since,
        probes: outage.failures,
        err: outage.error,
        retryInMs: Math.max(0, outage.retryAt - now),
      },
      "waiting for the device registry: %d messages set aside (stored, acknowledged) until it answers",
      this.o.store.setAsideCount(),
    );
  }

  private reportDrained(): void {
    const { stored, dropped, since } = this.drained;
    if (since === 0) return;
    const droppedTotal = [...dropped.values()].reduce((a, b) => a + b, 0);
    this.o.log.info(
      { stored, dropped: Object.fromEntries(dropped), tookMs: this.o.clock() - since },
      "messages set aside all judged: %d stored, %d dropped",
      stored,
      droppedTotal,
    );
    this.drained = { stored: 0, dropped: new Map(), since: 0 };
  }

  private sleep(ms: number): Promise<void> {
    if (this.dirty) {
      this.dirty = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        this.dirty = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }
}
