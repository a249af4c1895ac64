/**
 * ColdChain's shipment ledger (contracts/ShipmentLedger.sol): rule profiles, the shipment status machine,
 * two-step and one-transaction (EIP-712) custody handovers, delivery, QA disposition, views, pause and role
 * gating. Every revert path of IShipments has a test here.
 */
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { HDNodeWallet, TypedDataDomain } from "ethers";

import { anyValue } from "@nomicfoundation/hardhat-ethers-chai-matchers/withArgs";
import { expect } from "chai";
import { network } from "hardhat";

import type { IShipments } from "../types/ethers-contracts/contracts/ColdChain.js";
import type { Suite } from "./support/deploy.js";

import { deploySuite, VACCINE_PROFILE } from "./support/deploy.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;
const { time } = networkHelpers;

const Status = {
  None: 0n,
  Created: 1n,
  InTransit: 2n,
  Delivered: 3n,
  Released: 4n,
  Rejected: 5n,
  Cancelled: 6n,
} as const;

const PROFILE_ID = 1n;
const SHIPMENT_ID = 1n;
const UNKNOWN_SHIPMENT_ID = 999n;
/** Devices 1..DEVICE_COUNT are registered (secp256k1) in every fixture. */
const DEVICE_COUNT = 12;
const DEVICE_ID = 1n;
const INTERVAL_SECONDS = 300;
const MAX_DEVICES_PER_SHIPMENT = 8;
const MAX_CUSTODY_PERIODS = 64;
const EXTERNAL_REF = ethers.encodeBytes32String("SSCC-340123450000000017");
const REASON_CODE = ethers.encodeBytes32String("TEMP_EXCURSION");
const HOUR = 3600;
/** Explicit gas limit for transactions queued with automine off (estimateGas would run against the old state). */
const GAS_LIMIT = 1_000_000n;

const CUSTODY_ACCEPTANCE_TYPES = {
  CustodyAcceptance: [
    { name: "shipmentId", type: "uint256" },
    { name: "custodian", type: "address" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

const READING_TYPES = {
  Reading: [
    { name: "deviceId", type: "uint64" },
    { name: "sequence", type: "uint32" },
    { name: "observedAt", type: "uint40" },
    { name: "tempCentiC", type: "int16" },
    { name: "flags", type: "uint8" },
    { name: "previousObservedAt", type: "uint40" },
  ],
};

interface Fixture extends Suite {
  domain: TypedDataDomain;
  deviceKeys: HDNodeWallet[];
}

interface Acceptance {
  shipmentId: bigint;
  custodian: string;
  nonce: bigint;
  deadline: bigint;
}

interface Reading {
  sequence: number;
  observedAt: number;
  tempCentiC: number;
  flags: number;
  /** The device's reading before this one (0: none). */
  previousObservedAt: number;
}

// ---------------------------------------------------------------- helpers

/** A profile as a list of its fields in struct order, numbers as bigint (the shape events and views decode to). */
function profileTuple(p: IShipments.TemperatureProfileStruct): unknown[] {
  return [
    p.minCentiC,
    p.maxCentiC,
    p.absoluteMinCentiC,
    p.absoluteMaxCentiC,
    p.freezeCentiC,
    p.maxFreezeSeconds,
    p.maxSingleExcursionSeconds,
    p.maxCumulativeExcursionSeconds,
    p.adaptationSeconds,
    p.maxGapIntervals,
    p.faultFlagMask,
    p.mktLimitCentiC,
    p.mktMinCoverageSeconds,
    p.mktEnabled,
  ].map((v) => (typeof v === "boolean" ? v : BigInt(v)));
}

function params(s: Suite, overrides: Partial<IShipments.ShipmentParamsStruct> = {}): IShipments.ShipmentParamsStruct {
  return {
    receiver: s.receiver.address,
    owner: s.owner.address,
    profileId: PROFILE_ID,
    deviceIds: [DEVICE_ID],
    plannedStartAt: 1_800_000_000n,
    externalRef: EXTERNAL_REF,
    ...overrides,
  };
}

/** Creates a shipment as the shipper and returns its id (dry-run first to learn it). */
async function createShipment(s: Suite, overrides: Partial<IShipments.ShipmentParamsStruct> = {}): Promise<bigint> {
  const p = params(s, overrides);
  const shipmentId = await s.coldChain.connect(s.shipper).createShipment.staticCall(p);
  await s.coldChain.connect(s.shipper).createShipment(p);
  return shipmentId;
}

async function signAcceptance(
  signer: HardhatEthersSigner,
  domain: TypedDataDomain,
  acceptance: Acceptance,
): Promise<string> {
  return signer.signTypedData(domain, CUSTODY_ACCEPTANCE_TYPES, acceptance);
}

async function deadlineIn(seconds: number): Promise<bigint> {
  return BigInt((await time.latest()) + seconds);
}

/** The current custodian hands over to `to` in one transaction with `to`'s acceptance signature. */
async function handOverWithSignature(
  f: Fixture,
  shipmentId: bigint,
  from: HardhatEthersSigner,
  to: HardhatEthersSigner,
) {
  const deadline = await deadlineIn(HOUR);
  const nonce = await f.coldChain.handoverNonce(shipmentId);
  const signature = await signAcceptance(to, f.domain, { shipmentId, custodian: to.address, nonce, deadline });
  return f.coldChain.connect(from).transferCustodyWithSignature(shipmentId, to.address, deadline, signature);
}

/** Two-step handover: offer, then accept. */
async function handOver(f: Fixture, shipmentId: bigint, from: HardhatEthersSigner, to: HardhatEthersSigner) {
  await f.coldChain.connect(from).offerCustody(shipmentId, to.address, await deadlineIn(HOUR));
  return f.coldChain.connect(to).acceptCustody(shipmentId);
}

/** The start of the latest custody period: the boundary the last handover fixed. */
async function lastSince(f: Fixture, shipmentId: bigint = SHIPMENT_ID): Promise<bigint> {
  const history = await f.coldChain.custodyHistory(shipmentId);
  const last = history[history.length - 1];
  if (last === undefined) throw new Error("empty custody history");
  return last.since;
}

async function blockTimestamp(tx: { wait(): Promise<{ blockNumber: number } | null> }): Promise<bigint> {
  const receipt = await tx.wait();
  if (receipt === null) throw new Error("transaction was not mined");
  const block = await ethers.provider.getBlock(receipt.blockNumber);
  if (block === null) throw new Error(`block ${receipt.blockNumber} not found`);
  return BigInt(block.timestamp);
}

/** Sends the transactions `send` queues with automine off, then mines them all in one block. */
async function inOneBlock(send: () => Promise<void>): Promise<void> {
  await ethers.provider.send("evm_setAutomine", [false]);
  try {
    await send();
    await networkHelpers.mine();
  } finally {
    await ethers.provider.send("evm_setAutomine", [true]);
  }
}

/**
 * A READINGS batch (IReadingsInbox packed format, version 2) of secp256k1 readings of one device, encoded here
 * independently of sdk/protocol.
 */
async function readingsBatch(
  domain: TypedDataDomain,
  deviceId: bigint,
  key: HDNodeWallet,
  readings: Reading[],
): Promise<string> {
  const parts = [ethers.solidityPacked(["uint8", "uint8", "uint64", "uint16"], [2, 1, deviceId, readings.length])];
  for (const r of readings) {
    const signature = ethers.Signature.from(await key.signTypedData(domain, READING_TYPES, { deviceId, ...r }));
    parts.push(
      ethers.solidityPacked(
        ["uint32", "uint40", "int16", "uint8", "uint40", "bytes32", "bytes32"],
        [r.sequence, r.observedAt, r.tempCentiC, r.flags, r.previousObservedAt, signature.r, signature.yParityAndS],
      ),
    );
  }
  return ethers.concat(parts);
}

// ---------------------------------------------------------------- fixtures

/** The bare suite (no profile yet), for the profile tests. */
async function suiteFixture(): Promise<Suite> {
  return deploySuite(connection);
}

/** Suite, the vaccine profile (id 1) and DEVICE_COUNT secp256k1 devices (ids 1..DEVICE_COUNT). */
async function baseFixture(): Promise<Fixture> {
  const s = await deploySuite(connection);
  await s.coldChain.connect(s.qa).createProfile(VACCINE_PROFILE);
  const deviceKeys: HDNodeWallet[] = [];
  for (let id = 1; id <= DEVICE_COUNT; ++id) {
    const key = ethers.Wallet.createRandom();
    deviceKeys.push(key);
    await s.registry
      .connect(s.deviceManager)
      .registerSecp256k1Device(id, s.deviceOwner.address, INTERVAL_SECONDS, key.address);
  }
  const domain: TypedDataDomain = {
    name: "ColdChain",
    version: "2",
    chainId: s.chainId,
    verifyingContract: await s.coldChain.getAddress(),
  };
  return { ...s, domain, deviceKeys };
}

/** Shipment 1 (device 1) created by the shipper, who holds custody. */
async function createdFixture(): Promise<Fixture> {
  const f = await baseFixture();
  await createShipment(f);
  return f;
}

/** Shipment 1 started by the shipper. */
async function inTransitFixture(): Promise<Fixture> {
  const f = await createdFixture();
  await f.coldChain.connect(f.shipper).startShipment(SHIPMENT_ID);
  return f;
}

/** Shipment 1 handed shipper -> carrier -> receiver: Delivered. */
async function deliveredFixture(): Promise<Fixture> {
  const f = await inTransitFixture();
  await handOver(f, SHIPMENT_ID, f.shipper, f.carrier);
  await handOver(f, SHIPMENT_ID, f.carrier, f.receiver);
  return f;
}

/**
 * Shipment 1 with MAX_CUSTODY_PERIODS - 1 periods (shipper, then carrier and hub alternating; `holder` holds it):
 * only the last period, kept for the receiver, is left.
 */
async function nearlyFullHistoryFixture(): Promise<Fixture & { custodians: string[]; holder: HardhatEthersSigner }> {
  const f = await createdFixture();
  const custodians = [f.shipper.address];
  let from = f.shipper;
  for (let i = 1; i < MAX_CUSTODY_PERIODS - 1; ++i) {
    const to = i % 2 === 1 ? f.carrier : f.hub;
    await handOverWithSignature(f, SHIPMENT_ID, from, to);
    custodians.push(to.address);
    from = to;
  }
  return { ...f, custodians, holder: from };
}

/** Shipment 1 with a full history of MAX_CUSTODY_PERIODS periods, the last one the receiver's (delivered). */
async function fullHistoryFixture(): Promise<Fixture & { custodians: string[] }> {
  const f = await nearlyFullHistoryFixture();
  await handOverWithSignature(f, SHIPMENT_ID, f.holder, f.receiver);
  return { ...f, custodians: [...f.custodians, f.receiver.address] };
}

// ---------------------------------------------------------------- tests

describe("ColdChain shipments and custody", () => {
  describe("configuration", () => {
    it("exposes the limits, roles, typehash and wiring", async () => {
      const { coldChain, registry, mktTable } = await networkHelpers.loadFixture(baseFixture);
      expect(await coldChain.MAX_DEVICES_PER_SHIPMENT()).to.equal(BigInt(MAX_DEVICES_PER_SHIPMENT));
      expect(await coldChain.MAX_CUSTODY_PERIODS()).to.equal(BigInt(MAX_CUSTODY_PERIODS));
      expect(await coldChain.SHIPPER_ROLE()).to.equal(ethers.id("SHIPPER_ROLE"));
      expect(await coldChain.QA_ROLE()).to.equal(ethers.id("QA_ROLE"));
      expect(await coldChain.GUARDIAN_ROLE()).to.equal(ethers.id("GUARDIAN_ROLE"));
      expect(await coldChain.CUSTODY_ACCEPTANCE_TYPEHASH()).to.equal(
        ethers.id("CustodyAcceptance(uint256 shipmentId,address custodian,uint256 nonce,uint256 deadline)"),
      );
      expect(await coldChain.DEVICE_REGISTRY()).to.equal(await registry.getAddress());
      expect(await coldChain.MKT_TABLE()).to.equal(await mktTable.getAddress());
    });

    it("reports the EIP-712 domain custody acceptances are signed for (ERC-5267)", async () => {
      const { coldChain, domain } = await networkHelpers.loadFixture(baseFixture);
      const d = await coldChain.eip712Domain();
      expect(d.name).to.equal("ColdChain");
      expect(d.version).to.equal("2");
      expect(d.chainId).to.equal(domain.chainId);
      expect(d.verifyingContract).to.equal(domain.verifyingContract);
    });
  });

  describe("createProfile", () => {
    it("stores the profile under sequential ids and emits ProfileCreated", async () => {
      const { coldChain, qa } = await networkHelpers.loadFixture(suiteFixture);
      const expected = profileTuple(VACCINE_PROFILE);
      expect(await coldChain.connect(qa).createProfile.staticCall(VACCINE_PROFILE)).to.equal(1n);
      await expect(coldChain.connect(qa).createProfile(VACCINE_PROFILE))
        .to.emit(coldChain, "ProfileCreated")
        .withArgs(1n, qa.address, expected);
      const frozen = {
        ...VACCINE_PROFILE,
        minCentiC: -2500,
        maxCentiC: -1500,
        absoluteMinCentiC: -4000,
        freezeCentiC: -3000,
        mktEnabled: false,
      };
      await expect(coldChain.connect(qa).createProfile(frozen))
        .to.emit(coldChain, "ProfileCreated")
        .withArgs(2n, qa.address, profileTuple(frozen));
      expect(profileTuple(await coldChain.profile(1n))).to.deep.equal(expected);
      expect(profileTuple(await coldChain.profile(2n))).to.deep.equal(profileTuple(frozen));
    });

    it("accepts absolute limits equal to the range and MKT limits at the table's ends", async () => {
      const { coldChain, qa } = await networkHelpers.loadFixture(suiteFixture);
      const tight = { ...VACCINE_PROFILE, absoluteMinCentiC: 200, absoluteMaxCentiC: 800 };
      await expect(coldChain.connect(qa).createProfile(tight)).to.emit(coldChain, "ProfileCreated");
      for (const mktLimitCentiC of [-8000, 8000]) {
        await expect(coldChain.connect(qa).createProfile({ ...VACCINE_PROFILE, mktLimitCentiC })).to.emit(
          coldChain,
          "ProfileCreated",
        );
      }
    });

    it("does not check the MKT limit when MKT is disabled", async () => {
      const { coldChain, qa } = await networkHelpers.loadFixture(suiteFixture);
      await expect(
        coldChain.connect(qa).createProfile({ ...VACCINE_PROFILE, mktEnabled: false, mktLimitCentiC: 12345 }),
      ).to.emit(coldChain, "ProfileCreated");
    });

    it("reverts with AccessControlUnauthorizedAccount when the caller lacks QA_ROLE", async () => {
      const { coldChain, shipper } = await networkHelpers.loadFixture(suiteFixture);
      await expect(coldChain.connect(shipper).createProfile(VACCINE_PROFILE))
        .to.be.revertedWithCustomError(coldChain, "AccessControlUnauthorizedAccount")
        .withArgs(shipper.address, await coldChain.QA_ROLE());
    });

    it('reverts with ProfileInvalid("range") when min is not below max', async () => {
      const { coldChain, qa } = await networkHelpers.loadFixture(suiteFixture);
      const ranges: [number, number][] = [
        [500, 500],
        [800, 200],
      ];
      for (const [minCentiC, maxCentiC] of ranges) {
        await expect(coldChain.connect(qa).createProfile({ ...VACCINE_PROFILE, minCentiC, maxCentiC }))
          .to.be.revertedWithCustomError(coldChain, "ProfileInvalid")
          .withArgs("range");
      }
    });

    it('reverts with ProfileInvalid("absoluteLimits") when an absolute limit lies inside the range', async () => {
      const { coldChain, qa } = await networkHelpers.loadFixture(suiteFixture);
      await expect(coldChain.connect(qa).createProfile({ ...VACCINE_PROFILE, absoluteMinCentiC: 201 }))
        .to.be.revertedWithCustomError(coldChain, "ProfileInvalid")
        .withArgs("absoluteLimits");
      await expect(coldChain.connect(qa).createProfile({ ...VACCINE_PROFILE, absoluteMaxCentiC: 799 }))
        .to.be.revertedWithCustomError(coldChain, "ProfileInvalid")
        .withArgs("absoluteLimits");
    });

    it('reverts with ProfileInvalid("mktLimitCentiC") for a limit off the 0.1 degree grid or outside the table', async () => {
      const { coldChain, qa } = await networkHelpers.loadFixture(suiteFixture);
      for (const mktLimitCentiC of [805, -8010, 8010]) {
        await expect(coldChain.connect(qa).createProfile({ ...VACCINE_PROFILE, mktLimitCentiC }))
          .to.be.revertedWithCustomError(coldChain, "ProfileInvalid")
          .withArgs("mktLimitCentiC");
      }
    });

    it("profile reverts with ProfileUnknown for id 0 and for an id not yet created", async () => {
      const { coldChain } = await networkHelpers.loadFixture(baseFixture);
      await expect(coldChain.profile(0n)).to.be.revertedWithCustomError(coldChain, "ProfileUnknown").withArgs(0n);
      await expect(coldChain.profile(2n)).to.be.revertedWithCustomError(coldChain, "ProfileUnknown").withArgs(2n);
    });
  });

  describe("createShipment", () => {
    it("emits ShipmentCreated and the initial CustodyTransferred to the shipper", async () => {
      const f = await networkHelpers.loadFixture(baseFixture);
      const p = params(f, { deviceIds: [1n, 2n] });
      const tx = await f.coldChain.connect(f.shipper).createShipment(p);
      const now = await blockTimestamp(tx);
      await expect(tx)
        .to.emit(f.coldChain, "ShipmentCreated")
        .withArgs(
          SHIPMENT_ID,
          f.shipper.address,
          f.receiver.address,
          f.owner.address,
          PROFILE_ID,
          [1n, 2n],
          p.plannedStartAt,
          EXTERNAL_REF,
        );
      await expect(tx)
        .to.emit(f.coldChain, "CustodyTransferred")
        .withArgs(SHIPMENT_ID, ethers.ZeroAddress, f.shipper.address, 0n, now);
    });

    it("records the shipment with the shipper as first custodian", async () => {
      const f = await networkHelpers.loadFixture(baseFixture);
      const p = params(f, { deviceIds: [3n, 1n] });
      const tx = await f.coldChain.connect(f.shipper).createShipment(p);
      const now = await blockTimestamp(tx);

      const info = await f.coldChain.shipment(SHIPMENT_ID);
      expect(info.status).to.equal(Status.Created);
      expect(info.shipper).to.equal(f.shipper.address);
      expect(info.receiver).to.equal(f.receiver.address);
      expect(info.owner).to.equal(f.owner.address);
      expect(info.custodian).to.equal(f.shipper.address);
      expect(info.profileId).to.equal(PROFILE_ID);
      expect(info.createdAt).to.equal(now);
      expect(info.plannedStartAt).to.equal(p.plannedStartAt);
      expect(info.startedAt).to.equal(0n);
      expect(info.deliveredAt).to.equal(0n);
      expect(info.decidedAt).to.equal(0n);
      expect(info.custodyPeriods).to.equal(1n);
      expect(info.externalRef).to.equal(EXTERNAL_REF);
      expect(info.rejectionCode).to.equal(ethers.ZeroHash);
      expect(info.deviceIds).to.deep.equal([3n, 1n]);

      const history = await f.coldChain.custodyHistory(SHIPMENT_ID);
      expect(history).to.have.length(1);
      expect(history[0]?.custodian).to.equal(f.shipper.address);
      expect(history[0]?.since).to.equal(now);
      expect(history[0]?.excursionSeconds).to.equal(0n);
      expect(history[0]?.breachFlags).to.equal(0n);
      expect(await f.coldChain.handoverNonce(SHIPMENT_ID)).to.equal(1n);
      expect((await f.coldChain.deviceTrack(3n)).shipmentId).to.equal(SHIPMENT_ID);
      expect((await f.coldChain.deviceTrack(1n)).shipmentId).to.equal(SHIPMENT_ID);
    });

    it("numbers shipments sequentially from 1", async () => {
      const f = await networkHelpers.loadFixture(baseFixture);
      expect(await createShipment(f, { deviceIds: [1n] })).to.equal(1n);
      expect(await createShipment(f, { deviceIds: [2n] })).to.equal(2n);
      expect(await createShipment(f, { deviceIds: [3n] })).to.equal(3n);
    });

    it("accepts MAX_DEVICES_PER_SHIPMENT devices", async () => {
      const f = await networkHelpers.loadFixture(baseFixture);
      const deviceIds = Array.from({ length: MAX_DEVICES_PER_SHIPMENT }, (_, i) => BigInt(i + 1));
      await createShipment(f, { deviceIds });
      expect((await f.coldChain.shipment(SHIPMENT_ID)).deviceIds).to.deep.equal(deviceIds);
    });

    it("reverts with AccessControlUnauthorizedAccount when the caller lacks SHIPPER_ROLE", async () => {
      const f = await networkHelpers.loadFixture(baseFixture);
      await expect(f.coldChain.connect(f.carrier).createShipment(params(f)))
        .to.be.revertedWithCustomError(f.coldChain, "AccessControlUnauthorizedAccount")
        .withArgs(f.carrier.address, await f.coldChain.SHIPPER_ROLE());
    });

    it("reverts with ShipmentPartyZero for a zero receiver or owner", async () => {
      const f = await networkHelpers.loadFixture(baseFixture);
      const shipper = f.coldChain.connect(f.shipper);
      await expect(shipper.createShipment(params(f, { receiver: ethers.ZeroAddress }))).to.be.revertedWithCustomError(
        f.coldChain,
        "ShipmentPartyZero",
      );
      await expect(shipper.createShipment(params(f, { owner: ethers.ZeroAddress }))).to.be.revertedWithCustomError(
        f.coldChain,
        "ShipmentPartyZero",
      );
    });

    it("reverts with ProfileUnknown for profile 0 and for a profile not yet created", async () => {
      const f = await networkHelpers.loadFixture(baseFixture);
      const shipper = f.coldChain.connect(f.shipper);
      await expect(shipper.createShipment(params(f, { profileId: 0n })))
        .to.be.revertedWithCustomError(f.coldChain, "ProfileUnknown")
        .withArgs(0n);
      await expect(shipper.createShipment(params(f, { profileId: 2n })))
        .to.be.revertedWithCustomError(f.coldChain, "ProfileUnknown")
        .withArgs(2n);
    });

    it("reverts with ShipmentDeviceCountInvalid for no devices and for more than MAX_DEVICES_PER_SHIPMENT", async () => {
      const f = await networkHelpers.loadFixture(baseFixture);
      const shipper = f.coldChain.connect(f.shipper);
      await expect(shipper.createShipment(params(f, { deviceIds: [] })))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentDeviceCountInvalid")
        .withArgs(0n);
      const tooMany = Array.from({ length: MAX_DEVICES_PER_SHIPMENT + 1 }, (_, i) => BigInt(i + 1));
      await expect(shipper.createShipment(params(f, { deviceIds: tooMany })))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentDeviceCountInvalid")
        .withArgs(BigInt(MAX_DEVICES_PER_SHIPMENT + 1));
    });

    it("reverts with ShipmentDeviceUnavailable for an unknown device", async () => {
      const f = await networkHelpers.loadFixture(baseFixture);
      await expect(f.coldChain.connect(f.shipper).createShipment(params(f, { deviceIds: [1n, 777n] })))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentDeviceUnavailable")
        .withArgs(777n);
    });

    it("reverts with ShipmentDeviceUnavailable for a revoked device", async () => {
      const f = await networkHelpers.loadFixture(baseFixture);
      await f.registry.connect(f.deviceOwner).revokeDevice(2n);
      await expect(f.coldChain.connect(f.shipper).createShipment(params(f, { deviceIds: [2n] })))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentDeviceUnavailable")
        .withArgs(2n);
    });

    // Fails against the current contract: createShipment binds the devices before it sets the new shipment's
    // status, so the second copy of a device finds its track pointing at a shipment whose status is still None
    // (not open) and binds it again instead of reverting.
    it("reverts with ShipmentDeviceUnavailable when a device is listed twice", async () => {
      const f = await networkHelpers.loadFixture(baseFixture);
      await expect(f.coldChain.connect(f.shipper).createShipment(params(f, { deviceIds: [1n, 2n, 1n] })))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentDeviceUnavailable")
        .withArgs(1n);
    });

    it("reverts with ShipmentDeviceUnavailable for a device on a created, in-transit or delivered shipment", async () => {
      const f = await networkHelpers.loadFixture(deliveredFixture); // shipment 1 (device 1) is Delivered
      await createShipment(f, { deviceIds: [2n] }); // shipment 2: Created
      await createShipment(f, { deviceIds: [3n] }); // shipment 3: InTransit
      await f.coldChain.connect(f.shipper).startShipment(3n);
      for (const deviceId of [1n, 2n, 3n]) {
        await expect(f.coldChain.connect(f.shipper).createShipment(params(f, { deviceIds: [4n, deviceId] })))
          .to.be.revertedWithCustomError(f.coldChain, "ShipmentDeviceUnavailable")
          .withArgs(deviceId);
      }
    });

    it("makes a device available again once its shipment is released", async () => {
      const f = await networkHelpers.loadFixture(deliveredFixture);
      await f.coldChain.connect(f.receiver).release(SHIPMENT_ID);
      expect(await createShipment(f, { deviceIds: [DEVICE_ID] })).to.equal(2n);
      expect((await f.coldChain.deviceTrack(DEVICE_ID)).shipmentId).to.equal(2n);
    });

    it("makes a device available again once its shipment is rejected", async () => {
      const f = await networkHelpers.loadFixture(deliveredFixture);
      await f.coldChain.connect(f.qa).reject(SHIPMENT_ID, REASON_CODE);
      expect(await createShipment(f, { deviceIds: [DEVICE_ID] })).to.equal(2n);
    });

    it("makes a device available again once its created shipment is cancelled", async () => {
      const f = await networkHelpers.loadFixture(createdFixture);
      await f.coldChain.connect(f.shipper).cancelShipment(SHIPMENT_ID);
      expect(await createShipment(f, { deviceIds: [DEVICE_ID] })).to.equal(2n);
    });

    it("makes a device available again 7 days after its in-transit shipment is cancelled, not before", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await f.coldChain.connect(f.shipper).cancelShipment(SHIPMENT_ID);
      await networkHelpers.time.increase(7 * 24 * HOUR - 10);
      await expect(createShipment(f, { deviceIds: [DEVICE_ID] }))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentDeviceUnavailable")
        .withArgs(DEVICE_ID);
      await networkHelpers.time.increase(10);
      expect(await createShipment(f, { deviceIds: [DEVICE_ID] })).to.equal(2n);
    });
  });

  describe("startShipment", () => {
    it("moves a created shipment to InTransit and emits ShipmentStarted", async () => {
      const f = await networkHelpers.loadFixture(createdFixture);
      const tx = await f.coldChain.connect(f.shipper).startShipment(SHIPMENT_ID);
      const now = await blockTimestamp(tx);
      await expect(tx).to.emit(f.coldChain, "ShipmentStarted").withArgs(SHIPMENT_ID, now);
      const info = await f.coldChain.shipment(SHIPMENT_ID);
      expect(info.status).to.equal(Status.InTransit);
      expect(info.startedAt).to.equal(now);
      expect(info.custodian).to.equal(f.shipper.address);
    });

    it("reverts with CustodyNotCustodian when a stranger starts", async () => {
      const f = await networkHelpers.loadFixture(createdFixture);
      await expect(f.coldChain.connect(f.stranger).startShipment(SHIPMENT_ID))
        .to.be.revertedWithCustomError(f.coldChain, "CustodyNotCustodian")
        .withArgs(SHIPMENT_ID, f.stranger.address);
    });

    it("reverts with ShipmentWrongStatus when already started", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await expect(f.coldChain.connect(f.shipper).startShipment(SHIPMENT_ID))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentWrongStatus")
        .withArgs(SHIPMENT_ID, Status.InTransit);
    });

    it("reverts with ShipmentWrongStatus for a cancelled shipment", async () => {
      const f = await networkHelpers.loadFixture(createdFixture);
      await f.coldChain.connect(f.shipper).cancelShipment(SHIPMENT_ID);
      await expect(f.coldChain.connect(f.shipper).startShipment(SHIPMENT_ID))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentWrongStatus")
        .withArgs(SHIPMENT_ID, Status.Cancelled);
    });

    it("reverts with ShipmentUnknown for an unknown shipment", async () => {
      const f = await networkHelpers.loadFixture(createdFixture);
      await expect(f.coldChain.connect(f.shipper).startShipment(UNKNOWN_SHIPMENT_ID))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentUnknown")
        .withArgs(UNKNOWN_SHIPMENT_ID);
    });
  });

  describe("cancelShipment", () => {
    it("lets the shipper cancel a created shipment and emits ShipmentCancelled", async () => {
      const f = await networkHelpers.loadFixture(createdFixture);
      const tx = await f.coldChain.connect(f.shipper).cancelShipment(SHIPMENT_ID);
      const now = await blockTimestamp(tx);
      await expect(tx).to.emit(f.coldChain, "ShipmentCancelled").withArgs(SHIPMENT_ID, f.shipper.address);
      const info = await f.coldChain.shipment(SHIPMENT_ID);
      expect(info.status).to.equal(Status.Cancelled);
      expect(info.decidedAt).to.equal(now);
    });

    it("lets the custodian of an in-transit shipment cancel it", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await handOver(f, SHIPMENT_ID, f.shipper, f.carrier);
      await expect(f.coldChain.connect(f.carrier).cancelShipment(SHIPMENT_ID))
        .to.emit(f.coldChain, "ShipmentCancelled")
        .withArgs(SHIPMENT_ID, f.carrier.address);
      expect((await f.coldChain.shipment(SHIPMENT_ID)).status).to.equal(Status.Cancelled);
    });

    it("lets an admin cancel", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await expect(f.coldChain.connect(f.admin).cancelShipment(SHIPMENT_ID))
        .to.emit(f.coldChain, "ShipmentCancelled")
        .withArgs(SHIPMENT_ID, f.admin.address);
    });

    it("withdraws a pending custody offer, which can then no longer be accepted", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await f.coldChain.connect(f.shipper).offerCustody(SHIPMENT_ID, f.carrier.address, await deadlineIn(HOUR));
      await f.coldChain.connect(f.shipper).cancelShipment(SHIPMENT_ID);
      const offer = await f.coldChain.custodyOffer(SHIPMENT_ID);
      expect(offer.to).to.equal(ethers.ZeroAddress);
      expect(offer.deadline).to.equal(0n);
      await expect(f.coldChain.connect(f.carrier).acceptCustody(SHIPMENT_ID))
        .to.be.revertedWithCustomError(f.coldChain, "CustodyOfferInvalid")
        .withArgs(SHIPMENT_ID, f.carrier.address);
    });

    it("reverts with CustodyNotCustodian when the shipper, a stranger, QA or the receiver cancels what a carrier holds", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await handOver(f, SHIPMENT_ID, f.shipper, f.carrier);
      for (const caller of [f.shipper, f.stranger, f.qa, f.receiver]) {
        await expect(f.coldChain.connect(caller).cancelShipment(SHIPMENT_ID))
          .to.be.revertedWithCustomError(f.coldChain, "CustodyNotCustodian")
          .withArgs(SHIPMENT_ID, caller.address);
      }
    });

    it("reverts with ShipmentWrongStatus for a delivered shipment", async () => {
      const f = await networkHelpers.loadFixture(deliveredFixture);
      await expect(f.coldChain.connect(f.shipper).cancelShipment(SHIPMENT_ID))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentWrongStatus")
        .withArgs(SHIPMENT_ID, Status.Delivered);
    });

    it("reverts with ShipmentWrongStatus for a released, rejected or cancelled shipment", async () => {
      const f = await networkHelpers.loadFixture(deliveredFixture);
      await f.coldChain.connect(f.receiver).release(SHIPMENT_ID);
      await expect(f.coldChain.connect(f.admin).cancelShipment(SHIPMENT_ID))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentWrongStatus")
        .withArgs(SHIPMENT_ID, Status.Released);

      const rejected = await createShipment(f, { deviceIds: [2n] });
      await handOverWithSignature(f, rejected, f.shipper, f.receiver);
      await f.coldChain.connect(f.receiver).reject(rejected, REASON_CODE);
      await expect(f.coldChain.connect(f.shipper).cancelShipment(rejected))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentWrongStatus")
        .withArgs(rejected, Status.Rejected);

      const cancelled = await createShipment(f, { deviceIds: [3n] });
      await f.coldChain.connect(f.shipper).cancelShipment(cancelled);
      await expect(f.coldChain.connect(f.shipper).cancelShipment(cancelled))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentWrongStatus")
        .withArgs(cancelled, Status.Cancelled);
    });

    it("reverts with ShipmentUnknown for an unknown shipment", async () => {
      const f = await networkHelpers.loadFixture(createdFixture);
      await expect(f.coldChain.connect(f.admin).cancelShipment(UNKNOWN_SHIPMENT_ID))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentUnknown")
        .withArgs(UNKNOWN_SHIPMENT_ID);
    });
  });

  describe("offerCustody", () => {
    it("records the offer and emits CustodyOffered without moving custody", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      const deadline = await deadlineIn(HOUR);
      await expect(f.coldChain.connect(f.shipper).offerCustody(SHIPMENT_ID, f.carrier.address, deadline))
        .to.emit(f.coldChain, "CustodyOffered")
        .withArgs(SHIPMENT_ID, f.shipper.address, f.carrier.address, deadline);
      const offer = await f.coldChain.custodyOffer(SHIPMENT_ID);
      expect(offer.to).to.equal(f.carrier.address);
      expect(offer.deadline).to.equal(deadline);
      expect((await f.coldChain.shipment(SHIPMENT_ID)).custodian).to.equal(f.shipper.address);
      expect(await f.coldChain.handoverNonce(SHIPMENT_ID)).to.equal(1n);
    });

    it("can be made while the shipment is still Created, without starting it", async () => {
      const f = await networkHelpers.loadFixture(createdFixture);
      await f.coldChain.connect(f.shipper).offerCustody(SHIPMENT_ID, f.carrier.address, await deadlineIn(HOUR));
      expect((await f.coldChain.shipment(SHIPMENT_ID)).status).to.equal(Status.Created);
    });

    it("accepts a deadline equal to the block time", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      const at = (await time.latest()) + 10;
      await time.setNextBlockTimestamp(at);
      await expect(f.coldChain.connect(f.shipper).offerCustody(SHIPMENT_ID, f.carrier.address, at))
        .to.emit(f.coldChain, "CustodyOffered")
        .withArgs(SHIPMENT_ID, f.shipper.address, f.carrier.address, at);
    });

    it("replaces a previous offer", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await f.coldChain.connect(f.shipper).offerCustody(SHIPMENT_ID, f.carrier.address, await deadlineIn(HOUR));
      const deadline = await deadlineIn(2 * HOUR);
      await f.coldChain.connect(f.shipper).offerCustody(SHIPMENT_ID, f.hub.address, deadline);
      const offer = await f.coldChain.custodyOffer(SHIPMENT_ID);
      expect(offer.to).to.equal(f.hub.address);
      expect(offer.deadline).to.equal(deadline);
      await expect(f.coldChain.connect(f.carrier).acceptCustody(SHIPMENT_ID))
        .to.be.revertedWithCustomError(f.coldChain, "CustodyOfferInvalid")
        .withArgs(SHIPMENT_ID, f.carrier.address);
      await expect(f.coldChain.connect(f.hub).acceptCustody(SHIPMENT_ID)).to.emit(f.coldChain, "CustodyTransferred");
    });

    it("reverts with CustodyNotCustodian when a stranger offers custody", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await expect(
        f.coldChain.connect(f.stranger).offerCustody(SHIPMENT_ID, f.stranger.address, await deadlineIn(HOUR)),
      )
        .to.be.revertedWithCustomError(f.coldChain, "CustodyNotCustodian")
        .withArgs(SHIPMENT_ID, f.stranger.address);
    });

    it("reverts with CustodyNotCustodian when the previous custodian offers after handing over", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await handOver(f, SHIPMENT_ID, f.shipper, f.carrier);
      await expect(f.coldChain.connect(f.shipper).offerCustody(SHIPMENT_ID, f.hub.address, await deadlineIn(HOUR)))
        .to.be.revertedWithCustomError(f.coldChain, "CustodyNotCustodian")
        .withArgs(SHIPMENT_ID, f.shipper.address);
    });

    it("reverts with CustodyRecipientInvalid for the zero address and for the custodian itself", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      const deadline = await deadlineIn(HOUR);
      await expect(f.coldChain.connect(f.shipper).offerCustody(SHIPMENT_ID, ethers.ZeroAddress, deadline))
        .to.be.revertedWithCustomError(f.coldChain, "CustodyRecipientInvalid")
        .withArgs(SHIPMENT_ID, ethers.ZeroAddress);
      await expect(f.coldChain.connect(f.shipper).offerCustody(SHIPMENT_ID, f.shipper.address, deadline))
        .to.be.revertedWithCustomError(f.coldChain, "CustodyRecipientInvalid")
        .withArgs(SHIPMENT_ID, f.shipper.address);
    });

    it("reverts with CustodyDeadlinePassed for a deadline before the block time", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      const deadline = BigInt(await time.latest());
      await expect(f.coldChain.connect(f.shipper).offerCustody(SHIPMENT_ID, f.carrier.address, deadline))
        .to.be.revertedWithCustomError(f.coldChain, "CustodyDeadlinePassed")
        .withArgs(SHIPMENT_ID, deadline);
    });

    it("reverts with ShipmentWrongStatus when the receiver offers a delivered shipment on", async () => {
      const f = await networkHelpers.loadFixture(deliveredFixture);
      await expect(f.coldChain.connect(f.receiver).offerCustody(SHIPMENT_ID, f.hub.address, await deadlineIn(HOUR)))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentWrongStatus")
        .withArgs(SHIPMENT_ID, Status.Delivered);
    });

    it("reverts with ShipmentWrongStatus for a cancelled shipment", async () => {
      const f = await networkHelpers.loadFixture(createdFixture);
      await f.coldChain.connect(f.shipper).cancelShipment(SHIPMENT_ID);
      await expect(f.coldChain.connect(f.shipper).offerCustody(SHIPMENT_ID, f.carrier.address, await deadlineIn(HOUR)))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentWrongStatus")
        .withArgs(SHIPMENT_ID, Status.Cancelled);
    });

    it("reverts with ShipmentUnknown for an unknown shipment", async () => {
      const f = await networkHelpers.loadFixture(createdFixture);
      await expect(
        f.coldChain.connect(f.shipper).offerCustody(UNKNOWN_SHIPMENT_ID, f.carrier.address, await deadlineIn(HOUR)),
      )
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentUnknown")
        .withArgs(UNKNOWN_SHIPMENT_ID);
    });
  });

  describe("cancelCustodyOffer", () => {
    it("withdraws the pending offer and emits CustodyOfferCancelled", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await f.coldChain.connect(f.shipper).offerCustody(SHIPMENT_ID, f.carrier.address, await deadlineIn(HOUR));
      await expect(f.coldChain.connect(f.shipper).cancelCustodyOffer(SHIPMENT_ID))
        .to.emit(f.coldChain, "CustodyOfferCancelled")
        .withArgs(SHIPMENT_ID, f.shipper.address, f.carrier.address);
      const offer = await f.coldChain.custodyOffer(SHIPMENT_ID);
      expect(offer.to).to.equal(ethers.ZeroAddress);
      expect(offer.deadline).to.equal(0n);
      await expect(f.coldChain.connect(f.carrier).acceptCustody(SHIPMENT_ID))
        .to.be.revertedWithCustomError(f.coldChain, "CustodyOfferInvalid")
        .withArgs(SHIPMENT_ID, f.carrier.address);
    });

    it("reverts with CustodyOfferInvalid when no offer is pending", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await expect(f.coldChain.connect(f.shipper).cancelCustodyOffer(SHIPMENT_ID))
        .to.be.revertedWithCustomError(f.coldChain, "CustodyOfferInvalid")
        .withArgs(SHIPMENT_ID, f.shipper.address);
    });

    it("reverts with CustodyNotCustodian when the offer's addressee or a stranger cancels it", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await f.coldChain.connect(f.shipper).offerCustody(SHIPMENT_ID, f.carrier.address, await deadlineIn(HOUR));
      for (const caller of [f.carrier, f.stranger]) {
        await expect(f.coldChain.connect(caller).cancelCustodyOffer(SHIPMENT_ID))
          .to.be.revertedWithCustomError(f.coldChain, "CustodyNotCustodian")
          .withArgs(SHIPMENT_ID, caller.address);
      }
    });

    it("reverts with ShipmentUnknown for an unknown shipment", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await expect(f.coldChain.connect(f.shipper).cancelCustodyOffer(UNKNOWN_SHIPMENT_ID))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentUnknown")
        .withArgs(UNKNOWN_SHIPMENT_ID);
    });
  });

  describe("acceptCustody", () => {
    it("moves custody to the addressee, opens a custody period and emits CustodyTransferred", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      const startedAt = (await f.coldChain.shipment(SHIPMENT_ID)).startedAt;
      const offer = f.coldChain.connect(f.shipper).offerCustody(SHIPMENT_ID, f.carrier.address, await deadlineIn(HOUR));
      // The boundary is the offer's time: accepting 20 minutes later does not move it.
      const now = await blockTimestamp(await offer);
      expect((await f.coldChain.custodyOffer(SHIPMENT_ID)).handoverAt).to.equal(now);
      await time.increase(1200);
      const tx = await f.coldChain.connect(f.carrier).acceptCustody(SHIPMENT_ID);
      await expect(tx)
        .to.emit(f.coldChain, "CustodyTransferred")
        .withArgs(SHIPMENT_ID, f.shipper.address, f.carrier.address, 1n, now);
      await expect(tx).not.to.emit(f.coldChain, "ShipmentStarted");
      await expect(tx).not.to.emit(f.coldChain, "ShipmentDelivered");

      const info = await f.coldChain.shipment(SHIPMENT_ID);
      expect(info.custodian).to.equal(f.carrier.address);
      expect(info.custodyPeriods).to.equal(2n);
      expect(info.status).to.equal(Status.InTransit);
      expect(info.startedAt).to.equal(startedAt);
      const history = await f.coldChain.custodyHistory(SHIPMENT_ID);
      expect(history.map((p) => p.custodian)).to.deep.equal([f.shipper.address, f.carrier.address]);
      expect(history[1]?.since).to.equal(now);
      expect((await f.coldChain.custodyOffer(SHIPMENT_ID)).to).to.equal(ethers.ZeroAddress);
      expect(await f.coldChain.handoverNonce(SHIPMENT_ID)).to.equal(2n);
    });

    it("starts a created shipment with the first custody transfer", async () => {
      const f = await networkHelpers.loadFixture(createdFixture);
      const offer = f.coldChain.connect(f.shipper).offerCustody(SHIPMENT_ID, f.carrier.address, await deadlineIn(HOUR));
      const now = await blockTimestamp(await offer); // the goods left when the shipper offered them
      const tx = await f.coldChain.connect(f.carrier).acceptCustody(SHIPMENT_ID);
      await expect(tx).to.emit(f.coldChain, "ShipmentStarted").withArgs(SHIPMENT_ID, now);
      const info = await f.coldChain.shipment(SHIPMENT_ID);
      expect(info.status).to.equal(Status.InTransit);
      expect(info.startedAt).to.equal(now);
    });

    it("delivers the shipment when the receiver accepts, emitting ShipmentDelivered", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await handOver(f, SHIPMENT_ID, f.shipper, f.carrier);
      const offer = f.coldChain
        .connect(f.carrier)
        .offerCustody(SHIPMENT_ID, f.receiver.address, await deadlineIn(HOUR));
      const now = await blockTimestamp(await offer);
      const tx = await f.coldChain.connect(f.receiver).acceptCustody(SHIPMENT_ID);
      await expect(tx)
        .to.emit(f.coldChain, "CustodyTransferred")
        .withArgs(SHIPMENT_ID, f.carrier.address, f.receiver.address, 2n, now);
      await expect(tx).to.emit(f.coldChain, "ShipmentDelivered").withArgs(SHIPMENT_ID, f.receiver.address, now);
      const info = await f.coldChain.shipment(SHIPMENT_ID);
      expect(info.status).to.equal(Status.Delivered);
      expect(info.deliveredAt).to.equal(now);
      expect(info.custodian).to.equal(f.receiver.address);
    });

    it("starts and delivers in one transaction when the shipper hands a created shipment to the receiver", async () => {
      const f = await networkHelpers.loadFixture(createdFixture);
      const offer = f.coldChain
        .connect(f.shipper)
        .offerCustody(SHIPMENT_ID, f.receiver.address, await deadlineIn(HOUR));
      const now = await blockTimestamp(await offer);
      const tx = await f.coldChain.connect(f.receiver).acceptCustody(SHIPMENT_ID);
      await expect(tx).to.emit(f.coldChain, "ShipmentStarted").withArgs(SHIPMENT_ID, now);
      await expect(tx).to.emit(f.coldChain, "ShipmentDelivered").withArgs(SHIPMENT_ID, f.receiver.address, now);
      const info = await f.coldChain.shipment(SHIPMENT_ID);
      expect(info.status).to.equal(Status.Delivered);
      expect(info.startedAt).to.equal(now);
      expect(info.deliveredAt).to.equal(now);
    });

    it("accepts at the offer's deadline", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      const deadline = await deadlineIn(HOUR);
      await f.coldChain.connect(f.shipper).offerCustody(SHIPMENT_ID, f.carrier.address, deadline);
      await time.setNextBlockTimestamp(deadline);
      await expect(f.coldChain.connect(f.carrier).acceptCustody(SHIPMENT_ID)).to.emit(
        f.coldChain,
        "CustodyTransferred",
      );
    });

    it("reverts with CustodyOfferInvalid after the offer's deadline", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      const deadline = await deadlineIn(HOUR);
      await f.coldChain.connect(f.shipper).offerCustody(SHIPMENT_ID, f.carrier.address, deadline);
      await time.setNextBlockTimestamp(deadline + 1n);
      await expect(f.coldChain.connect(f.carrier).acceptCustody(SHIPMENT_ID))
        .to.be.revertedWithCustomError(f.coldChain, "CustodyOfferInvalid")
        .withArgs(SHIPMENT_ID, f.carrier.address);
    });

    it("reverts with CustodyOfferInvalid when someone other than the addressee accepts", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await f.coldChain.connect(f.shipper).offerCustody(SHIPMENT_ID, f.carrier.address, await deadlineIn(HOUR));
      for (const caller of [f.stranger, f.hub, f.shipper]) {
        await expect(f.coldChain.connect(caller).acceptCustody(SHIPMENT_ID))
          .to.be.revertedWithCustomError(f.coldChain, "CustodyOfferInvalid")
          .withArgs(SHIPMENT_ID, caller.address);
      }
    });

    it("reverts with CustodyOfferInvalid when no offer is pending", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await expect(f.coldChain.connect(f.carrier).acceptCustody(SHIPMENT_ID))
        .to.be.revertedWithCustomError(f.coldChain, "CustodyOfferInvalid")
        .withArgs(SHIPMENT_ID, f.carrier.address);
    });

    it("reverts with CustodyOfferInvalid when the offer was already accepted", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await handOver(f, SHIPMENT_ID, f.shipper, f.carrier);
      await expect(f.coldChain.connect(f.carrier).acceptCustody(SHIPMENT_ID))
        .to.be.revertedWithCustomError(f.coldChain, "CustodyOfferInvalid")
        .withArgs(SHIPMENT_ID, f.carrier.address);
    });

    it("reverts with ShipmentUnknown for an unknown shipment", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await expect(f.coldChain.connect(f.carrier).acceptCustody(UNKNOWN_SHIPMENT_ID))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentUnknown")
        .withArgs(UNKNOWN_SHIPMENT_ID);
    });
  });

  describe("transferCustodyWithSignature", () => {
    it("hands over in one transaction with the next custodian's EIP-712 acceptance", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      const deadline = await deadlineIn(HOUR);
      const signature = await signAcceptance(f.carrier, f.domain, {
        shipmentId: SHIPMENT_ID,
        custodian: f.carrier.address,
        nonce: 1n,
        deadline,
      });
      const tx = await f.coldChain
        .connect(f.shipper)
        .transferCustodyWithSignature(SHIPMENT_ID, f.carrier.address, deadline, signature);
      const now = await blockTimestamp(tx);
      await expect(tx)
        .to.emit(f.coldChain, "CustodyTransferred")
        .withArgs(SHIPMENT_ID, f.shipper.address, f.carrier.address, 1n, now);
      expect((await f.coldChain.shipment(SHIPMENT_ID)).custodian).to.equal(f.carrier.address);
      expect(await f.coldChain.handoverNonce(SHIPMENT_ID)).to.equal(2n);
    });

    it("starts a created shipment", async () => {
      const f = await networkHelpers.loadFixture(createdFixture);
      const tx = await handOverWithSignature(f, SHIPMENT_ID, f.shipper, f.carrier);
      await expect(tx).to.emit(f.coldChain, "ShipmentStarted").withArgs(SHIPMENT_ID, anyValue);
      expect((await f.coldChain.shipment(SHIPMENT_ID)).status).to.equal(Status.InTransit);
    });

    it("delivers the shipment when the receiver signs", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      const tx = await handOverWithSignature(f, SHIPMENT_ID, f.shipper, f.receiver);
      const now = await blockTimestamp(tx);
      await expect(tx).to.emit(f.coldChain, "ShipmentDelivered").withArgs(SHIPMENT_ID, f.receiver.address, now);
      const info = await f.coldChain.shipment(SHIPMENT_ID);
      expect(info.status).to.equal(Status.Delivered);
      expect(info.deliveredAt).to.equal(now);
    });

    it("clears a pending two-step offer", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await f.coldChain.connect(f.shipper).offerCustody(SHIPMENT_ID, f.hub.address, await deadlineIn(HOUR));
      await handOverWithSignature(f, SHIPMENT_ID, f.shipper, f.carrier);
      expect((await f.coldChain.custodyOffer(SHIPMENT_ID)).to).to.equal(ethers.ZeroAddress);
      await expect(f.coldChain.connect(f.hub).acceptCustody(SHIPMENT_ID))
        .to.be.revertedWithCustomError(f.coldChain, "CustodyOfferInvalid")
        .withArgs(SHIPMENT_ID, f.hub.address);
    });

    it("accepts a deadline equal to the block time", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      const deadline = await deadlineIn(10);
      const signature = await signAcceptance(f.carrier, f.domain, {
        shipmentId: SHIPMENT_ID,
        custodian: f.carrier.address,
        nonce: 1n,
        deadline,
      });
      await time.setNextBlockTimestamp(deadline);
      await expect(
        f.coldChain
          .connect(f.shipper)
          .transferCustodyWithSignature(SHIPMENT_ID, f.carrier.address, deadline, signature),
      ).to.emit(f.coldChain, "CustodyTransferred");
    });

    it("reverts with CustodyDeadlinePassed after the deadline", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      const deadline = await deadlineIn(10);
      const signature = await signAcceptance(f.carrier, f.domain, {
        shipmentId: SHIPMENT_ID,
        custodian: f.carrier.address,
        nonce: 1n,
        deadline,
      });
      await time.setNextBlockTimestamp(deadline + 1n);
      await expect(
        f.coldChain
          .connect(f.shipper)
          .transferCustodyWithSignature(SHIPMENT_ID, f.carrier.address, deadline, signature),
      )
        .to.be.revertedWithCustomError(f.coldChain, "CustodyDeadlinePassed")
        .withArgs(SHIPMENT_ID, deadline);
    });

    it("reverts with CustodySignatureInvalid when a used signature is replayed after the nonce moved on", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      const deadline = await deadlineIn(HOUR);
      const signature = await signAcceptance(f.carrier, f.domain, {
        shipmentId: SHIPMENT_ID,
        custodian: f.carrier.address,
        nonce: 1n,
        deadline,
      });
      await f.coldChain
        .connect(f.shipper)
        .transferCustodyWithSignature(SHIPMENT_ID, f.carrier.address, deadline, signature);
      await handOver(f, SHIPMENT_ID, f.carrier, f.shipper); // the shipper holds it again; the nonce is now 3
      await expect(
        f.coldChain
          .connect(f.shipper)
          .transferCustodyWithSignature(SHIPMENT_ID, f.carrier.address, deadline, signature),
      )
        .to.be.revertedWithCustomError(f.coldChain, "CustodySignatureInvalid")
        .withArgs(SHIPMENT_ID, f.carrier.address);
    });

    it("reverts with CustodySignatureInvalid for a signature over a stale or future nonce", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      const deadline = await deadlineIn(HOUR);
      for (const nonce of [0n, 2n]) {
        const signature = await signAcceptance(f.carrier, f.domain, {
          shipmentId: SHIPMENT_ID,
          custodian: f.carrier.address,
          nonce,
          deadline,
        });
        await expect(
          f.coldChain
            .connect(f.shipper)
            .transferCustodyWithSignature(SHIPMENT_ID, f.carrier.address, deadline, signature),
        )
          .to.be.revertedWithCustomError(f.coldChain, "CustodySignatureInvalid")
          .withArgs(SHIPMENT_ID, f.carrier.address);
      }
    });

    it("reverts with CustodySignatureInvalid for a signature made for another chain id", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      const deadline = await deadlineIn(HOUR);
      const signature = await signAcceptance(
        f.carrier,
        { ...f.domain, chainId: f.chainId + 1n },
        { shipmentId: SHIPMENT_ID, custodian: f.carrier.address, nonce: 1n, deadline },
      );
      await expect(
        f.coldChain
          .connect(f.shipper)
          .transferCustodyWithSignature(SHIPMENT_ID, f.carrier.address, deadline, signature),
      )
        .to.be.revertedWithCustomError(f.coldChain, "CustodySignatureInvalid")
        .withArgs(SHIPMENT_ID, f.carrier.address);
    });

    it("reverts with CustodySignatureInvalid for a signature made for another contract address", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      const deadline = await deadlineIn(HOUR);
      const signature = await signAcceptance(
        f.carrier,
        { ...f.domain, verifyingContract: await f.registry.getAddress() },
        { shipmentId: SHIPMENT_ID, custodian: f.carrier.address, nonce: 1n, deadline },
      );
      await expect(
        f.coldChain
          .connect(f.shipper)
          .transferCustodyWithSignature(SHIPMENT_ID, f.carrier.address, deadline, signature),
      )
        .to.be.revertedWithCustomError(f.coldChain, "CustodySignatureInvalid")
        .withArgs(SHIPMENT_ID, f.carrier.address);
    });

    it("reverts with CustodySignatureInvalid for a signature under another domain name or version", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      const deadline = await deadlineIn(HOUR);
      const value = { shipmentId: SHIPMENT_ID, custodian: f.carrier.address, nonce: 1n, deadline };
      for (const domain of [
        { ...f.domain, name: "ColdChainV2" },
        { ...f.domain, version: "1" }, // protocol v1's domain
      ]) {
        const signature = await signAcceptance(f.carrier, domain, value);
        await expect(
          f.coldChain
            .connect(f.shipper)
            .transferCustodyWithSignature(SHIPMENT_ID, f.carrier.address, deadline, signature),
        )
          .to.be.revertedWithCustomError(f.coldChain, "CustodySignatureInvalid")
          .withArgs(SHIPMENT_ID, f.carrier.address);
      }
    });

    it("reverts with CustodySignatureInvalid for a signature over another shipment or deadline", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      const deadline = await deadlineIn(HOUR);
      const otherShipment = await signAcceptance(f.carrier, f.domain, {
        shipmentId: 2n,
        custodian: f.carrier.address,
        nonce: 1n,
        deadline,
      });
      const otherDeadline = await signAcceptance(f.carrier, f.domain, {
        shipmentId: SHIPMENT_ID,
        custodian: f.carrier.address,
        nonce: 1n,
        deadline: deadline + 1n,
      });
      for (const signature of [otherShipment, otherDeadline]) {
        await expect(
          f.coldChain
            .connect(f.shipper)
            .transferCustodyWithSignature(SHIPMENT_ID, f.carrier.address, deadline, signature),
        )
          .to.be.revertedWithCustomError(f.coldChain, "CustodySignatureInvalid")
          .withArgs(SHIPMENT_ID, f.carrier.address);
      }
    });

    it("reverts with CustodySignatureInvalid when someone other than the next custodian signed", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      const deadline = await deadlineIn(HOUR);
      const signature = await signAcceptance(f.stranger, f.domain, {
        shipmentId: SHIPMENT_ID,
        custodian: f.carrier.address,
        nonce: 1n,
        deadline,
      });
      await expect(
        f.coldChain
          .connect(f.shipper)
          .transferCustodyWithSignature(SHIPMENT_ID, f.carrier.address, deadline, signature),
      )
        .to.be.revertedWithCustomError(f.coldChain, "CustodySignatureInvalid")
        .withArgs(SHIPMENT_ID, f.carrier.address);
    });

    it("reverts with CustodySignatureInvalid when the signed acceptance names another custodian", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      const deadline = await deadlineIn(HOUR);
      // The hub signs an acceptance naming the carrier; it must not move custody to the hub.
      const signature = await signAcceptance(f.hub, f.domain, {
        shipmentId: SHIPMENT_ID,
        custodian: f.carrier.address,
        nonce: 1n,
        deadline,
      });
      await expect(
        f.coldChain.connect(f.shipper).transferCustodyWithSignature(SHIPMENT_ID, f.hub.address, deadline, signature),
      )
        .to.be.revertedWithCustomError(f.coldChain, "CustodySignatureInvalid")
        .withArgs(SHIPMENT_ID, f.hub.address);
    });

    it("reverts with CustodySignatureInvalid for an empty or malformed signature", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      const deadline = await deadlineIn(HOUR);
      for (const signature of ["0x", ethers.hexlify(ethers.randomBytes(65)), ethers.hexlify(ethers.randomBytes(64))]) {
        await expect(
          f.coldChain
            .connect(f.shipper)
            .transferCustodyWithSignature(SHIPMENT_ID, f.carrier.address, deadline, signature),
        )
          .to.be.revertedWithCustomError(f.coldChain, "CustodySignatureInvalid")
          .withArgs(SHIPMENT_ID, f.carrier.address);
      }
    });

    it("reverts with CustodyNotCustodian when anyone but the custodian submits a valid acceptance", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      const deadline = await deadlineIn(HOUR);
      const signature = await signAcceptance(f.carrier, f.domain, {
        shipmentId: SHIPMENT_ID,
        custodian: f.carrier.address,
        nonce: 1n,
        deadline,
      });
      for (const caller of [f.stranger, f.carrier]) {
        await expect(
          f.coldChain.connect(caller).transferCustodyWithSignature(SHIPMENT_ID, f.carrier.address, deadline, signature),
        )
          .to.be.revertedWithCustomError(f.coldChain, "CustodyNotCustodian")
          .withArgs(SHIPMENT_ID, caller.address);
      }
    });

    it("reverts with CustodyRecipientInvalid for the zero address and for the custodian itself", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      const deadline = await deadlineIn(HOUR);
      const signature = await signAcceptance(f.shipper, f.domain, {
        shipmentId: SHIPMENT_ID,
        custodian: f.shipper.address,
        nonce: 1n,
        deadline,
      });
      await expect(
        f.coldChain
          .connect(f.shipper)
          .transferCustodyWithSignature(SHIPMENT_ID, ethers.ZeroAddress, deadline, signature),
      )
        .to.be.revertedWithCustomError(f.coldChain, "CustodyRecipientInvalid")
        .withArgs(SHIPMENT_ID, ethers.ZeroAddress);
      await expect(
        f.coldChain
          .connect(f.shipper)
          .transferCustodyWithSignature(SHIPMENT_ID, f.shipper.address, deadline, signature),
      )
        .to.be.revertedWithCustomError(f.coldChain, "CustodyRecipientInvalid")
        .withArgs(SHIPMENT_ID, f.shipper.address);
    });

    it("reverts with ShipmentWrongStatus once the shipment is delivered", async () => {
      const f = await networkHelpers.loadFixture(deliveredFixture);
      await expect(handOverWithSignature(f, SHIPMENT_ID, f.receiver, f.hub))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentWrongStatus")
        .withArgs(SHIPMENT_ID, Status.Delivered);
    });

    it("reverts with ShipmentWrongStatus for a cancelled shipment", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await f.coldChain.connect(f.shipper).cancelShipment(SHIPMENT_ID);
      await expect(handOverWithSignature(f, SHIPMENT_ID, f.shipper, f.carrier))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentWrongStatus")
        .withArgs(SHIPMENT_ID, Status.Cancelled);
    });

    it("reverts with ShipmentUnknown for an unknown shipment", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await expect(handOverWithSignature(f, UNKNOWN_SHIPMENT_ID, f.shipper, f.carrier))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentUnknown")
        .withArgs(UNKNOWN_SHIPMENT_ID);
    });
  });

  describe("custody history limit", () => {
    it("records MAX_CUSTODY_PERIODS periods, the last one the receiver's", async () => {
      const f = await networkHelpers.loadFixture(fullHistoryFixture);
      const history = await f.coldChain.custodyHistory(SHIPMENT_ID);
      expect(history.map((p) => p.custodian)).to.deep.equal(f.custodians);
      const info = await f.coldChain.shipment(SHIPMENT_ID);
      expect(info.custodyPeriods).to.equal(BigInt(MAX_CUSTODY_PERIODS));
      expect(info.status).to.equal(Status.Delivered);
      expect(await f.coldChain.handoverNonce(SHIPMENT_ID)).to.equal(BigInt(MAX_CUSTODY_PERIODS));
    });

    it("keeps the last period for the receiver: a signed handover to anyone else reverts with CustodyHistoryFull", async () => {
      const f = await networkHelpers.loadFixture(nearlyFullHistoryFixture);
      const next = f.holder === f.carrier ? f.hub : f.carrier;
      await expect(handOverWithSignature(f, SHIPMENT_ID, f.holder, next))
        .to.be.revertedWithCustomError(f.coldChain, "CustodyHistoryFull")
        .withArgs(SHIPMENT_ID);
    });

    it("keeps the last period for the receiver: an accepted offer to anyone else reverts with CustodyHistoryFull", async () => {
      const f = await networkHelpers.loadFixture(nearlyFullHistoryFixture);
      const next = f.holder === f.carrier ? f.hub : f.carrier;
      await f.coldChain.connect(f.holder).offerCustody(SHIPMENT_ID, next.address, await deadlineIn(HOUR));
      await expect(f.coldChain.connect(next).acceptCustody(SHIPMENT_ID))
        .to.be.revertedWithCustomError(f.coldChain, "CustodyHistoryFull")
        .withArgs(SHIPMENT_ID);
    });

    it("lets the receiver accept the last period, so a long journey can always be delivered", async () => {
      const f = await networkHelpers.loadFixture(nearlyFullHistoryFixture);
      await f.coldChain.connect(f.holder).offerCustody(SHIPMENT_ID, f.receiver.address, await deadlineIn(HOUR));
      await expect(f.coldChain.connect(f.receiver).acceptCustody(SHIPMENT_ID)).to.emit(
        f.coldChain,
        "ShipmentDelivered",
      );
    });

    it("still lets the custodian cancel a shipment whose history is nearly full", async () => {
      const f = await networkHelpers.loadFixture(nearlyFullHistoryFixture);
      await expect(f.coldChain.connect(f.holder).cancelShipment(SHIPMENT_ID))
        .to.emit(f.coldChain, "ShipmentCancelled")
        .withArgs(SHIPMENT_ID, f.holder.address);
    });
  });

  describe("release and reject", () => {
    it("lets the receiver release a delivered shipment, emitting ShipmentReleased", async () => {
      const f = await networkHelpers.loadFixture(deliveredFixture);
      const tx = await f.coldChain.connect(f.receiver).release(SHIPMENT_ID);
      const now = await blockTimestamp(tx);
      await expect(tx).to.emit(f.coldChain, "ShipmentReleased").withArgs(SHIPMENT_ID, f.receiver.address);
      const info = await f.coldChain.shipment(SHIPMENT_ID);
      expect(info.status).to.equal(Status.Released);
      expect(info.decidedAt).to.equal(now);
      expect(info.rejectionCode).to.equal(ethers.ZeroHash);
    });

    it("lets QA release a delivered shipment", async () => {
      const f = await networkHelpers.loadFixture(deliveredFixture);
      await expect(f.coldChain.connect(f.qa).release(SHIPMENT_ID))
        .to.emit(f.coldChain, "ShipmentReleased")
        .withArgs(SHIPMENT_ID, f.qa.address);
      expect((await f.coldChain.shipment(SHIPMENT_ID)).status).to.equal(Status.Released);
    });

    it("lets the receiver reject with a reason code, emitting ShipmentRejected", async () => {
      const f = await networkHelpers.loadFixture(deliveredFixture);
      const tx = await f.coldChain.connect(f.receiver).reject(SHIPMENT_ID, REASON_CODE);
      const now = await blockTimestamp(tx);
      await expect(tx).to.emit(f.coldChain, "ShipmentRejected").withArgs(SHIPMENT_ID, f.receiver.address, REASON_CODE);
      const info = await f.coldChain.shipment(SHIPMENT_ID);
      expect(info.status).to.equal(Status.Rejected);
      expect(info.decidedAt).to.equal(now);
      expect(info.rejectionCode).to.equal(REASON_CODE);
    });

    it("lets QA reject a delivered shipment", async () => {
      const f = await networkHelpers.loadFixture(deliveredFixture);
      await expect(f.coldChain.connect(f.qa).reject(SHIPMENT_ID, REASON_CODE))
        .to.emit(f.coldChain, "ShipmentRejected")
        .withArgs(SHIPMENT_ID, f.qa.address, REASON_CODE);
      expect((await f.coldChain.shipment(SHIPMENT_ID)).status).to.equal(Status.Rejected);
    });

    it("reverts with ShipmentNotReceiverOrQa when the shipper, a carrier, the owner, an admin or a stranger decides", async () => {
      const f = await networkHelpers.loadFixture(deliveredFixture);
      for (const caller of [f.shipper, f.carrier, f.owner, f.admin, f.stranger]) {
        await expect(f.coldChain.connect(caller).release(SHIPMENT_ID))
          .to.be.revertedWithCustomError(f.coldChain, "ShipmentNotReceiverOrQa")
          .withArgs(SHIPMENT_ID, caller.address);
        await expect(f.coldChain.connect(caller).reject(SHIPMENT_ID, REASON_CODE))
          .to.be.revertedWithCustomError(f.coldChain, "ShipmentNotReceiverOrQa")
          .withArgs(SHIPMENT_ID, caller.address);
      }
    });

    it("reverts with ShipmentWrongStatus before delivery", async () => {
      const f = await networkHelpers.loadFixture(createdFixture);
      await expect(f.coldChain.connect(f.receiver).release(SHIPMENT_ID))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentWrongStatus")
        .withArgs(SHIPMENT_ID, Status.Created);
      await f.coldChain.connect(f.shipper).startShipment(SHIPMENT_ID);
      await expect(f.coldChain.connect(f.qa).reject(SHIPMENT_ID, REASON_CODE))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentWrongStatus")
        .withArgs(SHIPMENT_ID, Status.InTransit);
    });

    it("reverts with ShipmentWrongStatus after a release", async () => {
      const f = await networkHelpers.loadFixture(deliveredFixture);
      await f.coldChain.connect(f.receiver).release(SHIPMENT_ID);
      await expect(f.coldChain.connect(f.receiver).release(SHIPMENT_ID))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentWrongStatus")
        .withArgs(SHIPMENT_ID, Status.Released);
      await expect(f.coldChain.connect(f.qa).reject(SHIPMENT_ID, REASON_CODE))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentWrongStatus")
        .withArgs(SHIPMENT_ID, Status.Released);
    });

    it("reverts with ShipmentWrongStatus after a rejection", async () => {
      const f = await networkHelpers.loadFixture(deliveredFixture);
      await f.coldChain.connect(f.receiver).reject(SHIPMENT_ID, REASON_CODE);
      await expect(f.coldChain.connect(f.qa).release(SHIPMENT_ID))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentWrongStatus")
        .withArgs(SHIPMENT_ID, Status.Rejected);
      await expect(f.coldChain.connect(f.receiver).reject(SHIPMENT_ID, REASON_CODE))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentWrongStatus")
        .withArgs(SHIPMENT_ID, Status.Rejected);
    });

    it("reverts with ShipmentWrongStatus for a cancelled shipment", async () => {
      const f = await networkHelpers.loadFixture(createdFixture);
      await f.coldChain.connect(f.shipper).cancelShipment(SHIPMENT_ID);
      await expect(f.coldChain.connect(f.receiver).reject(SHIPMENT_ID, REASON_CODE))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentWrongStatus")
        .withArgs(SHIPMENT_ID, Status.Cancelled);
    });

    it("reverts with ShipmentUnknown for an unknown shipment", async () => {
      const f = await networkHelpers.loadFixture(deliveredFixture);
      await expect(f.coldChain.connect(f.qa).release(UNKNOWN_SHIPMENT_ID))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentUnknown")
        .withArgs(UNKNOWN_SHIPMENT_ID);
      await expect(f.coldChain.connect(f.qa).reject(UNKNOWN_SHIPMENT_ID, REASON_CODE))
        .to.be.revertedWithCustomError(f.coldChain, "ShipmentUnknown")
        .withArgs(UNKNOWN_SHIPMENT_ID);
    });
  });

  describe("views", () => {
    it("custodyHistory lists every period oldest first with its start time", async () => {
      const f = await networkHelpers.loadFixture(createdFixture);
      const createdAt = (await f.coldChain.shipment(SHIPMENT_ID)).createdAt;
      await time.increase(HOUR);
      await handOver(f, SHIPMENT_ID, f.shipper, f.carrier);
      const t1 = await lastSince(f);
      await time.increase(HOUR);
      const t2 = await blockTimestamp(await handOverWithSignature(f, SHIPMENT_ID, f.carrier, f.hub));
      const history = await f.coldChain.custodyHistory(SHIPMENT_ID);
      expect(history.map((p) => [p.custodian, p.since, p.excursionSeconds, p.breachFlags])).to.deep.equal([
        [f.shipper.address, createdAt, 0n, 0n],
        [f.carrier.address, t1, 0n, 0n],
        [f.hub.address, t2, 0n, 0n],
      ]);
    });

    it("custodianAt returns who held custody at each time, and the shipper before creation", async () => {
      const f = await networkHelpers.loadFixture(createdFixture);
      const createdAt = (await f.coldChain.shipment(SHIPMENT_ID)).createdAt;
      await time.increase(HOUR);
      await handOver(f, SHIPMENT_ID, f.shipper, f.carrier);
      const t1 = await lastSince(f);
      await time.increase(HOUR);
      await handOver(f, SHIPMENT_ID, f.carrier, f.hub);
      const t2 = await lastSince(f);
      await time.increase(HOUR);
      await handOver(f, SHIPMENT_ID, f.hub, f.receiver);
      const t3 = await lastSince(f);

      const cases: [bigint, string][] = [
        [0n, f.shipper.address],
        [createdAt - 1n, f.shipper.address],
        [createdAt, f.shipper.address],
        [t1 - 1n, f.shipper.address],
        [t1, f.carrier.address],
        [t2 - 1n, f.carrier.address],
        [t2, f.hub.address],
        [t3 - 1n, f.hub.address],
        [t3, f.receiver.address],
        [t3 + 1_000_000n, f.receiver.address],
        [2n ** 40n - 1n, f.receiver.address],
      ];
      for (const [at, custodian] of cases) {
        expect(await f.lens.custodianAt(SHIPMENT_ID, at), `custodianAt(${at})`).to.equal(custodian);
      }
    });

    it("custodianAt finds the right period at and just before every boundary of a full history", async () => {
      const f = await networkHelpers.loadFixture(fullHistoryFixture);
      const history = await f.coldChain.custodyHistory(SHIPMENT_ID);
      // Reference: the last period whose start is not after `at` (period 0 for earlier times).
      const reference = (at: bigint) => history.findLast((p) => p.since <= at)?.custodian ?? f.shipper.address;
      for (const [i, period] of history.entries()) {
        for (const at of [period.since - 1n, period.since, period.since + 1n]) {
          expect(await f.lens.custodianAt(SHIPMENT_ID, at), `period ${i}, custodianAt(${at})`).to.equal(reference(at));
        }
      }
    });

    it("custodianAt returns the last custodian when two handovers share a block", async () => {
      const f = await networkHelpers.loadFixture(createdFixture);
      const createdAt = (await f.coldChain.shipment(SHIPMENT_ID)).createdAt;
      await time.increase(HOUR);
      const deadline = await deadlineIn(HOUR);
      const toCarrier = await signAcceptance(f.carrier, f.domain, {
        shipmentId: SHIPMENT_ID,
        custodian: f.carrier.address,
        nonce: 1n,
        deadline,
      });
      const toHub = await signAcceptance(f.hub, f.domain, {
        shipmentId: SHIPMENT_ID,
        custodian: f.hub.address,
        nonce: 2n,
        deadline,
      });
      await inOneBlock(async () => {
        await f.coldChain
          .connect(f.shipper)
          .transferCustodyWithSignature(SHIPMENT_ID, f.carrier.address, deadline, toCarrier, { gasLimit: GAS_LIMIT });
        await f.coldChain
          .connect(f.carrier)
          .transferCustodyWithSignature(SHIPMENT_ID, f.hub.address, deadline, toHub, { gasLimit: GAS_LIMIT });
      });

      const history = await f.coldChain.custodyHistory(SHIPMENT_ID);
      expect(history.map((p) => p.custodian)).to.deep.equal([f.shipper.address, f.carrier.address, f.hub.address]);
      const at = history[1]?.since ?? 0n;
      expect(history[2]?.since).to.equal(at);
      expect(at).to.be.greaterThan(createdAt);
      expect(await f.lens.custodianAt(SHIPMENT_ID, at)).to.equal(f.hub.address);
      expect(await f.lens.custodianAt(SHIPMENT_ID, at - 1n)).to.equal(f.shipper.address);
      expect(await f.lens.custodianAt(SHIPMENT_ID, at + 1n)).to.equal(f.hub.address);
    });

    it("custodianAt returns the transferee when a handover shares the creation block", async () => {
      const f = await networkHelpers.loadFixture(baseFixture);
      const deadline = await deadlineIn(HOUR);
      const toCarrier = await signAcceptance(f.carrier, f.domain, {
        shipmentId: SHIPMENT_ID,
        custodian: f.carrier.address,
        nonce: 1n,
        deadline,
      });
      const nonce = await f.shipper.getNonce();
      await inOneBlock(async () => {
        await f.coldChain.connect(f.shipper).createShipment(params(f), { gasLimit: GAS_LIMIT, nonce });
        await f.coldChain
          .connect(f.shipper)
          .transferCustodyWithSignature(SHIPMENT_ID, f.carrier.address, deadline, toCarrier, {
            gasLimit: GAS_LIMIT,
            nonce: nonce + 1,
          });
      });

      const info = await f.coldChain.shipment(SHIPMENT_ID);
      expect(info.custodian).to.equal(f.carrier.address);
      expect(info.status).to.equal(Status.InTransit);
      expect(info.startedAt).to.equal(info.createdAt);
      const history = await f.coldChain.custodyHistory(SHIPMENT_ID);
      expect(history.map((p) => p.since)).to.deep.equal([info.createdAt, info.createdAt]);
      expect(await f.lens.custodianAt(SHIPMENT_ID, info.createdAt)).to.equal(f.carrier.address);
      expect(await f.lens.custodianAt(SHIPMENT_ID, info.createdAt - 1n)).to.equal(f.shipper.address);
    });

    it("excursionSecondsOf is zero for every party before any reading", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await handOver(f, SHIPMENT_ID, f.shipper, f.carrier);
      for (const party of [f.shipper, f.carrier, f.stranger]) {
        expect(await f.lens.excursionSecondsOf(SHIPMENT_ID, party.address)).to.equal(0n);
      }
    });

    it("excursionSecondsOf sums the excursion time charged to all of a party's custody periods", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      const startedAt = Number((await f.coldChain.shipment(SHIPMENT_ID)).startedAt);
      await time.increaseTo(startedAt + 1000);
      const t1 = Number(await blockTimestamp(await handOverWithSignature(f, SHIPMENT_ID, f.shipper, f.carrier)));
      await time.increase(1000);
      const t2 = Number(await blockTimestamp(await handOverWithSignature(f, SHIPMENT_ID, f.carrier, f.hub)));
      await time.increase(1000);
      const t3 = Number(await blockTimestamp(await handOverWithSignature(f, SHIPMENT_ID, f.hub, f.carrier)));
      await time.increase(1000);

      // One out-of-range reading (10 degrees C, above the 8 degree limit) in each custody period, after the
      // profile's adaptation time; each stands for one recording interval of excursion.
      const tooWarm = 1000;
      const times = [startedAt + 700, t1 + 100, t2 + 100, t3 + 100];
      const readings: Reading[] = times.map((observedAt, i) => ({
        sequence: i + 1,
        observedAt,
        tempCentiC: tooWarm,
        flags: 0,
        previousObservedAt: times[i - 1] ?? 0, // the logger recorded only these (one per custody period)
      }));
      const key = f.deviceKeys[0];
      if (key === undefined) throw new Error("device 1 key missing");
      const batch = await readingsBatch(f.domain, DEVICE_ID, key, readings);
      expect(await f.coldChain.connect(f.relayer).submitReadings.staticCall(batch)).to.deep.equal([4n, 0n]);
      await f.coldChain.connect(f.relayer).submitReadings(batch);

      const history = await f.coldChain.custodyHistory(SHIPMENT_ID);
      const interval = BigInt(INTERVAL_SECONDS);
      expect(history.map((p) => p.excursionSeconds)).to.deep.equal([interval, interval, interval, interval]);
      expect(await f.lens.excursionSecondsOf(SHIPMENT_ID, f.shipper.address)).to.equal(interval);
      expect(await f.lens.excursionSecondsOf(SHIPMENT_ID, f.carrier.address)).to.equal(2n * interval);
      expect(await f.lens.excursionSecondsOf(SHIPMENT_ID, f.hub.address)).to.equal(interval);
      expect(await f.lens.excursionSecondsOf(SHIPMENT_ID, f.stranger.address)).to.equal(0n);
      expect((await f.coldChain.condition(SHIPMENT_ID)).cumulativeExcursionSeconds).to.equal(4n * interval);
    });

    it("custodyOffer and handoverNonce return zeros for an unknown shipment", async () => {
      const f = await networkHelpers.loadFixture(createdFixture);
      const offer = await f.coldChain.custodyOffer(UNKNOWN_SHIPMENT_ID);
      expect(offer.to).to.equal(ethers.ZeroAddress);
      expect(offer.deadline).to.equal(0n);
      expect(await f.coldChain.handoverNonce(UNKNOWN_SHIPMENT_ID)).to.equal(0n);
    });

    it("shipment, custodyHistory, custodianAt and excursionSecondsOf revert with ShipmentUnknown", async () => {
      const f = await networkHelpers.loadFixture(createdFixture);
      const c = f.coldChain;
      for (const id of [0n, UNKNOWN_SHIPMENT_ID]) {
        await expect(c.shipment(id)).to.be.revertedWithCustomError(c, "ShipmentUnknown").withArgs(id);
        await expect(c.custodyHistory(id)).to.be.revertedWithCustomError(c, "ShipmentUnknown").withArgs(id);
        await expect(f.lens.custodianAt(id, 0n)).to.be.revertedWithCustomError(c, "ShipmentUnknown").withArgs(id);
        await expect(f.lens.excursionSecondsOf(id, f.shipper.address))
          .to.be.revertedWithCustomError(c, "ShipmentUnknown")
          .withArgs(id);
      }
    });
  });

  describe("pause", () => {
    it("lets the guardian pause and unpause, emitting Paused and Unpaused", async () => {
      const f = await networkHelpers.loadFixture(createdFixture);
      await expect(f.coldChain.connect(f.guardian).pause()).to.emit(f.coldChain, "Paused").withArgs(f.guardian.address);
      expect(await f.coldChain.paused()).to.equal(true);
      await expect(f.coldChain.connect(f.guardian).unpause())
        .to.emit(f.coldChain, "Unpaused")
        .withArgs(f.guardian.address);
      expect(await f.coldChain.paused()).to.equal(false);
    });

    it("reverts with AccessControlUnauthorizedAccount when a non-guardian pauses or unpauses", async () => {
      const f = await networkHelpers.loadFixture(createdFixture);
      const guardianRole = await f.coldChain.GUARDIAN_ROLE();
      for (const caller of [f.admin, f.qa, f.shipper]) {
        await expect(f.coldChain.connect(caller).pause())
          .to.be.revertedWithCustomError(f.coldChain, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, guardianRole);
      }
      await f.coldChain.connect(f.guardian).pause();
      await expect(f.coldChain.connect(f.admin).unpause())
        .to.be.revertedWithCustomError(f.coldChain, "AccessControlUnauthorizedAccount")
        .withArgs(f.admin.address, guardianRole);
    });

    it("reverts with EnforcedPause when paused twice and ExpectedPause when unpaused while running", async () => {
      const f = await networkHelpers.loadFixture(createdFixture);
      await expect(f.coldChain.connect(f.guardian).unpause()).to.be.revertedWithCustomError(
        f.coldChain,
        "ExpectedPause",
      );
      await f.coldChain.connect(f.guardian).pause();
      await expect(f.coldChain.connect(f.guardian).pause()).to.be.revertedWithCustomError(f.coldChain, "EnforcedPause");
    });

    it("blocks every state-changing entry point with EnforcedPause", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      // Set each call up so that, unpaused, it would succeed.
      await f.coldChain.connect(f.shipper).offerCustody(SHIPMENT_ID, f.carrier.address, await deadlineIn(HOUR));
      const delivered = await createShipment(f, { deviceIds: [2n] });
      await handOverWithSignature(f, delivered, f.shipper, f.receiver);
      const deadline = await deadlineIn(HOUR);
      const signature = await signAcceptance(f.hub, f.domain, {
        shipmentId: SHIPMENT_ID,
        custodian: f.hub.address,
        nonce: 1n,
        deadline,
      });
      await f.coldChain.connect(f.guardian).pause();

      const c = f.coldChain;
      const calls: [string, () => Promise<unknown>][] = [
        ["createProfile", () => c.connect(f.qa).createProfile(VACCINE_PROFILE)],
        ["createShipment", () => c.connect(f.shipper).createShipment(params(f, { deviceIds: [3n] }))],
        ["startShipment", () => c.connect(f.shipper).startShipment(SHIPMENT_ID)],
        ["offerCustody", () => c.connect(f.shipper).offerCustody(SHIPMENT_ID, f.hub.address, deadline)],
        ["cancelCustodyOffer", () => c.connect(f.shipper).cancelCustodyOffer(SHIPMENT_ID)],
        ["acceptCustody", () => c.connect(f.carrier).acceptCustody(SHIPMENT_ID)],
        [
          "transferCustodyWithSignature",
          () => c.connect(f.shipper).transferCustodyWithSignature(SHIPMENT_ID, f.hub.address, deadline, signature),
        ],
        ["cancelShipment", () => c.connect(f.shipper).cancelShipment(SHIPMENT_ID)],
        ["release", () => c.connect(f.receiver).release(delivered)],
        ["reject", () => c.connect(f.receiver).reject(delivered, REASON_CODE)],
        ["submitReadings", () => c.connect(f.relayer).submitReadings("0x02")],
      ];
      for (const [name, call] of calls) {
        await expect(call(), name).to.be.revertedWithCustomError(c, "EnforcedPause");
      }
    });

    it("keeps the views readable while paused", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await f.coldChain.connect(f.guardian).pause();
      expect((await f.coldChain.shipment(SHIPMENT_ID)).status).to.equal(Status.InTransit);
      expect(await f.coldChain.custodyHistory(SHIPMENT_ID)).to.have.length(1);
      expect(await f.lens.custodianAt(SHIPMENT_ID, 0n)).to.equal(f.shipper.address);
      expect(await f.lens.excursionSecondsOf(SHIPMENT_ID, f.shipper.address)).to.equal(0n);
      expect(await f.coldChain.handoverNonce(SHIPMENT_ID)).to.equal(1n);
      expect((await f.coldChain.custodyOffer(SHIPMENT_ID)).to).to.equal(ethers.ZeroAddress);
      expect(profileTuple(await f.coldChain.profile(PROFILE_ID))).to.deep.equal(profileTuple(VACCINE_PROFILE));
    });

    it("lets custody move again after unpause", async () => {
      const f = await networkHelpers.loadFixture(inTransitFixture);
      await f.coldChain.connect(f.guardian).pause();
      await f.coldChain.connect(f.guardian).unpause();
      await expect(handOverWithSignature(f, SHIPMENT_ID, f.shipper, f.carrier)).to.emit(
        f.coldChain,
        "CustodyTransferred",
      );
    });
  });
});
