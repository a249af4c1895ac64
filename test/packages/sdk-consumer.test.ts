/**
 * `@coldchain/sdk` as a dApp team meets it: built (`scripts/build-sdk.ts`, into a temporary package folder) and
 * packed with `npm pack`, then installed from the tarball into fresh projects under the system's temporary
 * directory, outside the repository, with the `ethers` of this repository's lockfile:
 *
 * - a plain ESM Node script (`node script.mjs`: no tsx, no build step) reads the shipment that
 *   test/sdk/scenario.ts drove on a real `hardhat node`, with `loadDeployment("localhost")` from the project's own
 *   `deployments/`; its output must equal the chain's state read directly;
 * - docs/integration.md: every fenced ```ts block starting with `// example: <name>` runs in that project with
 *   `node` (type stripping) and type-checks against the package's `.d.ts`: the code in the document is the code
 *   tested, against the published shape of the package;
 * - a small Vite app imports the SDK, builds, and reads the same shipment in Chromium (state, history, chart series
 *   and EPCIS export, as a dashboard would); its bundle holds one copy of ethers, no contract bytecode, and stays
 *   under 450 kB.
 *
 * The address books bundled into the test's package are the node's `localhost.json` (left out: a dev chain) and a
 * copy of it renamed to "sepolia" (kept), so loading a bundled network by name is exercised too.
 * Prints the tarball's size and file count and the bundle's size. Chromium parts skip without /usr/bin/chromium.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:http";
import type { Server } from "node:http";
import { isBuiltin } from "node:module";
import { tmpdir } from "node:os";
import { dirname, extname, join } from "node:path";
import { gzipSync } from "node:zlib";

import { expect } from "chai";

import { buildSdk } from "../../scripts/build-sdk.js";
import { shipmentStatusName } from "../../sdk/names.js";
import { TEST_SECP256K1_PRIVATE_KEY, secp256k1Address } from "../../sdk/protocol/index.js";
import { connectSuite, readShipment, shipmentHistory, temperatureTimeline, toEpcisDocument } from "../../sdk/index.js";
import {
  ColdChain__factory,
  ColdChainLens__factory,
  DeviceRegistry__factory,
} from "../../types/ethers-contracts/index.js";
import { REPO_ROOT } from "../support/node.js";
import { CHROMIUM, launchChromium } from "../support/chromium.js";
import { lockedVersion, node22Env, npmInstall, run } from "./consumer-project.js";
import { startScenarioNode } from "../sdk/scenario.js";
import type { ScenarioNode } from "../sdk/scenario.js";

const rootVersion = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;
const BUNDLE_LIMIT_BYTES = 450_000;
const SEPOLIA_CHAIN_ID = 11155111;

const DOC = join(REPO_ROOT, "docs", "integration.md");

/** The doc's runnable examples by name, in document order. */
function extractExamples(markdown: string): Map<string, string> {
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
  report: [
    /^BREACHED · REJECTED at block \d+, digest 0x[0-9a-f]{64}$/m,
    /^Liable: Polar Freight \(carrier\) 0x709979… for absolute limit, single excursion \(held the shipment /m,
    /^\d+ bytes, starts with %PDF-$/m,
  ],
};

/** Whether `node_modules/<path>` (a package.json) is a package's own manifest, not a nested folder's. */
function isPackageRoot(path: string): boolean {
  return /^(@[^/]+\/)?[^/@][^/]*\/package\.json$/.test(path.replace(/^.*node_modules\//, ""));
}

/** A fresh project (package.json only) in `parent`. */
function newProject(parent: string, name: string): string {
  const dir = join(parent, name);
  mkdirSync(dir);
  writeFileSync(join(dir, "package.json"), `${JSON.stringify({ name, private: true, type: "module" }, null, 2)}\n`);
  return dir;
}

/** Relative and bare specifiers the JavaScript files reachable from `entry` import (static and dynamic). */
function importGraph(entry: string): { files: string[]; bare: string[] } {
  const files = new Set<string>();
  const bare = new Set<string>();
  const visit = (file: string): void => {
    if (files.has(file)) return;
    files.add(file);
    const code = readFileSync(file, "utf8");
    for (const m of code.matchAll(
      /(?:^|[\s;])(?:import|export)\b[^'"]*?from\s*["']([^"']+)["']|import\s*\(\s*["']([^"']+)["']\s*\)|^import\s*["']([^"']+)["']/gm,
    )) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (spec === undefined) continue;
      if (spec.startsWith(".")) visit(join(dirname(file), spec));
      else bare.add(spec);
    }
  };
  visit(entry);
  return { files: [...files], bare: [...bare].sort() };
}

/** The line both consumers print, from the shipment as the chain holds it. */
function shipmentLine(s: {
  id: string;
  status: string;
  custodian: string;
  readings: number;
  min: number;
  max: number;
  periods: number;
  devices: string;
  coldChain: string;
}): string {
  return (
    `shipment ${s.id} ${s.status} held by ${s.custodian}; ${s.readings} readings ${s.min}..${s.max} centi-C; ` +
    `${s.periods} custody periods; devices ${s.devices}; ColdChain ${s.coldChain}`
  );
}

/** The same line as JavaScript, for the consumers (given `state` from readShipment and the deployment). */
const SHIPMENT_LINE_JS = `
function shipmentLine(state, deployment) {
  const c = state.condition;
  return \`shipment \${state.shipmentId} \${state.status} held by \${state.custodian}; \${c.readingCount} readings \` +
    \`\${c.minCentiC}..\${c.maxCentiC} centi-C; \${state.custody.length} custody periods; \` +
    \`devices \${state.devices.map((d) => d.deviceId).join(",")}; ColdChain \${deployment.contracts.ColdChain.address}\`;
}
`;

const NODE_SCRIPT = `import { JsonRpcProvider } from "ethers";
import { bundledNetworks, connectSuite, readShipment } from "@coldchain/sdk";
import { loadDeployment } from "@coldchain/sdk/node";
import { TEST_SECP256K1_PRIVATE_KEY, secp256k1Address } from "@coldchain/sdk/protocol";
import manifest from "@coldchain/sdk/package.json" with { type: "json" };
${SHIPMENT_LINE_JS}
const deployment = loadDeployment("localhost"); // ./deployments/localhost.json of this project
const provider = new JsonRpcProvider(process.env.RPC_URL, undefined, { staticNetwork: true });
const state = await readShipment(connectSuite(deployment, provider), 1n);
console.log(shipmentLine(state, deployment));
const sepolia = loadDeployment("sepolia"); // no ./deployments/sepolia.json: the package's bundled one
console.log(\`bundled \${bundledNetworks().join(",")}: sepolia is chain \${sepolia.chainId}\`);
for (const bad of ["nowhere", { path: "deployments/broken.json" }]) {
  try {
    loadDeployment(bad);
  } catch (error) {
    console.log(\`\${error.name}: \${error.message}\`);
  }
}
console.log(\`\${manifest.name}@\${manifest.version}; protocol test key \${secp256k1Address(TEST_SECP256K1_PRIVATE_KEY)}\`);
provider.destroy();
`;

const VITE_CONFIG = `import { writeFileSync } from "node:fs";

// Records which modules went into the bundle (to count the copies of ethers).
export default {
  build: { target: "es2022", chunkSizeWarningLimit: 1000 },
  plugins: [
    {
      name: "module-ids",
      generateBundle(_options, bundle) {
        const ids = Object.values(bundle).flatMap((c) => (c.type === "chunk" ? (c.moduleIds ?? Object.keys(c.modules)) : []));
        writeFileSync("module-ids.json", JSON.stringify(ids));
      },
    },
  ],
};
`;

const VITE_HTML = `<!doctype html>
<html>
  <head><meta charset="utf-8" /><title>coldchain consumer</title></head>
  <body>
    <pre id="out">loading</pre>
    <script type="module" src="./main.js"></script>
  </body>
</html>
`;

const VITE_MAIN = `import { JsonRpcProvider } from "ethers";
import {
  bundledNetworks,
  connectSuite,
  loadDeployment,
  readShipment,
  shipmentHistory,
  temperatureTimeline,
  toEpcisDocument,
} from "@coldchain/sdk";
${SHIPMENT_LINE_JS}
async function main() {
  const deployment = await loadDeployment({ url: new URL("deployments/localhost.json", location.href) });
  const provider = new JsonRpcProvider(new URL("rpc", location.href).href, undefined, { staticNetwork: true });
  const suite = connectSuite(deployment, provider);
  const state = await readShipment(suite, 1n);
  // What a dashboard also does (and so what the bundle size covers): history, chart series, EPCIS.
  const history = await shipmentHistory(suite, 1n, { toBlock: state.blockNumber });
  const timeline = temperatureTimeline(history);
  const epcis = toEpcisDocument(history, state);
  const points = timeline.devices.reduce((n, d) => n + d.times.length, 0);
  const summary = \`history \${history.readings.length} readings, \${points} chart points, \${epcis.epcisBody.eventList.length} EPCIS events\`;
  const sepolia = loadDeployment("sepolia");
  let missing = "";
  try {
    await loadDeployment({ url: new URL("deployments/nowhere.json", location.href) });
  } catch (error) {
    missing = \`\${error.name}: \${error.message}\`;
  }
  provider.destroy();
  return [
    shipmentLine(state, deployment),
    \`bundled \${bundledNetworks().join(",")}: sepolia is chain \${sepolia.chainId}\`,
    missing,
    summary,
  ].join("\\n");
}
const out = document.getElementById("out");
main().then(
  (text) => { out.textContent = text; out.dataset.done = "ok"; },
  (error) => { out.textContent = \`error: \${error.message}\`; out.dataset.done = "error"; },
);
`;

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html",
  ".js": "text/javascript",
  ".json": "application/json",
};

/** Serves `dist` and forwards POST /rpc to the node (same origin: the page needs no CORS from the node). */
async function serve(dist: string, rpcUrl: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    void (async () => {
      const path = new URL(req.url ?? "/", "http://x").pathname;
      if (req.method === "POST" && path === "/rpc") {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        const upstream = await fetch(rpcUrl, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: Buffer.concat(chunks),
        });
        res.writeHead(upstream.status, { "content-type": "application/json" });
        res.end(Buffer.from(await upstream.arrayBuffer()));
        return;
      }
      const file = join(dist, path === "/" ? "index.html" : path);
      if (!file.startsWith(dist) || !existsSync(file) || !file.includes(".")) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-type": CONTENT_TYPES[extname(file)] ?? "application/octet-stream" });
      res.end(readFileSync(file));
    })().catch((error: unknown) => res.writeHead(500).end(String(error)));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no address");
  return { url: `http://127.0.0.1:${address.port}/`, server };
}

describe("@coldchain/sdk installed from its npm pack tarball", function () {
  this.timeout(240_000);
  let world: ScenarioNode;
  let work: string;
  let tarball: string;
  let expectedLine: string;
  /** The same summary from the SDK's sources in this repository. */
  let expectedSummary: string;
  const ethersVersion = lockedVersion("ethers");

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "coldchain-sdk-consumer-"));
    world = await startScenarioNode();
    // Address books to bundle: the dev chain's (left out) and a public network's (a copy named sepolia).
    const books = join(work, "books");
    mkdirSync(books);
    const local = JSON.parse(readFileSync(join(world.dir, "localhost.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(join(books, "localhost.json"), JSON.stringify(local));
    writeFileSync(
      join(books, "sepolia.json"),
      JSON.stringify({ ...local, network: "sepolia", chainId: SEPOLIA_CHAIN_ID }),
    );
    const built = await buildSdk({ deploymentsDir: books, outDir: join(work, "package"), say: () => undefined });
    expect(built.networks).to.deep.equal(["sepolia"]);

    const packed = await run("npm", ["pack", "--json", "--pack-destination", work, built.packageDir], { cwd: work });
    expect(packed.code, packed.stderr).to.equal(0);
    const [info] = JSON.parse(packed.stdout) as {
      filename: string;
      size: number;
      unpackedSize: number;
      files: { path: string }[];
    }[];
    if (info === undefined) throw new Error(`npm pack printed no package:\n${packed.stdout}`);
    tarball = join(work, info.filename);
    console.log(
      `    tarball ${info.filename}: ${(info.size / 1000).toFixed(1)} kB, ${info.files.length} files ` +
        `(${(info.unpackedSize / 1000).toFixed(1)} kB unpacked)`,
    );
    const paths = info.files.map((f) => f.path);
    expect(paths).to.include.members(["package.json", "README.md", "dist/sdk/index.js", "dist/sdk/index.d.ts"]);
    expect(paths).to.include("dist/deployments/sepolia.json");
    expect(paths.filter((p) => !/^(package\.json|README\.md|dist\/.+\.(js|d\.ts|json))$/.test(p))).to.deep.equal([]);
    expect(
      paths.filter((p) => /localhost|(?<!\.d)\.ts$|(^|\/)(test|oracle|cli|scripts|bench)\//.test(p)),
    ).to.deep.equal([]);

    // The chain's state, read directly from the contract (not through the SDK).
    const coldChain = ColdChain__factory.connect(world.deployment.contracts.ColdChain.address, world.provider);
    const id = world.scenario.shipmentId;
    const [info1, condition] = await Promise.all([coldChain.shipment(id), coldChain.condition(id)]);
    const suite = connectSuite(world.deployment, world.provider);
    const state = await readShipment(suite, id);
    const history = await shipmentHistory(suite, id, { toBlock: state.blockNumber });
    const points = temperatureTimeline(history).devices.reduce((n, d) => n + d.times.length, 0);
    const events = toEpcisDocument(history, state).epcisBody.eventList.length;
    expect(history.readings.length).to.equal(Number(condition.readingCount));
    expectedSummary = `history ${history.readings.length} readings, ${points} chart points, ${events} EPCIS events`;
    expectedLine = shipmentLine({
      id: String(id),
      status: shipmentStatusName(info1.status),
      custodian: info1.custodian,
      readings: Number(condition.readingCount),
      min: Number(condition.minCentiC),
      max: Number(condition.maxCentiC),
      periods: Number(info1.custodyPeriods),
      devices: info1.deviceIds.map(String).join(","),
      coldChain: world.deployment.contracts.ColdChain.address,
    });
  });

  after(async () => {
    await world?.stop();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  describe("in a plain Node project", () => {
    let project: string;

    before(async () => {
      project = newProject(work, "node-app");
      await npmInstall(project, [tarball, `ethers@${ethersVersion}`, `pdf-lib@${lockedVersion("pdf-lib")}`]);
      mkdirSync(join(project, "deployments"));
      copyFileSync(join(world.dir, "localhost.json"), join(project, "deployments", "localhost.json"));
      writeFileSync(join(project, "deployments", "broken.json"), "{ not json");
    });

    it("installs one ethers and no oracle, broker or native modules", () => {
      const files = readdirSync(join(project, "node_modules"), { recursive: true }).map(String);
      const packages = files.filter((p) => /(^|\/)package\.json$/.test(p) && isPackageRoot(p));
      const bytes = files.reduce((n, p) => {
        const stat = statSync(join(project, "node_modules", p));
        return stat.isFile() ? n + stat.size : n;
      }, 0);
      console.log(
        `      installed with ethers: ${packages.length} packages, ${(bytes / 1e6).toFixed(1)} MB in node_modules`,
      );
      const ethersCopies = files.filter((p) =>
        /(^|\/)node_modules\/ethers\/package\.json$|^ethers\/package\.json$/.test(p),
      );
      expect(ethersCopies).to.deep.equal(["ethers/package.json"]);
      for (const forbidden of [
        "mqtt",
        "aedes",
        "pino",
        "better-sqlite3",
        "secp256k1",
        "tiny-secp256k1",
        "hardhat",
        "tsx",
      ]) {
        expect(existsSync(join(project, "node_modules", forbidden)), forbidden).to.equal(false);
      }
      expect(files.filter((p) => p.endsWith(".node") || p.endsWith(".wasm"))).to.deep.equal([]);
      const manifest = JSON.parse(
        readFileSync(join(project, "node_modules", "@coldchain", "sdk", "package.json"), "utf8"),
      ) as {
        peerDependencies: Record<string, string>;
        peerDependenciesMeta: Record<string, { optional?: boolean }>;
        dependencies: Record<string, string>;
      };
      // pdf-lib for the temperature report's entry (@coldchain/sdk/report) only: an optional peer, installed by the
      // projects that make reports (this one does); the main entry never imports it.
      expect(Object.keys(manifest.peerDependencies).sort()).to.deep.equal(["ethers", "pdf-lib"]);
      expect(manifest.peerDependenciesMeta).to.deep.equal({ "pdf-lib": { optional: true } });
      expect(Object.keys(manifest.dependencies).sort()).to.deep.equal(["@noble/curves", "zod"]);
    });

    it("has a browser-safe main entry: no Node built-in anywhere in its import graph", () => {
      const dist = join(project, "node_modules", "@coldchain", "sdk", "dist", "sdk");
      for (const entry of ["index.js", "protocol/index.js"]) {
        const { files, bare } = importGraph(join(dist, entry));
        expect(files.length, entry).to.be.greaterThan(5);
        expect(
          bare.filter((s) => s.startsWith("node:") || isBuiltin(s)),
          entry,
        ).to.deep.equal([]);
        expect(bare, entry).to.deep.equal(
          entry === "index.js"
            ? ["@noble/curves/nist.js", "@noble/curves/secp256k1.js", "ethers", "zod"]
            : ["@noble/curves/nist.js", "@noble/curves/secp256k1.js", "ethers"],
        );
      }
      // The report entry is browser-safe too, and the only one that loads the PDF library.
      const report = importGraph(join(dist, "report", "index.js"));
      expect(report.bare.filter((s) => s.startsWith("node:") || isBuiltin(s))).to.deep.equal([]);
      expect(report.bare).to.include("pdf-lib");
      // The check can fail: the Node entry's graph reads files.
      expect(importGraph(join(dist, "node", "index.js")).bare).to.include("node:fs");
    });

    it("a plain ESM script (`node script.mjs`) reads the shipment with the project's own address book", async () => {
      writeFileSync(join(project, "script.mjs"), NODE_SCRIPT);
      const r = await run(process.execPath, ["script.mjs"], {
        cwd: project,
        timeoutMs: 60_000,
        env: node22Env({ RPC_URL: world.node.url }),
      });
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stderr).to.equal("");
      const lines = r.stdout.trim().split("\n");
      expect(lines[0]).to.equal(expectedLine);
      expect(lines[1]).to.equal(`bundled sepolia: sepolia is chain ${SEPOLIA_CHAIN_ID}`);
      expect(lines[2]).to.equal(
        `DeploymentError: no deployment for network "nowhere" (looked for ${join(realpathSync(project), "deployments", "nowhere.json")}: ` +
          "not found; bundled with @coldchain/sdk: sepolia); set COLDCHAIN_DEPLOYMENTS_DIR or pass { path } or " +
          "{ name, dir } to read another file, or run `npm run deploy -- --network nowhere` first",
      );
      expect(lines[3]).to.match(
        new RegExp(
          `^DeploymentError: ${join(realpathSync(project), "deployments", "broken.json")} is not valid JSON \\(`,
        ),
      );
      expect(lines[4]).to.equal(
        `@coldchain/sdk@${rootVersion}; protocol test key ${secp256k1Address(TEST_SECP256K1_PRIVATE_KEY)}`,
      );
      expect(lines).to.have.length(5);
    });
  });

  describe("docs/integration.md examples, in the Node project", () => {
    const examples = extractExamples(readFileSync(DOC, "utf8"));
    let project: string;

    before(() => {
      project = join(work, "node-app");
      for (const [name, code] of examples) writeFileSync(join(project, `${name}.ts`), code);
    });

    it("has the documented examples", () => {
      expect([...examples.keys()]).to.deep.equal(Object.keys(EXPECTED));
    });

    for (const [name, patterns] of Object.entries(EXPECTED)) {
      it(`runs the "${name}" example with node`, async () => {
        expect(examples.has(name), `no example "${name}" in docs/integration.md`).to.equal(true);
        const r = await run(process.execPath, [`${name}.ts`], {
          cwd: project,
          timeoutMs: 60_000,
          env: node22Env({ COLDCHAIN_RPC_URL: world.node.url }),
        });
        expect(r.code, `${r.stdout}\n${r.stderr}`).to.equal(0);
        for (const pattern of patterns) expect(r.stdout, r.stdout).to.match(pattern);
      });
    }

    it("type-checks the examples against the package's declarations", async () => {
      const tsconfig = {
        compilerOptions: {
          module: "nodenext",
          target: "es2022",
          lib: ["es2023"],
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          verbatimModuleSyntax: true,
          allowImportingTsExtensions: true,
          types: ["node"],
          typeRoots: [join(REPO_ROOT, "node_modules", "@types")],
        },
        include: [...examples.keys()].map((name) => `${name}.ts`),
      };
      writeFileSync(join(project, "tsconfig.json"), JSON.stringify(tsconfig, null, 2));
      const tsc = join(REPO_ROOT, "node_modules", "typescript", "bin", "tsc");
      const r = await run(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: project });
      expect(r.code, `${r.stdout}\n${r.stderr}`).to.equal(0);
    });
  });

  describe("in a Vite app, in Chromium", () => {
    let project: string;
    let served: { url: string; server: Server } | undefined;

    before(async function () {
      if (!existsSync(CHROMIUM)) {
        console.log(`    (skipped: ${CHROMIUM} not found; install Debian's chromium package to run the browser test)`);
        this.skip();
      }
      project = newProject(work, "vite-app");
      await npmInstall(project, [tarball, `ethers@${ethersVersion}`, `vite@${lockedVersion("vite")}`]);
      // A dApp that makes no reports does not get the PDF library (an optional peer of @coldchain/sdk/report).
      expect(existsSync(join(project, "node_modules", "pdf-lib")), "pdf-lib installed unasked").to.equal(false);
      writeFileSync(join(project, "vite.config.js"), VITE_CONFIG);
      writeFileSync(join(project, "index.html"), VITE_HTML);
      writeFileSync(join(project, "main.js"), VITE_MAIN);
      mkdirSync(join(project, "public", "deployments"), { recursive: true });
      copyFileSync(join(world.dir, "localhost.json"), join(project, "public", "deployments", "localhost.json"));
      const r = await run(process.execPath, [join(project, "node_modules", "vite", "bin", "vite.js"), "build"], {
        cwd: project,
      });
      expect(r.code, `${r.stdout}\n${r.stderr}`).to.equal(0);
    });

    after(() => {
      served?.server.close();
    });

    it("bundles one copy of ethers, under 450 kB", () => {
      const assets = join(project, "dist", "assets");
      const scripts = readdirSync(assets).filter((f) => f.endsWith(".js"));
      const code = scripts.map((f) => readFileSync(join(assets, f)));
      const raw = code.reduce((n, c) => n + c.length, 0);
      const gzip = code.reduce((n, c) => n + gzipSync(c).length, 0);
      const ids = JSON.parse(readFileSync(join(project, "module-ids.json"), "utf8")) as string[];
      const ethersRoots = new Set(
        ids
          .map((id) => /^(.*\/node_modules\/ethers)\//.exec(id.replaceAll("\\", "/"))?.[1])
          .filter((r) => r !== undefined),
      );
      const versionStrings = code.join("").split(ethersVersion).length - 1;
      console.log(
        `    Vite bundle: ${scripts.length} script(s), ${(raw / 1000).toFixed(1)} kB raw, ${(gzip / 1000).toFixed(1)} kB gzip; ` +
          `ethers copies: ${ethersRoots.size} (its version string ${ethersVersion} ${versionStrings}x)`,
      );
      expect([...ethersRoots]).to.deep.equal([join(realpathSync(project), "node_modules", "ethers")]);
      expect(ids.some((id) => id.includes("/@coldchain/sdk/dist/sdk/state.js"))).to.equal(true);
      expect(raw).to.be.lessThan(BUNDLE_LIMIT_BYTES);
      // connectSuite binds ABIs: the contracts' bytecode (in the factories, for deploying) is not in the bundle.
      const bundle = code.join("");
      expect(bundle).to.contain("submitReadings");
      for (const factory of [ColdChain__factory, ColdChainLens__factory, DeviceRegistry__factory]) {
        expect(bundle.includes(factory.bytecode.slice(2, 66)), `bytecode of ${factory.name}`).to.equal(false);
      }
    });

    it("reads the shipment in the page", async () => {
      served = await serve(join(project, "dist"), world.node.url);
      const browser = await launchChromium();
      try {
        const page = await browser.newPage();
        const errors: string[] = [];
        page.on("pageerror", (error) => errors.push(error.message));
        await page.goto(served.url);
        await page.waitForSelector("#out[data-done]", { timeout: 30_000 });
        const text = (await page.textContent("#out")) ?? "";
        expect(await page.getAttribute("#out", "data-done"), text).to.equal("ok");
        const lines = text.split("\n");
        expect(lines[0]).to.equal(expectedLine);
        expect(lines[1]).to.equal(`bundled sepolia: sepolia is chain ${SEPOLIA_CHAIN_ID}`);
        expect(lines[2]).to.equal(
          `DeploymentError: the address book ${served.url}deployments/nowhere.json could not be loaded (HTTP 404 Not Found); ` +
            "check that the app serves the deployments/<network>.json written by `npm run deploy` there",
        );
        expect(lines[3]).to.equal(expectedSummary);
        expect(lines).to.have.length(4);
        expect(errors).to.deep.equal([]);
      } finally {
        await browser.close();
      }
    });
  });
});
