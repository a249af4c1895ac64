/**
 * Upgrading to protocol v2 on an existing store (docs/operations.md, section 11), against a real node and broker:
 * the oracle opens a store written before protocol v2, keeps every v1 item, and retires the pending ones as
 * unrelayable evidence (state `unrelayable`, skip reason `ProtocolV1`) with one error line and a metric, never
 * sending them to the v2 contract (it could not verify them); v2 readings of the same device are relayed as usual.
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";

import { expect } from "chai";

import {
  Publisher,
  V1_SCHEMA,
  deployWorld,
  publishStored,
  reading,
  startAedes,
  startChain,
  startLoggedOracle,
  storedItem,
  tempDir,
  v1Body,
  waitFor,
} from "./support.js";
import type { AedesHandle, Device, NodeHandle } from "./support.js";

/** pino's level number of `error`. */
const ERROR = 50;

describe("oracle: upgrading a store of protocol v1", function () {
  this.timeout(120_000);
  let node: NodeHandle;
  let broker: AedesHandle;

  before(async () => {
    [node, broker] = await Promise.all([startChain(), startAedes()]);
  });
  after(async () => {
    await Promise.all([node?.stop(), broker?.stop()]);
  });

  it("keeps the v1 items, reports the pending ones as unrelayable evidence without sending them, and relays v2 readings", async () => {
    const w = await deployWorld(node, 1, 6000n);
    const k1 = w.devices[0] as Device;
    // A store the v1 oracle left behind: one reading recorded, a reading and a 3-sample window still pending.
    const path = join(tempDir(), "oracle.db");
    const old = new DatabaseSync(path);
    old.exec(V1_SCHEMA);
    const insert = old.prepare(
      "INSERT INTO items (device_id, first_seq, count, kind, curve, body, received_at, state) VALUES (?, ?, ?, ?, 'secp256k1', ?, 1, ?)",
    );
    const t = w.startedAt - 3600;
    insert.run(k1.id.toString(), 1, 1, "reading", v1Body("reading", 1, t, 1, k1.id), "recorded");
    insert.run(k1.id.toString(), 2, 1, "reading", v1Body("reading", 2, t + 60, 1, k1.id), "pending");
    insert.run(k1.id.toString(), 3, 3, "window", v1Body("window", 3, t + 120, 3, k1.id), "pending");
    old.exec(`INSERT INTO readings VALUES ('${k1.id}', 1, 1), ('${k1.id}', 2, 2), ('${k1.id}', 3, 3), ('${k1.id}', 4, 3),
      ('${k1.id}', 5, 3);`);
    old.close();

    const { oracle, address, logs } = await startLoggedOracle(w, node, broker.url, { store: { path } });
    const device = await Publisher.connect(broker.url);
    try {
      await waitFor("the v1 items retired", () => oracle.store.countsByState().unrelayable === 4);
      expect(oracle.store.countsByState()).to.deep.equal({
        pending: 0,
        batched: 0,
        recorded: 1,
        skipped: 0,
        unrelayable: 4,
      });
      expect(storedItem(oracle, 2)).to.include({ protocol: 1, state: "unrelayable", skipReason: "ProtocolV1" });
      expect(storedItem(oracle, 3)).to.include({ firstObservedAt: t + 120, lastObservedAt: t + 240 });
      expect(storedItem(oracle, 3).body, "the signed body is kept").to.deep.equal(
        v1Body("window", 3, t + 120, 3, k1.id),
      );
      const lines = logs.filter((l) => l.level === ERROR && l.reason === "ProtocolV1");
      expect(lines, "one error line").to.have.length(1);
      expect(lines[0]?.msg)
        .to.include("4 readings of protocol v1")
        .and.include("cannot be relayed")
        .and.include("kept in the store as evidence");
      expect(lines[0]).to.deep.include({ items: 2, readings: 4, devices: [k1.id.toString()] });
      const unrelayable = await oracle.metrics.unrelayableReadings.get();
      expect(unrelayable.values.find((v) => v.labels.reason === "ProtocolV1")?.value).to.equal(4);
      const scrape = await oracle.metrics.registry.getSingleMetricAsString("coldchain_oracle_unrelayable_readings");
      expect(scrape).to.match(/ 4$/m);
      expect(await node.provider.getTransactionCount(address, "latest"), "nothing sent").to.equal(0);

      // The device on v2 firmware: its readings are relayed as usual, the same sequence numbers included.
      const [id] = await publishStored(oracle, device, [reading(w, k1, 2, w.startedAt + 1)]);
      await waitFor("the v2 reading recorded", () => storedItem(oracle, id).state === "recorded");
      expect(await w.coldChain.isRecorded(k1.id, w.startedAt + 1)).to.equal(true);
      expect(oracle.store.countsByState()).to.include({ recorded: 2, unrelayable: 4 });
      expect(
        logs.filter((l) => l.reason === "ProtocolV1"),
        "reported once",
      ).to.have.length(1);
    } finally {
      await device.close();
      await oracle.stop();
    }
  });
});
