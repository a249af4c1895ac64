/**
 * Real-time alerts (oracle/alerts/): readings published by devices over a real broker (aedes, TCP), verified and
 * stored by a real oracle against the in-process chain (a deployed suite, a started shipment), judged against the
 * shipment's profile; the alerts arrive on the MQTT topic, at a real local HTTP webhook receiver (signed, retried)
 * and on `GET /alerts` (Server-Sent Events). The profile is the CLI's vaccine-2-8: 2–8 °C, freeze at −0.5 °C, a
 * gap after 3 intervals, fault mask 0x05.
 */
import { once } from "node:events";
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

import { expect } from "chai";
import { Wallet } from "ethers";
import { connectAsync } from "mqtt";
import type { MqttClient } from "mqtt";

import { ALERT_ID_HEADER, AlertStore, SIGNATURE_HEADER, verifyAlertSignature } from "../../oracle/alerts/alerts.js";
import type { AlertPayload } from "../../oracle/alerts/alerts.js";
import { parseConfig } from "../../oracle/config/index.js";
import type { OracleConfig } from "../../oracle/config/index.js";
import { Oracle } from "../../oracle/oracle.js";
import { signReading } from "../../sdk/protocol/index.js";
import type { SignedItem } from "../../sdk/protocol/index.js";
import { VACCINE_PROFILE, createShipment, registerDevice } from "../support/deploy.js";
import {
  Publisher,
  deployWorld,
  freePort,
  fundedOracleKey,
  oracleConfig,
  startAedes,
  startChain,
  tempDir,
  testLogger,
  waitFor,
} from "./support.js";
import { OracleProcess } from "./oracle-process.js";
import type { AedesHandle, Device, NodeHandle, World } from "./support.js";

const SECRET = "test-webhook-secret-0123456789";

/** A webhook receiver on 127.0.0.1: answers 500 while `fail(id)` says so, else 200; keeps every request. */
class Receiver {
  readonly requests: { id: string; signature: string | undefined; body: string; status: number }[] = [];
  fail: (id: string, attempt: number) => boolean = () => false;
  private readonly attempts = new Map<string, number>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<Receiver> {
    const server = createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const receiver = new Receiver(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`);
    server.on("request", (req: IncomingMessage, res: ServerResponse) => void receiver.handle(req, res));
    return receiver;
  }

  /** Alert ids answered 200, each as often as it was. */
  acknowledged(): string[] {
    return this.requests.filter((r) => r.status === 200).map((r) => r.id);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const id = String(req.headers[ALERT_ID_HEADER]);
    const attempt = (this.attempts.get(id) ?? 0) + 1;
    this.attempts.set(id, attempt);
    const status = this.fail(id, attempt) ? 500 : 200;
    const signature = req.headers[SIGNATURE_HEADER];
    this.requests.push({
      id,
      signature: Array.isArray(signature) ? signature[0] : signature,
      body: Buffer.concat(chunks).toString("utf8"),
      status,
    });
    res.writeHead(status).end();
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, "close");
  }
}

/** A dashboard's view: `GET /alerts` read as Server-Sent Events. */
class SseReader {
  readonly events: { id: number; alert: AlertPayload }[] = [];
  headers: Headers | undefined;
  private readonly abort = new AbortController();
  private done: Promise<void> | undefined;

  start(url: string, lastEventId?: number): Promise<void> {
    const ready = fetch(url, {
      headers: lastEventId === undefined ? {} : { "last-event-id": String(lastEventId) },
      signal: this.abort.signal,
    });
    this.done = ready
      .then(async (res) => {
        this.headers = res.headers;
        const decoder = new TextDecoder();
        let buffer = "";
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buffer += decoder.decode(chunk, { stream: true });
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const fields = new Map(
              block
                .split("\n")
                .filter((l) => !l.startsWith(":") && l.includes(":"))
                .map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trimStart()] as const),
            );
            if (fields.get("event") === "alert") {
              this.events.push({
                id: Number(fields.get("id")),
                alert: JSON.parse(fields.get("data") ?? "") as AlertPayload,
              });
            }
          }
        }
      })
      .catch(() => undefined);
    return ready.then(() => undefined);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.done;
  }
}

/** A device signing readings in time order (each names the previous one), with flags. */
class Logger_ {
  private last = 0;
  private seq = 0;
  constructor(
    private readonly w: World,
    readonly device: Device,
  ) {}

  reading(observedAt: number, tempCentiC: number, flags = 0, key = this.device.key): SignedItem {
    const item = signReading(
      this.w.domain,
      { deviceId: this.device.id, sequence: ++this.seq, observedAt, tempCentiC, flags, previousObservedAt: this.last },
      key,
    );
    if (key === this.device.key) this.last = observedAt;
    return item;
  }
}

function alertsConfig(w: World, node: NodeHandle, broker: AedesHandle, receiver: Receiver): OracleConfig {
  return oracleConfig(w, node, broker.url, {
    alerts: {
      enabled: true,
      webhooks: [{ url: receiver.url, secretEnv: "ALERTS_TEST_WEBHOOK_SECRET" }],
      retry: { minMs: 50, maxMs: 200 },
      gapCheckIntervalMs: 100,
    },
  });
}

async function subscribeAlerts(url: string): Promise<{ client: MqttClient; received: AlertPayload[] }> {
  const client = await connectAsync(url, { protocolVersion: 4, clientId: `dashboard-${Math.random()}` });
  const received: AlertPayload[] = [];
  client.on("message", (topic, payload) => {
    const alert = JSON.parse(payload.toString("utf8")) as AlertPayload;
    expect(topic).to.equal(`coldchain/v1/alerts/${alert.shipmentId}`);
    received.push(alert);
  });
  await client.subscribeAsync("coldchain/v1/alerts/#", { qos: 1 });
  return { client, received };
}

const count = (ids: readonly string[], id: string): number => ids.filter((x) => x === id).length;

describe("oracle real-time alerts (aedes, in-process chain, webhook receiver, SSE)", function () {
  this.timeout(120_000);
  let node: NodeHandle;
  let broker: AedesHandle;

  before(async () => {
    [node, broker] = await Promise.all([startChain(), startAedes()]);
  });
  after(async () => {
    await Promise.all([node?.stop(), broker?.stop()]);
  });

  it("raises each kind once with its fields, on MQTT, at a webhook that fails twice, and on GET /alerts", async () => {
    const w = await deployWorld(node, 2);
    // A third logger every second, on a profile with a gap after 2 intervals: its silence is seen by the timer.
    const fast: Device = { id: 7000n, key: { keyType: "secp256k1", privateKey: Wallet.createRandom().privateKey } };
    await registerDevice(w, fast.id, fast.key, 1);
    const qa = w.coldChain.connect(w.qa);
    const gapProfile = { ...VACCINE_PROFILE, maxGapIntervals: 2 };
    const gapProfileId = await qa.createProfile.staticCall(gapProfile);
    await (await qa.createProfile(gapProfile)).wait();
    const fastShipment = await createShipment(w, [fast.id], gapProfileId);
    await (await w.coldChain.connect(w.shipper).startShipment(fastShipment)).wait();
    const custodian = (await w.coldChain.shipment(w.shipmentId)).custodian;

    const receiver = await Receiver.start();
    receiver.fail = (_id, attempt) => attempt <= 2; // every alert: 500, 500, then 200
    const dashboard = await subscribeAlerts(broker.url);
    const oracle = new Oracle(
      alertsConfig(w, node, broker, receiver),
      { privateKey: await fundedOracleKey(node), mqttPassword: undefined, webhookSecrets: [SECRET] },
      { log: testLogger() },
    );
    await oracle.start();
    const sse = new SseReader();
    await sse.start(`http://127.0.0.1:${oracle.httpPort}/alerts`);
    const device = await Publisher.connect(broker.url);
    try {
      const [d0, d1] = w.devices as [Device, Device];
      const a = new Logger_(w, d0);
      const b = new Logger_(w, d1);
      const c = new Logger_(w, fast);
      const t = w.startedAt - 1000; // all within the oracle's future-skew limit (300 s)
      const published: SignedItem[] = [
        a.reading(t, 500), // in band: nothing
        a.reading(t + 60, 950), // excursion_started
        a.reading(t + 120, 960), // still out: nothing
        a.reading(t + 180, 500), // excursion_ended
        a.reading(t + 240, 510, 0x01), // device_fault (sensor fault bit)
        a.reading(t + 600, 520, 0x01), // gap (360 s > 3 × 60 s), the fault goes on: nothing more
        b.reading(t, -100), // first reading, frozen: excursion_started and freeze_started
      ];
      for (const item of published) await device.publish(item);
      const now = Math.floor(Date.now() / 1000);
      await device.publish(c.reading(now - 1, 500)); // in band, then silent
      const expected = [
        `${w.shipmentId}-${d0.id}-${t + 60}-excursion_started`,
        `${w.shipmentId}-${d0.id}-${t + 180}-excursion_ended`,
        `${w.shipmentId}-${d0.id}-${t + 240}-device_fault`,
        `${w.shipmentId}-${d0.id}-${t + 240}-gap`,
        `${w.shipmentId}-${d1.id}-${t}-excursion_started`,
        `${w.shipmentId}-${d1.id}-${t}-freeze_started`,
        `${fastShipment}-${fast.id}-${now - 1}-gap`,
      ];
      await waitFor("every alert delivered to the webhook", () => new Set(receiver.acknowledged()).size >= 7, 30_000);
      await waitFor("every alert on MQTT and SSE", () => dashboard.received.length >= 7 && sse.events.length >= 7);

      const stored = oracle.alerts?.store.all() ?? [];
      expect(stored.map((x) => x.id).sort()).to.deep.equal([...expected].sort());
      // Fields of one of each kind.
      const byId = new Map(stored.map((x) => [x.id, x]));
      const started = byId.get(expected[0] as string) as AlertPayload;
      expect(started).to.deep.include({
        type: "coldchain.alert/1",
        kind: "excursion_started",
        oracleId: oracle.config.oracleId,
        chainId: Number(w.chainId),
        shipmentId: w.shipmentId.toString(),
        deviceId: d0.id.toString(),
        custodian,
        tempCentiC: 950,
        tempC: 9.5,
        flags: 0,
        observedAt: new Date((t + 60) * 1000).toISOString(),
        observedAtUnix: t + 60,
      });
      expect(started.limits).to.deep.equal({
        minCentiC: 200,
        maxCentiC: 800,
        freezeCentiC: -50,
        minC: 2,
        maxC: 8,
        freezeC: -0.5,
        maxGapIntervals: 3,
        faultFlagMask: 5,
      });
      expect(byId.get(expected[2] as string)).to.deep.include({ kind: "device_fault", flags: 1, tempCentiC: 510 });
      expect(byId.get(expected[3] as string)).to.deep.include({ kind: "gap", observedAtUnix: t + 600 });
      expect(byId.get(expected[3] as string)?.gap).to.deep.equal({
        fromObservedAt: new Date((t + 240) * 1000).toISOString(),
        fromObservedAtUnix: t + 240,
        toObservedAtUnix: t + 600,
        silentSeconds: 360,
        maxGapSeconds: 180,
      });
      expect(byId.get(expected[5] as string)).to.deep.include({ kind: "freeze_started", tempC: -1 });
      const silent = byId.get(expected[6] as string) as AlertPayload;
      expect(silent).to.deep.include({ kind: "gap", shipmentId: fastShipment.toString(), observedAtUnix: now - 1 });
      expect(silent.gap?.toObservedAtUnix).to.equal(null);
      expect(silent.gap?.maxGapSeconds).to.equal(2);

      // The webhook: each id acknowledged once, after two refusals, each request validly signed.
      for (const id of expected) {
        expect(count(receiver.acknowledged(), id), id).to.equal(1);
        expect(
          count(
            receiver.requests.map((r) => r.id),
            id,
          ),
          id,
        ).to.equal(3);
      }
      for (const r of receiver.requests) {
        expect(verifyAlertSignature(SECRET, r.signature, r.body)).to.equal(true);
        expect((JSON.parse(r.body) as AlertPayload).id).to.equal(r.id);
      }
      // A forged or altered body, or another secret, fails the documented check.
      const sample = receiver.requests[0] as (typeof receiver.requests)[0];
      expect(
        verifyAlertSignature(SECRET, sample.signature, sample.body.replace('"tempCentiC":', '"tempCentiC":1')),
      ).to.equal(false);
      expect(verifyAlertSignature("another-secret-0123456789", sample.signature, sample.body)).to.equal(false);
      expect(
        verifyAlertSignature(SECRET, sample.signature, sample.body, Math.floor(Date.now() / 1000) + 3600),
      ).to.equal(false);

      // MQTT and SSE: each alert once.
      expect(dashboard.received.map((x) => x.id).sort()).to.deep.equal([...expected].sort());
      expect(sse.events.map((e) => e.alert.id).sort()).to.deep.equal([...expected].sort());
      expect(sse.headers?.get("content-type")).to.match(/^text\/event-stream/);
      expect(sse.headers?.get("access-control-allow-origin")).to.equal("*");
      // A dashboard resuming after the third event receives the rest, not the first three again.
      const third = sse.events[2]?.id as number;
      const resumed = new SseReader();
      await resumed.start(`http://127.0.0.1:${oracle.httpPort}/alerts`, third);
      await waitFor("the resumed stream's replay", () => resumed.events.length >= 4);
      await resumed.stop();
      expect(resumed.events.map((e) => e.id)).to.deep.equal(sse.events.slice(3).map((e) => e.id));

      // Replayed readings (the same messages again) and a reading with a bad signature raise nothing.
      const accepted = Number((await oracle.metrics.accepted.get()).values[0]?.value ?? 0);
      for (const item of published) await device.publish(item);
      const forged = a.reading(t + 660, 1500, 0, {
        keyType: "secp256k1",
        privateKey: Wallet.createRandom().privateKey,
      });
      await device.publish(forged);
      const dropped = async (reason: string): Promise<number> =>
        (await oracle.metrics.dropped.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
      await waitFor("replays and the forgery dropped", async () => (await dropped("duplicate")) >= published.length);
      await waitFor("the forgery dropped", async () => (await dropped("bad_signature")) >= 1);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(Number((await oracle.metrics.accepted.get()).values[0]?.value ?? 0)).to.equal(accepted);
      expect(oracle.alerts?.store.all().length).to.equal(7);
      expect(new Set(receiver.acknowledged()).size).to.equal(7);
      expect(dashboard.received.length).to.equal(7);

      // Metrics: raised by kind, deliveries by sink and outcome, an empty outbox.
      const scrape = await (await fetch(`http://127.0.0.1:${oracle.httpPort}/metrics`)).text();
      expect(scrape).to.match(/coldchain_oracle_alerts_raised_total\{kind="gap",oracle="[^"]+"\} 2/);
      expect(scrape).to.match(
        /coldchain_oracle_alert_deliveries_total\{sink="webhook",outcome="retry",oracle="[^"]+"\} 14/,
      );
      expect(scrape).to.match(
        /coldchain_oracle_alert_deliveries_total\{sink="webhook",outcome="delivered",oracle="[^"]+"\} 7/,
      );
      expect(scrape).to.match(
        /coldchain_oracle_alert_deliveries_total\{sink="mqtt",outcome="delivered",oracle="[^"]+"\} 7/,
      );
      expect(scrape).to.match(/coldchain_oracle_alert_outbox_pending\{oracle="[^"]+"\} 0/);
    } finally {
      await sse.stop();
      await device.close();
      await dashboard.client.endAsync();
      await oracle.stop();
      await receiver.stop();
    }
  });

  it("a restart mid-delivery loses nothing, delivers no acknowledged id again, and raises no second start", async () => {
    const w = await deployWorld(node, 2, 3000n);
    const receiver = await Receiver.start();
    const config = alertsConfig(w, node, broker, receiver);
    const secrets = { privateKey: await fundedOracleKey(node), mqttPassword: undefined, webhookSecrets: [SECRET] };
    const [d0, d1] = w.devices as [Device, Device];
    const t = w.startedAt + 1;
    const a = new Logger_(w, d0);
    const b = new Logger_(w, d1);
    const first = `${w.shipmentId}-${d0.id}-${t}-excursion_started`;
    // The receiver acknowledges d0's alert, and refuses d1's until after the restart.
    let refuse = true;
    receiver.fail = (id) => refuse && !id.includes(`-${d0.id}-`);
    const device = await Publisher.connect(broker.url);
    let oracle = new Oracle(config, secrets, { log: testLogger() });
    await oracle.start();
    try {
      await device.publish(a.reading(t, 1200));
      await device.publish(b.reading(t, 1300));
      const second = `${w.shipmentId}-${d1.id}-${t}-excursion_started`;
      await waitFor("d0's alert acknowledged", () => receiver.acknowledged().includes(first));
      await waitFor(
        "d1's alert refused twice",
        () =>
          count(
            receiver.requests.map((r) => r.id),
            second,
          ) >= 2,
      );
      await oracle.stop();
      expect(oracle.stopFailures).to.deep.equal([]);
      const before = receiver.requests.length;

      refuse = false;
      oracle = new Oracle(config, secrets, { log: testLogger() });
      await oracle.start();
      // Still out of band after the restart: no second excursion_started for the same excursion.
      await device.publish(a.reading(t + 60, 1250));
      await waitFor("d1's alert acknowledged after the restart", () => receiver.acknowledged().includes(second));
      await waitFor("the reading after the restart evaluated", () => {
        const track = oracle.alerts?.store.all() ?? [];
        return track.length === 2 && (oracle.alerts?.store.outboxCounts().pending ?? 1) === 0;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(
        oracle.alerts?.store
          .all()
          .map((x) => x.id)
          .sort(),
      ).to.deep.equal([first, second].sort());
      expect(count(receiver.acknowledged(), first)).to.equal(1);
      expect(count(receiver.acknowledged(), second)).to.equal(1);
      expect(receiver.requests.slice(before).map((r) => r.id)).to.not.include(first);
    } finally {
      await device.close();
      await oracle.stop();
      await receiver.stop();
    }
  });

  it("an oracle process killed (SIGKILL) mid-delivery: the restarted one delivers the rest, nothing twice", async () => {
    const w = await deployWorld(node, 2, 4000n);
    const receiver = await Receiver.start();
    process.env.ALERTS_TEST_WEBHOOK_SECRET = SECRET; // the child reads the webhook's secret from its environment
    const config: OracleConfig = { ...alertsConfig(w, node, broker, receiver), log: { level: "info" } };
    const key = await fundedOracleKey(node);
    const dir = tempDir("coldchain-alerts-");
    const port = await freePort();
    const [d0, d1] = w.devices as [Device, Device];
    const t = w.startedAt - 1000;
    const a = new Logger_(w, d0);
    const b = new Logger_(w, d1);
    const first = `${w.shipmentId}-${d0.id}-${t}-excursion_started`;
    const second = `${w.shipmentId}-${d1.id}-${t + 60}-excursion_started`;
    let refuse = true;
    receiver.fail = (id) => refuse && id === second;
    const device = await Publisher.connect(broker.url);
    let child = OracleProcess.start(config, dir, key, port, "alerts-1");
    try {
      await child.waitForLog(/oracle running/);
      await device.publish(a.reading(t, 1200));
      await device.publish(b.reading(t, 500));
      await device.publish(b.reading(t + 60, 1300));
      await waitFor("the first alert acknowledged", () => receiver.acknowledged().includes(first));
      await waitFor(
        "the second refused twice",
        () =>
          count(
            receiver.requests.map((r) => r.id),
            second,
          ) >= 2,
      );
      await child.stop("SIGKILL");
      const before = receiver.requests.length;
      // Published while no oracle runs (the broker keeps it for the oracle's session): d0 still out of band.
      await device.publish(a.reading(t + 60, 1250));
      refuse = false;
      child = OracleProcess.start(config, dir, key, port, "alerts-2");
      await child.waitForLog(/oracle running/);
      await waitFor("the second alert acknowledged after the restart", () => receiver.acknowledged().includes(second));
      const alerts = new AlertStore(config.store.path, "NORMAL");
      try {
        await waitFor("the reading published meanwhile evaluated", () => {
          const counts = alerts.outboxCounts();
          return counts.pending === 0 && alerts.cursor() !== undefined && alerts.cursor() === alerts.newestItemId();
        });
        expect(
          alerts
            .all()
            .map((x) => x.id)
            .sort(),
        ).to.deep.equal([first, second].sort());
      } finally {
        alerts.close();
      }
      expect(count(receiver.acknowledged(), first)).to.equal(1);
      expect(count(receiver.acknowledged(), second)).to.equal(1);
      expect(receiver.requests.slice(before).map((r) => r.id)).to.not.include(first);
    } finally {
      await device.close();
      await child.stop("SIGTERM");
      await receiver.stop();
    }
  });

  it("refuses a webhook without a secret and a bad URL with errors naming the key", () => {
    const base = {
      chain: { rpcUrls: ["http://127.0.0.1:8545"], chainId: 31337, coldChain: Wallet.createRandom().address },
    };
    expect(() =>
      parseConfig({ ...base, alerts: { enabled: true, webhooks: [{ url: "http://127.0.0.1:1/hook" }] } }),
    ).to.throw(/alerts\.webhooks\.0: set secret/);
    expect(() => parseConfig({ ...base, alerts: { webhooks: [{ url: "ftp://x/hook", secretEnv: "S" }] } })).to.throw(
      /alerts\.webhooks\.0\.url: an http:\/\/ or https:\/\/ URL/,
    );
    expect(() => parseConfig({ ...base, alerts: { retry: { minMs: 5000, maxMs: 100 } } })).to.throw(
      /alerts\.retry: alerts\.retry\.minMs must not exceed/,
    );
  });
});
