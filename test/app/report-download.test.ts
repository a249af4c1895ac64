/**
 * "Download PDF report" on the dashboard's shipment page, in a real browser (Debian's Chromium driven by
 * playwright-core) against a real `hardhat node` with the breached, rejected shipment of test/sdk/scenario.ts:
 * the click downloads the temperature report made in the page (the report module and pdf-lib load on that click,
 * from their own chunk: the main bundle does not contain them), and the downloaded PDF is the one
 * `npm run cli -- report --block <n>` makes of the same block (same digest). The PDF and a screenshot go to
 * test/app/artifacts/report/ (untracked).
 *
 * Skipped with a message when /usr/bin/chromium is absent (`apt-get install chromium`); the PDF's text check needs
 * `pdftotext` (poppler-utils) and is skipped, saying so, without it.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { expect } from "chai";
import { PDFDocument } from "pdf-lib";
import type { Browser, Page } from "playwright-core";

import { buildApp, serveApp } from "../../app/serve.js";
import type { ServedApp } from "../../app/serve.js";
import { startScenarioNode } from "../sdk/scenario.js";
import type { ScenarioNode } from "../sdk/scenario.js";
import { REPO_ROOT, runScript } from "../support/node.js";
import { CHROMIUM, launchChromium } from "../support/chromium.js";

const ARTIFACTS = join(REPO_ROOT, "test", "app", "artifacts", "report");
const hasPdftotext = spawnSync("pdftotext", ["-v"]).error === undefined;

describe("dashboard: Download PDF report (Chromium, hardhat node)", function () {
  this.timeout(240_000);
  let world: ScenarioNode;
  let dir: string;
  let app: ServedApp;
  let browser: Browser;
  let page: Page;
  let labelsFile: string;
  const pageErrors: string[] = [];

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      console.log(
        `      ${CHROMIUM} missing: the dashboard's report download is not tested (apt-get install chromium)`,
      );
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), "coldchain-report-app-"));
    const [started] = await Promise.all([startScenarioNode(), buildApp(join(dir, "dist"))]);
    world = started;
    const [, carrier] = world.scenario.custodians;
    const labels = { [carrier ?? ""]: "Polar Freight (carrier)" };
    labelsFile = join(dir, "labels.json");
    writeFileSync(labelsFile, JSON.stringify(labels));
    app = await serveApp({
      deploymentsDir: world.dir,
      network: "localhost",
      rpcUrl: world.node.url,
      distDir: join(dir, "dist"),
      pollMs: 500,
      labels,
    });
    rmSync(ARTIFACTS, { recursive: true, force: true });
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await launchChromium();
    page = await (
      await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } })
    ).newPage();
    page.on("pageerror", (error) => pageErrors.push(error.message));
  });

  after(async () => {
    await browser?.close();
    await app?.close();
    await world?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("keeps the report module and pdf-lib out of the main bundle, in a chunk of their own", () => {
    const assets = join(dir, "dist", "assets");
    const scripts = readdirSync(assets).filter((f) => f.endsWith(".js"));
    const html = readFileSync(join(dir, "dist", "index.html"), "utf8");
    const main = scripts.filter((f) => html.includes(f));
    expect(main).to.have.length(1);
    const withPdfLib = scripts.filter((f) => readFileSync(join(assets, f), "utf8").includes("PDFDocument"));
    expect(withPdfLib).to.have.length(1);
    expect(withPdfLib).to.not.include(main[0]);
    for (const f of [...main, ...withPdfLib]) {
      const bytes = readFileSync(join(assets, f));
      console.log(`      ${f === main[0] ? "main" : "report"} chunk ${f}: ${(bytes.length / 1000).toFixed(1)} kB raw`);
    }
  });

  it("downloads the report of the block the page shows; the CLI makes the same report of that block", async () => {
    await page.goto(`${app.url}#/shipment/${world.scenario.shipmentId}`);
    const button = page.getByTestId("report-download");
    await button.waitFor();
    await page.screenshot({ path: join(ARTIFACTS, "shipment-page.png"), fullPage: false });
    const [download] = await Promise.all([page.waitForEvent("download", { timeout: 60_000 }), button.click()]);
    expect(download.suggestedFilename()).to.match(/^shipment-1-block-\d+-report\.pdf$/);
    const file = join(ARTIFACTS, "dashboard-report.pdf");
    await download.saveAs(file);
    console.log(`      downloaded ${file}`);
    const pdf = readFileSync(file);
    expect(pdf.subarray(0, 5).toString("latin1")).to.equal("%PDF-");
    expect(pageErrors).to.deep.equal([]);

    const block = Number(/^shipment-1-block-(\d+)-report\.pdf$/.exec(download.suggestedFilename())?.[1]);
    const cli = await runScript(
      "cli/main.ts",
      ["report", "--id", "1", "--block", String(block), "--labels", labelsFile, "--json", "--network", "localhost"],
      world.env,
      120_000,
    );
    expect(cli.code, cli.stderr).to.equal(0);
    const { digest } = JSON.parse(cli.stdout) as { digest: string };
    // The digest is in the document's keywords (and in every page's footer).
    const loaded = await PDFDocument.load(pdf);
    expect(loaded.getKeywords()).to.contain(digest);
    expect(loaded.getPageCount()).to.be.at.least(2);
    if (!hasPdftotext) {
      console.log("      pdftotext missing (poppler-utils): the downloaded PDF's text is not checked");
      return;
    }
    const text = spawnSync("pdftotext", ["-layout", file, "-"], { encoding: "utf8" }).stdout;
    expect(text).to.contain("Verdict: BREACHED · REJECTED");
    expect(text).to.contain("Polar Freight (carrier)");
    expect(text).to.contain(`report digest ${digest}`);
  });
});
