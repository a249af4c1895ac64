/**
 * Alert latency benchmark (not a test): `npm run bench:alerts` writes bench/results/alerts.json.
 *
 * Time from a device's MQTT publish of a reading (the call, before the broker's PUBACK) to the alert it raises
 * arriving (a) at a subscriber of `coldchain/v1/alerts/#` and (b) at a webhook receiver (a local HTTP server
 * answering 200), as p50 / p95 / max over BENCH_ALERTS alerts (default 200). Each reading after a device's first
 * crosses the 2–8 °C band (in → out → in …), so each raises exactly one alert (excursion_started or
 * excursion_ended). Readings are published one at a time, BENCH_ALERT_PAUSE_MS (default 50) apart, to measure
 * latency, not a queue. Devices start warm: their first (in-band) reading is stored and evaluated before the clock
 * starts, so the registry and shipment-context caches hold them, as in a running oracle.
 *
 * Set-up: aedes (TCP, 127.0.0.1), the in-process Hardhat chain, the oracle in this process with its default store
 * (SQLite WAL, synchronous=FULL, writer thread) and `alerts.enabled`.
 */
import { once } from "node:events";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";

import { connectAsync } from "mqtt";

import type { AlertPayload } from "../oracle/alerts/alerts.js";
import { Oracle } from "../oracle/oracle.js";
import { signReading } from "../sdk/protocol/index.js";
import type { SignedItem } from "../sdk/protocol/index.js";
import {
  INTERVAL_SECONDS,
  Publisher,
  deployWorld,
  fundedOracleKey,
  oracleConfig,
  startAedes,
  startChain,
  testLogger,
  waitFor,
} from "../test/oracle/support.js";

const ALERTS = Number(process.env.BENCH_ALERTS ?? 200);
const PAUSE_MS = Number(process.env.BENCH_ALERT_PAUSE_MS ?? 50);
const DEVICES = 8;
const SECRET = "bench-webhook-secret-0123456789";

interface Figures {
  count: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
  meanMs: number;
}

function figures(samples: number[]): Figures {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
  const round = (x: number): number => Math.round(x * 10) / 10;
  return {
    count: sorted.length,
    p50Ms: round(at(0.5)),
    p95Ms: round(at(0.95)),
    maxMs: round(sorted.at(-1) ?? NaN),
    meanMs: round(sorted.reduce((s, x) => s + x, 0) / Math.max(1, sorted.length)),
  };
}

const loadStart = loadavg();
const [node, broker] = await Promise.all([startChain(), startAedes()]);
console.log(`chain and broker up; ${ALERTS} alerts, ${PAUSE_MS} ms apart`);
const webhookArrivals = new Map<string, number>();
const receiver = createServer((req, res) => {
  const at = performance.now();
  const id = req.headers["x-coldchain-alert-id"];
  if (typeof id === "string" && !webhookArrivals.has(id)) webhookArrivals.set(id, at);
  req.resume();
  req.on("end", () => res.writeHead(200).end());
});
receiver.listen(0, "127.0.0.1");
await once(receiver, "listening");
const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
let oracle: Oracle | undefined;
try {
  const w = await deployWorld(node, DEVICES, 5000n);
  const config = oracleConfig(w, node, broker.url, {
    store: { synchronous: "FULL", intakeWriter: "thread" },
    alerts: { enabled: true, webhooks: [{ url: hookUrl, secretEnv: "BENCH_ALERTS_SECRET" }] },
  });
  oracle = new Oracle(
    config,
    { privateKey: await fundedOracleKey(node), mqttPassword: undefined, webhookSecrets: [SECRET] },
    { log: testLogger() },
  );
  await oracle.start();
  console.log("oracle up");
  const mqttArrivals = new Map<string, number>();
  const subscriber = await connectAsync(broker.url, { protocolVersion: 4, clientId: "bench-alerts-subscriber" });
  subscriber.on("message", (_topic, payload) => {
    const at = performance.now();
    const id = (JSON.parse(payload.toString("utf8")) as AlertPayload).id;
    if (!mqttArrivals.has(id)) mqttArrivals.set(id, at);
  });
  await subscriber.subscribeAsync("coldchain/v1/alerts/#", { qos: 1 });
  const device = await Publisher.connect(broker.url);

  // Readings signed before the clock starts: per device, one in band, then alternately out and in.
  const perDevice = Math.ceil(ALERTS / DEVICES) + 1;
  const t0 = Math.floor(Date.now() / 1000) - perDevice * INTERVAL_SECONDS - 60;
  const plans = w.devices.map((d) => {
    const items: { item: SignedItem; alertId: string | undefined }[] = [];
    let previous = 0;
    for (let i = 0; i < perDevice; i++) {
      const observedAt = t0 + i * INTERVAL_SECONDS;
      const out = i % 2 === 1;
      const item = signReading(
        w.domain,
        {
          deviceId: d.id,
          sequence: i + 1,
          observedAt,
          tempCentiC: out ? 950 : 500,
          flags: 0,
          previousObservedAt: previous,
        },
        d.key,
      );
      previous = observedAt;
      const kind = i === 0 ? undefined : out ? "excursion_started" : "excursion_ended";
      items.push({ item, alertId: kind && `${w.shipmentId}-${d.id}-${observedAt}-${kind}` });
    }
    return items;
  });
  // Warm-up: each device's first reading (no alert).
  for (const plan of plans) await device.publish((plan[0] as { item: SignedItem }).item);
  await waitFor(
    "the warm-up readings stored",
    () =>
      oracle!.store.countsByState().pending +
        oracle!.store.countsByState().recorded +
        oracle!.store.countsByState().skipped >=
      DEVICES,
  );
  await new Promise((resolve) => setTimeout(resolve, 1000));

  console.log("warm; measuring");
  const publishedAt = new Map<string, number>();
  let sent = 0;
  for (let i = 1; i < perDevice && sent < ALERTS; i++) {
    for (const plan of plans) {
      if (sent >= ALERTS) break;
      const { item, alertId } = plan[i] as { item: SignedItem; alertId: string };
      publishedAt.set(alertId, performance.now());
      await device.publish(item);
      sent++;
      await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
    }
  }
  await waitFor(
    "every alert on MQTT and at the webhook",
    () => [...publishedAt.keys()].every((id) => mqttArrivals.has(id) && webhookArrivals.has(id)),
    120_000,
  );
  const latency = (arrivals: Map<string, number>): number[] =>
    [...publishedAt].map(([id, at]) => (arrivals.get(id) as number) - at);
  const result = {
    generatedBy: "npm run bench:alerts (bench/alerts.ts)",
    machine: { cpus: cpus().length, node: process.version, loadAverage: loadStart },
    alerts: sent,
    pauseMs: PAUSE_MS,
    mqtt: figures(latency(mqttArrivals)),
    webhook: figures(latency(webhookArrivals)),
    notes: [
      "from the device's MQTT publish call to the alert's arrival at a subscriber of coldchain/v1/alerts/# and at a local webhook receiver",
      "aedes on TCP 127.0.0.1, in-process Hardhat chain, the oracle in the benchmark's process: store synchronous=FULL (an fsync per intake commit) with the writer thread, alerts.enabled, one webhook",
      "each alert: intake (signature check, durable commit), evaluation (reads the commit, shipment context cached), the alert's commit with its outbox rows, then MQTT publish (QoS 1) and HTTP POST in parallel",
      "warm: each device's first reading stored and evaluated before the clock starts; one reading at a time, pauseMs apart",
      "the machine's 2 cores are shared by the oracle, the broker, the chain and other work on the host (machine.loadAverage at the start): figures vary between runs",
    ],
  };
  const out = join(import.meta.dirname, "results");
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "alerts.json"), `${JSON.stringify(result, null, 2)}\n`);
  console.log(`alert latency over ${sent} alerts (publish → arrival):`);
  console.log(`  MQTT    p50 ${result.mqtt.p50Ms} ms  p95 ${result.mqtt.p95Ms} ms  max ${result.mqtt.maxMs} ms`);
  console.log(
    `  webhook p50 ${result.webhook.p50Ms} ms  p95 ${result.webhook.p95Ms} ms  max ${result.webhook.maxMs} ms`,
  );
  console.log("wrote bench/results/alerts.json");
  await device.close();
  await subscriber.endAsync();
} finally {
  await oracle?.stop();
  receiver.closeAllConnections();
  receiver.close();
  await Promise.all([node.stop(), broker.stop()]);
}
