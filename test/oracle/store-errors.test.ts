/**
 * SQLite's failures reported as themselves (oracle/store/store.ts `storeError`), at the store level.
 *
 * "Full" here is SQLite's own genuine SQLITE_FULL path: `PRAGMA max_page_count` (the store's `maxSizeMb`), where
 * the pager refuses a new page exactly as it does when the disk refuses one, and SQLite rolls the transaction back
 * by itself. A real full disk (a tmpfs filled to its last byte) is used as well when this process may mount one
 * (root); test/oracle/disk-full.test.ts drills it with a running oracle process.
 *
 * Asserted: the error is STORE_FULL naming the file and SQLite's "database or disk is full" (never "cannot rollback
 * - no transaction is active"), nothing of the failed transaction is left (rows, pending count), the store reads
 * and writes again once there is room, the writer thread's failure arrives as the same StoreError, and a store
 * that cannot even be opened on a full disk (SQLite then says "disk I/O error") is reported as a full disk.
 */
import { spawnSync } from "node:child_process";
import { closeSync, openSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";

import { expect } from "chai";

import { StoreError } from "../../oracle/errors.js";
import { Store, sqliteCodeName, storeError } from "../../oracle/store/store.js";
import type { NewItem } from "../../oracle/store/store.js";
import { StoreWriter } from "../../oracle/store/writer.js";
import { tempDir } from "./support.js";

function item(deviceId: bigint, n: number, bodyBytes = 2_000): NewItem {
  const firstObservedAt = 1_700_000_000 + 60 * n;
  return {
    deviceId,
    firstSequence: n,
    count: 1,
    kind: "reading",
    curve: "secp256k1",
    firstObservedAt,
    intervalSeconds: 0,
    previousObservedAt: firstObservedAt - 60,
    body: new Uint8Array(bodyBytes).fill(n & 0xff),
    receivedAt: 1_700_000_000_000 + n,
  };
}

/** Inserts groups of items until the store refuses one; returns the error and how many groups went in. */
function fillUntilRefused(store: Store, deviceId: bigint): { error: unknown; groups: number } {
  for (let g = 0; g < 10_000; g++) {
    try {
      store.insertItems(Array.from({ length: 10 }, (_, i) => item(deviceId, g * 10 + i)));
    } catch (error) {
      return { error, groups: g };
    }
  }
  throw new Error("the store never became full");
}

describe("oracle store: SQLite's failures as themselves", function () {
  this.timeout(60_000);

  it("a full store (SQLite's max_page_count) is STORE_FULL naming the file, not a failed rollback, and leaves nothing behind", () => {
    const path = join(tempDir(), "oracle.db");
    const store = new Store(path, "NORMAL", 0.5);
    try {
      const { error, groups } = fillUntilRefused(store, 7n);
      expect(groups).to.be.greaterThan(0);
      expect(error).to.be.instanceOf(StoreError);
      const e = error as StoreError;
      expect(e.code).to.equal("STORE_FULL");
      expect(e.fault).to.equal("full");
      expect(e.sqliteCode).to.equal("SQLITE_FULL");
      expect(e.message).to.match(/^STORE_FULL: the store .*oracle\.db cannot write: it reached its size limit/);
      expect(e.message).to.include(path);
      expect(e.message).to.include('"database or disk is full"');
      expect(e.message).to.include("store.maxSizeMb = 0.5");
      expect(e.message).not.to.include("rollback");
      // The refused group left nothing: rows and the pending count are those of the groups that went in.
      expect(store.countsByState().pending).to.equal(groups * 10);
      expect(store.pendingReadings()).to.equal(groups * 10);
      // Reads go on; a write that needs no new page still goes in (the store is not wedged in a transaction).
      expect(store.pendingItems(1)).to.have.length(1);
      store.setMeta("after", "full");
      expect(store.getMeta("after")).to.equal("full");
    } finally {
      store.close();
    }
    // With room again (the limit lifted: a new connection without it), everything was kept and writes go on.
    const roomy = new Store(path, "NORMAL");
    try {
      const before = roomy.countsByState().pending;
      expect(roomy.insertItems([item(7n, 99_999)])).to.deep.equal([{ ok: true, id: before + 1 }]);
    } finally {
      roomy.close();
    }
  });

  it("the writer thread's failure comes back as the same StoreError (the intake reports the real cause)", async () => {
    const path = join(tempDir(), "oracle.db");
    const store = new Store(path, "NORMAL");
    const writer = new StoreWriter(path, "NORMAL", store, undefined, 0.5);
    try {
      let refused: unknown;
      for (let g = 0; g < 10_000 && refused === undefined; g++) {
        await writer
          .insertItems(Array.from({ length: 10 }, (_, i) => item(8n, g * 10 + i)))
          .catch((error: unknown) => (refused = error));
      }
      expect(refused).to.be.instanceOf(StoreError);
      expect((refused as StoreError).code).to.equal("STORE_FULL");
      expect((refused as StoreError).message).to.include(path);
      expect((refused as StoreError).message).to.include("database or disk is full");
      expect(store.pendingReadings()).to.equal(store.countsByState().pending);
    } finally {
      await writer.close();
      store.close();
    }
  });

  it("names SQLite's result codes and passes the oracle's own errors through", () => {
    expect(sqliteCodeName(13)).to.equal("SQLITE_FULL");
    expect(sqliteCodeName(4874)).to.equal("SQLITE_IOERR_SHMSIZE");
    expect(sqliteCodeName(778)).to.equal("SQLITE_IOERR_WRITE");
    expect(sqliteCodeName(5)).to.equal("SQLITE_BUSY");
    const own = new Error("item 3 is no longer pending");
    expect(storeError(own, "/x/oracle.db", "write")).to.equal(own);
    const busy = storeError({ errcode: 5, errstr: "database is locked" }, "/x/oracle.db", "write") as StoreError;
    expect(busy.code).to.equal("STORE_FAILED");
    expect(busy.fault).to.equal("busy");
    expect(busy.message).to.include('"database is locked", SQLITE_BUSY');
  });

  it("a real full disk (a tmpfs filled to its last byte; root only): writes are STORE_FULL, and a store that cannot even be opened is reported as a full disk", function () {
    const dir = tempDir("coldchain-fulldisk-");
    if (spawnSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", dir], { stdio: "ignore" }).status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      console.warn("    SKIPPED: cannot mount a tmpfs here (not root); the max_page_count tests cover SQLITE_FULL");
      this.skip();
    }
    try {
      const path = join(dir, "oracle.db");
      const store = new Store(path, "NORMAL");
      const { error } = fillUntilRefused(store, 9n);
      expect((error as StoreError).code).to.equal("STORE_FULL");
      expect((error as StoreError).message).to.include("its disk is full");
      expect((error as StoreError).message).to.include("0 B free on its filesystem");
      store.close();
      // A store closed cleanly (its -wal and -shm gone), then the disk filled: opening needs new files.
      unlinkSync(path);
      for (const suffix of ["-wal", "-shm"]) rmSync(`${path}${suffix}`, { force: true });
      const other = join(dir, "other.db");
      new Store(other, "NORMAL").close();
      const filler = join(dir, "filler");
      const fd = openSync(filler, "w");
      for (const size of [1 << 16, 4096, 1]) {
        for (;;) {
          try {
            writeSync(fd, Buffer.alloc(size));
          } catch {
            break;
          }
        }
      }
      closeSync(fd);
      let opened: unknown;
      try {
        new Store(other, "NORMAL").close();
      } catch (e) {
        opened = e;
      }
      expect(opened).to.be.instanceOf(StoreError);
      expect((opened as StoreError).code).to.equal("STORE_FULL");
      expect((opened as StoreError).message).to.match(
        /cannot open: its disk is full \(SQLite: "disk I\/O error", SQLITE_IOERR/,
      );
    } finally {
      spawnSync("umount", ["-l", dir], { stdio: "ignore" });
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
