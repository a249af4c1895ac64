/**
 * Sets up the story of scripts/stack/plan.ts on a chain: deploys the suite with Hardhat Ignition (the same
 * module `npm run deploy` uses), creates the profiles from the CLI's presets, registers the loggers (their owner
 * approves the shipper to bind them), creates and starts the shipments, and performs the custody handovers when
 * the simulated clock reaches them.
 */
import { getAddress, keccak256, toUtf8Bytes } from "ethers";
import type { JsonRpcSigner } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { PROFILE_PRESETS } from "../../cli/profiles.js";
import type { Deployment } from "../../sdk/deployment.js";
import type { ColdChainDomain, DeviceVerificationKey } from "../../sdk/protocol/index.js";
import { signCustodyAcceptance } from "../../sdk/protocol/index.js";
import type { ColdChain, DeviceRegistry } from "../../types/ethers-contracts/index.js";
import { ColdChain__factory, DeviceRegistry__factory } from "../../types/ethers-contracts/index.js";
import { buildDeployment, deploySuite } from "../lib/suite.js";
import type { LocalChain } from "./local-chain.js";
import { PARTY_ACCOUNTS, PARTY_NAMES } from "./plan.js";
import type { Custodian, HandoverPlan, PartyRole, ShipmentPlan } from "./plan.js";

export type Parties = Record<PartyRole, JsonRpcSigner>;

export interface World {
  readonly deployment: Deployment;
  readonly domain: ColdChainDomain;
  readonly parties: Parties;
  readonly coldChain: ColdChain;
  readonly registry: DeviceRegistry;
  /** Shipment id of each plan entry, in plan order. */
  readonly shipmentIds: bigint[];
  /** Chain time (seconds) the shipments started at: hour 0 of the plan. */
  readonly startedAt: number;
  /** Current custodian of each shipment, as the plan has moved it. */
  readonly custodians: Custodian[];
}

export function partiesOf(chain: LocalChain): Parties {
  const entries = Object.entries(PARTY_ACCOUNTS).map(([role, index]) => {
    const signer = chain.accounts[index];
    if (signer === undefined) throw new Error(`the node has no account ${index} for the ${role}`);
    return [role, signer];
  });
  return Object.fromEntries(entries) as Parties;
}

/** Deploys the suite and writes nothing (the caller saves the address book where it wants). */
export async function deployWorldSuite(
  hre: HardhatRuntimeEnvironment,
  chain: LocalChain,
  parties: Parties,
): Promise<Deployment> {
  const connection = await hre.network.create({ network: "localhost", override: { url: chain.url } });
  try {
    const roles = {
      admin: getAddress(parties.admin.address),
      deviceManagers: [getAddress(parties.deviceManager.address)],
      guardians: [getAddress(parties.admin.address)],
      shippers: [getAddress(parties.shipper.address)],
      qa: [getAddress(parties.qa.address)],
    };
    const suite = await deploySuite(hre, connection, {
      network: "local",
      roles,
      deployer: parties.admin.address,
    });
    return await buildDeployment(chain.provider, { network: "local", suite });
  } finally {
    await connection.close();
  }
}

/** Profiles, devices and shipments of the plan; the shipments start at the returned `startedAt`. */
export async function createWorld(
  chain: LocalChain,
  deployment: Deployment,
  parties: Parties,
  plan: readonly ShipmentPlan[],
  keys: ReadonlyMap<bigint, DeviceVerificationKey>,
  intervalSeconds: number,
): Promise<World> {
  const coldChain = ColdChain__factory.connect(deployment.contracts.ColdChain.address, chain.provider);
  const registry = DeviceRegistry__factory.connect(deployment.contracts.DeviceRegistry.address, chain.provider);
  const profileIds = new Map<string, bigint>();
  for (const preset of new Set(plan.map((s) => s.preset))) {
    const qa = coldChain.connect(parties.qa);
    profileIds.set(preset, await qa.createProfile.staticCall(PROFILE_PRESETS[preset]));
    await (await qa.createProfile(PROFILE_PRESETS[preset])).wait();
  }
  const manager = registry.connect(parties.deviceManager);
  for (const shipment of plan) {
    for (const device of shipment.devices) {
      const key = keys.get(device.deviceId);
      if (key === undefined) throw new Error(`no key for device ${device.deviceId}`);
      const owner = parties.owner.address;
      const tx =
        key.keyType === "secp256k1"
          ? await manager.registerSecp256k1Device(device.deviceId, owner, intervalSeconds, key.address)
          : await manager.registerP256Device(device.deviceId, owner, intervalSeconds, key.x, key.y);
      await tx.wait();
    }
  }
  // Binding a logger to a shipment needs its owner's consent: the owner approves the shipper once.
  const consent = await registry.connect(parties.owner).setShipperApproval(parties.shipper.address, true);
  await consent.wait();
  const shipper = coldChain.connect(parties.shipper);
  const shipmentIds: bigint[] = [];
  for (const [i, shipment] of plan.entries()) {
    const profileId = profileIds.get(shipment.preset);
    if (profileId === undefined) throw new Error(`profile ${shipment.preset} missing`);
    const params = {
      receiver: parties.receiver.address,
      owner: parties.owner.address,
      profileId,
      deviceIds: shipment.devices.map((d) => d.deviceId),
      plannedStartAt: 0,
      externalRef: keccak256(toUtf8Bytes(`SSCC 00345678901234567${i}`)),
    };
    shipmentIds.push(await shipper.createShipment.staticCall(params));
    await (await shipper.createShipment(params)).wait();
  }
  for (const id of shipmentIds) await (await shipper.startShipment(id)).wait();
  return {
    deployment,
    domain: { chainId: BigInt(deployment.chainId), verifyingContract: deployment.contracts.ColdChain.address },
    parties,
    coldChain,
    registry,
    shipmentIds,
    startedAt: await chain.latestTime(),
    custodians: plan.map(() => "shipper"),
  };
}

/** Moves custody of shipment `index` as `handover` says: offer + accept, or one signed transaction. */
export async function performHandover(world: World, index: number, handover: HandoverPlan): Promise<string> {
  const shipmentId = world.shipmentIds[index];
  const fromRole = world.custodians[index];
  if (shipmentId === undefined || fromRole === undefined) throw new Error(`no shipment ${index}`);
  const from = world.parties[fromRole];
  const to = world.parties[handover.to];
  const chainNow = (await from.provider.getBlock("latest"))?.timestamp ?? 0;
  const deadline = BigInt(chainNow + 24 * 3600);
  const asFrom = world.coldChain.connect(from);
  let hash: string;
  if (handover.method === "offer-accept") {
    await (await asFrom.offerCustody(shipmentId, to.address, deadline)).wait();
    const accept = await world.coldChain.connect(to).acceptCustody(shipmentId);
    await accept.wait();
    hash = accept.hash;
  } else {
    const nonce = await world.coldChain.handoverNonce(shipmentId);
    const signature = await signCustodyAcceptance(to, world.domain, {
      shipmentId,
      custodian: to.address,
      nonce,
      deadline,
    });
    const tx = await asFrom.transferCustodyWithSignature(shipmentId, to.address, deadline, signature);
    await tx.wait();
    hash = tx.hash;
  }
  world.custodians[index] = handover.to;
  return hash;
}

/** An attempt to bend a verdict that the story plays, and what the contract answered. */
export interface BendAttempt {
  /** What was tried, in words. */
  readonly attempt: string;
  /** The custom error the contract refused it with, or null if it went through (a defect). */
  readonly refusedWith: string | null;
}

/**
 * The shipper tries to cancel shipment `index` while a carrier holds it, as a shipper would to re-create it with the
 * same loggers and drop the carrier's readings. Simulated with a call (no transaction): the contract must refuse.
 */
export async function tryShipperCancel(world: World, index: number): Promise<BendAttempt> {
  const shipmentId = world.shipmentIds[index];
  const holder = world.custodians[index];
  if (shipmentId === undefined || holder === undefined) throw new Error(`no shipment ${index}`);
  const attempt = `the shipper cancels shipment ${shipmentId} while ${PARTY_NAMES[holder]} holds it (to drop its readings)`;
  try {
    await world.coldChain.connect(world.parties.shipper).cancelShipment.staticCall(shipmentId);
    return { attempt, refusedWith: null };
  } catch (error) {
    const data = (error as { data?: string }).data;
    const parsed = typeof data === "string" ? world.coldChain.interface.parseError(data) : null;
    return { attempt, refusedWith: parsed?.name ?? "reverted" };
  }
}
