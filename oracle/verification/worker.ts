/**
 * A signature-verification worker thread (see verify-pool.ts): answers a batch
 * `{ checks: [{ id, digest, signature, key }] }` with `{ ids, oks }` messages in the same order, one per
 * `answerEvery` checks (verify-pool.ts's ANSWER_EVERY): the first messages of a large batch go on to their commit
 * while the rest are checked (one answer for the whole batch made every message in flight wait for the slowest
 * check, then all commit at once: intake ran in lock-step, commit then verify, instead of both at once). The intake
 * thread computes the EIP-712 digests. Loads libsecp256k1 once (importing verify.ts).
 */
import { parentPort, workerData } from "node:worker_threads";

import type { ColdChainDomain, DeviceVerificationKey } from "../../sdk/protocol/index.js";
import { FastVerifier } from "./signature.js";

interface Init {
  readonly chainId: bigint;
  readonly verifyingContract: string;
  readonly cacheSize: number;
  readonly answerEvery: number;
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
  for (let from = 0; from < m.checks.length; from += init.answerEvery) {
    const chunk = m.checks.slice(from, from + init.answerEvery);
    const ids = chunk.map((c) => c.id);
    const oks = chunk.map((c) => verifier.verifyDigest(c.digest, c.signature, c.key));
    parentPort?.postMessage({ ids, oks });
  }
});
