/**
 * The temperature report as QA and auditors get it: a real `hardhat node` with the breached, rejected shipment of
 * test/sdk/scenario.ts, `npm run cli -- report` as a child process, and the PDF rendered to PNG by poppler
 * (`pdftoppm`) and read back as text (`pdftotext`). Every figure the text shows is checked against the chain
 * (verdict, breaches with kind, time, block and transaction, liable custodian, MKT per logger, key fingerprints,
 * the decision), and the chart's pixels against the profile (loggers drawn inside / above the allowed band).
 * The PNGs are kept in test/cli/artifacts/report/ (untracked) and their paths printed. Without poppler-utils
 * (`apt-get install -y poppler-utils`; .ci/run installs it) the rendering checks are skipped, saying so.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { expect } from "chai";
import { getBytes, keccak256 } from "ethers";

import {
  BREACH_KIND_WORDS,
  connectSuite,
  formatCelsius,
  formatDateTime,
  readShipment,
  shipmentHistory,
} from "../../sdk/index.js";
import type { ShipmentHistory, ShipmentState } from "../../sdk/index.js";
import { REPO_ROOT, runScript } from "../support/node.js";
import type { ScriptResult } from "../support/node.js";
import { K1_DEVICE, P256_DEVICE } from "../sdk/scenario.js";
import { startScenarioNode } from "../sdk/scenario.js";
import type { ScenarioNode } from "../sdk/scenario.js";

const ARTIFACTS = join(REPO_ROOT, "test", "cli", "artifacts", "report");
const hasPoppler = ["pdftoppm", "pdftotext"].every((tool) => spawnSync(tool, ["-v"]).error === undefined);

/** An RGB image (binary PPM, what `pdftoppm` writes without -png). */
interface Raster {
  width: number;
  height: number;
  pixel(x: number, y: number): [number, number, number];
}

function readPpm(path: string): Raster {
  const data = readFileSync(path);
  const header = /^P6\s+(\d+)\s+(\d+)\s+255\s/.exec(data.subarray(0, 40).toString("latin1"));
  if (header === null) throw new Error(`${path} is not a binary PPM`);
  const width = Number(header[1]);
  const height = Number(header[2]);
  const offset = header[0].length;
  return {
    width,
    height,
    pixel: (x, y) => {
      const i = offset + (y * width + x) * 3;
      return [data[i] ?? 0, data[i + 1] ?? 0, data[i + 2] ?? 0];
    },
  };
}

/** Rows (y) of the pixels within `tolerance` of `rgb`. */
function rowsOf(image: Raster, rgb: [number, number, number], tolerance = 18): number[] {
  const rows: number[] = [];
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const [r, g, b] = image.pixel(x, y);
      if (Math.abs(r - rgb[0]) + Math.abs(g - rgb[1]) + Math.abs(b - rgb[2]) <= tolerance) {
        rows.push(y);
        break;
      }
    }
  }
  return rows;
}

describe("npm run cli -- report: the temperature report as PDF (hardhat node)", function () {
  this.timeout(180_000);
  let world: ScenarioNode;
  let state: ShipmentState;
  let history: ShipmentHistory;
  let pdfFile: string;
  let json: { file: string; blockNumber: number; digest: string; report: { verdict: string } };
  let text = "";

  const cli = (...args: string[]): Promise<ScriptResult> =>
    runScript("cli/main.ts", [...args, "--network", "localhost"], world.env, 120_000);

  before(async () => {
    if (!hasPoppler) {
      console.log(
        "      poppler-utils missing (pdftoppm, pdftotext): the rendering and text checks are skipped; " +
          "install them with `apt-get install -y poppler-utils`",
      );
    }
    world = await startScenarioNode();
    const suite = connectSuite(world.deployment, world.provider);
    state = await readShipment(suite, world.scenario.shipmentId);
    history = await shipmentHistory(suite, world.scenario.shipmentId, { toBlock: state.blockNumber });
    rmSync(ARTIFACTS, { recursive: true, force: true });
    mkdirSync(ARTIFACTS, { recursive: true });
    pdfFile = join(ARTIFACTS, "shipment-report.pdf");
    const labels = join(ARTIFACTS, "labels.json");
    const [, carrier] = world.scenario.custodians;
    writeFileSync(labels, JSON.stringify({ [carrier ?? ""]: "Polar Freight (carrier)" }));
    const r = await cli(
      "report",
      "--id",
      String(world.scenario.shipmentId),
      "--out",
      pdfFile,
      "--labels",
      labels,
      "--json",
    );
    expect(r.code, `${r.stdout}\n${r.stderr}`).to.equal(0);
    json = JSON.parse(r.stdout) as typeof json;
    writeFileSync(join(ARTIFACTS, "shipment-report.json"), r.stdout);
    if (hasPoppler) {
      const t = spawnSync("pdftotext", ["-layout", pdfFile, "-"], { encoding: "utf8" });
      expect(t.status, t.stderr).to.equal(0);
      text = t.stdout;
    }
  });

  after(async () => {
    await world?.stop();
  });

  it("writes a PDF read at the chain's latest block and says where", () => {
    expect(json.file).to.equal(pdfFile);
    expect(json.blockNumber).to.equal(state.blockNumber);
    expect(json.digest).to.match(/^0x[0-9a-f]{64}$/);
    expect(json.report.verdict).to.equal("BREACHED · REJECTED");
    const pdf = readFileSync(pdfFile);
    expect(pdf.subarray(0, 5).toString("latin1")).to.equal("%PDF-");
    expect(pdf.length).to.be.within(5_000, 400_000);
  });

  it("renders every page to PNG (pdftoppm); the artifacts are kept", function () {
    if (!hasPoppler) this.skip();
    const r = spawnSync("pdftoppm", ["-r", "110", "-png", pdfFile, join(ARTIFACTS, "page")], { encoding: "utf8" });
    expect(r.status, r.stderr).to.equal(0);
    const pngs = readdirSync(ARTIFACTS)
      .filter((f) => /^page-\d+\.png$/.test(f))
      .sort()
      .map((f) => join(ARTIFACTS, f));
    const pages = Number(/Pages:\s+(\d+)/.exec(spawnSync("pdfinfo", [pdfFile], { encoding: "utf8" }).stdout)?.[1]);
    expect(pngs.length).to.equal(pages).and.to.be.at.least(2);
    for (const png of pngs) {
      const bytes = readFileSync(png);
      expect(bytes.subarray(1, 4).toString("latin1")).to.equal("PNG");
      // A4 at 110 dpi: 910 x 1286 pixels, give or take a rounded one (IHDR width and height).
      expect(bytes.readUInt32BE(16)).to.equal(910);
      expect(bytes.readUInt32BE(20)).to.be.within(1286, 1287);
      console.log(`      rendered ${png}`);
    }
  });

  it("states the verdict in words: breaches, when, on which logger, who was liable, the decision", function () {
    if (!hasPoppler) this.skip();
    const verdict = flat(between(text, "Shipment temperature report", "Shipper"));
    expect(verdict).to.contain("Verdict: BREACHED · REJECTED");
    expect(verdict).to.contain(
      "Rejected — breached: Absolute limit, Single excursion — liable: Polar Freight (carrier) 0x709979… — reason: " +
        "not a documented reason code.",
    );
    const breaches = [...history.breaches].sort((a, b) => a.observedAt - b.observedAt);
    expect(breaches.map((b) => b.reason)).to.deep.equal(["AbsoluteLimit", "SingleExcursion"]);
    // Each breach: its rule with the profile's figures (U+2212 printed as "-"), time, logger and liable custodian.
    const [absolute, single] = breaches;
    expect(verdict).to.contain(
      `Breach 1: Absolute limit: below -5 °C or above 25 °C — at ${formatDateTime(absolute?.observedAt ?? 0)} — ` +
        `on logger ${K1_DEVICE} — out of range from `,
    );
    expect(verdict).to.contain(
      `Breach 2: Single excursion: outside 2 °C to 8 °C for 1 h or more at a stretch — at ` +
        `${formatDateTime(single?.observedAt ?? 0)} — on logger ${K1_DEVICE}`,
    );
    expect(verdict).to.contain("liable: Polar Freight (carrier) 0x709979… (custody period 1)");
    expect(verdict).to.contain("Liable: Polar Freight (carrier) 0x709979… for absolute limit, single excursion (held");
    const rejected = history.lifecycle.find((e) => e.kind === "rejected");
    expect(verdict).to.contain(
      `QA decision: rejected by ${state.receiver} at ${formatDateTime(rejected?.at ?? 0)} (block ` +
        `${rejected?.blockNumber}, tx ${rejected?.transactionHash}) — reason: TEMP_EXCURSION — not a documented reason code.`,
    );
  });

  it("lists each breach with its kind, time, logger, liable custodian, block and transaction as on chain", function () {
    if (!hasPoppler) this.skip();
    const section = between(text, "Breaches", "Excursions");
    for (const b of history.breaches) {
      const row = section
        .split("\n")
        .find((l) => l.includes(BREACH_KIND_WORDS[b.reason]) && l.includes(formatDateTime(b.observedAt)));
      expect(row, `${b.reason} row in\n${section}`).to.not.equal(undefined);
      expect(row).to.contain(String(b.deviceId)).and.to.contain("Polar Freight (carrier)");
      expect(flat(section)).to.contain(`block ${b.blockNumber} tx ${b.transactionHash}`);
    }
  });

  it("shows custody with the liable period, MKT per logger and key fingerprints as the chain holds them", async function () {
    if (!hasPoppler) this.skip();
    const custody = between(text, "Custody and liability", "Mean kinetic temperature per logger");
    const carrierRow = custody.split("\n").find((l) => l.includes("Polar Freight (carrier)") && l.includes("LIABLE"));
    expect(carrierRow, custody).to.match(/^\s*1\s/);
    // The liability cell wraps: its words are in the row's lines above the row's transaction line.
    const carrierBlock = flat(custody.slice(custody.indexOf(carrierRow ?? "?")).split(/\n\s*block /)[0] ?? "");
    for (const word of ["LIABLE for", "Absolute limit,", "Single", "excursion"]) {
      expect(carrierBlock).to.contain(word);
    }
    for (const h of history.custody) expect(flat(custody)).to.contain(`block ${h.blockNumber} tx ${h.transactionHash}`);

    const loggers = between(text, "Mean kinetic temperature per logger", "Devices and keys");
    for (const d of state.devices) {
      const row = loggers.split("\n").find((l) => new RegExp(`^\\s*${d.deviceId}\\s`).test(l));
      // The standard fonts print the minus sign as "-" (sdk/report/pdf.ts); these temperatures are positive.
      expect(row, loggers).to.contain(formatCelsius(d.evidence.mktCentiC ?? NaN));
    }

    const devices = between(text, "Devices and keys", "Temperature profile");
    const registry = connectSuite(world.deployment, world.provider).registry;
    const k1 = await registry.device(K1_DEVICE);
    const p256 = await registry.device(P256_DEVICE);
    expect(devices).to.contain(`key fingerprint ${k1.signer}`);
    const p256Fingerprint = `0x${keccak256(new Uint8Array([...getBytes(p256.qx), ...getBytes(p256.qy)])).slice(2, 42)}`;
    expect(devices).to.contain(`key fingerprint ${p256Fingerprint}`);
  });

  it("prints the profile in words, with degrees and minus signs the standard fonts can encode", function () {
    if (!hasPoppler) this.skip();
    const profile = flat(between(text, "Temperature profile", "On-chain references"));
    expect(profile).to.contain("Allowed range: 2 °C to 8 °C;");
    // VACCINE_PROFILE: freeze alarm at −0.5 °C for 1 h, absolute limits −5 and 25 °C (U+2212 printed as "-").
    expect(profile).to.contain("Freeze: at or below -0.5 °C for 1 h or more is a breach.");
    expect(profile).to.contain("Absolute limit: below -5 °C or above 25 °C (a single reading) is a breach.");
    expect(profile).to.contain("Missing data: a gap of more than 3 reading intervals is a breach.");
    // Nothing was replaced by "?" (a character the fonts cannot encode).
    expect(text).not.to.contain("?");
  });

  it("gives the on-chain references and the commands that re-check them", function () {
    if (!hasPoppler) this.skip();
    const refs = flat(between(text, "On-chain references", "How to verify this report"));
    expect(refs).to.contain(
      `Chain ${world.deployment.chainId} (localhost); ColdChain ${world.deployment.contracts.ColdChain.address}`,
    );
    const rejected = history.lifecycle.find((e) => e.kind === "rejected");
    expect(refs).to.contain(`decision: rejected ${rejected?.blockNumber} tx ${rejected?.transactionHash}`);
    for (const b of history.breaches) expect(refs).to.contain(`${b.blockNumber} tx ${b.transactionHash}`);
    const verify = between(text, "How to verify this report", "\f__end__");
    expect(verify).to.contain(`npm run cli -- report --network localhost --id 1 --block ${state.blockNumber} --json`);
    expect(text).to.contain(`report digest ${json.digest}`);
  });

  it("draws the loggers against the allowed band: the in-range logger inside it, the 30 °C spike above it", function () {
    if (!hasPoppler) this.skip();
    const r = spawnSync("pdftoppm", ["-r", "110", "-f", "1", "-l", "1", pdfFile, join(ARTIFACTS, "check")], {
      encoding: "utf8",
    });
    expect(r.status, r.stderr).to.equal(0);
    const ppm = readdirSync(ARTIFACTS).find((f) => /^check-\d+\.ppm$/.test(f));
    const image = readPpm(join(ARTIFACTS, ppm ?? "missing"));
    const band = rowsOf(image, [214, 240, 217], 6);
    expect(band.length, "allowed band drawn").to.be.greaterThan(10);
    // Logger 22 (second style: orange, dashed) reads 4.5 °C throughout: inside the 2–8 °C band.
    const orange = rowsOf(image, [217, 115, 0], 40).filter((y) => y > (band[0] ?? 0) - 200);
    const inPlot = orange.filter((y) => y >= (band[0] ?? 0) - 150 && y <= (band.at(-1) ?? 0) + 150);
    expect(inPlot.length, "logger 22 drawn").to.be.greaterThan(0);
    // The legend repeats the colour below the chart: the line itself is the rows within the plot's band span.
    const line = inPlot.filter((y) => y >= (band[0] ?? 0) && y <= (band.at(-1) ?? 0));
    expect(line.length, "logger 22 inside the band").to.be.greaterThan(0);
    // Logger 21 (dark blue) reaches 30 °C, above the band's top edge.
    const blue = rowsOf(image, [13, 51, 140], 40);
    expect(Math.min(...blue), "logger 21's spike above the band").to.be.lessThan(band[0] ?? 0);
    // Breach markers (red discs with their number) are drawn.
    expect(rowsOf(image, [179, 20, 20], 30).length, "breach markers").to.be.greaterThan(4);
  });

  it("--block rebuilds the same report (same digest) and shows the shipment as it was at an earlier block", async () => {
    await world.provider.send("evm_mine", []);
    const again = await cli(
      "report",
      "--id",
      "1",
      "--block",
      String(json.blockNumber),
      "--json",
      "--labels",
      join(ARTIFACTS, "labels.json"),
    );
    expect(again.code, again.stderr).to.equal(0);
    const parsed = JSON.parse(again.stdout) as typeof json & { file?: string };
    expect(parsed.digest).to.equal(json.digest);
    expect(parsed.file).to.equal(undefined);
    const rejected = history.lifecycle.find((e) => e.kind === "rejected");
    const before = await cli("report", "--id", "1", "--block", String((rejected?.blockNumber ?? 1) - 1), "--json");
    expect(before.code, before.stderr).to.equal(0);
    const earlier = JSON.parse(before.stdout) as { report: { verdict: string; verdictLines: string[] } };
    expect(earlier.report.verdict).to.equal("BREACHED · DELIVERED, AWAITING THE QA DECISION");
    expect(earlier.report.verdictLines.at(-1)).to.equal("QA decision: none yet (delivered, awaiting the QA decision).");
  });

  it("is listed by --help and explains itself without a chain", async () => {
    const overview = await runScript("cli/main.ts", ["--help"], {});
    expect(overview.stdout).to.match(/^ {2}report +write a shipment's temperature report as PDF/m);
    const started = Date.now();
    const help = await runScript("cli/main.ts", ["report", "--help"], {});
    expect(help.code).to.equal(0);
    expect(help.stdout).to.contain("--id <shipmentId> [--out <file.pdf>] [--block <n>]");
    expect(Date.now() - started, "report --help loads no PDF library and no chain").to.be.below(10_000);
  });

  it("refuses bad input with one line that says what to fix", async () => {
    const unknown = await cli("report", "--id", "99", "--out", join(ARTIFACTS, "none.pdf"));
    expect(unknown.code).to.equal(1);
    expect(unknown.stderr.trim()).to.equal("error: shipment 99 does not exist on localhost; check --id");
    expect(existsSync(join(ARTIFACTS, "none.pdf"))).to.equal(false);
    const ahead = await cli("report", "--id", "1", "--block", "99999999");
    expect(ahead.code).to.equal(2);
    expect(ahead.stderr).to.match(/^error: --block 99999999 is ahead of the chain \(latest block \d+\)\n$/);
    const badLabels = join(ARTIFACTS, "bad-labels.json");
    writeFileSync(badLabels, JSON.stringify({ carrier: "Polar" }));
    const labels = await cli("report", "--id", "1", "--labels", badLabels);
    expect(labels.code).to.equal(2);
    expect(labels.stderr).to.contain('"carrier" must be an address mapped to a non-empty name');
    const missing = await cli("report", "--out", "x.pdf");
    expect(missing.code).to.equal(2);
    expect(missing.stderr).to.match(/--id/);
  });
});

/** The text between the first line that is `from` and the next line that starts with `to` (both trimmed). */
function between(all: string, from: string, to: string): string {
  const lines = all.split("\n");
  const start = lines.findIndex((l) => l.trim() === from);
  const rest = lines.slice(start + 1);
  const end = rest.findIndex((l) => l.trim().startsWith(to));
  expect(start, `heading "${from}"`).to.be.at.least(0);
  return (end < 0 ? rest : rest.slice(0, end)).join("\n");
}

/** Text with its line breaks and runs of spaces as single spaces (wrapped paragraphs read as one line). */
function flat(all: string): string {
  return all.replace(/\s+/g, " ");
}
