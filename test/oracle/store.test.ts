/**
 * The oracle store's operations for retryable skips (oracle/store/store.ts) against a real SQLite file: a confirmed
 * batch whose item the contract skipped as `CustodyPending` puts that item back to pending, out of the batch, in
 * the same transaction as the others' outcomes (pending count included, also after a reopen of the file); and the
 * relay's held items can be left out of `pendingItems` / `oldestPendingAt`. The device cache keeps each device's
 * key validity and distrust time, and a store of an earlier version drops its cached devices once. Protocol v2:
 * pending items come device by device in observation order, a reading is stored once per (device, observation
 * time), and a store written before protocol v2 keeps its v1 items (never deleted) but retires the pending ones as
 * unrelayable evidence. Anchor copies held (`relay_after`) stay out of batches until their time, across a reopen,
 * count as held (not due, not stuck), and a store of before the hold gains the column with its items ordinary.
 */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";

import { expect } from "chai";

import { Store } from "../../oracle/store/store.js";
import type { NewAttempt, NewItem } from "../../oracle/store/store.js";
import { V1_SCHEMA, tempDir, v1Body } from "./support.js";

function item(deviceId: bigint, firstSequence: number, count = 1): NewItem {
  // One reading a minute: sequence n observed at T0 + 60 n (a window's samples too).
  const firstObservedAt = 1_700_000_000 + 60 * firstSequence;
  return {
    deviceId,
    firstSequence,
    count,
    kind: count === 1 ? "reading" : "window",
    curve: "secp256k1",
    firstObservedAt,
    intervalSeconds: count === 1 ? 0 : 60,
    previousObservedAt: firstObservedAt - 60,
    body: new Uint8Array([2, 2, 3, firstSequence & 0xff]),
    receivedAt: 1_700_000_000_000 + firstSequence,
  };
}

const attempt = (nonce: number): NewAttempt => ({
  nonce,
  maxFeePerGas: 2n,
  maxPriorityFeePerGas: 1n,
  gasLimit: 100_000n,
  rawTx: `0x${nonce.toString(16).padStart(2, "0")}`,
  hash: `0x${nonce.toString(16).padStart(64, "0")}`,
  createdAt: 0,
});

const ids = (store: Store, limit: number, exclude?: number[]): number[] =>
  store.pendingItems(limit, exclude).map((i) => i.id);

describe("oracle store: retryable skips", function () {
  it("confirms a batch with a CustodyPending item: recorded, skipped, and the retryable one back to pending", () => {
    const path = join(tempDir(), "oracle.db");
    const store = new Store(path);
    try {
      const [a, b, c] = store.insertItems([item(7n, 1), item(7n, 2, 3), item(8n, 1)]).map((r) => (r.ok ? r.id : -1));
      const batchId = store.createBatch([a, b, c] as number[], 5, attempt(0), 1);
      expect(store.pendingReadings()).to.equal(0);
      store.markMined(batchId, attempt(0).hash, 10, "0xblock", 21_000n);
      store.confirmBatch(batchId, [
        { itemId: a as number, skipReason: undefined },
        { itemId: b as number, skipReason: "CustodyPending", retry: true },
        { itemId: c as number, skipReason: "DuplicateSequence" },
      ]);
      expect(store.item(a as number)).to.include({ state: "recorded", batchId, skipReason: null });
      expect(store.item(b as number)).to.include({ state: "pending", batchId: null, skipReason: null });
      expect(store.item(c as number)).to.include({ state: "skipped", batchId, skipReason: "DuplicateSequence" });
      expect(store.batch(batchId)?.state).to.equal("confirmed");
      expect(store.pendingReadings()).to.equal(3);
      expect(store.countsByState()).to.deep.equal({ pending: 3, batched: 0, recorded: 1, skipped: 1, unrelayable: 0 });
      // A reorg of the batch leaves the item it gave back alone (it is no longer the batch's).
      store.reopenBatch(batchId);
      expect(store.item(b as number)).to.include({ state: "pending", batchId: null });
      expect(store.item(a as number)?.state).to.equal("batched");
      // Batched again in a later batch, as any pending item.
      const again = store.createBatch([b as number], 3, attempt(1), 2);
      expect(store.item(b as number)).to.include({ state: "batched", batchId: again });
      expect(store.pendingReadings()).to.equal(0);
    } finally {
      store.close();
    }
    const reopened = new Store(path);
    try {
      expect(reopened.pendingReadings()).to.equal(0);
    } finally {
      reopened.close();
    }
  });

  it("rolls the whole confirmation back when an outcome fails, pending count included", () => {
    const store = new Store(join(tempDir(), "oracle.db"));
    try {
      const [a, b] = store.insertItems([item(7n, 1), item(7n, 2)]).map((r) => (r.ok ? r.id : -1));
      const batchId = store.createBatch([a, b] as number[], 2, attempt(0), 1);
      expect(() =>
        store.confirmBatch(batchId, [
          { itemId: a as number, skipReason: "CustodyPending", retry: true },
          // A skip reason that is not a string: SQLite refuses the bind, the transaction rolls back.
          { itemId: b as number, skipReason: {} as unknown as string },
        ]),
      ).to.throw();
      expect(store.pendingReadings()).to.equal(0);
      expect(store.item(a as number)).to.include({ state: "batched", batchId });
      expect(store.batch(batchId)?.state).to.equal("sent");
    } finally {
      store.close();
    }
  });

  it("leaves held items out of pendingItems and oldestPendingAt", () => {
    const store = new Store(join(tempDir(), "oracle.db"));
    try {
      const [a, b, c] = store.insertItems([item(7n, 1), item(7n, 2), item(8n, 3)]).map((r) => (r.ok ? r.id : -1));
      expect(ids(store, 10)).to.deep.equal([a, b, c]);
      expect(ids(store, 1, [a as number])).to.deep.equal([b]);
      expect(ids(store, 10, [a as number, c as number])).to.deep.equal([b]);
      expect(ids(store, 10, [a as number, b as number, c as number])).to.deep.equal([]);
      expect(store.oldestPendingAt()).to.equal(1_700_000_000_001);
      expect(store.oldestPendingAt([a as number])).to.equal(1_700_000_000_002);
      expect(store.oldestPendingAt([a as number, b as number, c as number])).to.equal(undefined);
      // Held items still count as pending: they are stored and not yet on chain.
      expect(store.pendingReadings()).to.equal(3);
    } finally {
      store.close();
    }
  });
});

describe("oracle store: device cache of keys bound to time", function () {
  it("keeps the current key's validity and the distrust time, and drops the cached devices of an older store once", () => {
    const path = join(tempDir(), "old.db");
    // A store of before keys were bound to time: its devices table lacks key_valid_from and revoked_from.
    const old = new DatabaseSync(path);
    old.exec(
      `CREATE TABLE devices (device_id TEXT PRIMARY KEY, key_type INTEGER NOT NULL, interval_seconds INTEGER NOT NULL,
         revoked_at_block INTEGER NOT NULL, signer TEXT NOT NULL, qx TEXT NOT NULL, qy TEXT NOT NULL,
         fetched_at INTEGER NOT NULL);
       INSERT INTO devices VALUES ('7', 1, 60, 12, '0x01', '0x', '0x', 1);`,
    );
    old.close();
    let store = new Store(path, "NORMAL");
    // Revoked in block 12, but from when? Unknown: the row is gone, the device is read from the registry again.
    expect(store.device(7n)).to.equal(undefined);
    const device = {
      deviceId: 7n,
      keyType: 1,
      intervalSeconds: 60,
      revokedAtBlock: 12,
      signer: "0x01",
      qx: "0x",
      qy: "0x",
      keyValidFrom: 1_800_000_000,
      revokedFrom: 1_800_000_600,
      fetchedAt: 5,
    };
    store.putDevice(device);
    store.close();
    // Reopened (migrated already): nothing dropped.
    store = new Store(path, "NORMAL");
    try {
      expect(store.device(7n)).to.deep.equal(device);
    } finally {
      store.close();
    }
  });
});

describe("oracle store: protocol v2", function () {
  it("gives pending items device by device, the device whose oldest item arrived first first, each in observation order", () => {
    const store = new Store(join(tempDir(), "oracle.db"));
    try {
      // Arrival order: 8/5, 7/3, 8/4, 7/1, 7/2 (a shared subscription or a redelivery mixes them).
      const [a, b, c, d, e] = store
        .insertItems([item(8n, 5), item(7n, 3), item(8n, 4), item(7n, 1), item(7n, 2)])
        .map((r) => (r.ok ? r.id : -1));
      expect(ids(store, 10)).to.deep.equal([c, a, d, e, b]);
      // A limit cuts the last device's latest readings, never an earlier one.
      expect(ids(store, 4)).to.deep.equal([c, a, d, e]);
      expect(ids(store, 10, [c as number])).to.deep.equal([a, d, e, b]);
      expect(store.item(c as number)).to.include({
        protocol: 2,
        firstObservedAt: 1_700_000_240,
        lastObservedAt: 1_700_000_240,
        previousObservedAt: 1_700_000_180,
      });
    } finally {
      store.close();
    }
  });

  it("stores a reading once per device and observation time, whatever its sequence (a device may count from 0 again)", () => {
    const store = new Store(join(tempDir(), "oracle.db"));
    try {
      const window = item(7n, 10, 4); // observed at T0 + 600 .. T0 + 780
      expect(store.insertItems([window]).map((r) => r.ok)).to.deep.equal([true]);
      expect(store.item(1)).to.include({ firstObservedAt: 1_700_000_600, lastObservedAt: 1_700_000_780 });
      // Same sequence, another time: stored. Another sequence, a sample's time: a duplicate.
      const resetCounter = { ...item(7n, 10), firstObservedAt: 1_700_001_000, previousObservedAt: 0 };
      const sameTime = { ...item(7n, 99), firstObservedAt: 1_700_000_720 };
      expect(store.insertItems([resetCounter, sameTime]).map((r) => r.ok)).to.deep.equal([true, false]);
      expect(store.hasAnyObservation(7n, 1_700_000_660, 1, 0)).to.equal(true);
      expect(store.hasAnyObservation(7n, 1_700_000_630, 1, 0)).to.equal(false); // between two samples
      expect(store.hasAnyObservation(7n, 1_700_000_690, 3, 30)).to.equal(true); // 690, 720, 750: 720 is a sample
      expect(store.hasAnyObservation(7n, 1_700_000_790, 3, 60)).to.equal(false);
      expect(store.hasAnyObservation(8n, 1_700_000_600, 1, 0)).to.equal(false);
    } finally {
      store.close();
    }
  });

  it("keeps a v1 store's items after the migration and retires the pending ones as unrelayable evidence, never deleting them", () => {
    const path = join(tempDir(), "v1.db");
    const old = new DatabaseSync(path);
    old.exec(V1_SCHEMA);
    const insert = old.prepare(
      "INSERT INTO items (device_id, first_seq, count, kind, curve, body, received_at, state, batch_id, skip_reason) VALUES ('7', ?, ?, ?, 'secp256k1', ?, 1, ?, ?, ?)",
    );
    insert.run(1, 1, "reading", v1Body("reading", 1, 1_700_000_060), "recorded", 1, null);
    insert.run(2, 1, "reading", v1Body("reading", 2, 1_700_000_120), "pending", null, null);
    insert.run(3, 4, "window", v1Body("window", 3, 1_700_000_180, 4), "pending", null, null);
    insert.run(7, 1, "reading", v1Body("reading", 7, 1_700_000_420), "skipped", 1, "StaleSequence");
    old.exec(
      `INSERT INTO readings VALUES ('7', 1, 1), ('7', 2, 2), ('7', 3, 3), ('7', 4, 3), ('7', 5, 3), ('7', 6, 3), ('7', 7, 4);
       INSERT INTO batches (state, nonce, reading_count, created_at) VALUES ('confirmed', 0, 2, 1);`,
    );
    old.close();

    let store = new Store(path, "NORMAL");
    try {
      expect(store.pendingReadings(), "v1 readings are pending until the relay retires them").to.equal(5);
      expect(store.item(3)).to.include({
        protocol: 1,
        state: "pending",
        firstObservedAt: 1_700_000_180,
        lastObservedAt: 1_700_000_360,
        previousObservedAt: null,
      });
      expect(store.item(1)).to.include({ protocol: 1, state: "recorded", firstObservedAt: 1_700_000_060 });
      // Never batched: pendingItems gives protocol v2 items only.
      expect(ids(store, 10)).to.deep.equal([]);
      expect(store.oldestPendingAt()).to.equal(undefined);

      const retired = store.retireV1Pending();
      expect(retired.map((i) => i.id)).to.deep.equal([2, 3]);
      expect(store.pendingReadings()).to.equal(0);
      expect(store.item(2)).to.include({ state: "unrelayable", skipReason: "ProtocolV1" });
      expect(store.countsByState()).to.deep.equal({ pending: 0, batched: 0, recorded: 1, skipped: 1, unrelayable: 5 });
      expect([...store.unrelayableReadings()]).to.deep.equal([["7", 5]]);
      expect(store.retireV1Pending()).to.deep.equal([]);

      // Protocol v2 readings of the same device and sequences are stored (the v1 table no longer decides).
      const [v2] = store.insertItems([item(7n, 2)]);
      expect(v2?.ok).to.equal(true);
      expect(ids(store, 10)).to.have.length(1);
    } finally {
      store.close();
    }
    // Reopened (migrated already): the v1 items are all still there, bodies included.
    store = new Store(path, "NORMAL");
    try {
      expect(store.countsByState()).to.deep.equal({ pending: 1, batched: 0, recorded: 1, skipped: 1, unrelayable: 5 });
      expect(store.item(3)?.body).to.deep.equal(v1Body("window", 3, 1_700_000_180, 4));
      expect(store.item(4)).to.include({ protocol: 1, state: "skipped", skipReason: "StaleSequence" });
    } finally {
      store.close();
    }
  });
});

describe("oracle store: anchor copies held (mqtt.anchorHoldMs)", function () {
  // Items of `item` arrive at 1_700_000_000_000 + sequence; the anchor copies are held until HOLD_END.
  const HOLD_END = 1_700_000_030_000;
  const held = (deviceId: bigint, firstSequence: number): NewItem => ({
    ...item(deviceId, firstSequence),
    relayAfter: HOLD_END,
  });

  it("leaves an anchor copy out of batches until its relay_after, across a reopen, but not the device's later items", () => {
    const path = join(tempDir(), "oracle.db");
    let store = new Store(path);
    // Device 7: an ordinary reading, an anchor copy, then an ordinary reading naming it; device 8: an anchor copy.
    const [a, b, c, d] = store
      .insertItems([item(7n, 1), held(7n, 2), held(8n, 3), item(7n, 4)])
      .map((r) => (r.ok ? r.id : -1)) as [number, number, number, number];
    try {
      expect(store.item(b)?.relayAfter).to.equal(HOLD_END);
      expect(store.item(a)?.relayAfter).to.equal(null);
      expect(store.pendingReadings(), "held copies are stored and pending").to.equal(4);
    } finally {
      store.close();
    }
    store = new Store(path);
    try {
      const before = HOLD_END - 1;
      // The later item of device 7 is returned: the pre-flight judges its predecessor on chain.
      expect(store.pendingItems(10, [], before).map((i) => i.id)).to.deep.equal([a, d]);
      expect(store.anchorHeldReadings(before)).to.equal(2);
      expect(store.oldestPendingAt([], before)).to.equal(1_700_000_000_001);
      expect(store.oldestPendingAt([a, d], before), "only held copies left: nothing due").to.equal(undefined);
      // Health: the oldest reading not on chain is the ordinary one; the copies count from the end of their hold.
      expect(store.oldestUnrecordedAt()).to.equal(1_700_000_000_001);
      store.skipPending([a, d], "test");
      expect(store.oldestUnrecordedAt(), "within their hold: not waiting yet").to.equal(HOLD_END);

      expect(store.pendingItems(10, [], HOLD_END).map((i) => i.id)).to.deep.equal([b, c]);
      expect(store.anchorHeldReadings(HOLD_END)).to.equal(0);
      expect(store.oldestPendingAt([], HOLD_END + 5)).to.equal(HOLD_END);
    } finally {
      store.close();
    }
  });

  it("ends a hold when a share member's copy of the reading comes (the group gave the message to this instance)", () => {
    const store = new Store(join(tempDir(), "oracle.db"));
    try {
      const [b, c] = store.insertItems([held(7n, 2), held(8n, 3)]).map((r) => (r.ok ? r.id : -1)) as [number, number];
      const at = (sequence: number): number => 1_700_000_000 + 60 * sequence;
      expect(store.holdsAnchorCopy(7n, at(2), at(2))).to.equal(true);
      expect(store.holdsAnchorCopy(7n, at(3), at(3)), "no reading of device 7 then").to.equal(false);
      expect(store.releaseAnchorCopies(7n, at(2), at(2))).to.equal(1);
      expect(store.holdsAnchorCopy(7n, at(2), at(2))).to.equal(false);
      expect(store.releaseAnchorCopies(7n, at(2), at(2)), "released once").to.equal(0);
      expect(store.pendingItems(10, [], HOLD_END - 1).map((i) => i.id)).to.deep.equal([b]);
      expect(store.anchorHeldReadings(HOLD_END - 1)).to.equal(1);
      expect(store.item(c)?.relayAfter).to.equal(HOLD_END);
    } finally {
      store.close();
    }
  });

  it("adds relay_after to a store of before the anchor hold, its items ordinary (NULL)", () => {
    const path = join(tempDir(), "before-hold.db");
    // A store as the previous version wrote it: the items table without relay_after, one item pending.
    new Store(path).close();
    const db = new DatabaseSync(path);
    db.exec("DROP INDEX items_relay_after; ALTER TABLE items DROP COLUMN relay_after;");
    db.prepare(
      `INSERT INTO items (device_id, first_seq, count, kind, curve, body, received_at, state, protocol,
         first_observed_at, last_observed_at, previous_observed_at)
       VALUES ('7', 1, 1, 'reading', 'secp256k1', x'02020301', 1700000000001, 'pending', 2, 1700000060, 1700000060, 1700000000)`,
    ).run();
    db.prepare("INSERT INTO observations (device_id, observed_at, item_id) VALUES ('7', 1700000060, 1)").run();
    const columns = (): string[] =>
      (db.prepare("PRAGMA table_info(items)").all() as { name?: unknown }[]).map((c) => String(c.name));
    expect(columns()).to.not.include("relay_after");
    db.close();

    const store = new Store(path);
    try {
      expect(store.item(1)).to.include({ state: "pending", relayAfter: null });
      expect(store.pendingItems(10).map((i) => i.id)).to.deep.equal([1]);
      expect(store.anchorHeldReadings(0)).to.equal(0);
      // New anchor copies are held in the migrated file.
      const [r] = store.insertItems([held(7n, 2)]);
      expect(r?.ok).to.equal(true);
      expect(store.pendingItems(10, [], HOLD_END - 1).map((i) => i.id)).to.deep.equal([1]);
    } finally {
      store.close();
    }
    const check = new DatabaseSync(path);
    try {
      const names = (check.prepare("PRAGMA table_info(items)").all() as { name?: unknown }[]).map((c) =>
        String(c.name),
      );
      expect(names).to.include("relay_after");
    } finally {
      check.close();
    }
  });
});
