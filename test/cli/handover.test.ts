/**
 * One signed-handover format for the CLI and the dashboard, against a real `hardhat node`: the CLI signs
 * (`custody sign-handover`) and the dashboard's data module reads the text and submits it (`readHandover` +
 * `ChainWriter.transferWithSignature`); the dashboard signs (`ChainWriter.signAcceptance` + `encodeHandover`) and
 * the CLI submits it (`custody handover --signed`). A text signed for another chain, and the dashboard's old JSON,
 * are refused on both sides before anything is sent.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { expect } from "chai";
import { HDNodeWallet, JsonRpcProvider, Wallet } from "ethers";

import { ChainWriter } from "../../app/src/data/chain.js";
import { encodeHandover, HandoverError, readHandover } from "../../app/src/data/handover.js";
import { parseDeployment } from "../../sdk/deployment.js";
import type { Deployment } from "../../sdk/deployment.js";
import { ColdChain__factory } from "../../types/ethers-contracts/index.js";
import type { ColdChain } from "../../types/ethers-contracts/index.js";
import { runScript, startHardhatNode } from "../support/node.js";
import type { HardhatNode, ScriptResult } from "../support/node.js";

const MNEMONIC = "test test test test test test test test test test test junk";
const account = (index: number): Wallet => {
  const w = HDNodeWallet.fromPhrase(MNEMONIC, undefined, `m/44'/60'/0'/0/${index}`);
  return new Wallet(w.privateKey);
};
const SHIPPER = 0;
const CARRIER = 1;
const HUB = 2;
const RECEIVER = 3;

describe("signed handover: CLI ↔ dashboard (hardhat node)", function () {
  this.timeout(120_000);
  let node: HardhatNode;
  let dir: string;
  let provider: JsonRpcProvider;
  let env: NodeJS.ProcessEnv;
  let deployment: Deployment;
  let coldChain: ColdChain;
  let shipmentId: bigint;

  const cli = (args: string[]): Promise<ScriptResult> => runScript("cli/main.ts", args, env);
  const run = async (who: number, ...args: string[]): Promise<ScriptResult> => {
    const result = await cli([...args, "--network", "localhost", "--account", String(who)]);
    expect(result.code, `${args.join(" ")}\n${result.stdout}\n${result.stderr}`).to.equal(0);
    return result;
  };
  /** The dashboard's writer for dev account `who` (what a connected wallet gives it). */
  const dashboard = (who: number): ChainWriter => new ChainWriter(deployment, account(who).connect(provider));
  const custodian = async (): Promise<string> => (await coldChain.shipment(shipmentId)).custodian;

  before(async () => {
    node = await startHardhatNode();
    dir = mkdtempSync(join(tmpdir(), "coldchain-handover-"));
    env = {
      COLDCHAIN_LOCALHOST_URL: node.url,
      COLDCHAIN_RPC_URL: node.url,
      COLDCHAIN_DEPLOYMENTS_DIR: dir,
      COLDCHAIN_PRIVATE_KEY: "",
    };
    const deployed = await runScript("scripts/deploy.ts", ["--network", "localhost"], env);
    expect(deployed.code, deployed.stderr).to.equal(0);
    deployment = parseDeployment(JSON.parse(readFileSync(join(dir, "localhost.json"), "utf8")));
    provider = new JsonRpcProvider(node.url, undefined, { staticNetwork: true, cacheTimeout: -1 });
    coldChain = ColdChain__factory.connect(deployment.contracts.ColdChain.address, provider);
    const shipper = account(SHIPPER).address;
    await run(
      SHIPPER,
      "device",
      "register",
      "--id",
      "5",
      "--owner",
      shipper,
      "--interval",
      "60",
      "--signer",
      account(9).address,
    );
    const created = await run(
      SHIPPER,
      ...["shipment", "create", "--profile", "vaccine-2-8", "--receiver", account(RECEIVER).address],
      ...["--devices", "5", "--json"],
    );
    shipmentId = BigInt((JSON.parse(created.stdout) as { shipmentId: string }).shipmentId);
    await run(SHIPPER, "shipment", "start", "--id", String(shipmentId));
  });

  after(async () => {
    provider?.destroy();
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("CLI → dashboard: the carrier signs with the CLI, the shipper hands over from the dashboard", async () => {
    const signed = (await run(CARRIER, "custody", "sign-handover", "--id", String(shipmentId))).stdout.trim();
    expect(signed).to.match(/^coldchain:handover:v1:[A-Za-z0-9_-]{174}$/);
    const h = readHandover(signed, deployment);
    expect(h.acceptance.custodian).to.equal(account(CARRIER).address);
    expect(h.domain.chainId).to.equal(BigInt(deployment.chainId));
    await dashboard(SHIPPER).transferWithSignature(h);
    expect(await custodian()).to.equal(account(CARRIER).address);
  });

  it("dashboard → CLI: the hub signs in the dashboard, the carrier hands over with the CLI", async () => {
    const writer = dashboard(HUB);
    const nonce = await coldChain.handoverNonce(shipmentId);
    const deadline = BigInt((await provider.getBlock("latest"))!.timestamp + 3600);
    const text = encodeHandover(await writer.signAcceptance(shipmentId, nonce, deadline));
    const done = await run(CARRIER, "custody", "handover", "--signed", text, "--json");
    expect(JSON.parse(done.stdout)).to.include({ to: account(HUB).address });
    expect(await custodian()).to.equal(account(HUB).address);
  });

  it("refuses a handover signed for another chain, and the dashboard's old JSON, on both sides, sending nothing", async () => {
    const nonce = await coldChain.handoverNonce(shipmentId);
    const deadline = BigInt((await provider.getBlock("latest"))!.timestamp + 3600);
    const good = await dashboard(RECEIVER).signAcceptance(shipmentId, nonce, deadline);
    // The same acceptance, signed for Sepolia's chain id.
    const foreign = { ...good, domain: { ...good.domain, chainId: 11155111n } };
    const foreignText = encodeHandover(foreign);
    const legacy = JSON.stringify({
      format: "coldchain-handover/1",
      shipmentId: String(shipmentId),
      custodian: account(RECEIVER).address,
      nonce: String(nonce),
      deadline: String(deadline),
      signature: good.signature,
    });
    const blockBefore = await provider.getBlockNumber();

    const wrongChain = await cli([
      "custody",
      "handover",
      "--signed",
      foreignText,
      "--network",
      "localhost",
      "--account",
      String(HUB),
    ]);
    expect(wrongChain.code).to.equal(2);
    expect(wrongChain.stderr.trim()).to.match(
      /^error: this handover was signed for chain 11155111, ColdChain 0x[0-9a-fA-F]{40}, not for chain 31337.*check the network.*--network localhost/,
    );
    const old = await cli([
      "custody",
      "handover",
      "--signed",
      legacy,
      "--network",
      "localhost",
      "--account",
      String(HUB),
    ]);
    expect(old.code).to.equal(2);
    expect(old.stderr).to.match(/old handover text \(coldchain-handover\/1\).*ask the next custodian to sign again/);

    expect(() => readHandover(foreignText, deployment))
      .to.throw(HandoverError, /signed for chain 11155111/)
      .with.property("code", "HANDOVER_WRONG_DOMAIN");
    expect(() => readHandover(legacy, deployment))
      .to.throw(HandoverError)
      .with.property("code", "HANDOVER_LEGACY_FORMAT");
    expect(await provider.getBlockNumber(), "nothing may be sent").to.equal(blockBefore);

    // The genuine text still works from the CLI: the receiver takes custody (delivered).
    await run(HUB, "custody", "handover", "--signed", encodeHandover(good));
    expect(await custodian()).to.equal(account(RECEIVER).address);
  });
});
