/**
 * Retained messages on the readings topics (issue 16, item 8; oracle/intake/retained.ts). Devices publish their readings
 * with the retain flag; the broker sends the retained ones again to every new subscription: on MQTT 3.1.1 (aedes)
 * every time the oracle subscribes, after each restart; on MQTT 5 (Mosquitto) only to a new subscription, since
 * the oracle subscribes with retain handling 1.
 *
 * Asserted, against real brokers and a real chain: readings delivered again after restarts are stored once and
 * recorded once (the store's one row per device and observation time), counted as replays and not as received
 * duplicates or dropped, logged at debug only, and acknowledged (not delivered yet again); an empty retained
 * message (how a retained message is cleared) is counted as a clear, not as `malformed`, and after it nothing is
 * delivered again.
 */
import { expect } from "chai";

import { Oracle } from "../../oracle/oracle.js";
import { encodeMqttPayload, mqttReadingsTopic } from "../../sdk/protocol/index.js";
import {
  Publisher,
  deployWorld,
  fundedOracleKey,
  mosquittoAvailable,
  oracleConfig,
  reading,
  startAedes,
  startChain,
  startMosquitto,
  testLogger,
  waitFor,
} from "./support.js";
import type { BrokerHandle, NodeHandle, World } from "./support.js";

async function counter(oracle: Oracle, name: "retainedReplays" | "retainedClears" | "accepted" | "received") {
  return (await oracle.metrics[name].get()).values[0]?.value ?? 0;
}

async function dropped(oracle: Oracle): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await oracle.metrics.dropped.get()).values) if (v.value > 0) out[String(v.labels.reason)] = v.value;
  return out;
}

/** Publishes each device's reading `seq` with the retain flag (QoS 1). */
async function publishRetained(w: World, device: Publisher, seq: number): Promise<void> {
  for (const d of w.devices) {
    const item = reading(w, d, seq, w.startedAt + seq * 60, 420);
    await device.client.publishAsync(mqttReadingsTopic(d.id), Buffer.from(encodeMqttPayload(item, "binary")), {
      qos: 1,
      retain: true,
    });
  }
}

/** Clears the retained message of each device's topic (a zero-length retained message). */
async function clearRetained(w: World, device: Publisher): Promise<void> {
  for (const d of w.devices) {
    await device.client.publishAsync(mqttReadingsTopic(d.id), Buffer.alloc(0), { qos: 1, retain: true });
  }
}

interface Scenario {
  readonly name: string;
  readonly mqtt5: boolean;
  start(): Promise<BrokerHandle>;
}

function scenarios(): Scenario[] {
  const out: Scenario[] = [
    { name: "aedes (MQTT 3.1.1: retained messages on every subscription)", mqtt5: false, start: () => startAedes() },
  ];
  if (mosquittoAvailable()) {
    out.push({ name: "Mosquitto (MQTT 5, retain handling 1)", mqtt5: true, start: startMosquitto });
  } else {
    console.warn("    (Mosquitto not installed: the MQTT 5 case is skipped)");
  }
  return out;
}

describe("oracle: retained messages", function () {
  this.timeout(180_000);
  let node: NodeHandle;

  before(async () => {
    node = await startChain();
  });
  after(async () => {
    await node?.stop();
  });

  for (const [i, scenario] of scenarios().entries()) {
    it(`${scenario.name}: replays after restarts stored and recorded once, counted as replays; a clear is not malformed`, async () => {
      const broker = await scenario.start();
      const oracles: Oracle[] = [];
      try {
        const w = await deployWorld(node, 2, 8800n + BigInt(i) * 100n);
        const config = oracleConfig(w, node, broker.url, { batch: { maxAgeMs: 0 } });
        const key = await fundedOracleKey(node);
        const start = async (clientId?: string): Promise<Oracle> => {
          const mqtt = clientId === undefined ? config.mqtt : { ...config.mqtt, clientId };
          const oracle = new Oracle(
            { ...config, mqtt },
            { privateKey: key, mqttPassword: undefined },
            {
              log: testLogger(),
            },
          );
          oracles.push(oracle);
          await oracle.start();
          return oracle;
        };
        const recorded = async (): Promise<number> => Number((await w.coldChain.condition(w.shipmentId)).readingCount);
        const device = await Publisher.connect(broker.url);
        try {
          // 1. Readings published retained: stored and recorded once.
          let oracle = await start();
          await publishRetained(w, device, 1);
          await waitFor("the retained readings recorded", async () => (await recorded()) === 2);
          expect(await counter(oracle, "accepted")).to.equal(2);
          expect(await counter(oracle, "retainedReplays")).to.equal(0);

          // 2. Restarted twice with the same session: MQTT 3.1.1 sends the retained readings again at each
          //    subscription (replays); MQTT 5 with retain handling 1 does not.
          for (let restart = 0; restart < 2; restart++) {
            await oracle.stop();
            oracle = await start();
            await new Promise((resolve) => setTimeout(resolve, 1_000));
            expect(await counter(oracle, "retainedReplays")).to.equal(scenario.mqtt5 ? 0 : 2);
            expect(await counter(oracle, "accepted")).to.equal(0);
            expect(await dropped(oracle)).to.deep.equal({});
          }
          // 3. A new session (another client id) on the same store: the broker sends the retained readings to the
          //    new subscription, on either protocol; the store already has them.
          await oracle.stop();
          oracle = await start(`${config.oracleId}-new-session`);
          await waitFor(
            "the retained readings delivered again",
            async () => (await counter(oracle, "retainedReplays")) === 2,
          );
          expect(await counter(oracle, "accepted")).to.equal(0);
          expect(await dropped(oracle)).to.deep.equal({});
          expect(oracle.store.countsByState()).to.include({ recorded: 2, pending: 0, skipped: 0 });
          expect(await recorded()).to.equal(2);

          // 4. The retained messages cleared (zero-length, retained): counted as clears, not malformed; after a
          //    restart nothing retained is delivered any more.
          await clearRetained(w, device);
          await waitFor("the clears counted", async () => (await counter(oracle, "retainedClears")) === 2);
          expect(await dropped(oracle)).to.deep.equal({});
          await oracle.stop();
          oracle = await start(`${config.oracleId}-after-clear`);
          await new Promise((resolve) => setTimeout(resolve, 1_000));
          expect(await counter(oracle, "received")).to.equal(0);
          // New readings still flow; nothing was recorded twice.
          await publishRetained(w, device, 2);
          await waitFor("the next readings recorded", async () => (await recorded()) === 4);
          await waitFor("the store's confirmation", () => oracle.store.countsByState().recorded === 4);
          expect(oracle.store.countsByState()).to.include({ recorded: 4, pending: 0, skipped: 0 });
        } finally {
          await device.close();
        }
      } finally {
        for (const o of oracles) await o.stop();
        await broker.stop();
      }
    });
  }
});
