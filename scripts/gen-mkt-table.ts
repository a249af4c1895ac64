/**
 * Generates contracts/MktTable.sol, the data contract holding the MKT Arrhenius-factor table that
 * sdk/protocol/mkt.ts defines (`mktTable()`). Run after any change to the table definition:
 *
 *   npx hardhat run --no-compile scripts/gen-mkt-table.ts
 *
 * With CHECK=1 in the environment it only checks and sets exit status 1 when the file is out of date.
 */
import { readFileSync, writeFileSync } from "node:fs";

import { MKT_TABLE_SOL_PATH, renderMktTableSol } from "./lib/mkt-table-sol.js";
import { MKT_TABLE_ENTRIES } from "../sdk/protocol/mkt.js";

function main(): void {
  const source = renderMktTableSol();
  let current: string | undefined;
  try {
    current = readFileSync(MKT_TABLE_SOL_PATH, "utf8");
  } catch {
    current = undefined;
  }
  if (process.env["CHECK"] === "1") {
    if (current !== source) {
      process.stderr.write(`${MKT_TABLE_SOL_PATH} is out of date: run scripts/gen-mkt-table.ts\n`);
      process.exitCode = 1;
    }
    return;
  }
  if (current === source) {
    process.stdout.write(`${MKT_TABLE_SOL_PATH} is up to date\n`);
    return;
  }
  writeFileSync(MKT_TABLE_SOL_PATH, source);
  process.stdout.write(`wrote ${MKT_TABLE_SOL_PATH} (${MKT_TABLE_ENTRIES} entries)\n`);
}

main();
