/**
 * Alert delivery from the durable outbox (./alert-store.ts): each row (an alert for one sink) is sent until the
 * sink acknowledges it (MQTT: the broker's PUBACK; a webhook: a 2xx answer), then marked delivered in the same
 * store. A failure is retried with exponential back-off and jitter (`alerts.retry.minMs` … `maxMs`); a row older
 * than `alerts.retry.giveUpAfterMs` is marked failed and counted. At least once: a crash between a receiver's 2xx
 * and the commit of "delivered" sends that alert again after the restart, with the same id (receivers de-duplicate
 * on `X-Coldchain-Alert-Id` / the payload's `id`).
 */
import { backoffMs } from "../chain.js";
import { messageOf } from "../errors.js";
import type { Logger } from "../log.js";
import type { Clock } from "../verification/registry.js";
import type { AlertStore, OutboxEntry } from "./alert-store.js";
import type { AlertMetrics } from "./metrics.js";
import { alertTopic } from "./payload.js";
import { ALERT_ID_HEADER, SIGNATURE_HEADER, signAlert } from "./signature.js";
import { Sleeper } from "../sleeper.js";

/** The outbox sink of the MQTT topic. */
export const MQTT_SINK = "mqtt";

/** The outbox sink of a webhook (by URL: a reordered config keeps its rows). */
export function webhookSink(url: string): string {
  return `webhook:${url}`;
}

export interface Webhook {
  readonly url: string;
  readonly secret: string;
  readonly timeoutMs: number;
}

export interface DeliveryOptions {
  readonly alerts: AlertStore;
  readonly webhooks: readonly Webhook[];
  /** Publishes on the oracle's MQTT connection (QoS 1, not retained); undefined: no MQTT sink. */
  readonly publish: ((topic: string, payload: string) => Promise<void>) | undefined;
  readonly mqttTimeoutMs: number;
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  readonly giveUpAfterMs: number;
  /** Rows sent at once. */
  readonly concurrency: number;
  readonly metrics: AlertMetrics;
  readonly log: Logger;
  readonly clock: Clock;
}

/** How long a stop waits for deliveries in flight before it abandons them (they are sent again after a restart). */
const STOP_GRACE_MS = 1_000;

export class AlertDelivery {
  private readonly webhooks: Map<string, Webhook>;
  private readonly sleeper = new Sleeper();
  private notified = false;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly abort = new AbortController();
  /** Deliveries in flight, by alert seq and sink. */
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(private readonly o: DeliveryOptions) {
    this.webhooks = new Map(o.webhooks.map((w) => [webhookSink(w.url), w]));
  }

  /** The sinks each new alert is queued for. */
  sinks(): string[] {
    return [...(this.o.publish === undefined ? [] : [MQTT_SINK]), ...this.webhooks.keys()];
  }

  start(): void {
    const removed = this.o.alerts.failRemovedSinks(this.sinks(), this.o.clock());
    if (removed > 0) {
      this.o.log.warn({ rows: removed }, "alert deliveries to sinks no longer configured were marked failed");
    }
    this.loop = this.run();
  }

  /** New rows in the outbox: send them now. */
  notify(): void {
    this.notified = true;
    this.sleeper.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.sleeper.stop();
    const timer = setTimeout(() => this.abort.abort(new Error("the oracle is stopping")), STOP_GRACE_MS);
    try {
      await this.loop;
      await Promise.all(this.inFlight.values());
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Keeps up to `concurrency` deliveries in flight, each on its own: a slow or unreachable webhook holds only its
   * own rows, never the MQTT sink's or another webhook's.
   */
  private async run(): Promise<void> {
    while (!this.stopped) {
      this.notified = false;
      const now = this.o.clock();
      const room = this.o.concurrency - this.inFlight.size;
      let started = 0;
      if (room > 0) {
        for (const entry of this.o.alerts.due(now, room + this.inFlight.size)) {
          const key = `${entry.seq}|${entry.sink}`;
          if (this.inFlight.has(key) || started >= room) continue;
          started++;
          this.inFlight.set(
            key,
            this.deliver(entry).finally(() => {
              this.inFlight.delete(key);
              this.sleeper.wake();
            }),
          );
        }
      }
      if (this.notified || (started > 0 && started === room)) continue;
      // Rows in flight are still "due" in the store: wait for one to finish (it wakes us), or for the next due row.
      const next = this.inFlight.size > 0 ? undefined : this.o.alerts.nextDueAt();
      await this.sleeper.sleep(next === undefined ? (this.inFlight.size > 0 ? 250 : 60_000) : Math.max(10, next - now));
    }
  }

  private async deliver(entry: OutboxEntry): Promise<void> {
    const kind = entry.sink === MQTT_SINK ? "mqtt" : "webhook";
    const now = this.o.clock();
    if (now - entry.createdAt > this.o.giveUpAfterMs) {
      this.o.alerts.failed(entry.seq, entry.sink, now, "gave up (alerts.retry.giveUpAfterMs)");
      this.o.metrics.deliveries.inc({ sink: kind, outcome: "failed" });
      this.o.log.error(
        { alertId: entry.alertId, sink: entry.sink, attempts: entry.attempts, ageMs: now - entry.createdAt },
        "alert %s not delivered to %s within alerts.retry.giveUpAfterMs: given up",
        entry.alertId,
        entry.sink,
      );
      return;
    }
    try {
      if (entry.sink === MQTT_SINK) await this.publishMqtt(entry);
      else await this.post(entry);
    } catch (error) {
      if (this.abort.signal.aborted) return; // stopping: the row stays due, sent again after the restart
      const waitMs = backoffMs(entry.attempts, this.o.retryMinMs, this.o.retryMaxMs);
      this.o.alerts.retryLater(entry.seq, entry.sink, this.o.clock() + waitMs, messageOf(error));
      this.o.metrics.deliveries.inc({ sink: kind, outcome: "retry" });
      this.o.log.warn(
        {
          alertId: entry.alertId,
          sink: entry.sink,
          attempts: entry.attempts + 1,
          retryInMs: waitMs,
          err: messageOf(error),
        },
        "alert delivery failed; retrying",
      );
      return;
    }
    this.o.alerts.delivered(entry.seq, entry.sink, this.o.clock());
    this.o.metrics.deliveries.inc({ sink: kind, outcome: "delivered" });
  }

  private async publishMqtt(entry: OutboxEntry): Promise<void> {
    const publish = this.o.publish;
    if (publish === undefined) throw new Error("no MQTT sink");
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no PUBACK within ${this.o.mqttTimeoutMs} ms`)), this.o.mqttTimeoutMs);
      this.abort.signal.addEventListener("abort", () => reject(new Error("the oracle is stopping")), { once: true });
    });
    try {
      await Promise.race([publish(alertTopic(entry.shipmentId), entry.payload), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async post(entry: OutboxEntry): Promise<void> {
    const webhook = this.webhooks.get(entry.sink);
    if (webhook === undefined) throw new Error(`${entry.sink} is not configured`);
    const timestamp = Math.floor(Date.now() / 1000);
    const response = await fetch(webhook.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        [ALERT_ID_HEADER]: entry.alertId,
        [SIGNATURE_HEADER]: signAlert(webhook.secret, timestamp, entry.payload),
        "user-agent": "coldchain-oracle-alerts/1",
      },
      body: entry.payload,
      signal: AbortSignal.any([AbortSignal.timeout(webhook.timeoutMs), this.abort.signal]),
    });
    // The answer's body is not needed; read it so the connection is reused.
    await response.arrayBuffer().catch(() => undefined);
    if (!response.ok) throw new Error(`HTTP ${response.status} from ${new URL(webhook.url).host}`);
  }
}
