/**
 * `@coldchain/oracle` as an operator meets it: the staged package (npm run build:oracle-package) is packed and
 * installed from its tarball into a fresh project in the temporary directory, where plain Node runs its bins (no
 * tsx, no build). `npx coldchain-oracle --help` and `npx coldchain --help` answer; then the installed
 * `coldchain-oracle` relays for real: a `hardhat node` child with the suite deployed and a device on a started
 * shipment (its address book in ./deployments of the working directory), the embedded aedes broker on 127.0.0.1, a config file
 * as docs/operations.md shows it (`chain.deployment`) and the signing key in a Hardhat keystore (§2: the user's
 * default keystore file, its password from ORACLE_KEYSTORE_PASSWORD). Readings the device publishes over MQTT end
 * up on chain, the installed `coldchain show` reads them back, and SIGTERM stops the oracle with exit code 0.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

import { expect } from "chai";
import { Wallet } from "ethers";

import { buildOraclePackage } from "../../scripts/packages/build-oracle.js";
import {
  INTERVAL_SECONDS,
  Publisher,
  deployWorld,
  fundedOracleKey,
  onchainReadingCount,
  reading,
  startAedes,
  startHardhatNode,
  waitFor,
} from "../oracle/support.js";
import type { AedesHandle, NodeHandle, World } from "../oracle/support.js";
import { deploymentOf } from "../sdk/scenario.js";
import { expectSuccess, freshProject, kB, node22Env, npmInstall, pack, run } from "./consumer-project.js";
import type { Tarball } from "./consumer-project.js";

const KEYSTORE_PASSWORD = "consumer-test keystore password";
/** One a minute from the shipment's start: all within the 300 s the oracle accepts ahead of its clock. */
const READINGS = 4;

/** The part of hardhat-keystore's `src/internal/keystores/encryption.ts` that writes a keystore. */
interface HardhatKeystoreEncryption {
  createMasterKey(args: { password: string }): { salt: Uint8Array; masterKey: Uint8Array };
  createEmptyEncryptedKeystore(args: { masterKey: Uint8Array; salt: Uint8Array }): object;
  addSecretToKeystore(args: { masterKey: Uint8Array; encryptedKeystore: object; key: string; value: string }): object;
}

/** A production keystore as `npx hardhat keystore set ORACLE_PRIVATE_KEY` writes it (hardhat-keystore's own code). */
async function writeKeystore(path: string, privateKey: string): Promise<void> {
  const entry = import.meta.resolve("@nomicfoundation/hardhat-keystore");
  const hh = (await import(new URL("./internal/keystores/encryption.js", entry).href)) as HardhatKeystoreEncryption;
  const { masterKey, salt } = hh.createMasterKey({ password: KEYSTORE_PASSWORD });
  const empty = hh.createEmptyEncryptedKeystore({ masterKey, salt });
  const keystore = hh.addSecretToKeystore({
    masterKey,
    encryptedKeystore: empty,
    key: "ORACLE_PRIVATE_KEY",
    value: privateKey,
  });
  writeFileSync(path, JSON.stringify(keystore, null, 2));
}

/** Bytes under `dir`, symlinks not followed. */
function diskUsage(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += diskUsage(path);
    else if (entry.isFile()) total += statSync(path).size;
  }
  return total;
}

describe("@coldchain/oracle from its tarball", function () {
  this.timeout(300_000);

  let workDir: string;
  let project: string;
  let tarball: Tarball;

  before(async function () {
    const packageDir = await buildOraclePackage();
    workDir = freshProject("coldchain-oracle-pack-");
    tarball = await pack(packageDir, workDir);
    project = freshProject("coldchain-oracle-consumer-");
    const started = Date.now();
    await npmInstall(project, [tarball.path]);
    const packages = readdirSync(join(project, "node_modules")).filter((n) => !n.startsWith("."));
    console.log(
      `      @coldchain/oracle: ${kB(tarball.size)} tarball, ${tarball.entryCount} files, ${kB(tarball.unpackedSize)} unpacked; ` +
        `installed in ${((Date.now() - started) / 1000).toFixed(1)} s: ${packages.length} top-level packages, ` +
        `${(diskUsage(join(project, "node_modules")) / 1e6).toFixed(1)} MB`,
    );
  });

  after(() => {
    for (const dir of [workDir, project]) if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("ships the bundled bins, the worker threads' entries and the README, and no TypeScript", () => {
    for (const file of [
      "dist/node/coldchain-oracle.js",
      "dist/node/coldchain.js",
      "dist/node/worker.js",
      "dist/node/writer-worker.js",
      "README.md",
      "package.json",
    ]) {
      expect(tarball.files).to.include(file);
    }
    expect(tarball.files.filter((f) => f.endsWith(".ts"))).to.deep.equal([]);
  });

  it("answers `npx coldchain-oracle --help` and `npx coldchain --help` at once, without a stack trace", async () => {
    const oracleHelp = expectSuccess(
      await run("npx", ["--no-install", "coldchain-oracle", "--help"], { cwd: project, timeoutMs: 30_000 }),
      "npx coldchain-oracle --help",
    );
    expect(oracleHelp.stdout + oracleHelp.stderr).to.match(/usage: coldchain-oracle --config <file\.json>/);
    const cliHelp = expectSuccess(
      await run("npx", ["--no-install", "coldchain", "--help"], { cwd: project, timeoutMs: 30_000 }),
      "npx coldchain --help",
    );
    expect(cliHelp.stdout).to.match(/Commands:/);
    expect(cliHelp.stdout).to.match(/device register/);
    for (const output of [oracleHelp, cliHelp]) expect(output.stdout + output.stderr).to.not.match(/\n\s+at /);

    // A wrong option: a one-line error and the usage, exit code 2, no stack trace.
    const wrong = await run("npx", ["--no-install", "coldchain-oracle", "--no-such-option"], {
      cwd: project,
      timeoutMs: 30_000,
    });
    expect(wrong.code).to.equal(2);
    expect(wrong.stderr).to.match(/^coldchain-oracle: .*--no-such-option/);
    expect(wrong.stderr).to.not.match(/\n\s+at /);
  });

  describe("a short relay against a hardhat node", () => {
    let node: NodeHandle;
    let broker: AedesHandle;
    let w: World;
    let oracle: ChildProcess | undefined;

    before(async () => {
      node = await startHardhatNode();
      w = await deployWorld(node, 1);
      broker = await startAedes();
    });

    after(async () => {
      if (oracle !== undefined && oracle.exitCode === null && oracle.signalCode === null) oracle.kill("SIGKILL");
      await broker?.stop();
      await node?.stop();
    });

    it("relays readings published over MQTT to the chain, and exits with 0 on SIGTERM", async () => {
      // The operator's files: the signing key in the user's Hardhat keystore, the config as docs/operations.md shows.
      const deploymentsDir = join(project, "deployments");
      mkdirSync(deploymentsDir);
      writeFileSync(
        join(deploymentsDir, "localhost.json"),
        JSON.stringify(await deploymentOf(w, "localhost"), null, 2),
      );
      const configHome = join(project, "config-home");
      mkdirSync(join(configHome, "hardhat-nodejs"), { recursive: true });
      const privateKey = await fundedOracleKey(node);
      await writeKeystore(join(configHome, "hardhat-nodejs", "keystore.json"), privateKey);
      const configPath = join(project, "oracle.json");
      writeFileSync(
        configPath,
        JSON.stringify(
          {
            oracleId: "consumer-test",
            mqtt: { url: broker.url },
            // ./deployments/localhost.json names the chain id, ColdChain and the first registry block.
            chain: {
              deployment: "localhost",
              rpcUrls: [node.url],
              confirmations: 1,
              pollIntervalMs: 100,
            },
            signer: { privateKey: { from: "keystore", key: "ORACLE_PRIVATE_KEY" } },
            // One signature worker and the store's writer thread (the default): both run from the package's files.
            verify: { workers: 1 },
            batch: { maxAgeMs: 0 },
            store: { path: join(project, "oracle.db") },
            http: { port: 0 },
          },
          null,
          2,
        ),
      );

      // The installed bin itself (what a service manager runs), on PATH's Node 22.
      const child = spawn(join(project, "node_modules", ".bin", "coldchain-oracle"), ["--config", configPath], {
        cwd: project,
        env: node22Env({
          XDG_CONFIG_HOME: configHome,
          ORACLE_KEYSTORE_PASSWORD: KEYSTORE_PASSWORD,
          COLDCHAIN_DEPLOYMENTS_DIR: undefined, // the default: ./deployments
        }),
        stdio: ["ignore", "pipe", "pipe"],
      });
      oracle = child;
      const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
      const messages: string[] = [];
      const errors: string[] = [];
      const lines: string[] = [];
      let stderr = "";
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      createInterface({ input: child.stdout }).on("line", (line) => {
        lines.push(line);
        try {
          const parsed = JSON.parse(line) as { level: number; msg: string };
          messages.push(parsed.msg);
          if (parsed.level >= 50) errors.push(line);
        } catch {
          messages.push(line);
        }
      });
      const running = (): boolean => {
        if (child.exitCode !== null)
          throw new Error(`the oracle exited (${child.exitCode}): ${stderr}\n${messages.join("\n")}`);
        return messages.includes("oracle running");
      };
      await waitFor("the installed oracle to run", running, 60_000);
      expect(messages.join("\n")).to.not.include(privateKey.slice(2));

      const device = await Publisher.connect(broker.url);
      try {
        const d = w.devices[0];
        if (d === undefined) throw new Error("no device");
        for (let seq = 1; seq <= READINGS; seq++) {
          await device.publish(reading(w, d, seq, w.startedAt + seq * INTERVAL_SECONDS, 450 + seq));
        }
      } finally {
        await device.close();
      }
      await waitFor(
        "the readings on chain",
        async () => (await onchainReadingCount(w)) === READINGS,
        60_000,
        200,
      ).catch((error: unknown) => {
        throw new Error(`${(error as Error).message}; the oracle logged:\n${lines.slice(-30).join("\n")}\n${stderr}`);
      });
      expect(await onchainReadingCount(w)).to.equal(READINGS);
      // Sent by the key from the keystore (a fresh account, funded for this test).
      expect(await node.provider.getTransactionCount(new Wallet(privateKey).address)).to.be.greaterThan(0);

      // The operator CLI reads the same address book; localhost's URL from COLDCHAIN_LOCALHOST_URL, as in the repo.
      const show = expectSuccess(
        await run(
          "npx",
          ["--no-install", "coldchain", "show", "--network", "localhost", "--id", String(w.shipmentId), "--json"],
          {
            cwd: project,
            env: node22Env({ COLDCHAIN_LOCALHOST_URL: node.url, COLDCHAIN_DEPLOYMENTS_DIR: undefined }),
            timeoutMs: 60_000,
          },
        ),
        "npx coldchain show",
      );
      expect(show.stderr, "the installed CLI has no contracts to build").to.equal("");
      const shown = JSON.parse(show.stdout) as {
        state: { shipmentId: string; status: string; condition: { readingCount: number } };
      };
      expect(shown.state.shipmentId).to.equal(String(w.shipmentId));
      expect(shown.state.status).to.equal("InTransit");
      expect(shown.state.condition.readingCount).to.equal(READINGS);

      const stoppedAt = Date.now();
      child.kill("SIGTERM");
      const [code, signal] = await exited;
      console.log(`      ${READINGS} readings relayed; stopped ${Date.now() - stoppedAt} ms after SIGTERM`);
      expect({ code, signal }, `${stderr}\n${messages.join("\n")}`).to.deep.equal({ code: 0, signal: null });
      expect(messages).to.include("shutting down");
      expect(stderr, "nothing on stderr (warnings, stack traces)").to.equal("");
      expect(errors, "error lines in the oracle's log").to.deep.equal([]);
    });
  });
});
