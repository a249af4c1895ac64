/**
 * loadDeployment's sources and errors, on real files and a real HTTP server (no chain needed): the browser-safe
 * one (a parsed address book, a URL, a bundled name) and the Node one (`deployments/` of the working directory,
 * `$COLDCHAIN_DEPLOYMENTS_DIR`, `{ path }`, `{ name, dir }`); and which address books `npm run build:sdk` bundles.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { expect } from "chai";

import { bundledModuleSource, publicAddressBooks, suiteAbisSource } from "../../scripts/build-sdk.js";
import { DEPLOYMENT_FORMAT, DeploymentError } from "../../sdk/deployment.js";
import type { Deployment } from "../../sdk/deployment.js";
import { bundledNetworks, loadDeployment as loadInBrowser } from "../../sdk/load-deployment.js";
import { loadDeployment } from "../../sdk/node/index.js";
import * as suiteAbis from "../../sdk/suite-abis.js";
import { freePort } from "../support/node.js";

const contract = (n: number): Deployment["contracts"]["ColdChain"] => ({
  address: `0x${String(n).padStart(40, "0")}`,
  blockNumber: n,
  transactionHash: `0x${String(n).padStart(64, "0")}`,
  abi: "X@0.1.0",
});

/** A valid address book of `network` on `chainId`. */
function addressBook(network: string, chainId: number): Deployment {
  return {
    format: DEPLOYMENT_FORMAT,
    network,
    chainId,
    deployedAt: "2026-12-01T00:00:00.000Z",
    contracts: {
      DeviceRegistry: contract(1),
      MktTable: contract(2),
      P256Fallback: contract(3),
      ColdChain: contract(4),
      ColdChainLens: contract(5),
    },
    roles: [],
    features: { p256Precompile: true },
  };
}

describe("loadDeployment", () => {
  let dir: string;
  let cwd: string;
  let previousEnv: string | undefined;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "coldchain-load-deployment-"));
    mkdirSync(join(dir, "app", "deployments"), { recursive: true });
    mkdirSync(join(dir, "elsewhere"));
    writeFileSync(join(dir, "app", "deployments", "localhost.json"), JSON.stringify(addressBook("localhost", 31337)));
    writeFileSync(join(dir, "app", "deployments", "broken.json"), "{ not json");
    writeFileSync(join(dir, "app", "deployments", "wrong.json"), JSON.stringify({ format: "something-else" }));
    writeFileSync(join(dir, "elsewhere", "local.json"), JSON.stringify(addressBook("local", 31337)));
    cwd = process.cwd();
    previousEnv = process.env.COLDCHAIN_DEPLOYMENTS_DIR;
    delete process.env.COLDCHAIN_DEPLOYMENTS_DIR;
    process.chdir(join(dir, "app"));
  });

  after(() => {
    process.chdir(cwd);
    if (previousEnv !== undefined) process.env.COLDCHAIN_DEPLOYMENTS_DIR = previousEnv;
    rmSync(dir, { recursive: true, force: true });
  });

  describe("in Node (@coldchain/sdk/node)", () => {
    it("reads a name from deployments/ of the working directory", () => {
      expect(loadDeployment("localhost").contracts.ColdChain.address).to.equal(contract(4).address);
    });

    it("reads $COLDCHAIN_DEPLOYMENTS_DIR instead when it is set", () => {
      process.env.COLDCHAIN_DEPLOYMENTS_DIR = join(dir, "elsewhere");
      try {
        expect(loadDeployment("local").network).to.equal("local");
        expect(() => loadDeployment("localhost")).to.throw(DeploymentError, join(dir, "elsewhere", "localhost.json"));
      } finally {
        delete process.env.COLDCHAIN_DEPLOYMENTS_DIR;
      }
    });

    it("reads { path } and { name, dir }", () => {
      expect(loadDeployment({ path: "../elsewhere/local.json" }).network).to.equal("local");
      expect(loadDeployment({ name: "local", dir: join(dir, "elsewhere") }).network).to.equal("local");
      expect(loadDeployment("local", join(dir, "elsewhere")).network).to.equal("local");
    });

    it("names what it looked for and where when the file is missing, not JSON or not an address book", () => {
      expect(() => loadDeployment("nowhere")).to.throw(
        DeploymentError,
        `no deployment for network "nowhere" (looked for ${join(dir, "app", "deployments", "nowhere.json")}: not ` +
          "found; bundled with @coldchain/sdk: none in this build); set COLDCHAIN_DEPLOYMENTS_DIR or pass { path } or " +
          "{ name, dir } to read another file, or run `npm run deploy -- --network nowhere` first",
      );
      expect(() => loadDeployment({ path: "missing.json" })).to.throw(
        DeploymentError,
        `no address book at ${join(dir, "app", "missing.json")} (file not found)`,
      );
      expect(() => loadDeployment({ name: "nowhere", dir: join(dir, "elsewhere") })).to.throw(
        DeploymentError,
        `no deployment for network "nowhere" (looked for ${join(dir, "elsewhere", "nowhere.json")}: not found)`,
      );
      expect(() => loadDeployment("broken")).to.throw(
        DeploymentError,
        `${join(dir, "app", "deployments", "broken.json")} is not valid JSON (`,
      );
      expect(() => loadDeployment("wrong")).to.throw(
        DeploymentError,
        `${join(dir, "app", "deployments", "wrong.json")} is not a coldchain deployment (${DEPLOYMENT_FORMAT}) at format`,
      );
      expect(() => loadDeployment("../etc/passwd")).to.throw(DeploymentError, 'invalid network name "../etc/passwd"');
    });
  });

  describe("browser-safe (@coldchain/sdk)", () => {
    let server: Server;
    let base: string;

    before(async () => {
      server = createServer((req, res) => {
        if (req.url === "/deployments/sepolia.json") {
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify(addressBook("sepolia", 11155111)));
        } else if (req.url === "/deployments/garbled.json") {
          res.writeHead(200, { "content-type": "application/json" });
          res.end("<html>");
        } else {
          res.writeHead(404).end();
        }
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const address = server.address();
      if (address === null || typeof address === "string") throw new Error("no address");
      base = `http://127.0.0.1:${address.port}/`;
    });

    after(() => {
      server.close();
    });

    it("validates an address book it is given", () => {
      const parsed = JSON.parse(JSON.stringify(addressBook("sepolia", 11155111))) as Deployment;
      expect(loadInBrowser(parsed).chainId).to.equal(11155111);
      expect(() => loadInBrowser({ format: DEPLOYMENT_FORMAT, network: "x" })).to.throw(
        DeploymentError,
        "the address book given to loadDeployment is not a coldchain deployment",
      );
    });

    it("fetches { url }, and names the URL when that fails", async () => {
      expect((await loadInBrowser({ url: `${base}deployments/sepolia.json` })).network).to.equal("sepolia");
      expect((await loadDeployment({ url: new URL("deployments/sepolia.json", base) })).network).to.equal("sepolia");
      const failure = async (url: string): Promise<string> => {
        try {
          await loadInBrowser({ url });
        } catch (error) {
          expect(error).to.be.instanceOf(DeploymentError);
          return (error as Error).message;
        }
        throw new Error(`${url} loaded`);
      };
      expect(await failure(`${base}deployments/none.json`)).to.equal(
        `the address book ${base}deployments/none.json could not be loaded (HTTP 404 Not Found); check that the ` +
          "app serves the deployments/<network>.json written by `npm run deploy` there",
      );
      expect(await failure(`${base}deployments/garbled.json`)).to.match(
        new RegExp(`^the address book ${base}deployments/garbled\\.json is not valid JSON \\(`),
      );
      const closed = `http://127.0.0.1:${await freePort()}/deployments/x.json`; // nothing listens there
      expect(await failure(closed)).to.match(/could not be fetched \(fetch failed: connect ECONNREFUSED/);
      expect(await failure(closed)).to.contain(`the address book ${closed} could not be fetched`);
    });

    it("loads a bundled network by name, and says which ones there are when it has none by that name", () => {
      expect(bundledNetworks()).to.deep.equal([]); // the repository's sources: the package build fills them in
      expect(() => loadInBrowser("sepolia")).to.throw(
        DeploymentError,
        'no address book "sepolia" bundled with @coldchain/sdk (bundled networks: none in this build)',
      );
    });
  });

  describe("what npm run build:sdk generates", () => {
    it("bundles the public networks' address books (not local, localhost, test or dev chain ids), validated", async () => {
      const books = join(dir, "books");
      mkdirSync(books);
      for (const [name, chainId] of [
        ["sepolia", 11155111],
        ["baseSepolia", 84532],
        ["localhost", 31337],
        ["local", 31337],
        ["test-run", 11155111],
        ["devnet", 1337],
      ] as const) {
        writeFileSync(join(books, `${name}.json`), JSON.stringify(addressBook(name, chainId)));
      }
      writeFileSync(join(books, "notes.txt"), "not an address book");
      const found = publicAddressBooks(books);
      expect(found.map((b) => b.name)).to.deep.equal(["baseSepolia", "sepolia"]);

      // The generated module is what the package's main entry imports.
      const module = join(dir, "bundled-deployments.mjs");
      writeFileSync(module, bundledModuleSource(found));
      const { BUNDLED_DEPLOYMENTS } = (await import(module)) as { BUNDLED_DEPLOYMENTS: Record<string, Deployment> };
      expect(Object.keys(BUNDLED_DEPLOYMENTS)).to.deep.equal(["baseSepolia", "sepolia"]);
      expect(BUNDLED_DEPLOYMENTS.sepolia).to.deep.equal(addressBook("sepolia", 11155111));
      expect(Object.isFrozen(BUNDLED_DEPLOYMENTS)).to.equal(true);

      writeFileSync(join(books, "broken.json"), "{");
      expect(() => publicAddressBooks(books)).to.throw(/broken\.json is not valid JSON/);
    });

    it("bind the same ABIs as the factories, as plain data (the package's suite-abis.js)", async () => {
      const module = join(dir, "suite-abis.mjs");
      writeFileSync(module, suiteAbisSource());
      const generated = (await import(module)) as Record<string, unknown>;
      expect(Object.keys(generated).sort()).to.deep.equal(Object.keys(suiteAbis).sort());
      for (const [name, abi] of Object.entries(suiteAbis)) expect(generated[name], name).to.deep.equal(abi);
    });
  });
});
