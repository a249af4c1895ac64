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

import { reasonCodeForBreach } from "../../sdk/reasons.js";
import type { BreachReasonName } from "../../sdk/names.js";
import { PARTY_NAMES, SCENARIO_HOURS, SHIPMENTS, firstLateUpload } from "../../scripts/stack/plan.js";
import type { PartyRole } from "../../scripts/stack/plan.js";
import type { StackReport } from "../../scripts/stack/report.js";

const REPO_ROOT = join(import.meta.dirname, "..", "..");

function runStart(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    // A hung run is killed (SIGTERM: the stack shuts itself down) rather than left holding its ports.
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts", ...args], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      signal: AbortSignal.timeout(200_000),
      killSignal: "SIGTERM",
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", (error) => (error.name === "AbortError" ? undefined : reject(error)));
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

  it("plays an attempt to bend the verdict, which the contract refuses, and says so", function () {
    expect(report.attempts).to.have.length(2);
    expect(report.attempts[0]?.refusedWith).to.equal("CustodyNotCustodian");
    expect(output).to.match(/bend attempts {5}the shipper cancels shipment \d+ while .+ holds it/);
    expect(output).to.include("refused by the contract (CustodyNotCustodian)");
  });

  it("plays a rogue relayer that submits a logger's backlog newest first: nothing is recorded out of order", function () {
    const late = firstLateUpload(SHIPMENTS);
    expect(late, "the plan has a logger that uploads late").to.not.equal(undefined);
    const rogue = report.attempts[1];
    const match = /^a rogue relayer submits logger (\d+)'s backlog \(.+\) newest first \((\d+) readings\)$/.exec(
      rogue?.attempt ?? "",
    );
    expect(match, rogue?.attempt).to.not.equal(null);
    expect(match?.[1]).to.equal(late?.deviceId.toString());
    // Offline from fromHour to toHour, a reading every 15 min (--quick): the whole backlog, newest first.
    const n = Number(match?.[2]);
    expect(n).to.be.at.least((((late?.toHour ?? 0) - (late?.fromHour ?? 0)) * 3600) / 900);
    // Every reading but the oldest came before its predecessor and waited (SequenceGap, retryable); the oldest
    // continued the logger's chain and is the only one the rogue recorded.
    expect(rogue?.refusedWith).to.equal("SequenceGap");
    expect(rogue?.outcome).to.equal(`${n - 1} waited for their predecessor (SequenceGap)`);
    expect(report.readingsWaited).to.deep.equal({ "contract:SequenceGap": n - 1 });
    expect(report.readingsByOtherRelayers).to.equal(1);
    expect(output).to.include(`(1 recorded by another relayer)`);
    expect(output).to.match(
      new RegExp(
        `^ {18}a rogue relayer submits logger ${late?.deviceId}'s backlog .+ newest first \\(${n} readings\\): ` +
          `${n - 1} waited for their predecessor \\(SequenceGap\\), verdict unchanged \\(cross-check\\)$`,
        "m",
      ),
    );
    // The oracle relayed the backlog in order afterwards: every reading on chain, as sent, in the logger's order
    // (the cross-check compares each reading, its recording order and each logger's MKT with the simulator's).
    expect(report.readingsOnChain).to.equal(report.readingsPublished);
    expect(report.crossCheck.problems).to.deep.equal([]);
  });

  it("shows each logger's own MKT, not one pooled over the loggers", function () {
    expect(output).to.not.include("min / max / MKT");
    for (const [i, plan] of SHIPMENTS.entries()) {
      const shipment = report.shipments[i];
      expect(
        shipment?.mktByLogger.map((l) => l.deviceId),
        plan.title,
      ).to.deep.equal(plan.devices.map((d) => d.deviceId.toString()));
      for (const l of shipment?.mktByLogger ?? []) {
        expect(l.mktCentiC, `${plan.title}: ${l.deviceId}`).to.be.a("number");
        // One logger's own time: at most the trip, never the loggers' time added up.
        expect(l.mktSeconds, `${plan.title}: ${l.deviceId}`)
          .to.be.greaterThan(0)
          .and.at.most(SCENARIO_HOURS * 3600);
      }
      const loggers = shipment?.mktByLogger.map((l) => `${l.deviceId}: `).join(".+, ") ?? "";
      expect(output).to.match(new RegExp(`^MKT per logger {4}${loggers}.+ \\((limit|no MKT limit)`, "m"));
    }
  });

  it("puts every valid reading on chain and rejects none of them", function () {
    expect(report.readingsPublished).to.be.greaterThan(300);
    expect(report.readingsOnChain).to.equal(report.readingsPublished);
    // Neither skips the devices signed (contract:) nor unauthenticated ones (relay-noise:) the oracle relayed.
    const contractSkips = Object.keys(report.readingsRejected).filter(
      (r) => r.startsWith("contract:") || r.startsWith("relay-noise:"),
    );
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
      expect(shipment?.decision?.kind, plan.title).to.equal(expected.size > 0 ? "rejected" : "released");
      // Excursion time lands on the custodian the plan holds liable for a temperature breach, and on no one else.
      const liable = new Set(plan.expectedBreaches.filter((b) => b.reason !== "MissingData").map((b) => b.custodian));
      for (const [custodian, seconds] of Object.entries(shipment?.excursionSecondsByCustodian ?? {})) {
        if (liable.has(custodian as never)) expect(seconds, `${plan.title}: ${custodian}`).to.be.at.least(3600);
        else expect(seconds, `${plan.title}: ${custodian}`).to.equal(0);
      }
    }
  });

  it("gives each breached shipment's verdict in words: breach times and loggers, liable parties, the reason from the breach kind", function () {
    for (const [i, plan] of SHIPMENTS.entries()) {
      const shipment = report.shipments[i];
      expect(output).to.include(`\nverdict           ${shipment?.verdict}\n`);
      if (plan.expectedBreaches.length === 0) continue;
      for (const b of shipment?.breaches ?? []) {
        expect(b.at, `${plan.title}: ${b.reason}`).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
        expect(b.text)
          .to.include(` on logger ${b.deviceId} `)
          .and.include(`liable: ${PARTY_NAMES[b.custodian as PartyRole]}`);
        expect(output).to.include(b.text);
      }
      // The rejection's reason names the kind of the earliest breach: a MissingData-only shipment is MISSING_DATA.
      const first = shipment?.breaches[0]?.at;
      const earliest = (shipment?.breaches ?? []).filter((b) => b.at === first).map((b) => b.reason);
      expect(shipment?.decision?.reasonCode, plan.title).to.be.oneOf(
        earliest.map((k) => reasonCodeForBreach(k as BreachReasonName)),
      );
      if (plan.expectedBreaches.every((b) => b.reason === "MissingData")) {
        expect(shipment?.decision?.reasonCode, plan.title).to.equal("MISSING_DATA");
      }
      expect(shipment?.decision?.note).to.match(/^first breach: .+ at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
      expect(shipment?.liable.map((l) => l.custodian).sort()).to.deep.equal(
        [...new Set(plan.expectedBreaches.map((b) => b.custodian as string))].sort(),
      );
    }
    expect(output).to.match(/^liable {12}\S/m);
    expect(output).to.not.include("TEMPERATURE_BREACH (");
  });

  it("counts the oracle's dropped messages once: the progress line and the totals agree", function () {
    const total = Object.values(report.messagesRejected).reduce((a, b) => a + b, 0);
    const progress = [...output.matchAll(/ dropped (\d+) messages /g)].map((m) => Number(m[1]));
    expect(progress.at(-1), "the last progress line").to.equal(total);
    expect(output).to.match(new RegExp(`^dropped {11}${total} messages by the oracle: `, "m"));
  });

  it("rejects every tampered message with the right reason", function () {
    // The tamper scenario sends two of each kind: forged and altered signatures, replays, an unknown device.
    expect(report.messagesRejected.bad_signature).to.equal(4);
    expect(report.messagesRejected.unknown_device).to.equal(2);
    expect(report.messagesRejected.duplicate).to.be.at.least(2); // QoS 1 may add a redelivered duplicate
    expect(report.readingsRejected.bad_signature).to.equal(4);
  });

  it("states gas per reading and the cost at the stated gas prices", function () {
    expect(report.gasPerReading).to.be.a("number").and.to.be.greaterThan(0).and.lessThan(20_000);
    const l1Eth = (Number(report.gasUsed) * report.cost.prices.l1Gwei) / 1e9;
    expect(Math.abs(report.cost.l1Eth - l1Eth)).to.be.lessThan(1e-12); // not closeTo: hardhat's is bigint-only
    for (const s of report.shipments) expect(s.gasPerReading).to.be.a("number");
  });
});
