/**
 * End to end: devices publish over a real broker (embedded aedes, TCP), the oracle verifies, stores, batches
 * and submits to Hardhat's JSON-RPC node; the readings land on-chain and the shipment's condition counts them.
 */
import { once } from "node:events";

import { expect } from "chai";

import { Oracle } from "../../oracle/oracle.js";
import {
  Publisher,
  deployWorld,
  fundedOracleKey,
  oracleConfig,
  reading,
  startAedes,
  startChain,
  testLogger,
  window,
  onchainReadingCount,
} from "./support.js";
import type { BrokerHandle, NodeHandle, World } from "./support.js";

describe("oracle end to end (aedes + Hardhat chain over JSON-RPC)", function () {
  this.timeout(120_000);
  let node: NodeHandle;
  let broker: BrokerHandle;

  before(async () => {
    [node, broker] = await Promise.all([startChain(), startAedes()]);
  });
  after(async () => {
    await Promise.all([node?.stop(), broker?.stop()]);
  });

  it("relays single readings and windows, JSON and binary, of both curves, and they land on-chain", async () => {
    const w: World = await deployWorld(node, 2);
    const oracle = new Oracle(
      oracleConfig(w, node, broker.url),
      { privateKey: await fundedOracleKey(node), mqttPassword: undefined },
      { log: testLogger() },
    );
    await oracle.start();
    const device = await Publisher.connect(broker.url);
    try {
      const [k1, r1] = w.devices as [World["devices"][0], World["devices"][0]];
      const t = w.startedAt + 1;
      const items = [
        reading(w, k1, 1, t, 500),
        reading(w, r1, 1, t, 510),
        reading(w, k1, 2, t + 60, 520),
        window(w, r1, 2, t + 60, [400, 410, 420, 430]),
        window(w, k1, 3, t + 120, [300, 310]),
      ];
      const confirmed = new Promise<void>((resolve) => {
        let recorded = 0;
        oracle.relay.events.on("batch-confirmed", (e) => {
          recorded += e.recorded;
          if (recorded === 9) resolve();
        });
      });
      for (const [i, item] of items.entries()) await device.publish(item, i % 2 === 0 ? "json" : "binary");
      await confirmed;
      expect(await onchainReadingCount(w)).to.equal(9);
      expect(oracle.store.countsByState()).to.deep.equal({
        pending: 0,
        batched: 0,
        recorded: 9,
        skipped: 0,
        unrelayable: 0,
      });
      const metrics = await oracle.metrics.registry.getSingleMetricAsString("coldchain_oracle_accepted_readings_total");
      expect(metrics).to.match(/ 9$/m);
      const health = await fetch(`http://127.0.0.1:${oracle.httpPort}/healthz`);
      expect(health.status).to.equal(200);
      const scrape = await (await fetch(`http://127.0.0.1:${oracle.httpPort}/metrics`)).text();
      expect(scrape).to.include("coldchain_oracle_recorded_readings_total");
    } finally {
      await device.close();
      await oracle.stop();
    }
  });

  it("stores a reading the contract skips with the contract's reason (unbound device)", async () => {
    const w = await deployWorld(node, 1, 2000n);
    const oracle = new Oracle(
      oracleConfig(w, node, broker.url),
      { privateKey: await fundedOracleKey(node), mqttPassword: undefined },
      { log: testLogger() },
    );
    await oracle.start();
    const device = await Publisher.connect(broker.url);
    try {
      const confirmed = once(oracle.relay.events, "batch-confirmed");
      await device.publish(reading(w, w.unboundDevice, 1, w.startedAt + 1));
      const [event] = (await confirmed) as [{ recorded: number; skipped: number }];
      expect(event).to.include({ recorded: 0, skipped: 1 });
      expect(oracle.store.countsByState().skipped).to.equal(1);
      expect(
        await oracle.metrics.registry.getSingleMetricAsString("coldchain_oracle_skipped_readings_total"),
      ).to.include('reason="UnboundDevice"');
    } finally {
      await device.close();
      await oracle.stop();
    }
  });
});
