/**
 * The dashboard's "Live alerts" panel in a real browser (Debian's Chromium driven by playwright-core): a real oracle
 * with alerts and its HTTP server on, a real broker (aedes, TCP), the in-process chain with a deployed suite and a
 * started shipment, the built dashboard served with the oracle's `GET /alerts` as its alerts URL. A device publishes
 * a reading that starts an excursion; the panel shows it (kind in words, shipment, °C with a real minus sign,
 * link to the shipment). Prints the time from the device's publish to the row on screen, and keeps a screenshot in
 * test/app/artifacts/.
 *
 * Skipped with a message when /usr/bin/chromium is absent (`apt-get install chromium`).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { expect } from "chai";
import type { BrowserContext, Page } from "playwright-core";

import { buildApp, serveApp } from "../../app/serve.js";
import type { ServedApp } from "../../app/serve.js";
import type { Oracle } from "../../oracle/oracle.js";
import { DEPLOYMENT_FORMAT, SUITE_CONTRACTS } from "../../sdk/deployment.js";
import { signReading } from "../../sdk/protocol/index.js";
import { Publisher, deployWorld, startAedes, startChain, startLoggedOracle } from "../oracle/support.js";
import type { AedesHandle, Device, NodeHandle, World } from "../oracle/support.js";
import { REPO_ROOT } from "../support/node.js";
import { CHROMIUM, launchChromiumProfile } from "../support/chromium.js";

const ARTIFACTS = join(REPO_ROOT, "test", "app", "artifacts");
const ZERO_HASH = `0x${"00".repeat(32)}`;

/** A deployment file (coldchain-deployment/1) for the world's suite, as `npm run deploy` would write it. */
async function deploymentOf(w: World): Promise<unknown> {
  const version = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;
  const contracts = {
    DeviceRegistry: w.registry,
    MktTable: w.mktTable,
    P256Fallback: w.p256Fallback,
    ColdChain: w.coldChain,
    ColdChainLens: w.lens,
  };
  const entries = await Promise.all(
    SUITE_CONTRACTS.map(async (name): Promise<[string, Record<string, unknown>]> => [
      name,
      {
        address: await contracts[name].getAddress(),
        blockNumber: w.deployBlock,
        transactionHash: contracts[name].deploymentTransaction()?.hash ?? ZERO_HASH,
        abi: `${name}@${version}`,
      },
    ]),
  );
  return {
    format: DEPLOYMENT_FORMAT,
    network: "localhost",
    chainId: Number(w.chainId),
    deployedAt: new Date().toISOString(),
    contracts: Object.fromEntries(entries),
    roles: [],
    features: { p256Precompile: true },
  };
}

describe("dashboard live alerts in Chromium (oracle GET /alerts, aedes, in-process chain)", function () {
  this.timeout(180_000);
  let node: NodeHandle | undefined;
  let broker: AedesHandle | undefined;
  let oracle: Oracle | undefined;
  let device: Publisher | undefined;
  let app: ServedApp | undefined;
  let context: BrowserContext | undefined;
  let dir: string | undefined;
  let page: Page;
  let w: World;
  const pageErrors: string[] = [];

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      console.log(`    (skipped: ${CHROMIUM} not found; install Debian's chromium package to run the browser tests)`);
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), "coldchain-live-alerts-"));
    const [n, b] = await Promise.all([startChain(), startAedes(), buildApp(join(dir, "dist"))]);
    node = n;
    broker = b;
    w = await deployWorld(node, 1);
    mkdirSync(join(dir, "deployments"));
    writeFileSync(join(dir, "deployments", "localhost.json"), JSON.stringify(await deploymentOf(w)));
    ({ oracle } = await startLoggedOracle(w, node, broker.url, { alerts: { enabled: true } }));
    expect(oracle.httpPort, "the oracle's HTTP server").to.be.a("number");
    app = await serveApp({
      deploymentsDir: join(dir, "deployments"),
      network: "localhost",
      rpcUrl: node.url,
      distDir: join(dir, "dist"),
      pollMs: 500,
      alertsUrl: `http://127.0.0.1:${oracle.httpPort}/alerts`,
    });
    device = await Publisher.connect(broker.url);
    mkdirSync(ARTIFACTS, { recursive: true });
    context = await launchChromiumProfile(join(dir, "profile"));
    page = await context.newPage();
    page.on("pageerror", (error) => pageErrors.push(error.message));
  });

  after(async () => {
    await context?.close();
    await app?.close();
    await device?.close();
    await oracle?.stop();
    await Promise.all([node?.stop(), broker?.stop()]);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("says how to enable the panel when no alerts URL is configured", async () => {
    // ?alerts= with an empty value overrides config.json's alertsUrl.
    await page.goto(`${app!.url}?alerts=`);
    const panel = page.getByTestId("live-alerts");
    await panel.waitFor();
    expect(await page.getByTestId("alerts-state").innerText()).to.equal("not configured");
    expect(await panel.innerText())
      .to.match(/alerts\.enabled/)
      .and.match(/alertsUrl/);
  });

  it("shows an excursion a device starts, newest first, linked to its shipment, in words and °C", async () => {
    await page.goto(app!.url);
    await page
      .getByTestId("alerts-state")
      .filter({ hasText: /^connected$/ })
      .waitFor({ timeout: 30_000 });
    expect(await page.getByTestId("live-alerts").innerText()).to.match(/No alerts yet/);

    const d = w.devices[0] as Device;
    const t = w.startedAt - 600; // within the oracle's future-skew limit
    const sign = (sequence: number, observedAt: number, tempCentiC: number, previousObservedAt: number) =>
      signReading(w.domain, { deviceId: d.id, sequence, observedAt, tempCentiC, flags: 0, previousObservedAt }, d.key);
    // In band (5 °C), then frozen (−1.5 °C): an excursion and a freeze start.
    await device!.publish(sign(1, t, 500, 0));
    const excursionId = `${w.shipmentId}-${d.id}-${t + 60}-excursion_started`;
    // When the row appears, by the page's clock (the same machine's clock as this process's Date.now()).
    // A string, not a function: tsx's name helpers would not exist in the page.
    await page.evaluate(`(() => {
      const observer = new MutationObserver(() => {
        if (document.querySelector('[data-testid="alert-${excursionId}"]') !== null) {
          window.__shownAt = performance.timeOrigin + performance.now();
          observer.disconnect();
        }
      });
      observer.observe(document.body, { childList: true, subtree: true });
    })()`);
    const publishedAt = Date.now();
    await device!.publish(sign(2, t + 60, -150, t));

    const row = page.getByTestId(`alert-${excursionId}`);
    await row.waitFor({ timeout: 30_000 });
    const shownAt = await page.evaluate<number | undefined>("window.__shownAt");
    expect(shownAt, "the row's arrival time").to.be.a("number");
    const text = await row.innerText();
    expect(text).to.match(/Excursion started/);
    expect(text).to.match(new RegExp(`Shipment #${w.shipmentId}`));
    expect(text).to.match(new RegExp(`logger ${d.id}`));
    expect(text).to.include("\u22121.5 °C");
    expect(text).to.match(/\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC/);
    expect(await row.getByRole("link", { name: `Shipment #${w.shipmentId}` }).getAttribute("href")).to.equal(
      `#/shipment/${w.shipmentId}`,
    );
    // The freeze of the same reading is there too, and nothing for the in-band reading.
    const freeze = page.getByTestId(`alert-${w.shipmentId}-${d.id}-${t + 60}-freeze_started`);
    await freeze.waitFor({ timeout: 30_000 });
    expect(await freeze.innerText()).to.match(/Freezing/);
    expect(await page.getByTestId("alerts").locator("tbody tr").count()).to.equal(2);
    expect(await page.getByTestId("alerts-state").innerText()).to.equal("connected");

    // The excursion ends: the newest alert is on top.
    await device!.publish(sign(3, t + 120, 500, t + 60));
    const ended = page.getByTestId(`alert-${w.shipmentId}-${d.id}-${t + 120}-excursion_ended`);
    await ended.waitFor({ timeout: 30_000 });
    expect(await page.getByTestId("alerts").locator("tbody tr").first().innerText()).to.match(/Excursion ended/);

    const shot = join(ARTIFACTS, "live-alerts.png");
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`    publish → alert on screen: ${Math.round((shownAt as number) - publishedAt)} ms`);
    console.log(`    screenshot: ${shot}`);

    // The link opens the shipment's page.
    await row.getByRole("link").click();
    expect(new URL(page.url()).hash).to.equal(`#/shipment/${w.shipmentId}`);
    expect(pageErrors).to.deep.equal([]);
  });
});
