/**
 * A signature-verification worker thread (see verify-pool.ts): answers a batch
 * `{ checks: [{ id, digest, signature, key }] }` with `{ ids, oks }` in the same order. The intake thread
 * computes the EIP-712 digests (it has time to spare; the checks are the bottleneck). Loads the WebAssembly
 * secp256k1 module once (importing verify.ts).
 */
import { parentPort, workerData } from "node:worker_threads";

import type { ColdChainDomain, DeviceVerificationKey } from "../sdk/protocol/index.js";
import { FastVerifier } from "./verify.js";

interface Init {
  readonly chainId: bigint;
  readonly verifyingContract: string;
  readonly cacheSize: number;
}

/** One check of a batch. */
export interface CheckRequest {
  readonly id: number;
  /** The item's EIP-712 digest (32 bytes). */
  readonly digest: Uint8Array;
  readonly signature: string;
  readonly key: DeviceVerificationKey;
}

const init = workerData as Init;
const domain: ColdChainDomain = { chainId: init.chainId, verifyingContract: init.verifyingContract };
const verifier = new FastVerifier(domain, init.cacheSize);

parentPort?.on("message", (m: { checks: CheckRequest[] }) => {
  const ids = m.checks.map((c) => c.id);
  const oks = m.checks.map((c) => verifier.verifyDigest(c.digest, c.signature, c.key));
  parentPort?.postMessage({ ids, oks });
});
