/**
 * The intake's inserts on a thread of their own: a worker thread with its own SQLite connection to the store
 * file commits each group of accepted items (the fsync of synchronous = FULL included) while the intake thread
 * goes on parsing and verifying the next messages. A message is still acknowledged only after the commit that
 * holds its item (the intake awaits the result); SQLite's write lock and busy timeout order these commits with
 * the relay's transactions on the main connection. The main `Store`'s pending-readings count is updated from
 * the results. If the thread dies, the inserts it held fail (their messages stay unacknowledged and come again)
 * and a new thread takes over. A store failure on the thread (disk full, I/O error) comes back as the
 * {@link StoreError} it is.
 */
import { Worker } from "node:worker_threads";

import { OracleError, StoreError } from "../errors.js";
import type { StoreFault } from "../errors.js";
import type { Logger } from "../log.js";
import type { InsertResult, NewItem, Store } from "./store.js";

/** What the writer thread answers (store-writer-worker.ts). */
interface WriterReply {
  readonly id: number;
  readonly results?: InsertResult[];
  readonly error?: string;
  readonly store?: { readonly fault: StoreFault; readonly sqliteCode: string };
}

interface Pending {
  readonly items: readonly NewItem[];
  resolve(results: InsertResult[]): void;
  reject(error: Error): void;
}

export class StoreWriter {
  private worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private readonly inFlight = new Set<Promise<void>>();
  private nextId = 1;
  private closed = false;
  private readonly spawn: () => Worker;

  constructor(
    path: string,
    synchronous: "FULL" | "NORMAL",
    private readonly store: Store,
    log?: Logger,
    maxSizeMb?: number,
  ) {
    const ts = import.meta.url.endsWith(".ts");
    const url = new URL(ts ? "./writer-worker.ts" : "./writer-worker.js", import.meta.url);
    const execArgv = ts && !hasTsx(process.execArgv) ? [...process.execArgv, "--import", "tsx"] : process.execArgv;
    this.spawn = (): Worker => {
      const worker = new Worker(url, { execArgv, workerData: { path, synchronous, maxSizeMb } });
      worker.unref();
      worker.on("message", (m: WriterReply) => {
        const p = this.pending.get(m.id);
        if (p === undefined) return;
        this.pending.delete(m.id);
        if (m.results === undefined) {
          const message = m.error ?? "the intake commit failed (unknown error)";
          p.reject(
            m.store === undefined
              ? new OracleError("STORE_FAILED", `the intake commit failed: ${message}`)
              : new StoreError(m.store.fault, message, { sqliteCode: m.store.sqliteCode, path }),
          );
          return;
        }
        let stored = 0;
        m.results.forEach((r, i) => {
          if (r.ok) stored += p.items[i]?.count ?? 0;
        });
        this.store.addPending(stored);
        p.resolve(m.results);
      });
      worker.on("error", (error) =>
        log?.error({ err: error.message }, "store writer thread failed; starting a new one"),
      );
      worker.on("exit", (code) => {
        if (this.closed) return;
        const error = new OracleError("STORE_FAILED", `the store writer thread exited with code ${code}`);
        for (const p of this.pending.values()) p.reject(error);
        this.pending.clear();
        this.worker = this.spawn();
      });
      return worker;
    };
    this.worker = this.spawn();
  }

  /** Stores the items in one transaction on the writer thread; resolves after the commit. */
  readonly insertItems = (items: readonly NewItem[]): Promise<InsertResult[]> => {
    if (this.closed) return Promise.reject(new OracleError("STORE_FAILED", "the store writer is closed"));
    const id = this.nextId++;
    const done = new Promise<InsertResult[]>((resolve, reject) => {
      this.pending.set(id, { items, resolve, reject });
      this.worker.postMessage({ id, items });
    });
    const settled = done.then(
      () => undefined,
      () => undefined,
    );
    this.inFlight.add(settled);
    void settled.then(() => this.inFlight.delete(settled));
    return done;
  };

  /** Ends the thread at once (a stop that could not wait for {@link close}): its commit under way is not answered. */
  terminate(): void {
    this.closed = true;
    void this.worker.terminate();
  }

  /** Waits for the commits under way, then closes the thread's connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.inFlight]);
    const exited = new Promise((resolve) => this.worker.once("exit", resolve));
    this.worker.postMessage({ close: true });
    await exited;
  }
}

function hasTsx(execArgv: readonly string[]): boolean {
  return execArgv.some(
    (a, i) => a.includes("tsx") && (i === 0 || execArgv[i - 1] === "--import" || a.startsWith("--import")),
  );
}
