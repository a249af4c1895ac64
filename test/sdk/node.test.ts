/**
 * The SDK as users meet it, on a real `hardhat node`: `npm run deploy` into a temporary COLDCHAIN_DEPLOYMENTS_DIR
 * and a shipment driven over JSON-RPC (test/sdk/scenario.ts), then
 *
 * - the read commands `show` and `export-epcis` as child processes (`node --import tsx cli/main.ts …`), checked
 *   against the SDK and GS1's schema;
 * - docs/integration.md: every fenced ```ts block starting with `// example: <name>` is written to a file inside the
 *   repository (so `coldchain/sdk` resolves through package.json "exports", as in a dApp; in a temporary
 *   `.doc-examples-*` directory at the root, outside `test/` so mocha never collects it) and run with
 *   `node --import tsx`: the code in the document is the code tested.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { Ajv } from "ajv";
import addFormatsModule from "ajv-formats";
import { expect } from "chai";

import { connectSuite, ethereumPartyUri, shipmentHistory } from "../../sdk/index.js";
import { REPO_ROOT, runScript } from "../support/node.js";
import type { ScriptResult } from "../support/node.js";
import { startScenarioNode } from "./scenario.js";
import type { Scenario, ScenarioNode } from "./scenario.js";

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const DOC = join(REPO_ROOT, "docs", "integration.md");

/** The doc's runnable examples by name, in document order. */
export function extractExamples(markdown: string): Map<string, string> {
  const examples = new Map<string, string>();
  for (const match of markdown.matchAll(/^```ts\n(\/\/ example: ([a-z0-9-]+)\n[\s\S]*?)^```$/gm)) {
    const [, code, name] = match;
    if (code !== undefined && name !== undefined) examples.set(name, code);
  }
  return examples;
}

/** What each example must print (a regexp per line it must contain). */
const EXPECTED: Record<string, RegExp[]> = {
  "read-state": [
    /^shipment 1 is Rejected, held by 0x90F79bf6EB2c4f870365E785982E1f101E93b906$/m,
    /^readings 60, 4\.5 \.\. 30 °C$/m,
    // MKT and time out of range per logger (protocol v2 judges both per device).
    /^logger 21: MKT \d+(\.\d+)? °C over [\d.]+ h, 4200 s out of range$/m,
    /^logger 22: MKT 4\.5 °C over [\d.]+ h, 0 s out of range$/m,
    /^0x70997970C51812dc3A010C7d01b50e0d17dc79C8: \d+ s out of range, breaches: AbsoluteLimit, SingleExcursion$/m,
  ],
  history: [
    /^read blocks \d+\.\.\d+ \(\d+\/\d+\)$/m,
    /^custody 2: 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 -> 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC in tx 0x[0-9a-f]{64}$/m,
    /^breach AbsoluteLimit charged to 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 \(period 1\)$/m,
    /^60 readings, 1 skipped, 1 excursions$/m,
    /^relay noise \(not evidence\): 1 unauthenticated skips$/m,
    /^device 22: 30 points, 0 gaps, band 2\.\.8 °C$/m,
  ],
  "decode-events": [/^ReadingsRecorded shipment 1 device 21: last 5 °C$/m, /^decoded 60 readings from \d+ events$/m],
  "sign-readings": [/^signatures verify: true$/m, /^batch of \d+ bytes: 0 accepted, 3 skipped$/m],
  epcis: [
    / commissioning active$/m,
    / transporting in_transit$/m,
    / receiving in_progress$/m,
    / inspecting non_conformant$/m,
  ],
};

describe("SDK, read commands and docs on a hardhat node", function () {
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

  describe("docs/integration.md examples", () => {
    const examples = extractExamples(readFileSync(DOC, "utf8"));
    let dir: string;

    before(() => {
      // Inside the repository, so that `coldchain/sdk` resolves to this package (self-reference via "exports").
      dir = mkdtempSync(join(REPO_ROOT, ".doc-examples-"));
    });

    after(() => {
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    });

    it("has the documented examples", () => {
      expect([...examples.keys()]).to.deep.equal(Object.keys(EXPECTED));
    });

    for (const [name, patterns] of Object.entries(EXPECTED)) {
      it(`runs the "${name}" example`, async () => {
        const code = examples.get(name);
        expect(code, `no example "${name}" in docs/integration.md`).to.be.a("string");
        const file = join(dir, `${name}.ts`);
        writeFileSync(file, code ?? "");
        const result: ScriptResult = await runScript(file.slice(REPO_ROOT.length + 1), [], world.env);
        expect(result.code, `${result.stdout}\n${result.stderr}`).to.equal(0);
        for (const pattern of patterns) expect(result.stdout, result.stdout).to.match(pattern);
      });
    }
  });
});
