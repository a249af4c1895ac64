/**
 * Metrics of the alerts (prom-client, on the oracle's registry; docs/operations.md, "Real-time alerts").
 */
import { Counter, Gauge } from "prom-client";
import type { Registry } from "prom-client";

import { ALERT_KINDS } from "./rules.js";

export interface AlertMetrics {
  readonly raised: Counter<"kind">;
  readonly deliveries: Counter<"sink" | "outcome">;
}

export function createAlertMetrics(
  registry: Registry,
  scraped: {
    outbox: () => { pending: number; oldestCreatedAt: number | undefined };
    sseClients: () => number;
    now: () => number;
  },
): AlertMetrics {
  const registers = [registry];
  const raised = new Counter({
    name: "coldchain_oracle_alerts_raised_total",
    help: "alerts raised, by kind (each alert once, whatever its sinks)",
    labelNames: ["kind"] as const,
    registers,
  });
  for (const kind of ALERT_KINDS) raised.inc({ kind }, 0);
  const deliveries = new Counter({
    name: "coldchain_oracle_alert_deliveries_total",
    help: "alert delivery attempts, by sink (mqtt, webhook) and outcome (delivered, retry, failed: given up)",
    labelNames: ["sink", "outcome"] as const,
    registers,
  });
  for (const sink of ["mqtt", "webhook"]) {
    for (const outcome of ["delivered", "retry", "failed"]) deliveries.inc({ sink, outcome }, 0);
  }
  new Gauge({
    name: "coldchain_oracle_alert_outbox_pending",
    help: "alert deliveries waiting in the outbox (one per alert and sink)",
    registers,
    collect() {
      this.set(scraped.outbox().pending);
    },
  });
  new Gauge({
    name: "coldchain_oracle_alert_oldest_undelivered_age_seconds",
    help: "age of the oldest alert delivery still waiting in the outbox (0 when none)",
    registers,
    collect() {
      const oldest = scraped.outbox().oldestCreatedAt;
      this.set(oldest === undefined ? 0 : Math.max(0, (scraped.now() - oldest) / 1000));
    },
  });
  new Gauge({
    name: "coldchain_oracle_alert_sse_clients",
    help: "clients connected to GET /alerts (Server-Sent Events)",
    registers,
    collect() {
      this.set(scraped.sseClients());
    },
  });
  return { raised, deliveries };
}
