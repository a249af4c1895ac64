/**
 * Whether the store can write, as the oracle last saw it. A failure of SQLite itself (a {@link StoreError}: disk
 * full, I/O error, locked, read-only, corrupt) in an intake commit, a relay step or the check at start makes the
 * store "unwritable" until a write succeeds again:
 * - counted (`coldchain_oracle_store_errors_total{fault}`) and shown (`coldchain_oracle_store_writable` 0,
 *   `/healthz` 503 with `storeWritable: false` and the error);
 * - reported as itself: an error line naming the file, SQLite's message and code and what to do, at most one per
 *   fault and interval with the count of the others (oracle/log-limit.ts);
 * - the `unwritable` event, on which the oracle pauses intake (nothing is acknowledged that is not stored: the
 *   messages stay at the broker).
 * While unwritable, a small write (`Store.probeWrite`) is tried after a back-off ({@link STORE_RETRY_MIN_MS},
 * doubling up to {@link STORE_RETRY_MAX_MS}); after a full disk the store must also have
 * {@link STORE_HEADROOM_BYTES} of room again (a small write fits long before a group of messages does). The first
 * try that succeeds makes the store writable again (an info line with how long it was down, the `writable` event:
 * intake resumes). The back-off starts again from the minimum only once a real write succeeded, so a store that
 * passes the check but fails real writes is tried less and less often instead of flapping.
 */
import { EventEmitter } from "node:events";

import { StoreError } from "../errors.js";
import type { Logger } from "../log.js";
import type { RateLimitedLog } from "../log-limit.js";
import type { OracleMetrics } from "../health/metrics.js";
import type { Clock } from "../verification/registry.js";
import type { Store } from "./store.js";

/** First wait before the store is tried again after a failure. */
export const STORE_RETRY_MIN_MS = 1_000;
/** Longest wait between tries while the store cannot write. */
export const STORE_RETRY_MAX_MS = 15_000;
/**
 * Room a store that failed for lack of space must have again (on its disk, and below `store.maxSizeMb`) before
 * intake resumes: a WAL's growth before its automatic checkpoint (1,000 pages of 4 KB).
 */
export const STORE_HEADROOM_BYTES = 4 * 1024 * 1024;

export interface StoreHealthEvents {
  unwritable: [StoreError];
  writable: [{ downMs: number }];
  stopped: [];
}

export interface StoreHealthOptions {
  readonly store: Store;
  readonly metrics: OracleMetrics;
  /** The module's logger (the recovery line) and its rate-limited form (the failure lines). */
  readonly log: Logger;
  readonly limited: RateLimitedLog;
  readonly clock: Clock;
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
}

export class StoreHealth {
  readonly events = new EventEmitter<StoreHealthEvents>();
  private failure: StoreError | undefined;
  private since = 0;
  /** Tries since the last real write that succeeded (the back-off's exponent). */
  private tries = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly o: StoreHealthOptions) {}

  /** Whether the store can write (no failure since the last successful write or check). */
  get writable(): boolean {
    return this.failure === undefined;
  }

  /** The failure that made the store unwritable (the latest one while it lasts). */
  get error(): StoreError | undefined {
    return this.failure;
  }

  /** Unix ms since when the store cannot write (0 while it can). */
  get unwritableSince(): number {
    return this.failure === undefined ? 0 : this.since;
  }

  /** Tries a small write now (at start): whether the store can write. */
  check(): boolean {
    try {
      this.o.store.probeWrite(this.o.clock());
      return true;
    } catch (error) {
      if (!this.failed(error, "start")) throw error;
      return false;
    }
  }

  /**
   * A store operation (`where`: intake, relay, start, check) failed with `error`. If it is SQLite's own failure
   * (a {@link StoreError}), it is counted and logged, and the store is unwritable until a try succeeds; returns
   * whether it was one (other errors are the caller's to handle).
   */
  failed(error: unknown, where: string): error is StoreError {
    if (!(error instanceof StoreError)) return false;
    this.o.metrics.storeErrors.inc({ fault: error.fault });
    const first = this.failure === undefined;
    this.failure = error;
    if (first) {
      this.since = this.o.clock();
      this.o.metrics.storeWritable.set(0);
    }
    const retryInMs = this.schedule();
    this.o.limited.error(
      `store:${error.fault}`,
      {
        err: error.message,
        code: error.code,
        fault: error.fault,
        sqliteCode: error.sqliteCode,
        path: error.path,
        where,
        ...(retryInMs === undefined ? {} : { retryInMs }),
        unwritableForMs: this.o.clock() - this.since,
      },
      `the store cannot write (${error.code}): intake is paused, its messages stay unacknowledged at the broker, ` +
        `and the relay waits; trying the store again${retryInMs === undefined ? "" : ` in ${retryInMs} ms`}`,
    );
    if (first) this.events.emit("unwritable", error);
    return true;
  }

  /** A real write succeeded (an intake commit): the back-off starts again from its minimum next time. */
  succeeded(): void {
    if (this.failure === undefined) this.tries = 0;
  }

  /** Resolves once the store can write again, or at {@link stop}. */
  whenWritable(): Promise<void> {
    if (this.failure === undefined || this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.events.off("writable", done);
        this.events.off("stopped", done);
        resolve();
      };
      this.events.on("writable", done);
      this.events.on("stopped", done);
    });
  }

  /** Stops the tries; releases whoever waits in {@link whenWritable}. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.events.emit("stopped");
  }

  /** Schedules the next try (unless one is scheduled); returns its delay, or undefined if none was scheduled. */
  private schedule(): number | undefined {
    if (this.stopped || this.timer !== undefined) return undefined;
    const min = this.o.retryMinMs ?? STORE_RETRY_MIN_MS;
    const delay = Math.min(this.o.retryMaxMs ?? STORE_RETRY_MAX_MS, min * 2 ** Math.min(this.tries, 20));
    this.tries++;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.tryAgain();
    }, delay);
    this.timer.unref();
    return delay;
  }

  private tryAgain(): void {
    if (this.stopped || this.failure === undefined) return;
    try {
      this.o.store.probeWrite(this.o.clock(), this.failure.fault === "full" ? STORE_HEADROOM_BYTES : 0);
    } catch (error) {
      if (!this.failed(error, "check")) {
        // Not SQLite's failure (the store closed under a stop): try again later all the same.
        this.schedule();
      }
      return;
    }
    const downMs = this.o.clock() - this.since;
    const was = this.failure;
    this.failure = undefined;
    this.since = 0;
    this.o.metrics.storeWritable.set(1);
    this.o.limited.flush();
    this.o.log.info(
      { downMs, fault: was.fault, path: was.path },
      "the store can write again after %d s: intake resumes",
      Math.round(downMs / 1000),
    );
    this.events.emit("writable", { downMs });
  }
}
