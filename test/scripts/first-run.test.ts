/**
 * The first run on a fresh clone: every command's `--help` (run as its npm script runs it) answers at once in a
 * copy of the repository without the contracts' build, and builds nothing; the build is made on demand and says
 * so (`ensureContractsBuilt`); a closed pipe ends a command quietly; `npm run deploy`'s command line, its
 * unreachable-node message, and deploying through `--rpc-url` (or localhost) with DEPLOYER_PRIVATE_KEY.
 */
import { spawn } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";

import { expect } from "chai";
import { HDNodeWallet } from "ethers";

import { CUSTOM_NETWORK, UsageError, parseDeployArgs } from "../../scripts/lib/deploy-args.js";
import { BuildError, contractsBuildState, ensureContractsBuilt } from "../../scripts/lib/ensure-build.js";
import { REPO_ROOT, freePort, runScript, startHardhatNode } from "../support/node.js";
import type { HardhatNode } from "../support/node.js";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node <args>` in `cwd`; `closeStdout` closes the reading end of its stdout at once (`… | head -0`). */
function runNode(args: readonly string[], cwd: string, closeStdout = false): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd,
      env: { ...process.env, FORCE_COLOR: "0" },
      stdio: ["ignore", "pipe", "pipe"],
      signal: AbortSignal.timeout(30_000),
    });
    let stdout = "";
    let stderr = "";
    if (closeStdout) child.stdout.destroy();
    else child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

/** The command an npm script runs: `node [flags] <entry>.ts`, as arguments for `node` (one command, no `&&`). */
function scriptCommand(name: string): string[] {
  const scripts = (
    JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }
  ).scripts;
  const script = scripts[name];
  if (script === undefined) throw new Error(`no npm script "${name}"`);
  expect(script, `npm script ${name}`).to.match(/^node [^&|;]*\.ts$/);
  return script.split(" ").slice(1);
}

describe("first run on a fresh clone", function () {
  this.timeout(120_000);

  describe("--help of every command", () => {
    let clone: string;

    before(() => {
      // A checkout without the build: the sources, and the dependencies linked (what the install gives).
      clone = mkdtempSync(join(tmpdir(), "coldchain-fresh-clone-"));
      const skip = new Set(["node_modules", "artifacts", "types", "cache", "coverage", "dist", ".git"]);
      cpSync(REPO_ROOT, clone, { recursive: true, filter: (source) => !skip.has(basename(source)) });
      symlinkSync(realpathSync(join(REPO_ROOT, "node_modules")), join(clone, "node_modules"), "dir");
      expect(contractsBuildState(clone)).to.equal("missing");
    });

    after(() => rmSync(clone, { recursive: true, force: true }));

    for (const [script, usage] of [
      ["start", /usage: npm start/],
      ["deploy", /Usage: npm run deploy/],
      ["cli", /Usage: npm run cli/],
      ["simulate", /Usage: npm run simulate/],
      ["oracle", /usage: coldchain-oracle/],
      ["oracle:broker", /usage: npm run oracle:broker[\s\S]*--port <n>/],
      ["build:sdk", /usage: npm run build:sdk/],
      ["build:contracts-package", /Usage: npm run build:contracts-package/],
      ["build:oracle-package", /Usage: npm run build:oracle-package/],
    ] as const) {
      it(`npm run ${script} -- --help prints the usage, exits 0 and builds nothing`, async () => {
        const run = await runNode([...scriptCommand(script), "--help"], clone);
        expect(run.code, run.stderr).to.equal(0);
        expect(`${run.stdout}${run.stderr}`).to.match(usage);
        expect(run.stderr).not.to.match(/compiling|Error|at .+:\d+:\d+/);
        expect(existsSync(join(clone, "artifacts")), "artifacts/ written").to.equal(false);
        expect(existsSync(join(clone, "types")), "types/ written").to.equal(false);
      });
    }

    it("a command's help in the CLI needs no build either", async () => {
      const run = await runNode([...scriptCommand("cli"), "show", "--help"], clone);
      expect(run.code, run.stderr).to.equal(0);
      expect(run.stdout).to.match(/Usage: npm run cli -- show/);
      expect(existsSync(join(clone, "types"))).to.equal(false);
    });

    for (const [script, args, pattern] of [
      ["start", ["--bogus"], /^npm start: Unknown option '--bogus'; see npm start -- --help\n$/],
      ["start", ["--chain-port", "x"], /^npm start: --chain-port must be a port \(0\.\.65535\), got "x"/],
      ["deploy", ["--bogus"], /^error: Unknown option '--bogus'; see --help\n$/],
      ["oracle:broker", ["--bogus"], /^oracle:broker: Unknown option '--bogus'; see --help\n$/],
      ["oracle", ["--bogus"], /^coldchain-oracle: Unknown option '--bogus'; see --help\n/],
      ["simulate", ["--bogus"], /^simulate: Unknown option '--bogus'; see --help\n$/],
      ["cli", ["show", "--bogus"], /^error: Unknown option '--bogus'; see `npm run cli -- show --help`\n$/],
    ] as const) {
      it(`npm run ${script} -- ${args.join(" ")}: one line, exit code 2, no stack trace`, async () => {
        const run = await runNode([...scriptCommand(script), ...args], clone);
        expect(run.code, run.stderr).to.equal(2);
        expect(run.stderr).to.match(pattern);
        expect(run.stderr).not.to.match(/ at .+:\d+:\d+/);
      });
    }
  });

  describe("the build on demand", () => {
    let root: string;
    const past = new Date(Date.now() - 60_000);
    const sol = () => join(root, "contracts", "A.sol");
    const types = () => join(root, "types", "ethers-contracts", "index.ts");

    beforeEach(() => {
      root = mkdtempSync(join(tmpdir(), "coldchain-build-state-"));
      mkdirSync(join(root, "contracts"));
      writeFileSync(sol(), "// SPDX-License-Identifier: MIT\n");
      utimesSync(sol(), past, past);
    });

    afterEach(() => rmSync(root, { recursive: true, force: true }));

    const built = () => {
      mkdirSync(join(root, "artifacts"), { recursive: true });
      mkdirSync(join(root, "types", "ethers-contracts"), { recursive: true });
      writeFileSync(types(), "export {};\n");
    };

    it("is missing on a fresh clone, fresh once built, stale when a source is newer", () => {
      expect(contractsBuildState(root)).to.equal("missing");
      built();
      expect(contractsBuildState(root)).to.equal("fresh");
      const later = new Date(Date.now() + 5_000);
      utimesSync(sol(), later, later);
      expect(contractsBuildState(root)).to.equal("stale");
    });

    it("needs nothing where there are no sources (an installed package)", () => {
      rmSync(join(root, "contracts"), { recursive: true });
      expect(contractsBuildState(root)).to.equal("fresh");
    });

    it("says it is compiling, builds, and is then fresh; a build that compiled nothing still counts", async () => {
      const lines: string[] = [];
      let builds = 0;
      const state = await ensureContractsBuilt({
        root,
        say: (line) => lines.push(line),
        build: () => {
          builds++;
          built();
          utimesSync(types(), past, past); // as if nothing was rewritten
          return Promise.resolve(0);
        },
      });
      expect(state).to.equal("missing");
      expect(lines).to.deep.equal(["compiling contracts (first run, ~30 s)…"]);
      expect(builds).to.equal(1);
      expect(contractsBuildState(root)).to.equal("fresh");
      expect(
        await ensureContractsBuilt({ root, say: (line) => lines.push(line), build: () => Promise.resolve(1) }),
      ).to.equal("fresh");
      expect(lines).to.have.length(1);
    });

    it("a failed build is a BuildError that says how to see why", async () => {
      try {
        await ensureContractsBuilt({ root, say: () => {}, build: () => Promise.resolve(1) });
        expect.fail("no error");
      } catch (error) {
        expect(error).to.be.instanceOf(BuildError);
        expect((error as Error).message).to.match(/exit code 1.*npx hardhat build/);
      }
    });
  });

  for (const script of ["cli", "simulate", "deploy", "start"]) {
    it(`a closed pipe (\`npm run ${script} -- --help | head -0\`) ends it quietly with exit code 0`, async () => {
      const run = await runNode([...scriptCommand(script), "--help"], REPO_ROOT, true);
      expect(run.stderr).to.equal("");
      expect(run.code).to.equal(0);
    });
  }

  describe("npm run deploy", () => {
    it("parses its command line", () => {
      expect(parseDeployArgs(["--network", "localhost"])).to.include({ network: "localhost", rpcUrl: undefined });
      expect(parseDeployArgs(["--rpc-url", "http://10.0.0.5:8545"])).to.include({
        network: CUSTOM_NETWORK,
        rpcUrl: "http://10.0.0.5:8545",
      });
      expect(parseDeployArgs(["--rpc-url", "https://rpc.example/v3/k", "--network", "staging"])).to.include({
        network: "staging",
      });
      expect(parseDeployArgs(["--help"]).help).to.equal(true);
      for (const [args, message] of [
        [[], /missing --network <name> .* or --rpc-url <url>/],
        [["--rpc-url", "10.0.0.5:8545"], /--rpc-url must be an http\(s\) URL/],
        [["--network", "../etc"], /--network must be a name/],
        [["--network"], /--network <value>. argument missing; see --help|argument missing/],
        [["--bogus"], /Unknown option '--bogus'; see --help/],
      ] as const) {
        expect(() => parseDeployArgs([...args]), args.join(" "))
          .to.throw(UsageError)
          .with.property("message")
          .that.matches(message);
      }
    });

    it("names the URL it could not reach (--rpc-url, and a network's variable), API key hidden", async () => {
      const port = await freePort();
      const key = "0x" + "11".repeat(32);
      const direct = await runScript(
        "scripts/deploy.ts",
        ["--rpc-url", `http://127.0.0.1:${port}/v3/0123456789abcdef0123456789abcdef`],
        { DEPLOYER_PRIVATE_KEY: key },
      );
      expect(direct.code).to.equal(1);
      expect(direct.stderr).to.match(
        new RegExp(`^error: cannot reach the node at http://127\\.0\\.0\\.1:${port}/v3/\\*\\*\\* \\(.*refused\\)`),
      );
      expect(direct.stderr).not.to.include("0123456789abcdef");
      const sepolia = await runScript("scripts/deploy.ts", ["--network", "sepolia"], {
        SEPOLIA_RPC_URL: `http://127.0.0.1:${port}`,
        DEPLOYER_PRIVATE_KEY: key,
      });
      expect(sepolia.code).to.equal(1);
      expect(sepolia.stderr).to.match(
        new RegExp(`^error: cannot reach the sepolia node at http://127\\.0\\.0\\.1:${port} `),
      );
      expect(sepolia.stderr.trim().split("\n")).to.have.length(1);
    });

    describe("with DEPLOYER_PRIVATE_KEY (hardhat node)", () => {
      let node: HardhatNode;
      let dir: string;
      const account = (index: number) =>
        HDNodeWallet.fromPhrase(
          "test test test test test test test test test test test junk",
          undefined,
          `m/44'/60'/0'/0/${index}`,
        );

      before(async () => {
        node = await startHardhatNode();
        dir = mkdtempSync(join(tmpdir(), "coldchain-deploy-rpc-"));
      });

      after(async () => {
        await node.stop();
        rmSync(dir, { recursive: true, force: true });
      });

      it("--rpc-url deploys to any node with the key, all roles to it, as deployments/<name>.json", async () => {
        const deployer = account(7);
        const result = await runScript("scripts/deploy.ts", ["--rpc-url", node.url, "--network", "devnet"], {
          DEPLOYER_PRIVATE_KEY: deployer.privateKey,
          COLDCHAIN_DEPLOYMENTS_DIR: dir,
        });
        expect(result.code, result.stderr).to.equal(0);
        expect(result.stdout).to.include(`Deployed the suite on devnet (chain 31337) from ${deployer.address}.`);
        expect(result.stdout).to.include("Roles: all to the deployer");
        const book = JSON.parse(readFileSync(join(dir, "devnet.json"), "utf8")) as { roles: { account: string }[] };
        expect(new Set(book.roles.map((r) => r.account))).to.deep.equal(new Set([deployer.address]));
      });

      it("--network localhost takes DEPLOYER_PRIVATE_KEY from the environment when it is set", async () => {
        const deployer = account(8);
        const result = await runScript("scripts/deploy.ts", ["--network", "localhost"], {
          DEPLOYER_PRIVATE_KEY: deployer.privateKey,
          COLDCHAIN_LOCALHOST_URL: node.url,
          COLDCHAIN_DEPLOYMENTS_DIR: dir,
        });
        expect(result.code, result.stderr).to.equal(0);
        expect(result.stdout).to.include(`from ${deployer.address}.`);
      });
    });
  });
});
