/**
 * The alert evaluator: reads the readings the oracle accepted (signature verified, committed to the store's
 * `items` table) in store order after a durable cursor, judges each with ./rules.ts against its shipment's profile,
 * and commits the alerts (with their outbox rows), the devices' next states and the cursor in one transaction.
 *
 * Off the intake path: intake only wakes it (`notify`) after its commit; the queue is the store itself, so it is
 * bounded by the store and survives a crash (what was stored but not yet evaluated is evaluated after the restart).
 * When the chain cannot be read (the shipment context), the evaluator waits with a back-off and tries the same item
 * again; intake goes on meanwhile. Between items, when caught up, it checks for silent devices (kind `gap`).
 */
import { backoffMs } from "../chain.js";
import { messageOf } from "../errors.js";
import type { Logger } from "../log.js";
import type { Store } from "../store/store.js";
import type { Clock } from "../verification/registry.js";
import { decodeMqttPayload } from "../../sdk/protocol/index.js";
import type { AlertStore, EvaluatedItem } from "./alert-store.js";
import type { ShipmentContexts } from "./context.js";
import type { AlertMetrics } from "./metrics.js";
import { alertPayload } from "./payload.js";
import type { AlertPayload } from "./payload.js";
import { evaluateReading, silentGap } from "./rules.js";
import type { DeviceAlertState, RuleReading } from "./rules.js";
import { Sleeper } from "../sleeper.js";

/** What a run of items raised, not yet committed. */
interface Pending {
  readonly alerts: { payload: AlertPayload; deviceId: bigint; keyObservedAt: number }[];
  readonly states: Map<bigint, DeviceAlertState>;
  cursor: number | undefined;
}

/** Items evaluated per read of the store. */
const ITEMS_PER_READ = 256;

export interface EvaluatorOptions {
  readonly alerts: AlertStore;
  /** The oracle's store: a device's interval (its registry entry, cached when its reading was verified). */
  readonly store: Store;
  readonly contexts: ShipmentContexts;
  readonly oracleId: string;
  readonly chainId: number;
  /** The outbox sinks each new alert is queued for. */
  readonly sinks: () => readonly string[];
  readonly gapCheckIntervalMs: number;
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  readonly metrics: AlertMetrics;
  readonly log: Logger;
  readonly clock: Clock;
  /** Called with the alerts newly stored (after their commit). */
  readonly onRaised: (alerts: readonly { seq: number; payload: AlertPayload }[]) => void;
}

export class AlertEvaluator {
  private readonly sleeper = new Sleeper();
  private notified = false;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private startedAt = 0;
  private lastGapCheck = 0;
  /** Failed chain reads in a row (the back-off's exponent). */
  private failures = 0;

  constructor(private readonly o: EvaluatorOptions) {}

  start(): void {
    this.startedAt = this.o.clock();
    if (this.o.alerts.cursor() === undefined) {
      // First start with alerts on: the readings already stored are history, not news.
      this.o.alerts.setCursor(this.o.alerts.newestItemId());
    }
    this.loop = this.run();
  }

  /** Something was stored: evaluate it now. */
  notify(): void {
    this.notified = true;
    this.sleeper.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.sleeper.stop();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      this.notified = false;
      let progressed: boolean;
      try {
        progressed = await this.evaluateSome();
        if (!progressed && this.o.clock() - this.lastGapCheck >= this.o.gapCheckIntervalMs) await this.checkSilence();
        this.failures = 0;
      } catch (error) {
        this.failures++;
        const waitMs = backoffMs(this.failures, this.o.retryMinMs, this.o.retryMaxMs);
        this.o.log.warn(
          { err: messageOf(error), retryInMs: waitMs },
          "alert evaluation paused (the chain could not be read for a shipment context, or the store could not write); " +
            "intake goes on, and the alerts follow when it works again",
        );
        await this.sleeper.sleep(waitMs, false);
        continue;
      }
      if (!progressed && !this.notified) await this.sleeper.sleep(this.o.gapCheckIntervalMs, true);
    }
  }

  /**
   * Evaluates the next items after the cursor and commits what they raised, the devices' states and the new cursor in
   * one transaction (one write per read of the store, not per item: the intake's writer shares the file). False when
   * there were none. When a context cannot be read, what came before is committed and the error thrown.
   */
  private async evaluateSome(): Promise<boolean> {
    const cursor = this.o.alerts.cursor() ?? 0;
    const items = this.o.alerts.itemsAfter(cursor, ITEMS_PER_READ);
    const pending: Pending = { alerts: [], states: new Map(), cursor: undefined };
    try {
      for (const item of items) {
        if (this.stopped) break;
        await this.evaluateItem(item, pending);
        pending.cursor = item.id;
      }
    } finally {
      if (pending.cursor !== undefined) {
        this.raise(
          this.o.alerts.commit(pending.alerts, pending.states, this.o.sinks(), this.o.clock(), pending.cursor),
        );
      }
    }
    return items.length > 0;
  }

  private async evaluateItem(item: EvaluatedItem, pending: Pending): Promise<void> {
    const readings = this.readingsOf(item);
    const context = readings.length === 0 ? undefined : await this.o.contexts.of(item.deviceId);
    if (context === undefined) return;
    const now = this.o.clock();
    let state = pending.states.get(item.deviceId) ?? this.o.alerts.deviceState(item.deviceId);
    for (const reading of readings) {
      const { raised, next } = evaluateReading(state, context.limits, context.shipmentId, reading, item.receivedAt);
      state = next;
      for (const r of raised) {
        pending.alerts.push({
          deviceId: item.deviceId,
          keyObservedAt: r.keyObservedAt,
          payload: alertPayload(
            r,
            { ...context, oracleId: this.o.oracleId, chainId: this.o.chainId, deviceId: item.deviceId },
            now,
          ),
        });
      }
    }
    if (state !== undefined) pending.states.set(item.deviceId, state);
  }

  /** The readings of a stored item (a window: each sample), as the rules see them. */
  private readingsOf(item: EvaluatedItem): RuleReading[] {
    let decoded;
    try {
      decoded = decodeMqttPayload(item.body).item;
    } catch {
      return []; // a protocol v1 body (kept as unrelayable evidence): not news
    }
    if (decoded.kind === "reading") {
      const r = decoded.reading;
      const intervalSeconds = this.o.store.device(item.deviceId)?.intervalSeconds ?? 0;
      return [{ observedAt: r.observedAt, tempCentiC: r.tempCentiC, flags: r.flags, intervalSeconds }];
    }
    const w = decoded.window;
    return w.samples.map((s, i) => ({
      observedAt: w.firstObservedAt + i * w.intervalSeconds,
      tempCentiC: s.tempCentiC,
      flags: s.flags,
      intervalSeconds: w.intervalSeconds,
    }));
  }

  /**
   * Gap alerts of devices silent longer than their gap limit. The silence counts from the later of the last
   * reading's receipt and this start (after a restart, devices flush what the broker kept first).
   */
  private async checkSilence(): Promise<void> {
    const now = this.o.clock();
    this.lastGapCheck = now;
    for (const { deviceId, state } of this.o.alerts.deviceStates()) {
      if (this.stopped) return;
      const counted = { ...state, lastReceivedAt: Math.max(state.lastReceivedAt, this.startedAt) };
      const raised = silentGap(counted, now);
      if (raised === undefined) continue;
      const context = await this.o.contexts.of(deviceId);
      const next: DeviceAlertState = { ...state, gapFrom: state.lastObservedAt };
      if (context === undefined || context.shipmentId !== state.shipmentId) {
        // The device left its shipment: its silence there is no news; not looked at again until it reads again.
        this.o.alerts.commit([], new Map([[deviceId, next]]), [], now);
        continue;
      }
      const payload = alertPayload(
        raised,
        { ...context, oracleId: this.o.oracleId, chainId: this.o.chainId, deviceId },
        now,
      );
      this.raise(
        this.o.alerts.commit(
          [{ payload, deviceId, keyObservedAt: raised.keyObservedAt }],
          new Map([[deviceId, next]]),
          this.o.sinks(),
          now,
        ),
      );
    }
  }

  private raise(stored: readonly { seq: number; payload: AlertPayload }[]): void {
    if (stored.length === 0) return;
    for (const { payload } of stored) {
      this.o.metrics.raised.inc({ kind: payload.kind });
      this.o.log.info(
        { alertId: payload.id, kind: payload.kind, shipmentId: payload.shipmentId, deviceId: payload.deviceId },
        "alert raised: %s of device %s (shipment %s) at %s °C",
        payload.kind,
        payload.deviceId,
        payload.shipmentId,
        payload.tempC,
      );
    }
    this.o.onRaised(stored);
  }
}
