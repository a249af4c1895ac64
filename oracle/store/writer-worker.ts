/**
 * The intake's store writer thread (see store-writer.ts): its own SQLite connection to the oracle's store file,
 * answering `{ id, items }` with `{ id, results }` after the transaction holding them is committed (fsync with
 * synchronous = FULL), or `{ id, error }` when it is not (a store failure with its fault and SQLite code, so the
 * intake thread reports it as itself).
 */
import { parentPort, workerData } from "node:worker_threads";

import "./quiet-sqlite-warning.js";
import { StoreError, messageOf } from "../errors.js";
import type { NewItem } from "./store.js";

// After the warning filter: linking store.js (node:sqlite) is what emits the warning. Messages posted meanwhile
// wait in the port until the listener below is attached.
const { Store } = await import("./store.js");

interface Init {
  readonly path: string;
  readonly synchronous: "FULL" | "NORMAL";
  readonly maxSizeMb?: number;
}

const init = workerData as Init;
// Opened on first use and again after a failed open (a full disk at start): a failed open is answered to each
// request as the store failure it is, instead of a thread that dies and is started again in a loop.
let store: InstanceType<typeof Store> | undefined;
const opened = (): InstanceType<typeof Store> => (store ??= new Store(init.path, init.synchronous, init.maxSizeMb));
try {
  opened();
} catch {
  // Reported with the first request.
}

parentPort?.on("message", (m: { id: number; items: NewItem[] } | { close: true }) => {
  if ("close" in m) {
    store?.close();
    parentPort?.close();
    return;
  }
  try {
    parentPort?.postMessage({ id: m.id, results: opened().insertItems(m.items) });
  } catch (error) {
    parentPort?.postMessage(
      error instanceof StoreError
        ? { id: m.id, error: error.detail, store: { fault: error.fault, sqliteCode: error.sqliteCode } }
        : { id: m.id, error: messageOf(error) },
    );
  }
});
