/**
 * Recomputes the golden test vectors and prints them as markdown for docs/protocol.md:
 *
 *   npx hardhat run --no-compile scripts/print-test-vectors.ts
 *
 * Exit status 1 (with a note on stderr) when the recomputation disagrees with the literals in
 * sdk/protocol/test-vectors.ts.
 */
import { isDeepStrictEqual } from "node:util";

import { encodeHandover, TEST_HANDOVER_TEXT } from "../sdk/protocol/handover.js";
import {
  computeTestVectors,
  TEST_CUSTODY_ACCEPTANCE,
  TEST_DOMAIN,
  TEST_VECTORS,
} from "../sdk/protocol/test-vectors.js";
import { renderTestVectorsMarkdown } from "./lib/test-vectors-md.js";

const vectors = computeTestVectors();
process.stdout.write(renderTestVectorsMarkdown(vectors));
if (!isDeepStrictEqual(vectors, TEST_VECTORS)) {
  process.stderr.write("the recomputed vectors differ from the literals in sdk/protocol/test-vectors.ts\n");
  process.exitCode = 1;
}
const handover = encodeHandover({
  domain: TEST_DOMAIN,
  acceptance: TEST_CUSTODY_ACCEPTANCE,
  signature: vectors.custodyAcceptance.signature,
});
if (handover !== TEST_HANDOVER_TEXT) {
  process.stderr.write("the recomputed handover text differs from TEST_HANDOVER_TEXT in sdk/protocol/handover.ts\n");
  process.exitCode = 1;
}
