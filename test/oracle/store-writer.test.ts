/**
 * The intake's store writer thread (oracle/store/writer.ts) against a real SQLite file: commits are visible to
 * the main connection when the promise resolves, duplicates (also across groups) are refused, the main store's
 * pending count follows, and the group commit runs one asynchronous commit at a time, grouping what arrives
 * meanwhile and resolving each caller only after its own commit.
 */
import { join } from "node:path";

import { expect } from "chai";

import { GroupCommit } from "../../oracle/verification/judge.js";
import { Store } from "../../oracle/store/store.js";
import type { InsertResult, NewItem } from "../../oracle/store/store.js";
import { StoreWriter } from "../../oracle/store/writer.js";
import { tempDir } from "./support.js";

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

describe("oracle store writer thread", function () {
  this.timeout(30_000);

  it("commits on its own connection: visible to the main store, duplicates refused, pending counted", async () => {
    const path = join(tempDir(), "oracle.db");
    const store = new Store(path);
    const writer = new StoreWriter(path, "FULL", store);
    try {
      const first = await writer.insertItems([item(7n, 1), item(7n, 2, 3), item(8n, 1)]);
      expect(first.map((r) => r.ok)).to.deep.equal([true, true, true]);
      expect(store.pendingReadings()).to.equal(5);
      // The window's last sample (sequence 4's time), read on the main connection.
      expect(store.hasAnyObservation(7n, 1_700_000_000 + 60 * 4, 1, 0)).to.equal(true);
      expect(store.pendingItems(10).map((i) => [i.deviceId, i.firstSequence, i.count])).to.deep.equal([
        [7n, 1, 1],
        [7n, 2, 3],
        [8n, 1, 1],
      ]);
      // Duplicates: of a stored observation time, and of an earlier item in the same group.
      const [a, b] = await Promise.all([
        writer.insertItems([item(7n, 3), item(9n, 1), item(9n, 1)]),
        writer.insertItems([item(8n, 1), item(8n, 2)]),
      ]);
      expect(a?.map((r) => r.ok)).to.deep.equal([false, true, false]);
      expect(b?.map((r) => r.ok)).to.deep.equal([false, true]);
      expect(store.pendingReadings()).to.equal(7);
      expect(store.countsByState().pending).to.equal(7);
      // The main connection still writes (the relay's transactions) between the writer's commits.
      store.skipPending([store.pendingItems(1)[0]?.id ?? -1], "test");
      expect(store.pendingReadings()).to.equal(6);
      expect((await writer.insertItems([item(10n, 1)]))[0]?.ok).to.equal(true);
      expect(store.countsByState()).to.deep.equal({ pending: 7, batched: 0, recorded: 0, skipped: 1, unrelayable: 0 });
    } finally {
      await writer.close();
      store.close();
    }
    await writer.insertItems([item(11n, 1)]).then(
      () => expect.fail("a closed writer must refuse inserts"),
      (error: unknown) => expect(String(error)).to.match(/closed/),
    );
    const reopened = new Store(path);
    expect(reopened.pendingReadings()).to.equal(7); // committed for good
    reopened.close();
  });

  it("group commit with an asynchronous writer: one commit at a time, the next group formed meanwhile", async () => {
    const calls: number[][] = [];
    let release: (() => void) | undefined;
    const slowInsert = (items: readonly NewItem[]): Promise<InsertResult[]> => {
      calls.push(items.map((i) => i.firstSequence));
      return new Promise((resolve) => {
        release = () => resolve(items.map((_, k) => ({ ok: true, id: calls.length * 100 + k })));
      });
    };
    const commits = new GroupCommit(slowInsert, () => 1);
    const settled: number[] = [];
    const first = commits.insert(item(1n, 1)).then((r) => settled.push(r.ok ? r.id : -1));
    await new Promise((r) => setImmediate(r));
    expect(calls).to.deep.equal([[1]]);
    // Arriving while the first commit runs: held, then committed together right after it.
    const more = [2, 3, 4].map((seq) => commits.insert(item(1n, seq)).then((r) => settled.push(r.ok ? r.id : -1)));
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).to.deep.equal([[1]]);
    expect(settled).to.deep.equal([]);
    release?.();
    await first;
    await new Promise((r) => setTimeout(r, 5));
    expect(calls).to.deep.equal([[1], [2, 3, 4]]);
    expect(settled).to.deep.equal([100]); // the second group is not acknowledged before its commit
    release?.();
    await Promise.all(more);
    expect(settled).to.deep.equal([100, 200, 201, 202]);
    expect(commits.stats).to.deep.equal({ commits: 2, items: 4, largest: 3 });
  });

  it("a failed asynchronous commit fails its whole group and the next group still commits", async () => {
    let fail = true;
    const commits = new GroupCommit(async (items) => {
      await new Promise((r) => setTimeout(r, 5));
      if (fail) throw new Error("disk full");
      return items.map((_, k) => ({ ok: true as const, id: k + 1 }));
    });
    const group = await Promise.allSettled([commits.insert(item(1n, 1)), commits.insert(item(1n, 2))]);
    expect(group.map((g) => g.status)).to.deep.equal(["rejected", "rejected"]);
    fail = false;
    expect((await commits.insert(item(1n, 3))).ok).to.equal(true);
  });
});
