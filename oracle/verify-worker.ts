/**
 * A signature-verification worker thread (see verify-pool.ts): answers `{ id, item, key }` with `{ id, ok }`.
 */
import { parentPort, workerData } from "node:worker_threads";

import type { ColdChainDomain, DeviceVerificationKey, SignedItem } from "../sdk/protocol/index.js";
import { FastVerifier } from "./verify.js";

interface Init {
  readonly chainId: bigint;
  readonly verifyingContract: string;
  readonly cacheSize: number;
}

const init = workerData as Init;
const domain: ColdChainDomain = { chainId: init.chainId, verifyingContract: init.verifyingContract };
const verifier = new FastVerifier(domain, init.cacheSize);

parentPort?.on("message", (m: { id: number; item: SignedItem; key: DeviceVerificationKey }) => {
  parentPort?.postMessage({ id: m.id, ok: verifier.verify(m.item, m.key) });
});
