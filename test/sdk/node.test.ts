/**
 * The SDK as users meet it, on a real `hardhat node`: `npm run deploy` into a temporary COLDCHAIN_DEPLOYMENTS_DIR
 * and a shipment driven over JSON-RPC (test/sdk/scenario.ts), then the read commands `show` and `export-epcis` as
 * child processes (`node --import tsx cli/main.ts …`), checked against the SDK and GS1's schema. The examples of
 * docs/integration.md run against the packed package in test/packages/sdk-consumer.test.ts.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

import { Ajv } from "ajv";
import addFormatsModule from "ajv-formats";
import { expect } from "chai";

import { connectSuite, ethereumPartyUri, shipmentHistory } from "../../sdk/index.js";
import { runScript } from "../support/node.js";
import type { ScriptResult } from "../support/node.js";
import { startScenarioNode } from "./scenario.js";
import type { Scenario, ScenarioNode } from "./scenario.js";

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
describe("SDK and read commands on a hardhat node", function () {
  this.timeout(120_000);
  let world: ScenarioNode;
  let scenario: Scenario;

  const cli = (...args: string[]): Promise<ScriptResult> =>
    runScript("cli/main.ts", [...args, "--network", "localhost"], world.env);

  before(async () => {
    world = await startScenarioNode();
    scenario = world.scenario;
  });

  after(async () => {
    await world?.stop();
  });

  it("show prints status, condition, custody and liability tables", async () => {
    const r = await cli("show", "--id", String(scenario.shipmentId));
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^Shipment 1: Rejected$/m);
    for (const heading of ["Condition", "Custody", "Liability", "Breaches"]) {
      expect(r.stdout).to.match(new RegExp(`^${heading}$`, "m"));
    }
    const [carrier, hub] = scenario.custodians.slice(1, 3);
    const liability = r.stdout.split(/^Liability$/m)[1] ?? "";
    const carrierRow = liability.split("\n").find((l) => l.startsWith(carrier ?? "?"));
    expect(carrierRow)
      .to.match(/AbsoluteLimit/)
      .and.match(/SingleExcursion/);
    expect(liability.split("\n").find((l) => l.startsWith(hub ?? "?"))).to.match(/\s-$/);
    // The device's reading relayed twice is listed; the forged one (BadSignature) only counted, as relay noise.
    expect(r.stdout).to.match(/^Skipped readings: 21#8 DuplicateSequence$/m);
    expect(r.stdout).to.match(/^Relay noise: 1 unauthenticated skip event for this shipment's devices /m);
    expect(r.stdout).not.to.match(/BadSignature|21#999/);
  });

  it("show --json gives the SDK's state and history", async () => {
    const r = await cli("show", "--id", String(scenario.shipmentId), "--json", "--max-range", "5");
    expect(r.code, r.stderr).to.equal(0);
    const out = JSON.parse(r.stdout) as {
      state: { status: string; custody: { custodian: string }[]; condition: { readingCount: number } };
      history: {
        readings: unknown[];
        breaches: { custodian: string }[];
        skipped: { reason: string }[];
        unauthenticatedSkips: { reason: string }[];
      };
    };
    expect(out.state.status).to.equal("Rejected");
    expect(out.state.custody.map((p) => p.custodian)).to.deep.equal(scenario.custodians);
    expect(out.history.readings).to.have.length(out.state.condition.readingCount);
    expect(out.history.breaches.map((b) => b.custodian)).to.include(scenario.custodians[1]);
    expect(out.history.skipped.map((x) => x.reason)).to.deep.equal(["DuplicateSequence"]);
    expect(out.history.unauthenticatedSkips.map((x) => x.reason)).to.deep.equal(["BadSignature"]);
    const sdk = await shipmentHistory(connectSuite(world.deployment, world.provider), scenario.shipmentId);
    expect(out.history.readings).to.have.length(sdk.readings.length);
  });

  it("export-epcis writes a document that validates against the GS1 EPCIS 2.0 schema", async () => {
    const file = join(world.dir, "shipment-1.epcis.json");
    const r = await cli("export-epcis", "--id", String(scenario.shipmentId), "--out", file);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/wrote 6 EPCIS events for shipment 1 to /);
    const doc = JSON.parse(readFileSync(file, "utf8")) as {
      epcisBody: { eventList: { bizStep: string; destinationList?: { type: string; destination: string }[] }[] };
    };
    const schema = JSON.parse(
      readFileSync(new URL("../fixtures/epcis/EPCIS-JSON-Schema.json", import.meta.url), "utf8"),
    ) as object;
    const validate = addFormats(new Ajv({ strict: false, allErrors: true })).compile(schema);
    expect(validate(doc), JSON.stringify(validate.errors)).to.equal(true);
    const receiving = doc.epcisBody.eventList.find((e) => e.bizStep === "receiving");
    expect(receiving?.destinationList).to.deep.equal([
      { type: "possessing_party", destination: ethereumPartyUri(31337, scenario.custodians[3] ?? "") },
    ]);
  });

  it("refuses an unknown shipment and a bad --epc with one line and a non-zero exit code", async () => {
    const missing = await cli("show", "--id", "99");
    expect(missing.code).to.equal(1);
    expect(missing.stderr.trim().split("\n")).to.deep.equal([
      "error: shipment 99 does not exist on localhost; check --id",
    ]);
    const badEpc = await cli("export-epcis", "--id", "1", "--epc", "not a uri");
    expect(badEpc.code).to.equal(2);
    expect(badEpc.stderr.trim().split("\n")).to.have.length(1);
    expect(badEpc.stderr).to.match(/--epc must be a URI/);
    const noId = await cli("export-epcis");
    expect(noId.code).to.equal(2);
    expect(noId.stderr).to.match(/missing --id/);
  });
});
