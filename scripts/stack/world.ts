/**
 * Sets up the story of scripts/stack/plan.ts on a chain: deploys the suite with Hardhat Ignition (the same
 * module `npm run deploy` uses), creates the profiles from the CLI's presets, registers the loggers (their owner
 * approves the shipper to bind them), creates and starts the shipments, and performs the custody handovers when
 * the simulated clock reaches them.
 */
import { getAddress, keccak256, toUtf8Bytes } from "ethers";
import type { JsonRpcSigner, Signer } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { PROFILE_PRESETS } from "../../cli/profiles.js";
import type { Deployment } from "../../sdk/deployment.js";
import type { ColdChainDomain, DeviceVerificationKey, SignedItem } from "../../sdk/protocol/index.js";
import { encodeBatch, expandReadings, expandWindow, signCustodyAcceptance } from "../../sdk/protocol/index.js";
import { skipReasonName } from "../../sdk/names.js";
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
  /**
   * The custom error the contract refused it with (or, for readings, the skip reason it answered with), or null
   * if it went through (a defect).
   */
  readonly refusedWith: string | null;
  /**
   * What the contract did, in words, when it answered with skips rather than a revert (the reordered relay: which
   * readings waited for their predecessor). The report prints it with whether the run still ended with the verdict
   * the readings give in order (its cross-check).
   */
  readonly outcome?: string;
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

/** Readings a signed item carries. */
function readingsOf(item: SignedItem): number {
  return item.kind === "reading" ? 1 : item.window.samples.length;
}

/** Observation time of the reading before an item's first (0: none). */
function previousOf(item: SignedItem): number {
  return item.kind === "reading" ? item.reading.previousObservedAt : item.window.previousObservedAt;
}

/**
 * A rogue relayer (`relayer`: an account of its own, not the oracle's) has real signed items of one logger, in the
 * logger's order — its backlog, taken before the logger uploads it — and submits them on chain newest first, ahead
 * of the oracle, as a relayer would to have a later custodian's readings (or an excursion's end) judged before the
 * earlier ones. A real transaction. The contract must record nothing out of order: every item but the oldest comes
 * before its predecessor and must be skipped as `SequenceGap` (retryable: the oracle relays it again, in order),
 * and the oldest is recorded only if it continues the logger's recorded chain. Any other outcome is a defect
 * (`refusedWith: null`).
 */
export async function tryReorderedRelay(
  world: World,
  relayer: Signer,
  deviceId: bigint,
  backlog: readonly SignedItem[],
  what: string,
): Promise<BendAttempt> {
  const oldest = backlog[0];
  if (backlog.length < 2 || oldest === undefined) {
    throw new Error(`logger ${deviceId}: ${backlog.length} items to reorder; a reordered relay needs at least two`);
  }
  const total = backlog.reduce((n, item) => n + readingsOf(item), 0);
  const attempt = `a rogue relayer submits ${what} newest first (${total} readings)`;
  const track = await world.coldChain.deviceTrack(deviceId);
  const last = Number(track.lastObservedAt);
  const startedAt = Number((await world.coldChain.shipment(track.shipmentId)).startedAt);
  const previous = previousOf(oldest);
  // The contract's rule: the oldest continues the chain if it names the latest recorded reading, or none is
  // recorded yet and its predecessor lies before the start.
  const oldestContinues = previous === last || (last === 0 && previous < startedAt);
  const expectRecorded = oldestContinues ? readingsOf(oldest) : 0;

  const reversed = [...backlog].reverse();
  const tx = await world.coldChain.connect(relayer).submitReadings(encodeBatch(reversed));
  const receipt = await tx.wait();
  if (receipt === null) throw new Error(`the rogue relayer's transaction ${tx.hash} has no receipt`);
  const skipped: Record<string, number> = {};
  const recorded: number[] = [];
  for (const log of receipt.logs) {
    if (getAddress(log.address) !== getAddress(world.deployment.contracts.ColdChain.address)) continue;
    const event = world.coldChain.interface.parseLog(log);
    if (event === null || BigInt(event.args.deviceId as bigint) !== deviceId) continue;
    if (event.name === "ReadingSkipped") {
      const reason = skipReasonName(event.args.reason as bigint);
      skipped[reason] = (skipped[reason] ?? 0) + Number(event.args.count);
    } else if (event.name === "ReadingsRecorded") {
      for (const r of expandReadings({ deviceId, readings: event.args.readings as string })) {
        recorded.push(r.observedAt);
      }
    } else if (event.name === "WindowRecorded") {
      const window = {
        deviceId,
        firstSequence: event.args.firstSequence as bigint,
        firstObservedAt: event.args.firstObservedAt as bigint,
        intervalSeconds: event.args.intervalSeconds as bigint,
        samples: event.args.samples as string,
      };
      for (const r of expandWindow(window)) recorded.push(r.observedAt);
    }
  }
  const waited = skipped.SequenceGap ?? 0;
  const others = Object.entries(skipped).filter(([reason]) => reason !== "SequenceGap");
  // In order: only the oldest item's readings, and only when it continues the chain; the rest waited.
  const oldestTimes = new Set(
    oldest.kind === "reading"
      ? [oldest.reading.observedAt]
      : oldest.window.samples.map((_, i) => oldest.window.firstObservedAt + i * oldest.window.intervalSeconds),
  );
  const inOrder =
    recorded.length === expectRecorded &&
    recorded.every((t) => oldestTimes.has(t)) &&
    waited === total - expectRecorded &&
    others.length === 0;
  const outcome =
    `${waited} waited for their predecessor (SequenceGap)` +
    (others.length > 0 ? `, ${others.map(([r, n]) => `${n} skipped as ${r}`).join(", ")}` : "") +
    (inOrder ? "" : `, ${recorded.length} recorded (expected ${expectRecorded}: recorded out of order)`);
  return { attempt, refusedWith: inOrder ? "SequenceGap" : null, outcome };
}
