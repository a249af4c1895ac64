/**
 * The fault drills of issue 16 as an operator's command: `npm run drills` (short profile) or
 * `ORACLE_DRILLS=full npm run drills`; `-- <id> …` runs some of them (ids: test/drills/drills.ts). Prints the table
 * (fault | published | on chain | lost | doubled | wasted tx | recovery time) and writes it as JSON to
 * bench/results/fault-drills.json; exits 1 if a drill failed. Needs the `mosquitto` binary; anvil comes from npm.
 * The same drills run under mocha in `npm test` (test/drills/fault-drills.test.ts), which never writes the file.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";

import { DRILLS, runDrill } from "../test/drills/drills.js";
import { currentProfile, formatTable } from "../test/drills/harness.js";
import type { DrillResult } from "../test/drills/harness.js";
import { REPO_ROOT, mosquittoAvailable } from "../test/oracle/support.js";

const OUT = join(REPO_ROOT, "bench/results/fault-drills.json");

async function main(): Promise<void> {
  if (!mosquittoAvailable()) throw new Error("the `mosquitto` binary is not installed (apt-get install -y mosquitto)");
  const profile = currentProfile();
  // `hardhat run` passes no script arguments: ORACLE_DRILLS_ONLY=<id>,<id> picks drills.
  const only = (process.env.ORACLE_DRILLS_ONLY ?? "").split(",").filter(Boolean);
  const unknown = only.filter((id) => !DRILLS.some((d) => d.id === id));
  if (unknown.length > 0)
    throw new Error(`unknown drill ids ${unknown.join(", ")}: ${DRILLS.map((d) => d.id).join(", ")}`);
  const chosen = DRILLS.filter((d) => only.length === 0 || only.includes(d.id));
  const startedAt = new Date();
  const results: (DrillResult & { id: string; error?: string })[] = [];
  for (const drill of chosen) {
    console.log(`drill ${drill.id}: ${drill.fault}`);
    try {
      results.push({ id: drill.id, ...(await runDrill(drill, profile)) });
    } catch (error) {
      // A drill that could not run (its setup failed) is a failed row, and the others still run.
      const message = error instanceof Error ? error.message : String(error);
      results.push({
        id: drill.id,
        fault: drill.fault,
        runs: 0,
        published: 0,
        onChain: 0,
        lost: 0,
        doubled: 0,
        wastedTx: 0,
        oracleTx: 0,
        recoveryMs: [],
        boundMs: 0,
        notes: [],
        problems: [`the drill did not run: ${message}`],
        error: message,
      });
    }
  }
  console.log(`\n${formatTable(results, profile)}`);
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(
    OUT,
    `${JSON.stringify(
      {
        command: `ORACLE_DRILLS=${profile.name} npm run drills`,
        profile,
        startedAt: startedAt.toISOString(),
        seconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
        host: { cpus: cpus().length, loadAverage1m: Number(loadavg()[0]?.toFixed(2)) },
        results: results.map((r) => ({ ...r, passed: r.problems.length === 0 })),
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nwritten: ${OUT}`);
  if (results.some((r) => r.problems.length > 0)) process.exitCode = 1;
}

await main();
