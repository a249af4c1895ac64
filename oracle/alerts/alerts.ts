/**
 * Real-time alerts (docs/operations.md, "Real-time alerts"): the evaluator (./evaluator.ts) judges each reading the
 * oracle accepted against its shipment's profile, the outbox delivery (./delivery.ts) sends each alert to the MQTT
 * topic `coldchain/v1/alerts/<shipmentId>` and the configured webhooks, and `GET /alerts` (./sse.ts) streams them to
 * dashboards. Advisory: the chain's verdict stays the authority. Wired by oracle.ts when `alerts.enabled`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

import type { RpcPool } from "../chain.js";
import type { OracleConfig } from "../config/index.js";
import type { Logger } from "../log.js";
import type { Store } from "../store/store.js";
import type { Clock } from "../verification/registry.js";
import type { Registry } from "prom-client";
import { AlertStore } from "./alert-store.js";
import { ShipmentContexts } from "./context.js";
import { AlertDelivery } from "./delivery.js";
import { AlertEvaluator } from "./evaluator.js";
import { createAlertMetrics } from "./metrics.js";
import { AlertStream } from "./sse.js";

export { ALERT_KINDS } from "./rules.js";
export type { AlertKind } from "./rules.js";
export { ALERT_TYPE, alertTopic } from "./payload.js";
export type { AlertPayload } from "./payload.js";
export { ALERT_ID_HEADER, SIGNATURE_HEADER, signAlert, verifyAlertSignature } from "./signature.js";
export { AlertStore } from "./alert-store.js";

export interface AlertsDeps {
  readonly config: OracleConfig;
  /** The webhooks' HMAC secrets, in `alerts.webhooks` order. */
  readonly webhookSecrets: readonly string[];
  readonly store: Store;
  readonly rpc: RpcPool;
  readonly registry: Registry;
  /** Publishes on the oracle's MQTT connection (QoS 1, not retained). */
  readonly publish: (topic: string, payload: string) => Promise<void>;
  readonly log: Logger;
  readonly clock: Clock;
}

export class Alerts {
  readonly store: AlertStore;
  readonly stream: AlertStream;
  private readonly evaluator: AlertEvaluator;
  private readonly delivery: AlertDelivery;

  constructor(private readonly deps: AlertsDeps) {
    const { config, clock } = deps;
    const a = config.alerts;
    this.store = new AlertStore(config.store.path, config.store.synchronous);
    this.stream = new AlertStream({
      alerts: this.store,
      corsOrigin: a.sse.corsOrigin,
      maxClients: a.sse.maxClients,
      replayLimit: a.sse.replayLimit,
      heartbeatMs: a.sse.heartbeatMs,
    });
    const metrics = createAlertMetrics(deps.registry, {
      outbox: () => this.store.outboxStats(),
      sseClients: () => this.stream.size,
      now: clock,
    });
    this.delivery = new AlertDelivery({
      alerts: this.store,
      webhooks: a.webhooks.map((w, i) => ({
        url: w.url,
        timeoutMs: w.timeoutMs,
        secret: deps.webhookSecrets[i] ?? "",
      })),
      publish: a.mqtt ? deps.publish : undefined,
      mqttTimeoutMs: a.mqttTimeoutMs,
      retryMinMs: a.retry.minMs,
      retryMaxMs: a.retry.maxMs,
      giveUpAfterMs: a.retry.giveUpAfterMs,
      concurrency: a.deliveryConcurrency,
      metrics,
      log: deps.log.child({ part: "delivery" }),
      clock,
    });
    this.evaluator = new AlertEvaluator({
      alerts: this.store,
      store: deps.store,
      contexts: new ShipmentContexts(deps.rpc, config.chain.coldChain, a.contextCacheSize, a.contextTtlMs, clock),
      oracleId: config.oracleId,
      chainId: config.chain.chainId,
      sinks: () => this.delivery.sinks(),
      gapCheckIntervalMs: a.gapCheckIntervalMs,
      retryMinMs: config.verify.setAsideRetryMinMs,
      retryMaxMs: config.verify.setAsideRetryMaxMs,
      metrics,
      log: deps.log.child({ part: "evaluator" }),
      clock,
      onRaised: (stored) => {
        this.stream.publish(stored.map((s) => ({ seq: s.seq, payload: JSON.stringify(s.payload) })));
        this.delivery.notify();
      },
    });
  }

  start(): void {
    this.delivery.start();
    this.evaluator.start();
  }

  /** A reading was stored: evaluate it. */
  notify(): void {
    this.evaluator.notify();
  }

  /** The HTTP server's hook: `GET /alerts` (and its CORS preflight). */
  handleHttp(req: IncomingMessage, res: ServerResponse): boolean {
    if (!this.config.sse.enabled) return false;
    return this.stream.handle(req, res);
  }

  private get config(): OracleConfig["alerts"] {
    return this.deps.config.alerts;
  }

  async stop(): Promise<void> {
    this.stream.close();
    await Promise.all([this.evaluator.stop(), this.delivery.stop()]);
    this.store.close();
  }
}
