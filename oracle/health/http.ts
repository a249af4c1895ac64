/**
 * `/metrics` (Prometheus text) and `/healthz` (JSON; 200 when every check passes, 503 otherwise, with `failed` naming
 * the checks that did not and `checks` saying why). The checks (composed in oracle.ts, docs/operations.md section 7):
 * `broker` (MQTT connected), `store` (it can write), `relayTick` (the relay's last tick succeeded recently),
 * `stuckNonce` (our lowest unmined nonce mined within `health.stuckNonceAfterMs`), `pendingAge` (the oldest reading
 * not yet on chain younger than `health.maxPendingAgeMs`), `confirmations` (a batch confirmed within
 * `health.noConfirmationAfterMs` while readings wait), `feeCeiling` (`fees.maxFeePerGasGwei` at or above the base
 * fee).
 */
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

import { messageOf } from "../errors.js";
import type { Logger } from "../log.js";
import type { OracleMetrics } from "./metrics.js";

/** The names of /healthz's checks. */
export type HealthCheckName =
  "broker" | "store" | "relayTick" | "stuckNonce" | "pendingAge" | "confirmations" | "feeCeiling";

/** One check of /healthz: whether it passes and, when it does not, why (operator words, with the numbers). */
export interface HealthCheck {
  readonly ok: boolean;
  readonly reason?: string;
}

/** What /healthz reports. */
export interface Health {
  readonly ok: boolean;
  /** The checks that failed (empty when ok). */
  readonly failed: readonly HealthCheckName[];
  readonly checks: Readonly<Record<HealthCheckName, HealthCheck>>;
  /** The relay's transactions: our lowest unmined nonce, the chain's nonces, in flight, last confirmation. */
  readonly relay?: Readonly<Record<string, unknown>>;
  readonly mqttConnected: boolean;
  readonly relayLastSuccessAt: number;
  readonly pendingReadings: number;
  /** Messages set aside (stored, acknowledged), waiting to be judged. */
  readonly setAsideMessages: number;
  /** Why messages wait, when some do (e.g. the device registry unreachable since …). */
  readonly waitingFor?: string;
  /** Whether the store can write (false from a store failure until a write succeeds again: intake is paused). */
  readonly storeWritable: boolean;
  /** While it cannot: the failure, as itself (e.g. `STORE_FULL: the store … cannot write: its disk is full …`). */
  readonly storeError?: string;
  /** While it cannot: since when (unix ms). */
  readonly storeUnwritableSince?: number;
}

export class HttpServer {
  private server: Server | undefined;

  constructor(
    private readonly metrics: OracleMetrics,
    private readonly health: () => Health,
    private readonly log: Logger,
    /** Further routes (the alerts' `GET /alerts`): returns true when it handled the request. */
    private readonly routes?: (req: IncomingMessage, res: ServerResponse) => boolean,
  ) {}

  /** Listens; resolves with the bound port. */
  async start(host: string, port: number): Promise<number> {
    const server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      if (this.routes?.(req, res) === true) return;
      if (req.method === "GET" && path === "/metrics") {
        this.metrics.registry.metrics().then(
          (text) => {
            res.writeHead(200, { "content-type": this.metrics.registry.contentType });
            res.end(text);
          },
          (error: unknown) => {
            this.log.error({ err: messageOf(error) }, "metrics collection failed");
            res.writeHead(500).end();
          },
        );
      } else if (req.method === "GET" && path === "/healthz") {
        const health = this.health();
        res.writeHead(health.ok ? 200 : 503, { "content-type": "application/json" });
        res.end(JSON.stringify(health));
      } else {
        res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics or /healthz\n");
      }
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
