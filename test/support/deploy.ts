/**
 * Shared fixtures for the TypeScript tests: deploys the whole suite on the in-process EDR chain (osaka) with
 * one account per party. Loaded with `networkHelpers.loadFixture` so each test starts from a snapshot.
 */
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import { keccak256, solidityPacked } from "ethers";
import type { NetworkConnection } from "hardhat/types/network";

import type {
  ColdChain,
  ColdChainLens,
  DeviceRegistry,
  MktTable,
  P256Fallback,
} from "../../types/ethers-contracts/index.js";
import type { IShipments } from "../../types/ethers-contracts/contracts/ColdChain.js";
import { PROFILE_PRESETS } from "../../cli/profiles.js";
import type { DevicePrivateKey } from "../../sdk/protocol/index.js";
import { p256PublicKey, secp256k1Address } from "../../sdk/protocol/index.js";

export type Connection = NetworkConnection;

export interface Parties {
  admin: HardhatEthersSigner;
  deviceManager: HardhatEthersSigner;
  guardian: HardhatEthersSigner;
  qa: HardhatEthersSigner;
  shipper: HardhatEthersSigner;
  carrier: HardhatEthersSigner;
  hub: HardhatEthersSigner;
  carrier2: HardhatEthersSigner;
  receiver: HardhatEthersSigner;
  owner: HardhatEthersSigner;
  deviceOwner: HardhatEthersSigner;
  relayer: HardhatEthersSigner;
  stranger: HardhatEthersSigner;
}

export interface Suite extends Parties {
  registry: DeviceRegistry;
  coldChain: ColdChain;
  mktTable: MktTable;
  p256Fallback: P256Fallback;
  /** Read-only helpers (MKT in degrees). */
  lens: ColdChainLens;
  chainId: bigint;
}

/** 2–8 °C vaccine profile (USP <659> refrigerated), WHO-style alarms, MKT limit 8.0 °C: the CLI's `vaccine-2-8`. */
export const VACCINE_PROFILE: IShipments.TemperatureProfileStruct = PROFILE_PRESETS["vaccine-2-8"];

export async function deploySuite(connection: Connection): Promise<Suite> {
  const { ethers } = connection;
  const signers = await ethers.getSigners();
  const names = [
    "admin",
    "deviceManager",
    "guardian",
    "qa",
    "shipper",
    "carrier",
    "hub",
    "carrier2",
    "receiver",
    "owner",
    "deviceOwner",
    "relayer",
    "stranger",
  ] as const;
  const parties = Object.fromEntries(
    names.map((name, i) => {
      const signer = signers[i];
      if (signer === undefined) throw new Error(`the test network needs at least ${names.length} accounts`);
      return [name, signer];
    }),
  ) as unknown as Parties;
  const { admin, deviceManager, guardian, qa, shipper } = parties;
  const registry = await ethers.deployContract("DeviceRegistry", [admin.address]);
  const mktTable = await ethers.deployContract("MktTable");
  const p256Fallback = await ethers.deployContract("P256Fallback");
  const shipmentBook = await ethers.deployContract("ShipmentBook");
  const coldChain = await ethers.deployContract(
    "ColdChain",
    [admin.address, await registry.getAddress(), await mktTable.getAddress(), await p256Fallback.getAddress()],
    { libraries: { ShipmentBook: await shipmentBook.getAddress() } },
  );
  const lens = await ethers.deployContract("ColdChainLens", [await coldChain.getAddress()]);
  await registry.connect(admin).grantRole(await registry.DEVICE_MANAGER_ROLE(), deviceManager.address);
  await registry.connect(admin).grantRole(await registry.GUARDIAN_ROLE(), guardian.address);
  await coldChain.connect(admin).grantRole(await coldChain.SHIPPER_ROLE(), shipper.address);
  await coldChain.connect(admin).grantRole(await coldChain.QA_ROLE(), qa.address);
  await coldChain.connect(admin).grantRole(await coldChain.GUARDIAN_ROLE(), guardian.address);
  // The device owner lets the shipper bind its loggers to shipments (consent is per owner and shipper).
  await registry.connect(parties.deviceOwner).setShipperApproval(shipper.address, true);
  const { chainId } = await ethers.provider.getNetwork();
  return {
    ...parties,
    registry,
    coldChain,
    mktTable,
    p256Fallback,
    lens,
    chainId,
  };
}

/** Registers a device under its key (either curve) with the deviceOwner as owner. */
export async function registerDevice(
  s: Suite,
  deviceId: bigint,
  key: DevicePrivateKey,
  intervalSeconds: number,
): Promise<void> {
  const registry = s.registry.connect(s.deviceManager);
  if (key.keyType === "secp256k1") {
    const signer = secp256k1Address(key.privateKey);
    await (await registry.registerSecp256k1Device(deviceId, s.deviceOwner.address, intervalSeconds, signer)).wait();
  } else {
    const pub = p256PublicKey(key.privateKey);
    await (await registry.registerP256Device(deviceId, s.deviceOwner.address, intervalSeconds, pub.x, pub.y)).wait();
  }
}

/** Creates a shipment from shipper to receiver carrying `deviceIds`; returns its id. */
export async function createShipment(
  s: Suite,
  deviceIds: bigint[],
  profileId: bigint,
  externalRef: string = keccak256(solidityPacked(["uint64[]"], [deviceIds])),
): Promise<bigint> {
  const coldChain = s.coldChain.connect(s.shipper);
  const params = {
    receiver: s.receiver.address,
    owner: s.owner.address,
    profileId,
    deviceIds,
    plannedStartAt: 0,
    externalRef,
  };
  const shipmentId = await coldChain.createShipment.staticCall(params);
  await (await coldChain.createShipment(params)).wait();
  return shipmentId;
}
