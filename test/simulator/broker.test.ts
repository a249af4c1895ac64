/**
 * The simulator against a real aedes broker on 127.0.0.1: a subscriber receives every message the ledger says
 * was published, decodes it with the sdk/protocol decoders and verifies the device signatures, in both forms,
 * as readings and as windows; a broker outage buffers readings in the devices and the backlog is flushed after
 * the reconnect; runFleet plays a scaled clock to the end and returns the same ledger.
 */
import { expect } from "chai";
import { hexlify } from "ethers";

import {
  decodeMqttPayload,
  mqttReadingsTopic,
  parseMqttReadingsTopic,
  verifySignedItem,
  windowReadings,
} from "../../sdk/protocol/index.js";
import type { DeviceVerificationKey, Reading } from "../../sdk/protocol/index.js";
import { ManualClock, ScaledClock } from "../../simulator/clock.js";
import type { DevicePublicIdentity } from "../../simulator/device.js";
import { FleetRunner, ledgerTotals, runFleet } from "../../simulator/fleet.js";
import type { Fleet, FleetLedger } from "../../simulator/fleet.js";
import { BrokerUnreachableError, DevicePublisher } from "../../simulator/publisher.js";
import { SCENARIO_NAMES, buildScenario } from "../../simulator/scenarios.js";
import { DOMAIN, FROM, INTERVAL, collect, fleetOf, startBroker } from "./support.js";
import type { Collector, TestBroker } from "./support.js";

const HOURS = 3600;

function keyOf(identity: DevicePublicIdentity): DeviceVerificationKey {
  return identity.keyType === "secp256k1"
    ? { keyType: "secp256k1", address: identity.address }
    : { keyType: "p256", x: identity.x, y: identity.y };
}

/** Checks what the subscriber got against the ledger: same messages, valid ones verify, all readings present. */
function checkReceived(
  fleet: Fleet,
  ledger: FleetLedger,
  received: Collector["messages"],
  format: "json" | "binary",
): void {
  const totals = ledgerTotals(ledger);
  expect(received).to.have.length(totals.messages);
  const tampered = new Set(ledger.devices.flatMap((d) => d.tampered.map((t) => t.payload)));
  const readingsByDevice = new Map<bigint, Reading[]>();
  for (const m of received) {
    const { format: got, item } = decodeMqttPayload(m.payload);
    expect(got).to.equal(format);
    const deviceId = item.kind === "reading" ? item.reading.deviceId : item.window.deviceId;
    expect(parseMqttReadingsTopic(m.topic)).to.equal(deviceId);
    const identity = fleet.identities.find((d) => d.deviceId === deviceId);
    const ok = identity !== undefined && verifySignedItem(DOMAIN, item, keyOf(identity));
    const list = readingsByDevice.get(deviceId) ?? [];
    if (
      ok &&
      !list.some((r) => r.sequence === (item.kind === "reading" ? item.reading.sequence : item.window.firstSequence))
    ) {
      list.push(...(item.kind === "reading" ? [item.reading] : windowReadings(item.window)));
      readingsByDevice.set(deviceId, list);
    } else {
      expect(tampered.has(hexlify(m.payload)), `unexpected bad message on ${m.topic}`).to.equal(true);
    }
  }
  for (const d of ledger.devices) {
    const got = (readingsByDevice.get(d.deviceId) ?? []).map(({ deviceId: _, ...r }) => r);
    expect(got).to.deep.equal(d.readings.map(({ publishedAt: _, ...r }) => r));
  }
}

describe("simulator: publishing to a real MQTT broker (aedes on 127.0.0.1)", function () {
  this.timeout(60_000);
  let broker: TestBroker;
  let sub: Collector;

  beforeEach(async function () {
    broker = await startBroker();
    sub = await collect(broker.url);
  });

  afterEach(async function () {
    await sub.close();
    await broker.stop();
  });

  for (const format of ["json", "binary"] as const) {
    for (const mode of ["reading", "window"] as const) {
      it(`${format} ${mode}s: every scenario's messages arrive, decode and verify`, async function () {
        const fleet = fleetOf(`broker-${format}-${mode}`, SCENARIO_NAMES.length);
        const to = FROM + 12 * HOURS;
        const runner = new FleetRunner({
          fleet,
          scenarioByDevice: (d) =>
            buildScenario(SCENARIO_NAMES[d.index] ?? "compliant", {
              seed: 1,
              deviceIndex: d.index,
              from: FROM,
              to,
              intervalSeconds: INTERVAL,
            }),
          brokerUrl: broker.url,
          format,
          mode,
          windowSize: 6,
          from: FROM,
        });
        const clock = new ManualClock(FROM);
        try {
          while (clock.now() < to) {
            clock.advance(HOURS);
            await runner.advanceTo(clock.now());
          }
          await runner.flush(to);
        } finally {
          await runner.stop();
        }
        const ledger = runner.ledger();
        const totals = ledgerTotals(ledger);
        expect(totals.unpublished).to.equal(0);
        expect(totals.tampered).to.equal(8);
        expect(totals.readings).to.be.greaterThan(SCENARIO_NAMES.length * 100);
        await sub.waitFor(totals.messages);
        checkReceived(fleet, ledger, sub.messages, format);
      });
    }
  }

  it("buffers readings while the broker is down and flushes the backlog in order after the reconnect", async function () {
    const fleet = fleetOf("outage", 2);
    const runner = new FleetRunner({
      fleet,
      scenarioByDevice: () => ({ name: "compliant", spans: [], tamper: [] }),
      brokerUrl: broker.url,
      format: "binary",
      mode: "reading",
      from: FROM,
      reconnectPeriodMs: 100,
    });
    try {
      await runner.advanceTo(FROM + HOURS);
      const before = ledgerTotals(runner.ledger()).readings;
      expect(before).to.equal(2 * 12);
      await sub.close();
      await broker.stop();
      await runner.advanceTo(FROM + 3 * HOURS); // broker down: recorded, not published
      const during = ledgerTotals(runner.ledger());
      expect(during.readings).to.equal(before);
      expect(during.unpublished).to.equal(2 * 24);

      await broker.restart();
      sub = await collect(broker.url);
      const deadline = Date.now() + 10_000;
      while (ledgerTotals(runner.ledger()).unpublished > 0) {
        if (Date.now() > deadline) throw new Error("the backlog was not flushed after the reconnect");
        await new Promise((resolve) => setTimeout(resolve, 100));
        await runner.advanceTo(FROM + 3 * HOURS);
      }
      await sub.waitFor(2 * 24);
      for (const d of runner.ledger().devices) {
        expect(d.readings).to.have.length(36);
        const backlog = d.readings.slice(12);
        for (const r of backlog) expect(r.publishedAt).to.equal(FROM + 3 * HOURS);
        const topic = mqttReadingsTopic(d.deviceId);
        const seqs = sub.messages
          .filter((m) => m.topic === topic)
          .map((m) => {
            const { item } = decodeMqttPayload(m.payload);
            return item.kind === "reading" ? item.reading.sequence : -1;
          });
        expect(seqs).to.deep.equal(backlog.map((r) => r.sequence));
      }
    } finally {
      await runner.stop();
    }
  });

  it("runFleet follows a scaled clock to the end and returns the ledger of what the broker acknowledged", async function () {
    const fleet = fleetOf("run", 3);
    const to = FROM + 6 * HOURS;
    let published = 0;
    const ledger = await runFleet({
      fleet,
      scenarioByDevice: (d) =>
        buildScenario(d.index === 2 ? "late-upload" : "compliant", {
          seed: 3,
          deviceIndex: d.index,
          from: FROM,
          to,
          intervalSeconds: INTERVAL,
        }),
      brokerUrl: broker.url,
      format: "json",
      mode: "window",
      from: FROM,
      to,
      clock: new ScaledClock(FROM, 6 * HOURS * 2), // six hours in half a second
      tickMs: 20,
      onPublish: () => published++,
    });
    const totals = ledgerTotals(ledger);
    expect(totals.unpublished).to.equal(0);
    expect(totals.readings).to.equal(3 * 72);
    expect(published).to.equal(totals.messages);
    await sub.waitFor(totals.messages);
    checkReceived(fleet, ledger, sub.messages, "json");
  });

  it("a broker that does not answer gives an error naming the URL", async function () {
    const port = broker.port;
    await sub.close();
    await broker.stop();
    const publisher = new DevicePublisher({ url: `mqtt://127.0.0.1:${port}`, clientId: "x", connectTimeoutMs: 500 });
    let error: unknown;
    try {
      await publisher.connect();
    } catch (e) {
      error = e;
    }
    expect(error).to.be.instanceOf(BrokerUnreachableError);
    expect((error as Error).message).to.match(new RegExp(`mqtt://127.0.0.1:${port}.*--broker`));
    await broker.restart();
    sub = await collect(broker.url);
  });
});
