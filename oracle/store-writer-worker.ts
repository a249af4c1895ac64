/**
 * The intake's store writer thread (see store-writer.ts): its own SQLite connection to the oracle's store file,
 * answering `{ id, items }` with `{ id, results }` after the transaction holding them is committed (fsync with
 * synchronous = FULL), or `{ id, error }` when it is not.
 */
import { parentPort, workerData } from "node:worker_threads";

import "./quiet-sqlite-warning.js";
import { messageOf } from "./errors.js";
import type { NewItem } from "./store.js";

// After the warning filter: linking store.js (node:sqlite) is what emits the warning. Messages posted meanwhile
// wait in the port until the listener below is attached.
const { Store } = await import("./store.js");

interface Init {
  readonly path: string;
  readonly synchronous: "FULL" | "NORMAL";
}

const init = workerData as Init;
const store = new Store(init.path, init.synchronous);

parentPort?.on("message", (m: { id: number; items: NewItem[] } | { close: true }) => {
  if ("close" in m) {
    store.close();
    parentPort?.close();
    return;
  }
  try {
    parentPort?.postMessage({ id: m.id, results: store.insertItems(m.items) });
  } catch (error) {
    parentPort?.postMessage({ id: m.id, error: messageOf(error) });
  }
});
