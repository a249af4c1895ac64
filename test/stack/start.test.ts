/**
 * `npm start -- --quick --report <file>` end to end, as CI runs it: a real JSON-RPC node, a real MQTT broker
 * over TCP, the oracle and the simulated fleet in one process, then the JSON report checked here against the
 * plan (scripts/stack/plan.ts) — independently of the report's own cross-check.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { expect } from "chai";

import { SHIPMENTS } from "../../scripts/stack/plan.js";
import type { StackReport } from "../../scripts/stack/report.js";

const REPO_ROOT = join(import.meta.dirname, "..", "..");

function runStart(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts", ...args], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, output }));
  });
}

describe("npm start (the local stack)", function () {
  this.timeout(240_000);
  let report: StackReport;
  let output: string;

  before(async function () {
    const file = join(mkdtempSync(join(tmpdir(), "coldchain-start-test-")), "report.json");
    const run = await runStart(["--quick", "--report", file]);
    output = run.output;
    expect(run.code, output).to.equal(0);
    report = JSON.parse(readFileSync(file, "utf8")) as StackReport;
  });

  it("prints the report and says the chain, the simulator and the oracle agree", function () {
    expect(output).to.include("== totals");
    expect(output).to.include("cross-check       chain, simulator and oracle agree");
    expect(report.crossCheck).to.deep.equal({ ok: true, problems: [] });
  });

  it("puts every valid reading on chain and rejects none of them", function () {
    expect(report.readingsPublished).to.be.greaterThan(300);
    expect(report.readingsOnChain).to.equal(report.readingsPublished);
    const contractSkips = Object.keys(report.readingsRejected).filter((r) => r.startsWith("contract:"));
    expect(contractSkips).to.deep.equal([]);
  });

  it("detects each scripted breach and charges it to the custodian of the time", function () {
    expect(report.shipments).to.have.length(SHIPMENTS.length);
    for (const [i, plan] of SHIPMENTS.entries()) {
      const shipment = report.shipments[i];
      const found = new Set(shipment?.breaches.map((b) => `${b.reason}@${b.custodian}`));
      const expected = new Set(plan.expectedBreaches.map((b) => `${b.reason}@${b.custodian}`));
      expect([...found].sort(), plan.title).to.deep.equal([...expected].sort());
      expect(shipment?.status, plan.title).to.equal(expected.size > 0 ? "Rejected" : "Released");
      for (const b of plan.expectedBreaches) {
        expect(shipment?.excursionSecondsByCustodian[b.custodian] ?? 0, `${plan.title}: ${b.custodian}`).to.be.at.least(
          b.reason === "MissingData" ? 0 : 3600,
        );
      }
    }
  });

  it("rejects every tampered message with the right reason", function () {
    expect(report.readingsRejected.bad_signature ?? 0).to.be.greaterThan(0);
    expect(report.readingsRejected.duplicate ?? 0).to.be.greaterThan(0);
    expect(report.readingsRejected.unknown_device ?? 0).to.be.greaterThan(0);
  });

  it("states gas per reading and the cost at the stated gas prices", function () {
    expect(report.gasPerReading).to.be.a("number").and.to.be.greaterThan(0).and.lessThan(20_000);
    expect(report.cost.l1Eth).to.be.greaterThan(report.cost.l2Eth);
    for (const s of report.shipments) expect(s.gasPerReading).to.be.a("number");
  });
});
