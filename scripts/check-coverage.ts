/**
 * Fails unless the tests cover at least 95% of the lines and 90% of the branches of `contracts/` (issue 2, section
 * 4). Reads `coverage/branches.json`, written by `scripts/coverage.ts` (`npm run coverage`): lines come from EDR's
 * statement coverage (`hardhat test --coverage`), branches from probes on every condition, `&&`/`||` operand,
 * loop condition, `require`/`assert` and try/catch clause of a rewritten copy of the sources
 * (scripts/lib/branch-coverage.ts). Branches inside inline assembly are listed as unmeasured, not counted.
 */
import { readFile } from "node:fs/promises";

import { type CoverageReport, formatReport } from "./lib/branch-coverage.js";
import { BRANCH_TARGET, LINE_TARGET } from "./lib/coverage-targets.js";

const text = await readFile("coverage/branches.json", "utf8").catch(() => undefined);
if (text === undefined) {
  console.error("coverage/branches.json is missing: run `npm run coverage` first");
  process.exit(1);
}
const report = JSON.parse(text) as CoverageReport & { testFiles?: string[] };
console.log(formatReport(report));

const lineRatio = report.linesFound === 0 ? 0 : report.linesHit / report.linesFound;
const branchRatio = report.branchesFound === 0 ? 0 : report.branchesHit / report.branchesFound;
const subset = report.testFiles !== undefined && report.testFiles.length > 0;
console.log(
  `\ncontracts/: ${(100 * lineRatio).toFixed(2)}% of ${report.linesFound} lines (target ${LINE_TARGET * 100}%), ` +
    `${(100 * branchRatio).toFixed(2)}% of ${report.branchesFound} branches (target ${BRANCH_TARGET * 100}%)` +
    (subset ? ` — from a subset of the tests: ${report.testFiles?.join(" ")}` : ""),
);
let failed = false;
if (lineRatio < LINE_TARGET) {
  console.error(`line coverage ${(100 * lineRatio).toFixed(2)}% is below ${LINE_TARGET * 100}%`);
  failed = true;
}
if (branchRatio < BRANCH_TARGET) {
  console.error(
    `branch coverage ${(100 * branchRatio).toFixed(2)}% is below ${BRANCH_TARGET * 100}%: see the list above`,
  );
  failed = true;
}
if (failed) process.exit(1);
