/**
 * The intake's store writer thread (see store-writer.ts): its own SQLite connection to the oracle's store file,
 * answering `{ id, items }` with `{ id, results }` after the transaction holding them is committed (fsync with
 * synchronous = FULL), or `{ id, error }` when it is not.
 */
import { parentPort, workerData } from "node:worker_threads";

import { messageOf } from "./errors.js";
import { Store } from "./store.js";
import type { NewItem } from "./store.js";

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
