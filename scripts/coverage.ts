/**
 * `npm run coverage`: line and branch coverage of `contracts/`.
 *
 * 1. Copies the project into a temporary directory (node_modules linked, not copied) and rewrites the copies of
 *    `contracts/**.sol` with branch probes (scripts/lib/branch-coverage.ts; line numbers unchanged).
 * 2. Runs `hardhat test --coverage` there (all tests, or the test files given as arguments), so EDR records both
 *    its statement hits and the probes' branch hits; the repository's artifacts/ and cache/ are not touched.
 * 3. Writes `coverage/lcov.info` (EDR's line coverage, paths relative to the repository, lines of the appended
 *    probe functions dropped), `coverage/branches.json` (every branch outcome with its hits) and copies EDR's
 *    html report to `coverage/html`. `scripts/check-coverage.ts` then prints the table and applies the targets.
 *
 * Environment: COVERAGE_KEEP_DIR=1 keeps the temporary copy (its path is printed).
 */
import { spawn } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

import {
  type Branch,
  buildReport,
  type FileLines,
  formatLcov,
  instrumentFile,
  parseLcov,
  parseSources,
  readHits,
  type UnmeasuredBranch,
} from "./lib/branch-coverage.js";
import { BRANCH_TARGET, LINE_TARGET } from "./lib/coverage-targets.js";

const root = process.cwd();
const testFiles = process.argv.slice(2);
/** Not copied: dependencies (linked instead), version control, outputs that the run recreates. */
const SKIP = new Set(["node_modules", ".git", "coverage"]);

const contractFiles = (await readdir(path.join(root, "contracts"), { recursive: true }))
  .filter((f) => f.endsWith(".sol"))
  .map((f) => path.posix.join("contracts", f.split(path.sep).join("/")))
  .sort();
if (contractFiles.length === 0) {
  console.error("no .sol files under contracts/: run from the repository root");
  process.exit(1);
}

const work = await mkdtemp(path.join(os.tmpdir(), "coldchain-coverage-"));
console.log(`coverage: instrumenting a copy of the project in ${work}`);
for (const entry of await readdir(root)) {
  if (SKIP.has(entry)) continue;
  await cp(path.join(root, entry), path.join(work, entry), { recursive: true, verbatimSymlinks: true });
}
await symlink(path.join(root, "node_modules"), path.join(work, "node_modules"), "dir");

const sources = Object.fromEntries(
  await Promise.all(contractFiles.map(async (f) => [f, await readFile(path.join(root, f), "utf8")] as const)),
);
const asts = await parseSources(sources);
const branches: Branch[] = [];
const unmeasured: UnmeasuredBranch[] = [];
const originalLines = new Map<string, number>();
for (const [index, file] of contractFiles.entries()) {
  const source = sources[file];
  const ast = asts[file];
  if (source === undefined || ast === undefined) continue;
  const result = instrumentFile(file, source, ast, index);
  branches.push(...result.branches);
  unmeasured.push(...result.unmeasured);
  originalLines.set(file, result.originalLines);
  await writeFile(path.join(work, file), result.source);
}
console.log(`coverage: ${branches.length} branch outcomes probed in ${contractFiles.length} files`);

const testExit = await new Promise<number>((resolve) => {
  // The oracle's crash test measures no contract code and, on the instrumented (slower) chain, its full size
  // outlasts its time limit: a smaller run unless the caller set one.
  const env = {
    ORACLE_CRASH_READINGS: "1200",
    ORACLE_CRASH_DEVICES: "16",
    ...process.env,
  };
  const child = spawn("npx", ["hardhat", "test", "--coverage", ...testFiles], { cwd: work, stdio: "inherit", env });
  child.on("exit", (code, signal) => resolve(code ?? (signal === null ? 1 : 128)));
  child.on("error", () => resolve(1));
});

const workCoverage = path.join(work, "coverage");
const lcovText = await readFile(path.join(workCoverage, "lcov.info"), "utf8").catch(() => undefined);
if (lcovText === undefined) {
  console.error(
    `coverage: ${workCoverage}/lcov.info is missing: the test run failed before reporting (exit ${testExit})`,
  );
  process.exit(testExit === 0 ? 1 : testExit);
}
const lines: FileLines[] = [];
for (const f of parseLcov(lcovText)) {
  const file = path.relative(work, path.resolve(work, f.file)).split(path.sep).join("/");
  if (!file.startsWith("contracts/")) continue;
  const limit = originalLines.get(file) ?? Infinity;
  lines.push({ file, lines: new Map([...f.lines].filter(([line]) => line <= limit)) });
}
const hits = await readHits(workCoverage);
const report = buildReport(lines, branches, unmeasured, hits, { lines: LINE_TARGET, branches: BRANCH_TARGET });

const out = path.join(root, "coverage");
await mkdir(out, { recursive: true });
await writeFile(path.join(out, "lcov.info"), formatLcov(lines));
await writeFile(
  path.join(out, "branches.json"),
  `${JSON.stringify({ generatedAt: new Date().toISOString(), testFiles, testExit, ...report }, null, 2)}\n`,
);
await rm(path.join(out, "html"), { recursive: true, force: true });
await cp(path.join(workCoverage, "html"), path.join(out, "html"), { recursive: true }).catch(() => undefined);
console.log(`coverage: wrote coverage/lcov.info and coverage/branches.json`);

if (process.env.COVERAGE_KEEP_DIR === "1") console.log(`coverage: kept ${work}`);
else await rm(work, { recursive: true, force: true });
if (testExit !== 0) {
  console.error(`coverage: the tests failed (exit ${testExit}); the figures above count only what ran`);
  process.exit(testExit);
}
