/**
 * Fails unless the tests cover at least 95% of the lines of `contracts/` (from `coverage/lcov.info`, written by
 * `hardhat test --coverage`). EDR's coverage reports lines and statements only, not branches, so the branch
 * target of the project is checked by review of the per-file table (see docs/architecture.md) until it does.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";

const LINE_TARGET = 0.95;
const lcov = await readFile("coverage/lcov.info", "utf8").catch(() => {
  console.error("coverage/lcov.info is missing: run `npx hardhat test --coverage` first");
  process.exit(1);
});

let file = "";
let hit = 0;
const perFile: { file: string; hit: number; found: number }[] = [];
for (const line of lcov.split("\n")) {
  if (line.startsWith("SF:")) {
    file = path.relative(process.cwd(), line.slice(3));
  } else if (line.startsWith("LH:") && file.startsWith("contracts/")) {
    hit = Number(line.slice(3));
  } else if (line.startsWith("LF:") && file.startsWith("contracts/")) {
    perFile.push({ file, hit, found: Number(line.slice(3)) });
  }
}
const totalHit = perFile.reduce((t, f) => t + f.hit, 0);
const totalFound = perFile.reduce((t, f) => t + f.found, 0);
for (const f of perFile) {
  const pct = f.found === 0 ? 100 : (100 * f.hit) / f.found;
  console.log(`${f.file.padEnd(48)} ${pct.toFixed(1).padStart(6)}% of ${f.found} lines`);
}
const ratio = totalFound === 0 ? 0 : totalHit / totalFound;
console.log(`contracts/: ${(100 * ratio).toFixed(2)}% of ${totalFound} lines covered (target ${LINE_TARGET * 100}%)`);
if (ratio < LINE_TARGET) process.exit(1);
