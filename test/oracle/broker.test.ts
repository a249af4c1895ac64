/**
 * Against Mosquitto (spawned on a free port, persistence on, unbounded queues): the oracle speaks MQTT 5,
 * reconnects by itself when the broker restarts, and messages queued for its persistent session while it was
 * away survive a broker restart and are relayed when it comes back. Skipped only when `mosquitto` is absent.
 */
import { once } from "node:events";

import { expect } from "chai";
import { connectAsync } from "mqtt";

import { Oracle } from "../../oracle/oracle.js";
import { mqttStatusTopic } from "../../sdk/protocol/index.js";
import {
  Publisher,
  deployWorld,
  fundedOracleKey,
  mosquittoAvailable,
  oracleConfig,
  reading,
  startChain,
  startMosquitto,
  testLogger,
} from "./support.js";
import type { Device, MosquittoHandle, NodeHandle } from "./support.js";

describe("oracle with Mosquitto (MQTT 5, persistence, broker restart)", function () {
  this.timeout(120_000);
  let node: NodeHandle | undefined;
  let broker: MosquittoHandle | undefined;

  before(async function () {
    if (!mosquittoAvailable()) {
      console.warn("    SKIPPED: the `mosquitto` binary is not installed (apt-get install -y mosquitto)");
      this.skip();
    }
    node = await startChain();
    broker = await startMosquitto();
  });
  after(async () => {
    await Promise.all([node?.stop(), broker?.stop()]);
  });

  it("survives broker restarts: reconnects by itself and relays what the broker queued", async () => {
    if (node === undefined || broker === undefined) throw new Error("setup failed");
    const w = await deployWorld(node, 1, 9000n);
    const k1 = w.devices[0] as Device;
    const config = oracleConfig(w, node, broker.url);
    const secrets = { privateKey: await fundedOracleKey(node), mqttPassword: undefined };
    let oracle = new Oracle(config, secrets, { log: testLogger() });
    await oracle.start();
    const device = await Publisher.connect(broker.url);
    const confirmedReadings = (o: Oracle, n: number): Promise<void> =>
      new Promise((resolve) => {
        let seen = 0;
        o.relay.events.on("batch-confirmed", (e) => {
          seen += e.recorded;
          if (seen >= n) resolve();
        });
      });
    try {
      expect(oracle.ingest.protocolVersion).to.equal(5);
      let confirmed = confirmedReadings(oracle, 1);
      await device.publish(reading(w, k1, 1, w.startedAt + 1));
      await confirmed;

      // 1. The broker restarts under a running oracle: it reconnects by itself and intake resumes.
      await broker.stop();
      const reconnected = once(oracle.ingest.events, "connected");
      const deviceBack = nextConnect(device);
      await broker.restart();
      await Promise.all([reconnected, deviceBack]);
      confirmed = confirmedReadings(oracle, 1);
      await device.publish(reading(w, k1, 2, w.startedAt + 2));
      await confirmed;

      // 2. The oracle is away; the broker queues for its session, restarts (persistence), and the oracle comes back.
      await oracle.stop();
      const status = await connectAsync(broker.url, { protocolVersion: 5 });
      const statusMessage = new Promise<[string, Buffer]>((resolve) =>
        status.once("message", (topic, payload) => resolve([topic, payload])),
      );
      await status.subscribeAsync(mqttStatusTopic(config.oracleId), { qos: 1 });
      const [, offline] = await statusMessage;
      expect(JSON.parse(offline.toString())).to.include({ state: "offline" });
      await status.endAsync();
      for (let seq = 3; seq <= 7; seq++) await device.publish(reading(w, k1, seq, w.startedAt + seq));
      await broker.stop();
      const deviceBackAgain = nextConnect(device);
      await broker.restart();
      await deviceBackAgain;
      oracle = new Oracle(config, secrets, { log: testLogger() });
      confirmed = confirmedReadings(oracle, 5);
      await oracle.start();
      await confirmed;
      for (let seq = 1; seq <= 7; seq++)
        expect(await w.coldChain.isRecorded(k1.id, w.startedAt + seq), `seq ${seq}`).to.equal(true);
    } finally {
      await device.close();
      await oracle.stop();
    }
  });

  it("scales out: two instances share the stream (MQTT 5 $share), nothing lost, nothing submitted twice", async () => {
    if (node === undefined || broker === undefined) throw new Error("setup failed");
    const w = await deployWorld(node, 2, 9100n);
    const oracles = await Promise.all(
      ["a", "b"].map(
        async (name) =>
          new Oracle(
            oracleConfig(w, node as NodeHandle, (broker as MosquittoHandle).url, {
              oracleId: `share-${name}-${Date.now()}`,
              mqtt: { shareGroup: "relays" },
            }),
            { privateKey: await fundedOracleKey(node as NodeHandle), mqttPassword: undefined },
            { log: testLogger() },
          ),
      ),
    );
    await Promise.all(oracles.map((o) => o.start()));
    const device = await Publisher.connect(broker.url);
    try {
      const total = 40;
      const done = new Promise<void>((resolve) => {
        let recorded = 0;
        for (const o of oracles) {
          o.relay.events.on("batch-confirmed", (e) => {
            recorded += e.recorded;
            if (recorded === total) resolve();
          });
        }
      });
      for (let i = 0; i < total; i++) {
        const d = w.devices[i % 2] as Device;
        const seq = Math.floor(i / 2) + 1;
        await device.publish(reading(w, d, seq, w.startedAt + seq));
      }
      await done;
      const stored = oracles.map((o) => o.store.countsByState());
      expect(stored.map((c) => c.recorded).reduce((a, b) => a + b)).to.equal(total);
      for (const c of stored) expect(c.recorded, "each instance took a share").to.be.greaterThan(0);
      for (const c of stored) expect(c.skipped).to.equal(0);
      for (const d of w.devices) {
        for (let seq = 1; seq <= total / 2; seq++) {
          expect(await w.coldChain.isRecorded(d.id, w.startedAt + seq)).to.equal(true);
        }
      }
    } finally {
      await device.close();
      await Promise.all(oracles.map((o) => o.stop()));
    }
  });

  it("several connections share one oracle's stream: commits grouped, connections dropped mid-stream, nothing lost or doubled", async () => {
    if (node === undefined || broker === undefined) throw new Error("setup failed");
    const w = await deployWorld(node, 4, 9200n);
    const oracle = new Oracle(
      oracleConfig(w, node, broker.url, {
        mqtt: { connections: 6 },
        verify: { workers: 2 },
        batch: { maxReadings: 100 },
      }),
      { privateKey: await fundedOracleKey(node), mqttPassword: undefined },
      { log: testLogger() },
    );
    await oracle.start();
    const publishers = await Promise.all([0, 1, 2].map(() => Publisher.connect((broker as MosquittoHandle).url)));
    try {
      expect(oracle.ingest.connections).to.equal(6);
      const perDevice = 60;
      const total = perDevice * w.devices.length;
      const items = Array.from({ length: total }, (_, i) => {
        const seq = Math.floor(i / w.devices.length) + 1;
        return reading(w, w.devices[i % w.devices.length] as Device, seq, w.startedAt + seq);
      });
      let recorded = 0;
      const done = new Promise<void>((resolve) => {
        oracle.relay.events.on("batch-confirmed", (e) => {
          recorded += e.recorded;
          if (recorded >= total) resolve();
        });
      });
      const sent = Promise.all(
        publishers.map(async (p, k) => {
          for (let i = k; i < total; i += publishers.length) await p.publish(items[i] as (typeof items)[number]);
        }),
      );
      // Drop every connection without a clean disconnect while messages are in flight: the broker must deliver
      // the unacknowledged ones again (to whichever connection of the group), and nothing is stored twice.
      await new Promise<void>((resolve) => {
        let handled = 0;
        const on = (): void => {
          if (++handled < total / 3) return;
          oracle.events.off("intake", on);
          resolve();
        };
        oracle.events.on("intake", on);
      });
      oracle.ingest.reconnect();
      await sent;
      await done;
      expect(recorded).to.equal(total);
      const counts = oracle.store.countsByState();
      expect(counts.recorded).to.equal(total);
      expect(counts.skipped).to.equal(0);
      expect(
        oracle.intake.commits.stats.largest,
        "messages in flight together were committed together",
      ).to.be.greaterThan(1);
      for (const d of w.devices) {
        for (let seq = 1; seq <= perDevice; seq++) {
          expect(await w.coldChain.isRecorded(d.id, w.startedAt + seq)).to.equal(true);
        }
      }
      expect(await oracle.metrics.accepted.get().then((m) => m.values[0]?.value)).to.equal(total);
    } finally {
      await Promise.all(publishers.map((p) => p.close()));
      await oracle.stop();
    }
  });
});

function nextConnect(device: Publisher): Promise<void> {
  return new Promise((resolve) => device.client.once("connect", () => resolve()));
}
