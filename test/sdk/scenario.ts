/**
 * A shipment driven through its whole life on a real chain, for the SDK tests: two devices (secp256k1 single
 * readings, P-256 windows), three custodians (shipper → carrier by offer/accept, carrier → hub by EIP-712
 * signature, hub → receiver = delivery), an excursion with breaches in the carrier's leg, two skipped readings
 * (one with a forged signature: relay noise; one genuine reading relayed twice: DuplicateSequence), and a
 * rejection. Also builds the address book (`Deployment`) of a suite deployed by test/support/deploy.ts.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { HDNodeWallet, JsonRpcProvider, Wallet, encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";
import type { BaseContract, Signer } from "ethers";

import { DEPLOYMENT_FORMAT, parseDeployment } from "../../sdk/deployment.js";
import type { Deployment } from "../../sdk/deployment.js";
import {
  encodeBatch,
  p256PublicKey,
  secp256k1Address,
  signCustodyAcceptance,
  signReading,
  signWindow,
} from "../../sdk/protocol/index.js";
import type { ColdChainDomain, DevicePrivateKey, SignedItem } from "../../sdk/protocol/index.js";
import { ColdChain__factory, DeviceRegistry__factory } from "../../types/ethers-contracts/index.js";
import type { ColdChain, DeviceRegistry } from "../../types/ethers-contracts/index.js";
import { VACCINE_PROFILE } from "../support/deploy.js";
import type { Suite } from "../support/deploy.js";
import { runScript, startHardhatNode } from "../support/node.js";
import type { HardhatNode } from "../support/node.js";

type Party = Signer & { readonly address: string };

/** What the scenario needs: the contracts and one signer per role (on a local node one key may hold several). */
export interface ScenarioWorld {
  registry: DeviceRegistry;
  coldChain: ColdChain;
  chainId: bigint;
  qa: Party;
  deviceManager: Party;
  shipper: Party;
  carrier: Party;
  hub: Party;
  receiver: Party;
  owner: Party;
  deviceOwner: Party;
  relayer: Party;
}

/** Chain time control: in-process network helpers, or `evm_setNextBlockTimestamp` on a node. */
export interface Clock {
  latest(): Promise<number>;
  increaseTo(timestamp: number): Promise<void>;
}

/** The clock of a JSON-RPC development node (hardhat node). */
export function rpcClock(provider: JsonRpcProvider): Clock {
  return {
    latest: async () => (await provider.getBlock("latest"))?.timestamp ?? 0,
    increaseTo: async (timestamp) => {
      await provider.send("evm_setNextBlockTimestamp", [timestamp]);
      await provider.send("evm_mine", []);
    },
  };
}

export const INTERVAL = 300;
export const K1_DEVICE = 21n;
export const P256_DEVICE = 22n;
export const REJECTION_CODE = encodeBytes32String("TEMP_EXCURSION");

/** The address book of a suite deployed in-process (what `npm run deploy` would have written). */
export async function deploymentOf(s: Suite, network = "hardhat"): Promise<Deployment> {
  const entry = async (name: string, contract: BaseContract) => {
    const tx = contract.deploymentTransaction();
    if (tx === null) throw new Error(`${name} has no deployment transaction`);
    const receipt = await tx.wait();
    if (receipt === null) throw new Error(`${name} deployment not mined`);
    return {
      address: await contract.getAddress(),
      blockNumber: receipt.blockNumber,
      transactionHash: tx.hash,
      abi: `${name}@0.1.0`,
    };
  };
  return parseDeployment(
    {
      format: DEPLOYMENT_FORMAT,
      network,
      chainId: Number(s.chainId),
      deployedAt: new Date().toISOString(),
      contracts: {
        DeviceRegistry: await entry("DeviceRegistry", s.registry),
        MktTable: await entry("MktTable", s.mktTable),
        P256Fallback: await entry("P256Fallback", s.p256Fallback),
        ColdChain: await entry("ColdChain", s.coldChain),
        ColdChainLens: await entry("ColdChainLens", s.lens),
      },
      roles: [],
      features: { p256Precompile: true },
    },
    `${network} test deployment`,
  );
}

export interface Scenario {
  shipmentId: bigint;
  domain: ColdChainDomain;
  startedAt: number;
  /** Custody order: shipper, carrier, hub, receiver. */
  custodians: string[];
  /** Readings sent (and accepted) per device. */
  accepted: { k1: number; p256: number };
  /** Observation time of the carrier leg's first and last out-of-range reading. */
  excursion: { from: number; to: number };
}

/** Temperature (centi-°C) of reading k: 12 °C through the carrier's leg, one 30 °C spike, else 5 °C. */
function tempOf(k: number): number {
  if (k === 15) return 3000;
  if (k >= 10 && k <= 23) return 1200;
  return 500;
}

/** Drives a shipment from creation to rejection; see the module comment. */
export async function driveShipment(s: ScenarioWorld, helpers: { time: Clock }): Promise<Scenario> {
  const k1Key: DevicePrivateKey = { keyType: "secp256k1", privateKey: Wallet.createRandom().privateKey };
  const p256Key: DevicePrivateKey = { keyType: "p256", privateKey: Wallet.createRandom().privateKey };
  await (await s.coldChain.connect(s.qa).createProfile(VACCINE_PROFILE)).wait();
  const profileId = await s.coldChain
    .connect(s.qa)
    .createProfile.staticCall(VACCINE_PROFILE)
    .then((next) => next - 1n);
  const registry = s.registry.connect(s.deviceManager);
  await (
    await registry.registerSecp256k1Device(
      K1_DEVICE,
      s.deviceOwner.address,
      INTERVAL,
      secp256k1Address(k1Key.privateKey),
    )
  ).wait();
  const pub = p256PublicKey(p256Key.privateKey);
  await (await registry.registerP256Device(P256_DEVICE, s.deviceOwner.address, INTERVAL, pub.x, pub.y)).wait();
  // Binding needs the device owner's consent (test/support/deploy.ts's suite has it already).
  if (!(await s.registry.mayBind(K1_DEVICE, s.shipper.address))) {
    await (await s.registry.connect(s.deviceOwner).setShipperApproval(s.shipper.address, true)).wait();
  }
  const params = {
    receiver: s.receiver.address,
    owner: s.owner.address,
    profileId,
    deviceIds: [K1_DEVICE, P256_DEVICE],
    plannedStartAt: 0,
    externalRef: keccak256(toUtf8Bytes("SSCC 106141411234567897")),
  };
  const shipmentId = await s.coldChain.connect(s.shipper).createShipment.staticCall(params);
  await (await s.coldChain.connect(s.shipper).createShipment(params)).wait();
  await (await s.coldChain.connect(s.shipper).startShipment(shipmentId)).wait();
  const startedAt = Number((await s.coldChain.shipment(shipmentId)).startedAt);
  const domain: ColdChainDomain = { chainId: s.chainId, verifyingContract: await s.coldChain.getAddress() };
  const at = (k: number): number => startedAt + k * INTERVAL;
  /** Each device takes reading k at at(k) from k = 1 on: reading k's predecessor is reading k - 1 (none for the first). */
  const before = (k: number): number => (k === 1 ? 0 : at(k - 1));
  const relayer = s.coldChain.connect(s.relayer);
  let accepted = { k1: 0, p256: 0 };

  /** Readings k in [first, last] from both devices (single readings and one window), plus `extra` items. */
  const send = async (first: number, last: number, extra: SignedItem[] = []): Promise<void> => {
    await helpers.time.increaseTo(at(last) + 5);
    const items: SignedItem[] = [];
    for (let k = first; k <= last; k++) {
      items.push(
        signReading(
          domain,
          {
            deviceId: K1_DEVICE,
            sequence: k,
            observedAt: at(k),
            tempCentiC: tempOf(k),
            flags: 0,
            previousObservedAt: before(k),
          },
          k1Key,
        ),
      );
    }
    items.push(
      signWindow(
        domain,
        {
          deviceId: P256_DEVICE,
          firstSequence: first,
          firstObservedAt: at(first),
          intervalSeconds: INTERVAL,
          samples: Array.from({ length: last - first + 1 }, () => ({ tempCentiC: 450, flags: 0 })),
          previousObservedAt: before(first),
        },
        p256Key,
      ),
    );
    items.push(...extra);
    await (await relayer.submitReadings(encodeBatch(items))).wait();
    accepted = { k1: accepted.k1 + last - first + 1, p256: accepted.p256 + last - first + 1 };
  };

  // Leg 1, the shipper: in range. One reading signed by a wrong key is skipped (BadSignature: relay noise).
  const forged = signReading(
    domain,
    { deviceId: K1_DEVICE, sequence: 999, observedAt: at(8), tempCentiC: 500, flags: 0, previousObservedAt: before(8) },
    { keyType: "secp256k1", privateKey: Wallet.createRandom().privateKey },
  );
  await send(1, 8, [forged]);
  // Shipper → carrier, two-step.
  const deadline = (await helpers.time.latest()) + 3600;
  await (await s.coldChain.connect(s.shipper).offerCustody(shipmentId, s.carrier.address, deadline)).wait();
  await (await s.coldChain.connect(s.carrier).acceptCustody(shipmentId)).wait();
  // Leg 2, the carrier: 12 °C from k = 10 to 23 (> 1 h: SingleExcursion) with a 30 °C spike (AbsoluteLimit).
  // The device's reading k = 8 is relayed again: skipped as a DuplicateSequence, signed by the device.
  const again = signReading(
    domain,
    {
      deviceId: K1_DEVICE,
      sequence: 8,
      observedAt: at(8),
      tempCentiC: tempOf(8),
      flags: 0,
      previousObservedAt: before(8),
    },
    k1Key,
  );
  await send(9, 16, [again]);
  await send(17, 24);
  // Carrier → hub with the hub's EIP-712 acceptance.
  const nonce = await s.coldChain.handoverNonce(shipmentId);
  const hubDeadline = BigInt((await helpers.time.latest()) + 3600);
  const signature = await signCustodyAcceptance(s.hub, domain, {
    shipmentId,
    custodian: s.hub.address,
    nonce,
    deadline: hubDeadline,
  });
  await (
    await s.coldChain.connect(s.carrier).transferCustodyWithSignature(shipmentId, s.hub.address, hubDeadline, signature)
  ).wait();
  // Leg 3, the hub: in range; then delivery to the receiver, who rejects.
  await send(25, 30);
  const receiverDeadline = (await helpers.time.latest()) + 3600;
  await (await s.coldChain.connect(s.hub).offerCustody(shipmentId, s.receiver.address, receiverDeadline)).wait();
  await (await s.coldChain.connect(s.receiver).acceptCustody(shipmentId)).wait();
  await (await s.coldChain.connect(s.receiver).reject(shipmentId, REJECTION_CODE)).wait();

  return {
    shipmentId,
    domain,
    startedAt,
    custodians: [s.shipper.address, s.carrier.address, s.hub.address, s.receiver.address],
    accepted,
    excursion: { from: at(10), to: at(23) },
  };
}

/** A hardhat node with the suite deployed by `npm run deploy` and the scenario's shipment (id 1) driven on it. */
export interface ScenarioNode {
  node: HardhatNode;
  /** Temporary COLDCHAIN_DEPLOYMENTS_DIR holding localhost.json. */
  dir: string;
  /** Environment for child processes: the node's URL and the deployments dir. */
  env: NodeJS.ProcessEnv;
  provider: JsonRpcProvider;
  deployment: Deployment;
  scenario: Scenario;
  stop(): Promise<void>;
}

const DEV_MNEMONIC = "test test test test test test test test test test test junk";

/** Starts a node, deploys with `scripts/deploy.ts` and drives the scenario over JSON-RPC. */
export async function startScenarioNode(): Promise<ScenarioNode> {
  const node = await startHardhatNode();
  const dir = mkdtempSync(join(tmpdir(), "coldchain-sdk-"));
  const provider = new JsonRpcProvider(node.url, undefined, { staticNetwork: true, cacheTimeout: -1 });
  const stop = async (): Promise<void> => {
    provider.destroy();
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const env = {
      COLDCHAIN_LOCALHOST_URL: node.url,
      COLDCHAIN_RPC_URL: node.url,
      COLDCHAIN_DEPLOYMENTS_DIR: dir,
      COLDCHAIN_PRIVATE_KEY: "",
    };
    const deployed = await runScript("scripts/deploy.ts", ["--network", "localhost"], env);
    if (deployed.code !== 0) throw new Error(`npm run deploy failed:\n${deployed.stdout}\n${deployed.stderr}`);
    const deployment = parseDeployment(JSON.parse(readFileSync(join(dir, "localhost.json"), "utf8")));
    const wallet = (i: number): Wallet =>
      new Wallet(HDNodeWallet.fromPhrase(DEV_MNEMONIC, undefined, `m/44'/60'/0'/0/${i}`).privateKey, provider);
    const registry = DeviceRegistry__factory.connect(deployment.contracts.DeviceRegistry.address, provider);
    const coldChain = ColdChain__factory.connect(deployment.contracts.ColdChain.address, provider);
    // Account 0 deployed the suite and holds every role on localhost.
    const admin = wallet(0);
    const scenario = await driveShipment(
      {
        registry,
        coldChain,
        chainId: BigInt(deployment.chainId),
        qa: admin,
        deviceManager: admin,
        shipper: admin,
        carrier: wallet(1),
        hub: wallet(2),
        receiver: wallet(3),
        owner: wallet(4),
        deviceOwner: wallet(5),
        relayer: wallet(6),
      },
      { time: rpcClock(provider) },
    );
    return { node, dir, env, provider, deployment, scenario, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
