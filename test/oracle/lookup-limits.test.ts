/**
 * The bounds the intake puts on registry look-ups and on its log: the token bucket (rate, burst, a bucket of time
 * spent), the expiring LRU map of unknown devices (size and age), and log lines rate-limited with counts. A fake
 * clock where time matters; real timers for the log's summary line.
 */
import { Writable } from "node:stream";

import { expect } from "chai";

import { createLogger } from "../../oracle/log.js";
import { RateLimitedLog } from "../../oracle/log-limit.js";
import { ExpiringLru, TokenBucket } from "../../oracle/verification/lookup-limits.js";

function fakeClock(start = 1_000_000): { now: () => number; advance(ms: number): void } {
  let t = start;
  return {
    now: () => t,
    advance(ms) {
      t += ms;
    },
  };
}

describe("oracle look-up limits", () => {
  describe("TokenBucket", () => {
    it("gives the burst at once, then tokens at the rate, and says when the next one comes", () => {
      const clock = fakeClock();
      const bucket = new TokenBucket(10, 3, clock.now);
      expect([bucket.tryTake(), bucket.tryTake(), bucket.tryTake(), bucket.tryTake()]).to.deep.equal([
        true,
        true,
        true,
        false,
      ]);
      expect(bucket.msUntilToken()).to.equal(100);
      clock.advance(99);
      expect(bucket.tryTake()).to.equal(false);
      clock.advance(1);
      expect(bucket.tryTake()).to.equal(true);
      // Never more than the burst, however long it waited.
      clock.advance(60_000);
      let taken = 0;
      while (bucket.tryTake()) taken++;
      expect(taken).to.equal(3);
    });

    it("as a bucket of milliseconds: spending runs into debt, repaid at the rate", () => {
      const clock = fakeClock();
      const budget = new TokenBucket(100, 500, clock.now); // 100 ms per second, 500 ms at most
      budget.spend(450);
      expect(budget.hasAny()).to.equal(true);
      budget.spend(250); // 200 ms of debt
      expect(budget.hasAny()).to.equal(false);
      clock.advance(2_000);
      expect(budget.hasAny()).to.equal(false); // exactly repaid: nothing left
      clock.advance(10);
      expect(budget.hasAny()).to.equal(true);
    });

    it("waits for a token, and stops waiting when cancelled", async () => {
      const bucket = new TokenBucket(50, 1, Date.now);
      expect(bucket.tryTake()).to.equal(true);
      const started = Date.now();
      expect(await bucket.waitForToken()).to.equal(true);
      expect(Date.now() - started).to.be.within(5, 200);
      expect(bucket.tryTake()).to.equal(true);
      expect(await bucket.waitForToken(() => true)).to.equal(false);
    });
  });

  describe("ExpiringLru", () => {
    it("keeps at most maxEntries, the least recently used out first", () => {
      const clock = fakeClock();
      const lru = new ExpiringLru<bigint, string>(3, 60_000, clock.now);
      for (const id of [1n, 2n, 3n]) lru.set(id, `d${id}`);
      expect(lru.get(1n)).to.equal("d1"); // 1 is now the most recently used
      lru.set(4n, "d4"); // 2 goes
      expect(lru.size).to.equal(3);
      expect([lru.has(1n), lru.has(2n), lru.has(3n), lru.has(4n)]).to.deep.equal([true, false, true, true]);
      for (let i = 0n; i < 10_000n; i++) lru.set(100n + i, "flood");
      expect(lru.size).to.equal(3);
    });

    it("forgets an entry ttlMs after it was set, read or not", () => {
      const clock = fakeClock();
      const lru = new ExpiringLru<bigint, string>(10, 30_000, clock.now);
      lru.set(7n, "unknown");
      clock.advance(29_999);
      expect(lru.get(7n)).to.equal("unknown");
      clock.advance(1);
      expect(lru.get(7n)).to.equal(undefined);
      expect(lru.size).to.equal(0);
      // Expired entries at the old end go when a new one comes.
      lru.set(1n, "a");
      clock.advance(30_000);
      lru.set(2n, "b");
      expect(lru.size).to.equal(1);
    });

    it("keeps nothing with a size of 0, and forgets on delete", () => {
      const clock = fakeClock();
      const none = new ExpiringLru<bigint, string>(0, 30_000, clock.now);
      none.set(1n, "a");
      expect(none.size).to.equal(0);
      const lru = new ExpiringLru<bigint, string>(2, 30_000, clock.now);
      lru.set(1n, "a");
      expect(lru.delete(1n)).to.equal(true);
      expect(lru.get(1n)).to.equal(undefined);
    });
  });

  describe("RateLimitedLog", () => {
    it("writes the first line of a kind at once and the rest as one line with their count after the interval", async () => {
      type Line = { msg: string; repeated?: number; reason?: string };
      const lines: Line[] = [];
      const sink = new Writable({
        write(chunk: Buffer, _encoding, done) {
          for (const line of chunk.toString("utf8").split("\n")) if (line !== "") lines.push(JSON.parse(line) as Line);
          done();
        },
      });
      const log = new RateLimitedLog(createLogger("info", sink), 100);
      for (let i = 0; i < 500; i++) log.warn("drop:unknown_device", { reason: "unknown_device" }, `dropped ${i}`);
      log.warn("drop:bad_signature", { reason: "bad_signature" }, "forged");
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(lines.map((l) => l.msg)).to.deep.equal(["dropped 0", "forged"]);
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect(lines).to.have.length(3);
      expect(lines[2]?.repeated).to.equal(499);
      expect(lines[2]?.msg).to.match(/^dropped 499 \(499 like it in the last 0\.1 s, the last shown\)$/);
      // Quiet again for an interval: the next line is written at once.
      await new Promise((resolve) => setTimeout(resolve, 120));
      log.warn("drop:unknown_device", { reason: "unknown_device" }, "dropped again");
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(lines.at(-1)?.msg).to.equal("dropped again");
    });
  });
});
