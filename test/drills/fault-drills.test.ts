/**
 * The fault drills of issue 16 (./drills.ts) as a mocha suite: one test per drill, asserting 0 lost, 0 doubled,
 * 0 wasted transactions and recovery within the bound, plus the drill's own checks; the table is printed at the end.
 * `npm test` runs the short profile (about 3 minutes); `ORACLE_DRILLS=full` the full one (`.ci/run`,
 * `npm run drills`). Needs the `mosquitto` binary (skipped with a message without it, as the other broker tests).
 */
import { expect } from "chai";

import { mosquittoAvailable } from "../oracle/support.js";
import { DRILLS, runDrill } from "./drills.js";
import { currentProfile, formatTable } from "./harness.js";
import type { DrillResult } from "./harness.js";

describe(`fault drills (a real oracle process, Mosquitto, anvil; profile ${currentProfile().name})`, function () {
  this.timeout(900_000);
  const profile = currentProfile();
  const results: DrillResult[] = [];

  before(function () {
    if (!mosquittoAvailable()) {
      console.warn("    SKIPPED: the `mosquitto` binary is not installed (apt-get install -y mosquitto)");
      this.skip();
    }
  });
  after(() => {
    if (results.length > 0) console.log(`\n${formatTable(results, profile)}\n`);
  });

  for (const drill of DRILLS) {
    it(`${drill.fault}: nothing lost, doubled or wasted; recovers in bounded time`, async () => {
      const result = await runDrill(drill, profile);
      results.push(result);
      expect(result.problems, formatTable([result], profile)).to.deep.equal([]);
    });
  }
});
