/**
 * `GET /alerts`: live alerts as Server-Sent Events (`text/event-stream`) for a dashboard. Each event is
 * `id: <seq>`, `event: alert`, `data: <the alert's JSON>`. A client that reconnects sends `Last-Event-ID` (the
 * browser's EventSource does so by itself) or `?lastEventId=<seq>` and first receives the alerts it missed (at most
 * `alerts.sse.replayLimit`, from the store), then the live ones. Without either it receives alerts raised from now
 * on (`?lastEventId=0`: the newest `replayLimit` from the start). CORS: `Access-Control-Allow-Origin` is
 * `alerts.sse.corsOrigin`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

import type { AlertStore } from "./alert-store.js";

export interface SseOptions {
  readonly alerts: AlertStore;
  readonly corsOrigin: string;
  readonly maxClients: number;
  readonly replayLimit: number;
  readonly heartbeatMs: number;
}

interface Client {
  readonly res: ServerResponse;
  lastSeq: number;
}

export class AlertStream {
  private readonly clients = new Set<Client>();
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(private readonly o: SseOptions) {}

  get size(): number {
    return this.clients.size;
  }

  /** Handles `/alerts` (GET and the CORS preflight); false for any other request. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname !== "/alerts") return false;
    const cors = {
      "access-control-allow-origin": this.o.corsOrigin,
      "access-control-allow-headers": "Last-Event-ID, Cache-Control",
      "access-control-allow-methods": "GET, OPTIONS",
    };
    if (req.method === "OPTIONS") {
      res.writeHead(204, cors).end();
      return true;
    }
    if (req.method !== "GET") {
      res.writeHead(405, { ...cors, allow: "GET, OPTIONS" }).end();
      return true;
    }
    if (this.clients.size >= this.o.maxClients) {
      res
        .writeHead(503, { ...cors, "content-type": "text/plain", "retry-after": "10" })
        .end(`too many alert streams open (alerts.sse.maxClients ${this.o.maxClients})\n`);
      return true;
    }
    const header = req.headers["last-event-id"];
    const given = (Array.isArray(header) ? header[0] : header) ?? url.searchParams.get("lastEventId") ?? undefined;
    const resumeFrom = given === undefined ? undefined : Number(given);
    if (resumeFrom !== undefined && (!Number.isSafeInteger(resumeFrom) || resumeFrom < 0)) {
      res
        .writeHead(400, { ...cors, "content-type": "text/plain" })
        .end("Last-Event-ID must be an alert seq (integer)\n");
      return true;
    }
    res.writeHead(200, {
      ...cors,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    res.write(`retry: 2000\n\n`);
    const client: Client = { res, lastSeq: resumeFrom ?? this.o.alerts.lastSeq() };
    if (resumeFrom !== undefined) {
      const newest = this.o.alerts.lastSeq();
      const from = Math.max(resumeFrom, newest - this.o.replayLimit);
      for (const alert of this.o.alerts.alertsAfter(from, this.o.replayLimit))
        this.send(client, alert.seq, alert.payload);
    }
    this.clients.add(client);
    req.on("close", () => this.clients.delete(client));
    this.heartbeat ??= setInterval(() => {
      for (const c of this.clients) c.res.write(": keep-alive\n\n");
    }, this.o.heartbeatMs).unref();
    return true;
  }

  /** Sends new alerts to every client. */
  publish(alerts: readonly { seq: number; payload: string }[]): void {
    for (const client of this.clients) for (const a of alerts) this.send(client, a.seq, a.payload);
  }

  /** Ends every stream (the oracle stops). */
  close(): void {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    for (const c of this.clients) c.res.end();
    this.clients.clear();
  }

  private send(client: Client, seq: number, payload: string): void {
    if (seq <= client.lastSeq) return;
    client.lastSeq = seq;
    client.res.write(`id: ${seq}\nevent: alert\ndata: ${payload}\n\n`);
  }
}
