/**
 * `npm run deploy` against a real `hardhat node` (child process, free port) into a temporary
 * COLDCHAIN_DEPLOYMENTS_DIR: the address book it writes, idempotent re-runs, an added role sent alone, the
 * upgrade story (`--migrate`: a new immutable suite, the old one recorded and still serving its shipments),
 * bad input, and the oracle's `chain.deployment` config key.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { expect } from "chai";
import { HDNodeWallet, JsonRpcProvider, Wallet, ZeroHash, id } from "ethers";

import { parseConfig } from "../../oracle/config/index.js";
import { isOracleError } from "../../oracle/errors.js";
import { SUITE_CONTRACTS, deploymentStartBlock, parseDeployment } from "../../sdk/deployment.js";
import type { Deployment } from "../../sdk/deployment.js";
import { ColdChain__factory, DeviceRegistry__factory } from "../../types/ethers-contracts/index.js";
import { VACCINE_PROFILE } from "../support/deploy.js";
import { runScript, startHardhatNode } from "../support/node.js";
import type { HardhatNode } from "../support/node.js";

const MNEMONIC = "test test test test test test test test test test test junk";
function devWallet(index: number, provider: JsonRpcProvider): Wallet {
  const hd = HDNodeWallet.fromPhrase(MNEMONIC, undefined, `m/44'/60'/0'/0/${index}`);
  return new Wallet(hd.privateKey, provider);
}

describe("npm run deploy (hardhat node)", function () {
  this.timeout(120_000);
  let node: HardhatNode;
  let dir: string;
  let provider: JsonRpcProvider;
  let env: NodeJS.ProcessEnv;
  let first: Deployment;
  let genesisSnapshot: string;

  const deploy = (...args: string[]) => runScript("scripts/deploy.ts", ["--network", "localhost", ...args], env);
  const readFile = (): Deployment =>
    parseDeployment(JSON.parse(readFileSync(join(dir, "localhost.json"), "utf8")), "localhost.json");

  before(async () => {
    node = await startHardhatNode();
    dir = mkdtempSync(join(tmpdir(), "coldchain-deploy-"));
    env = { COLDCHAIN_LOCALHOST_URL: node.url, COLDCHAIN_DEPLOYMENTS_DIR: dir };
    provider = new JsonRpcProvider(node.url, undefined, { staticNetwork: true, cacheTimeout: -1 });
    genesisSnapshot = (await provider.send("evm_snapshot", [])) as string;
  });

  after(async () => {
    provider.destroy();
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("deploys the suite and writes deployments/localhost.json", async () => {
    const result = await deploy();
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.match(/Deployed the suite on localhost \(chain 31337\)/);
    first = readFile();
    expect(first.chainId).to.equal(31337);
    expect(first.network).to.equal("localhost");
    expect(first.features.p256Precompile).to.equal(true); // EDR osaka answers at 0x100
    expect(result.stderr).not.to.match(/WARNING/);
    for (const name of SUITE_CONTRACTS) {
      const c = first.contracts[name];
      expect(await provider.getCode(c.address), name).not.to.equal("0x");
      const receipt = await provider.getTransactionReceipt(c.transactionHash);
      expect(receipt?.contractAddress, name).to.equal(c.address);
      expect(receipt?.blockNumber, name).to.equal(c.blockNumber);
      expect(c.abi).to.equal(`${name}@0.1.0`);
      expect(result.stdout).to.include(c.address);
    }
    const deployer = devWallet(0, provider).address;
    const coldChain = ColdChain__factory.connect(first.contracts.ColdChain.address, provider);
    const registry = DeviceRegistry__factory.connect(first.contracts.DeviceRegistry.address, provider);
    expect(await coldChain.hasRole(id("SHIPPER_ROLE"), deployer)).to.equal(true);
    expect(await coldChain.hasRole(id("QA_ROLE"), deployer)).to.equal(true);
    expect(await registry.hasRole(id("DEVICE_MANAGER_ROLE"), deployer)).to.equal(true);
    expect(await coldChain.hasRole(ZeroHash, deployer)).to.equal(true);
    expect(first.roles).to.deep.include({ contract: "ColdChain", role: "SHIPPER_ROLE", account: deployer });
    expect(first.roles).to.have.length(7);
    // The lens and ColdChain are wired to the registry and each other.
    expect(await coldChain.P256_PRECOMPILE()).to.equal(true);
  });

  it("changes nothing when re-run, and says so", async () => {
    const blockBefore = await provider.getBlockNumber();
    const before = readFileSync(join(dir, "localhost.json"), "utf8");
    const result = await deploy();
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.match(/^Nothing changed: the suite is already deployed on localhost/m);
    expect(await provider.getBlockNumber()).to.equal(blockBefore);
    expect(readFileSync(join(dir, "localhost.json"), "utf8")).to.equal(before);
  });

  it("sends only the new grant when the role parameters gain an account", async () => {
    const shipper = devWallet(6, provider).address;
    const deployer = devWallet(0, provider).address;
    const params = join(dir, "params.json");
    writeFileSync(
      params,
      JSON.stringify({
        ColdChainSuite: {
          deviceManagers: [deployer],
          guardians: [deployer],
          shippers: [deployer, shipper],
          qa: [deployer],
        },
      }),
    );
    const blockBefore = await provider.getBlockNumber();
    const result = await deploy("--parameters", params);
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.match(/Updated the suite on localhost: 1 transaction/);
    expect(await provider.getBlockNumber()).to.equal(blockBefore + 1);
    const coldChain = ColdChain__factory.connect(first.contracts.ColdChain.address, provider);
    expect(await coldChain.hasRole(id("SHIPPER_ROLE"), shipper)).to.equal(true);
    const updated = readFile();
    expect(updated.contracts).to.deep.equal(first.contracts);
    expect(updated.deployedAt).to.equal(first.deployedAt);
    expect(updated.roles).to.deep.include({ contract: "ColdChain", role: "SHIPPER_ROLE", account: shipper });

    const again = await deploy("--parameters", params);
    expect(again.stdout).to.match(/^Nothing changed/m);
    expect(await provider.getBlockNumber()).to.equal(blockBefore + 1);
  });

  it("refuses bad input with one line and a non-zero exit", async () => {
    const badParams = join(dir, "bad-params.json");
    writeFileSync(badParams, JSON.stringify({ ColdChainSuite: { shippers: ["0x1234"] } }));
    const blockBefore = await provider.getBlockNumber();
    // Independent: run side by side.
    const [unknown, missing, noUrl, bad] = await Promise.all([
      runScript("scripts/deploy.ts", ["--network", "mainnet"], env),
      runScript("scripts/deploy.ts", [], env),
      runScript("scripts/deploy.ts", ["--network", "sepolia"], env),
      deploy("--parameters", badParams),
    ]);
    expect(unknown.code).to.not.equal(0);
    expect(unknown.stderr.trim()).to.match(/^error: unknown network "mainnet"; configured: (\w+, )*localhost, sepolia/);
    expect(unknown.stderr.trim().split("\n")).to.have.length(1);

    expect(missing.code).to.not.equal(0);
    expect(missing.stderr.trim()).to.equal(
      "error: missing --network <name> (e.g. --network localhost) or --rpc-url <url>; see --help",
    );

    if (process.env.SEPOLIA_RPC_URL === undefined) {
      expect(noUrl.code).to.not.equal(0);
      // One line naming the variable and how to set it (the wording depends on whether a keystore is in use).
      expect(noUrl.stderr.trim().split("\n")).to.have.length(1);
      expect(noUrl.stderr).to.match(/^error: .*SEPOLIA_RPC_URL.*npx hardhat keystore set SEPOLIA_RPC_URL/);
    }

    expect(bad.code).to.not.equal(0);
    expect(bad.stderr.trim()).to.match(/^error: .*bad-params\.json: ColdChainSuite\.shippers\.0: an 0x-prefixed/);
    expect(await provider.getBlockNumber()).to.equal(blockBefore);
  });

  it("warns loudly on a chain without P256VERIFY and records it in the address book", async () => {
    // `prague`: an in-process chain before Fusaka, so 0x100 holds no precompile.
    const result = await runScript("scripts/deploy.ts", ["--network", "prague"], env);
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout + result.stderr).to.include("WARNING: this chain has no P256VERIFY precompile");
    expect(result.stdout + result.stderr).to.match(/~250k gas per reading/);
    const book = parseDeployment(JSON.parse(readFileSync(join(dir, "prague.json"), "utf8")), "prague.json");
    expect(book.features.p256Precompile).to.equal(false);
    expect(readFile().features.p256Precompile).to.equal(true); // the osaka node of the other tests has it
  });

  it("migrates: a new suite, the old one recorded under previous and still serving its shipments", async () => {
    // A shipment in flight on the current (old) suite.
    const admin = devWallet(0, provider);
    const receiver = devWallet(2, provider).address;
    const oldChain = ColdChain__factory.connect(first.contracts.ColdChain.address, admin);
    const oldRegistry = DeviceRegistry__factory.connect(first.contracts.DeviceRegistry.address, admin);
    await (await oldRegistry.registerSecp256k1Device(1, admin.address, 60, devWallet(9, provider).address)).wait();
    await (await oldChain.createProfile(VACCINE_PROFILE)).wait();
    const params = {
      receiver,
      owner: admin.address,
      profileId: 1,
      deviceIds: [1],
      plannedStartAt: 0,
      externalRef: ZeroHash,
    };
    await (await oldChain.createShipment(params)).wait();
    await (await oldChain.startShipment(1)).wait();

    const result = await deploy("--migrate");
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.match(/Migrated localhost/);
    const migrated = readFile();
    for (const name of SUITE_CONTRACTS) {
      expect(migrated.contracts[name].address, name).not.to.equal(first.contracts[name].address);
    }
    expect(migrated.previous).to.have.length(1);
    expect(migrated.previous?.[0]?.contracts).to.deep.equal(first.contracts);
    expect(migrated.previous?.[0]?.deployedAt).to.equal(first.deployedAt);
    expect(migrated.ignitionDeploymentId).to.match(/^localhost-\d{14}$/);

    // The new suite starts empty; the old one still holds and serves its shipment.
    const newChain = ColdChain__factory.connect(migrated.contracts.ColdChain.address, admin);
    await newChain.shipment(1).then(
      () => expect.fail("the new suite has no shipment 1"),
      () => undefined,
    );
    const inFlight = await oldChain.shipment(1);
    expect(inFlight.status).to.equal(2n); // InTransit
    await (await oldChain.offerCustody(1, receiver, 2n ** 39n)).wait();
    expect((await oldChain.custodyOffer(1)).to).to.equal(receiver);

    // Re-running after a migration is again a no-op (the new journal holds the new suite).
    const again = await deploy();
    expect(again.stdout).to.match(/^Nothing changed/m);
    expect(readFile().contracts).to.deep.equal(migrated.contracts);
  });

  it("lets the oracle config name a deployment instead of chainId + coldChain", () => {
    const previousDir = process.env.COLDCHAIN_DEPLOYMENTS_DIR;
    process.env.COLDCHAIN_DEPLOYMENTS_DIR = dir;
    try {
      const deployment = readFile();
      const config = parseConfig({ chain: { deployment: "localhost", rpcUrls: [node.url] } });
      expect(config.chain.chainId).to.equal(31337);
      expect(config.chain.coldChain).to.equal(deployment.contracts.ColdChain.address);
      expect(config.chain.registryFromBlock).to.equal(deploymentStartBlock(deployment));

      const explicit = parseConfig({ chain: { deployment: "localhost", rpcUrls: [node.url], registryFromBlock: 0 } });
      expect(explicit.chain.registryFromBlock).to.equal(0);

      expect(() => parseConfig({ chain: { deployment: "localhost", rpcUrls: [node.url], chainId: 1 } }))
        .to.throw(/chain\.chainId 1 disagrees with chain\.deployment "localhost"/)
        .that.satisfies((e: unknown) => isOracleError(e, "CONFIG_INVALID"));
      expect(() => parseConfig({ chain: { deployment: "hoodi", rpcUrls: [node.url] } })).to.throw(
        /chain\.deployment: no deployment for network "hoodi".*npm run deploy -- --network hoodi/,
      );
    } finally {
      if (previousDir === undefined) delete process.env.COLDCHAIN_DEPLOYMENTS_DIR;
      else process.env.COLDCHAIN_DEPLOYMENTS_DIR = previousDir;
    }
  });
  it("deploys afresh on localhost when the chain was reset (node restart)", async () => {
    expect(await provider.send("evm_revert", [genesisSnapshot])).to.equal(true); // as good as a restarted node
    expect(await provider.getCode(readFile().contracts.ColdChain.address)).to.equal("0x");
    const result = await deploy();
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stderr).to.match(/The recorded localhost suite is gone \(chain reset\?\): deploying afresh/);
    expect(result.stdout).to.match(/Deployed the suite on localhost/);
    const fresh = readFile();
    expect(await provider.getCode(fresh.contracts.ColdChain.address)).not.to.equal("0x");
    expect(fresh.previous).to.equal(undefined);
  });

  it("treats a record whose creation transactions do not match the chain as gone (reset chain, same addresses)", async () => {
    const recorded = readFile();
    // Code is at every address, but ColdChain's recorded transaction created another contract.
    const stale = {
      ...recorded,
      contracts: {
        ...recorded.contracts,
        ColdChain: {
          ...recorded.contracts.ColdChain,
          transactionHash: recorded.contracts.ColdChainLens.transactionHash,
        },
      },
    };
    writeFileSync(join(dir, "localhost.json"), JSON.stringify(stale, null, 2));
    const result = await deploy();
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stderr).to.match(/The recorded localhost suite is gone/);
    expect(result.stdout).to.match(/Deployed the suite on localhost/);
    const fresh = readFile();
    const receipt = await provider.getTransactionReceipt(fresh.contracts.ColdChain.transactionHash);
    expect(receipt?.contractAddress).to.equal(fresh.contracts.ColdChain.address);
  });

  it("admin ≠ deployer: refuses a new grant, sends nothing and prints the admin's commands", async () => {
    const deployer = devWallet(0, provider).address;
    const admin = devWallet(1, provider);
    const shipper = devWallet(7, provider).address;
    const base = { admin: admin.address, deviceManagers: [deployer], guardians: [deployer], qa: [deployer] };
    const handedOver = join(dir, "admin-params.json");
    writeFileSync(handedOver, JSON.stringify({ ColdChainSuite: { ...base, shippers: [deployer] } }));
    const migrated = await deploy("--migrate", "--parameters", handedOver);
    expect(migrated.code, migrated.stderr).to.equal(0);
    const suite = readFile();
    const coldChain = ColdChain__factory.connect(suite.contracts.ColdChain.address, admin);
    expect(await coldChain.hasRole(ZeroHash, deployer)).to.equal(false);
    expect(await coldChain.hasRole(ZeroHash, admin.address)).to.equal(true);

    const withShipper = join(dir, "admin-params-shipper.json");
    writeFileSync(withShipper, JSON.stringify({ ColdChainSuite: { ...base, shippers: [deployer, shipper] } }));
    const blockBefore = await provider.getBlockNumber();
    const refused = await deploy("--parameters", withShipper);
    expect(refused.code).to.equal(1);
    const lines = refused.stderr.trim().split("\n");
    expect(lines, refused.stderr).to.have.length(2);
    expect(lines[0]).to.match(/^error: 0x\w+ no longer holds DEFAULT_ADMIN_ROLE on localhost .*nothing was sent/);
    expect(lines[1]?.trim()).to.equal(
      `npm run cli -- role grant --network localhost --contract ColdChain --role SHIPPER_ROLE --to ${shipper}`,
    );
    expect(await provider.getBlockNumber()).to.equal(blockBefore);

    // The admin sends it; the deploy then records it without sending anything.
    await (await coldChain.grantRole(id("SHIPPER_ROLE"), shipper)).wait();
    const afterGrant = await provider.getBlockNumber();
    const refreshed = await deploy("--parameters", withShipper);
    expect(refreshed.code, refreshed.stderr).to.equal(0);
    expect(refreshed.stdout).to.match(/Refreshed .*localhost\.json .*no transaction sent/);
    expect(refreshed.stdout).not.to.match(/Updated/);
    expect(await provider.getBlockNumber()).to.equal(afterGrant);
    expect(readFile().roles).to.deep.include({ contract: "ColdChain", role: "SHIPPER_ROLE", account: shipper });
    expect(readFile().contracts).to.deep.equal(suite.contracts);
  });
});
