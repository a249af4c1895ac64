/**
 * Attempts to bend a shipment's verdict (issue "Evidence no party can bend"), each tried against the contracts on
 * an in-process chain: cryogenic and incoherent profiles on the fast paths, windows straddling the start or the
 * delivery, a cancel-and-re-create by a party that wants an excursion forgotten, and a relayer that reorders or
 * splits the readings (protocol v2: each device's readings are applied in the order the device took them).
 */
import { expect } from "chai";
import { Wallet } from "ethers";
import type { ContractTransactionReceipt, LogDescription } from "ethers";
import { network } from "hardhat";

import type { ColdChainDomain, DevicePrivateKey, Reading, SignedItem } from "../sdk/protocol/index.js";
import { encodeBatch, p256PublicKey, signReading, signWindow } from "../sdk/protocol/index.js";
import type { IShipments } from "../types/ethers-contracts/index.js";
import { VACCINE_PROFILE, createShipment, deploySuite, registerDevice } from "./support/deploy.js";
import type { Suite } from "./support/deploy.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;

const INTERVAL = 300;
const HOUR = 3600;
const DAY = 24 * HOUR;
const DUPLICATE_SEQUENCE = 6n;
const OUTSIDE_SHIPMENT_WINDOW = 8n;
const Breach = { AbsoluteLimit: 1n } as const;

/** Cell and gene therapy in liquid-nitrogen vapour: -150 .. -120 degrees C, no freeze alarm, no MKT. */
const CRYOGENIC_PROFILE: IShipments.TemperatureProfileStruct = {
  minCentiC: -15_000,
  maxCentiC: -12_000,
  absoluteMinCentiC: -19_600,
  absoluteMaxCentiC: -10_000,
  freezeCentiC: 0,
  maxFreezeSeconds: 0,
  maxSingleExcursionSeconds: HOUR,
  maxCumulativeExcursionSeconds: 4 * HOUR,
  adaptationSeconds: 0,
  maxGapIntervals: 3,
  faultFlagMask: 0x05,
  mktLimitCentiC: 0,
  mktMinCoverageSeconds: 0,
  mktEnabled: false,
};

/** Dry ice: -80 .. -60 degrees C, the edge of the MKT table. */
const DRY_ICE_PROFILE: IShipments.TemperatureProfileStruct = {
  ...CRYOGENIC_PROFILE,
  minCentiC: -8_000,
  maxCentiC: -6_000,
  absoluteMinCentiC: -9_000,
  absoluteMaxCentiC: -5_000,
};

interface Device {
  id: bigint;
  key: DevicePrivateKey;
}

interface World extends Suite {
  domain: ColdChainDomain;
  device: Device;
  spare: Device;
}

async function world(): Promise<World> {
  const s = await deploySuite(connection);
  const device = { id: 71n, key: { keyType: "secp256k1", privateKey: Wallet.createRandom().privateKey } } as const;
  const spare = { id: 72n, key: { keyType: "p256", privateKey: Wallet.createRandom().privateKey } } as const;
  await registerDevice(s, device.id, device.key, INTERVAL);
  await registerDevice(s, spare.id, spare.key, INTERVAL);
  const domain = { chainId: s.chainId, verifyingContract: await s.coldChain.getAddress() };
  return { ...s, domain, device, spare };
}

async function profile(w: World, p: IShipments.TemperatureProfileStruct): Promise<bigint> {
  const id = await w.coldChain.connect(w.qa).createProfile.staticCall(p);
  await (await w.coldChain.connect(w.qa).createProfile(p)).wait();
  return id;
}

/** A started shipment with `devices` under profile `profileId`; returns its id and start time. */
async function started(w: World, profileId: bigint, devices: Device[]): Promise<{ id: bigint; startedAt: number }> {
  const id = await createShipment(
    w,
    devices.map((d) => d.id),
    profileId,
  );
  await (await w.coldChain.connect(w.shipper).startShipment(id)).wait();
  return { id, startedAt: await networkHelpers.time.latest() };
}

/**
 * Signed readings of `d` every INTERVAL from `from`, chained as the device took them: the first names `previous`
 * (the device's reading before it; default 0, none), each other the one before it.
 */
function readings(
  w: World,
  d: Device,
  firstSequence: number,
  from: number,
  temps: number[],
  previous = 0,
): SignedItem[] {
  return temps.map((tempCentiC, i) => {
    const r: Reading = {
      deviceId: d.id,
      sequence: firstSequence + i,
      observedAt: from + i * INTERVAL,
      tempCentiC,
      flags: 0,
      previousObservedAt: i === 0 ? previous : from + (i - 1) * INTERVAL,
    };
    return signReading(w.domain, r, d.key);
  });
}

/** A signed window of `d` from `from`; `previous` names the device's reading before its first sample (0: none). */
function window(w: World, d: Device, firstSequence: number, from: number, temps: number[], previous = 0): SignedItem {
  const samples = temps.map((tempCentiC) => ({ tempCentiC, flags: 0 }));
  return signWindow(
    w.domain,
    {
      deviceId: d.id,
      firstSequence,
      firstObservedAt: from,
      intervalSeconds: INTERVAL,
      samples,
      previousObservedAt: previous,
    },
    d.key,
  );
}

async function submit(w: World, items: SignedItem[]): Promise<LogDescription[]> {
  const tx = await w.coldChain.connect(w.relayer).submitReadings(encodeBatch(items), { gasLimit: 15_000_000 });
  const receipt = (await tx.wait()) as ContractTransactionReceipt;
  return receipt.logs.map((log) => w.coldChain.interface.parseLog(log)).filter((e): e is LogDescription => e !== null);
}

function named(events: LogDescription[], name: string): LogDescription[] {
  return events.filter((e) => e.name === name);
}

/** ReadingSkipped events as [sequence, count, reason]. */
function skips(events: LogDescription[]): [bigint, bigint, bigint][] {
  return named(events, "ReadingSkipped").map((e) => [
    e.args.sequence as bigint,
    e.args.count as bigint,
    e.args.reason as bigint,
  ]);
}

/** BreachRecorded events as { shipmentId, custodian, reason, deviceId, observedAt }. */
function breaches(events: LogDescription[]) {
  return named(events, "BreachRecorded").map((e) => ({
    shipmentId: e.args.shipmentId as bigint,
    custodian: e.args.custodian as string,
    reason: e.args.reason as bigint,
    deviceId: e.args.deviceId as bigint,
    observedAt: e.args.observedAt as bigint,
  }));
}

/** Length in bytes of a `bytes` event argument (a 0x-prefixed hex string). */
function byteLength(value: unknown): number {
  if (typeof value !== "string") throw new Error("expected a hex string");
  return (value.length - 2) / 2;
}

async function handOver(w: World, id: bigint, from: typeof w.shipper, to: typeof w.shipper) {
  const deadline = (await networkHelpers.time.latest()) + HOUR;
  await (await w.coldChain.connect(from).offerCustody(id, to.address, deadline)).wait();
  await (await w.coldChain.connect(to).acceptCustody(id)).wait();
  return networkHelpers.time.latest();
}

describe("verdict abuse: profiles the fast paths must survive", () => {
  it("refuses incoherent profiles with the rule that is wrong", async () => {
    const w = await networkHelpers.loadFixture(world);
    const qa = w.coldChain.connect(w.qa);
    const cases: [string, Partial<IShipments.TemperatureProfileStruct>][] = [
      ["freezeCentiC", { freezeCentiC: 800 }], // at the maximum
      ["freezeCentiC", { freezeCentiC: 1_500 }], // above it
      ["freezeCentiC", { freezeCentiC: -20_001, absoluteMinCentiC: -20_001 }],
      ["range", { minCentiC: 800, maxCentiC: 800 }],
      ["range", { minCentiC: 900 }],
      ["range", { minCentiC: -20_001, absoluteMinCentiC: -32_768 }], // below -200 degrees C
      ["range", { maxCentiC: 8_001, absoluteMaxCentiC: 9_000 }], // above +80 degrees C
      ["absoluteLimits", { absoluteMinCentiC: 300 }],
      ["absoluteLimits", { absoluteMaxCentiC: 700 }],
      ["mktLimitCentiC", { mktLimitCentiC: 805 }],
    ];
    for (const [field, change] of cases) {
      await expect(qa.createProfile({ ...VACCINE_PROFILE, ...change }), JSON.stringify(change))
        .to.be.revertedWithCustomError(w.coldChain, "ProfileInvalid")
        .withArgs(field);
    }
    // A freeze threshold at the maximum is fine while its alarm is off.
    await expect(qa.createProfile({ ...VACCINE_PROFILE, freezeCentiC: 800, maxFreezeSeconds: 0 })).to.emit(
      w.coldChain,
      "ProfileCreated",
    );
  });

  for (const [name, p, inRange, thaw] of [
    ["cryogenic (-150 .. -120 °C)", CRYOGENIC_PROFILE, -13_500, 500],
    ["dry ice (-80 .. -60 °C)", DRY_ICE_PROFILE, -7_000, 500],
  ] as const) {
    it(`${name}: in-range readings and windows are recorded, and a +5 °C thaw is an AbsoluteLimit breach`, async () => {
      const w = await networkHelpers.loadFixture(world);
      const { id, startedAt } = await started(w, await profile(w, p), [w.device, w.spare]);
      await networkHelpers.time.increase(DAY);
      const t0 = startedAt + 60;
      // 40 in-range signed readings, then a thaw; the spare logger sends a window with the same story.
      const temps = [...Array<number>(40).fill(inRange), thaw];
      const events = await submit(w, [...readings(w, w.device, 1, t0, temps), window(w, w.spare, 1, t0, temps)]);
      expect(skips(events)).to.deep.equal([]);
      expect(byteLength(named(events, "ReadingsRecorded")[0]?.args.readings)).to.equal(12 * 41);
      // One AbsoluteLimit per device and custody period: the readings' thaw and the window's.
      const found = breaches(events).map((b) => [b.deviceId, b.reason, b.observedAt]);
      expect(found).to.deep.include([w.device.id, Breach.AbsoluteLimit, BigInt(t0 + 40 * INTERVAL)]);
      const c = await w.coldChain.condition(id);
      expect(c.readingCount).to.equal(82n);
      expect(c.minCentiC).to.equal(BigInt(inRange));
      expect(c.maxCentiC).to.equal(BigInt(thaw));
      expect(c.cumulativeExcursionSeconds).to.equal(BigInt(2 * INTERVAL));
    });
  }
});

describe("verdict abuse: windows that straddle the start or the delivery", () => {
  it("records the samples inside the shipment and skips those before the start", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { id, startedAt } = await started(w, await profile(w, VACCINE_PROFILE), [w.device]);
    await networkHelpers.time.increase(DAY);
    // 4 samples before the start, 6 from it on (the first inside at startedAt + 100).
    const first = startedAt + 100 - 4 * INTERVAL;
    const events = await submit(w, [
      window(w, w.device, 10, first, [500, 500, 500, 500, 500, 500, 500, 500, 500, 500]),
    ]);
    expect(skips(events)).to.deep.equal([[10n, 4n, OUTSIDE_SHIPMENT_WINDOW]]);
    const [recorded] = named(events, "WindowRecorded");
    expect(recorded?.args.firstSequence).to.equal(14n);
    expect(recorded?.args.firstObservedAt).to.equal(BigInt(startedAt + 100));
    expect(byteLength(recorded?.args.samples)).to.equal(3 * 6);
    expect((await w.coldChain.condition(id)).readingCount).to.equal(6n);
    expect(await w.coldChain.isRecorded(w.device.id, startedAt + 100)).to.equal(true);
    expect(await w.coldChain.isRecorded(w.device.id, first)).to.equal(false); // before the start: not the shipment's
    // The same window relayed again is recorded already (judged by its first sample): refused whole.
    const again = await submit(w, [window(w, w.device, 10, first, Array<number>(10).fill(500))]);
    expect(skips(again)).to.deep.equal([[10n, 10n, DUPLICATE_SEQUENCE]]);
    expect((await w.coldChain.condition(id)).readingCount).to.equal(6n);
  });

  it("charges the last carrier's final samples to it when its window runs past the delivery", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { id, startedAt } = await started(w, await profile(w, VACCINE_PROFILE), [w.device]);
    await handOver(w, id, w.shipper, w.carrier);
    await networkHelpers.time.increase(2 * HOUR);
    const deliveredAt = await handOver(w, id, w.carrier, w.receiver);
    await networkHelpers.time.increase(HOUR);
    // The carrier's logger uploads its last hour late: warm before the delivery, and 3 samples after it.
    const first = deliveredAt - 5 * INTERVAL + 1;
    const events = await submit(w, [window(w, w.device, 1, first, [500, 3_000, 3_000, 3_000, 3_000, 500, 500, 500])]);
    expect(skips(events)).to.deep.equal([[6n, 3n, OUTSIDE_SHIPMENT_WINDOW]]);
    const absolute = breaches(events).filter((b) => b.reason === Breach.AbsoluteLimit);
    expect(absolute.map((b) => b.custodian)).to.deep.equal([w.carrier.address]);
    expect((await w.coldChain.condition(id)).readingCount).to.equal(5n);
    expect(startedAt).to.be.below(first);
  });
});

describe("verdict abuse: cancel and re-create", () => {
  it("refuses the shipper cancelling what a carrier holds; a custodian's cancellation keeps the evidence", async () => {
    const w = await networkHelpers.loadFixture(world);
    const profileId = await profile(w, VACCINE_PROFILE);
    const { id } = await started(w, profileId, [w.device]);
    const handedAt = await handOver(w, id, w.shipper, w.carrier);
    await networkHelpers.time.increase(2 * HOUR);
    // The carrier's excursion happened; its readings are not on chain yet.
    const excursion = readings(w, w.device, 1, handedAt + 60, [500, 2_600, 2_600, 2_600, 500]);

    await expect(w.coldChain.connect(w.shipper).cancelShipment(id))
      .to.be.revertedWithCustomError(w.coldChain, "CustodyNotCustodian")
      .withArgs(id, w.shipper.address);
    await (await w.coldChain.connect(w.carrier).cancelShipment(id)).wait();
    const cancelledAt = await networkHelpers.time.latest();

    // Re-creating with the same logger is refused during the hold, so the readings still reach this shipment.
    await expect(createShipment(w, [w.device.id], profileId))
      .to.be.revertedWithCustomError(w.coldChain, "ShipmentDeviceUnavailable")
      .withArgs(w.device.id);
    const late = readings(w, w.device, 6, cancelledAt + 1, [500], handedAt + 60 + 4 * INTERVAL); // after the cancellation
    const events = await submit(w, [...excursion, ...late]);
    const absolute = breaches(events).filter((b) => b.reason === Breach.AbsoluteLimit);
    expect(absolute.map((b) => [b.shipmentId, b.custodian])).to.deep.equal([[id, w.carrier.address]]);
    expect((await w.coldChain.condition(id)).readingCount).to.equal(5n);
    expect(skips(events)).to.deep.equal([[6n, 1n, OUTSIDE_SHIPMENT_WINDOW]]);

    // After the hold the logger is free again.
    await networkHelpers.time.increase(7 * DAY);
    const next = await createShipment(w, [w.device.id], profileId);
    expect(next).to.equal(id + 1n);
  });

  it("frees the devices of a cancelled shipment that never started at once", async () => {
    const w = await networkHelpers.loadFixture(world);
    const profileId = await profile(w, VACCINE_PROFILE);
    const id = await createShipment(w, [w.device.id], profileId);
    await (await w.coldChain.connect(w.shipper).cancelShipment(id)).wait();
    expect(await createShipment(w, [w.device.id], profileId)).to.equal(id + 1n);
  });
});

describe("verdict abuse: the handover moment", () => {
  const CUSTODY_PENDING = 10n;
  const SINGLE_EXCURSION = 2n;

  it("a hub that delays its acceptance by 75 minutes still holds the goods from the offer on", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { id } = await started(w, await profile(w, VACCINE_PROFILE), [w.device]);
    await handOver(w, id, w.shipper, w.carrier);
    await networkHelpers.time.increase(HOUR);
    const deadline = (await networkHelpers.time.latest()) + 2 * HOUR;
    await (await w.coldChain.connect(w.carrier).offerCustody(id, w.hub.address, deadline)).wait();
    const offeredAt = Number((await w.coldChain.custodyOffer(id)).handoverAt);
    await networkHelpers.time.increase(75 * 60);
    // The hub's own excursion during the 75 minutes: relayed before it accepts, the readings wait.
    const hubs = readings(w, w.device, 1, offeredAt + 60, [500, 3_000, 3_000, 500]);
    const early = await submit(w, hubs);
    expect(skips(early)).to.deep.equal(hubs.map((_, i) => [BigInt(1 + i), 1n, CUSTODY_PENDING]));
    expect((await w.coldChain.condition(id)).readingCount).to.equal(0n);

    await (await w.coldChain.connect(w.hub).acceptCustody(id)).wait();
    const periods = await w.coldChain.custodyHistory(id);
    expect(periods[2]?.since).to.equal(BigInt(offeredAt));
    // Relayed again (the oracle retries CustodyPending), they are charged to the hub, not the carrier.
    const later = await submit(w, hubs);
    expect(skips(later)).to.deep.equal([]);
    const absolute = breaches(later).filter((b) => b.reason === Breach.AbsoluteLimit);
    expect(absolute.map((b) => b.custodian)).to.deep.equal([w.hub.address]);
  });

  it("a carrier that hands over 40 minutes into an excursion shares the SingleExcursion with the hub", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { id } = await started(w, await profile(w, VACCINE_PROFILE), [w.device]);
    await handOver(w, id, w.shipper, w.carrier);
    await networkHelpers.time.increase(2 * HOUR);
    const now = await networkHelpers.time.latest();
    // 40 minutes out of range under the carrier (8 readings), relayed before the offer.
    const runStart = now - 8 * INTERVAL;
    await submit(w, readings(w, w.device, 1, runStart - INTERVAL, [500, ...Array<number>(8).fill(1_200)]));
    await (await w.coldChain.connect(w.carrier).offerCustody(id, w.hub.address, now + HOUR)).wait();
    const boundary = Number((await w.coldChain.custodyOffer(id)).handoverAt);
    await (await w.coldChain.connect(w.hub).acceptCustody(id)).wait();
    await networkHelpers.time.increase(HOUR);
    // The run goes on under the hub and reaches 60 minutes there.
    const events = await submit(
      w,
      readings(w, w.device, 10, runStart + 8 * INTERVAL, Array<number>(6).fill(1_200), runStart + 7 * INTERVAL),
    );
    const single = breaches(events).filter((b) => b.reason === SINGLE_EXCURSION);
    expect(single.map((b) => b.custodian)).to.deep.equal([w.hub.address]);
    const shares = named(events, "BreachRunShared").map((e) => [
      e.args.custodian as string,
      e.args.reason as bigint,
      e.args.runSeconds as bigint,
    ]);
    const crossedAt = runStart + 11 * INTERVAL; // the 12th reading of the run completes 60 minutes
    expect(shares).to.deep.equal([
      [w.hub.address, SINGLE_EXCURSION, BigInt(crossedAt + INTERVAL - boundary)],
      [w.carrier.address, SINGLE_EXCURSION, BigInt(boundary - runStart)],
    ]);
  });

  it("a handover cannot put its boundary before a reading already recorded", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { id } = await started(w, await profile(w, VACCINE_PROFILE), [w.device]);
    await networkHelpers.time.increase(HOUR);
    const now = await networkHelpers.time.latest();
    // A reading from a device clock 200 s ahead (inside the tolerated skew) is already on chain.
    await submit(w, readings(w, w.device, 1, now + 200, [500]));
    await handOver(w, id, w.shipper, w.carrier);
    const periods = await w.coldChain.custodyHistory(id);
    expect(periods[1]?.since).to.equal(BigInt(now + 201));
  });
});

describe("verdict abuse: binding someone else's logger", () => {
  it("refuses a shipper the device owner has not approved, and stops when the approval is withdrawn", async () => {
    const w = await networkHelpers.loadFixture(world);
    const profileId = await profile(w, VACCINE_PROFILE);
    const squatter = w.stranger;
    await (await w.coldChain.connect(w.admin).grantRole(await w.coldChain.SHIPPER_ROLE(), squatter.address)).wait();
    const params = {
      receiver: w.receiver.address,
      owner: w.owner.address,
      profileId,
      deviceIds: [w.device.id],
      plannedStartAt: 0,
      externalRef: ethers.ZeroHash,
    };
    await expect(w.coldChain.connect(squatter).createShipment(params))
      .to.be.revertedWithCustomError(w.coldChain, "ShipmentDeviceNotApproved")
      .withArgs(w.device.id, squatter.address);
    expect(await w.registry.mayBind(w.device.id, squatter.address)).to.equal(false);

    await expect(w.registry.connect(w.deviceOwner).setShipperApproval(squatter.address, true))
      .to.emit(w.registry, "ShipperApprovalSet")
      .withArgs(w.deviceOwner.address, squatter.address, true);
    expect(await w.registry.mayBind(w.device.id, squatter.address)).to.equal(true);
    await (await w.registry.connect(w.deviceOwner).setShipperApproval(squatter.address, false)).wait();
    await expect(w.coldChain.connect(squatter).createShipment(params))
      .to.be.revertedWithCustomError(w.coldChain, "ShipmentDeviceNotApproved")
      .withArgs(w.device.id, squatter.address);
    // Another owner's approval does not count: only the device's own owner consents.
    await (await w.registry.connect(w.stranger).setShipperApproval(squatter.address, true)).wait();
    expect(await w.registry.mayBind(w.device.id, squatter.address)).to.equal(false);
  });
});

describe("verdict abuse: re-keying a device", () => {
  const BAD_SIGNATURE = 0n;
  const REVOKED_DEVICE = 2n;

  it("an owner who rotates to its own key cannot forge a reading in the carrier's closed custody period", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { id } = await started(w, await profile(w, VACCINE_PROFILE), [w.device]);
    const carrierFrom = await handOver(w, id, w.shipper, w.carrier);
    await networkHelpers.time.increase(2 * HOUR);
    await handOver(w, id, w.carrier, w.hub);
    await submit(w, readings(w, w.device, 1, carrierFrom + 60, [500, 500, 500]));
    await networkHelpers.time.increase(HOUR);
    // The owner rotates to a key it holds, signs a 30 °C reading dated inside the carrier's period, rotates back.
    const forger = Wallet.createRandom();
    await (await w.registry.connect(w.deviceOwner).rotateSecp256k1Key(w.device.id, forger.address)).wait();
    const forged = signReading(
      w.domain,
      {
        deviceId: w.device.id,
        sequence: 4,
        observedAt: carrierFrom + 60 + 3 * INTERVAL,
        tempCentiC: 3_000,
        flags: 0,
        previousObservedAt: carrierFrom + 60 + 2 * INTERVAL, // it even names the right predecessor
      },
      { keyType: "secp256k1", privateKey: forger.privateKey },
    );
    const events = await submit(w, [forged]);
    expect(skips(events)).to.deep.equal([[4n, 1n, BAD_SIGNATURE]]);
    expect(breaches(events)).to.deep.equal([]);
    const original = new Wallet(w.device.key.privateKey);
    await (await w.registry.connect(w.deviceOwner).rotateSecp256k1Key(w.device.id, original.address)).wait();
    expect(skips(await submit(w, [forged]))).to.deep.equal([[4n, 1n, BAD_SIGNATURE]]);
    const c = await w.coldChain.condition(id);
    expect(c.readingCount).to.equal(3n);
    expect(c.breachFlags).to.equal(0n);
  });

  it("a rotation keeps in-flight genuine readings: they verify under the key of their time", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { id, startedAt } = await started(w, await profile(w, VACCINE_PROFILE), [w.device, w.spare]);
    await networkHelpers.time.increase(HOUR);
    // Observed and signed before the rotation, relayed after it.
    const inFlight = readings(w, w.device, 1, startedAt + 60, [500, 500]);
    const windowed = window(w, w.spare, 1, startedAt + 60, [500, 500, 500]);
    await (
      await w.registry.connect(w.deviceOwner).rotateSecp256k1Key(w.device.id, Wallet.createRandom().address)
    ).wait();
    const { x, y } = p256PublicKey(Wallet.createRandom().privateKey);
    await (await w.registry.connect(w.deviceOwner).rotateP256Key(w.spare.id, x, y)).wait();
    const events = await submit(w, [...inFlight, windowed]);
    expect(skips(events)).to.deep.equal([]);
    expect((await w.coldChain.condition(id)).readingCount).to.equal(5n);
    // A window that spans the rotation is refused: one signature cannot cover two keys' times.
    const rotatedAt = await networkHelpers.time.latest();
    const spanning = window(w, w.spare, 4, rotatedAt - INTERVAL, [500, 500], startedAt + 60 + 2 * INTERVAL);
    expect(skips(await submit(w, [spanning]))).to.deep.equal([[4n, 2n, BAD_SIGNATURE]]);
  });

  it("revocation is not retroactive; only a device manager may name an earlier distrust time", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { id, startedAt } = await started(w, await profile(w, VACCINE_PROFILE), [w.device]);
    await networkHelpers.time.increase(2 * HOUR);
    const backlog = readings(w, w.device, 1, startedAt + 60, [500, 500, 500, 500]);
    await expect(w.registry.connect(w.deviceOwner).revokeDeviceFrom(w.device.id, startedAt + 60 + INTERVAL))
      .to.be.revertedWithCustomError(w.registry, "AccessControlUnauthorizedAccount")
      .withArgs(w.deviceOwner.address, await w.registry.DEVICE_MANAGER_ROLE());
    await expect(
      w.registry.connect(w.deviceManager).revokeDeviceFrom(w.device.id, (await networkHelpers.time.latest()) + 100),
    ).to.be.revertedWithCustomError(w.registry, "DeviceRevocationTimeInvalid");
    // The key was found compromised from the third reading on: the manager distrusts it from then.
    const distrustedFrom = startedAt + 60 + 2 * INTERVAL;
    await expect(w.registry.connect(w.deviceManager).revokeDeviceFrom(w.device.id, distrustedFrom))
      .to.emit(w.registry, "DeviceDistrusted")
      .withArgs(w.device.id, distrustedFrom, w.deviceManager.address);
    const events = await submit(w, backlog);
    expect(skips(events)).to.deep.equal([
      [3n, 1n, REVOKED_DEVICE],
      [4n, 1n, REVOKED_DEVICE],
    ]);
    expect((await w.coldChain.condition(id)).readingCount).to.equal(2n);
  });
});

describe("verdict abuse: the edges of the custody hold and of revocation", () => {
  const CUSTODY_PENDING = 10n;
  const REVOKED_DEVICE = 2n;

  it("holds a window whose last inside sample reaches a pending offer's boundary, then records it after acceptance", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { id } = await started(w, await profile(w, VACCINE_PROFILE), [w.device]);
    await networkHelpers.time.increase(HOUR);
    const deadline = (await networkHelpers.time.latest()) + HOUR;
    await (await w.coldChain.connect(w.shipper).offerCustody(id, w.carrier.address, deadline)).wait();
    const boundary = Number((await w.coldChain.custodyOffer(id)).handoverAt);
    const spanning = window(w, w.device, 1, boundary - 2 * INTERVAL, [500, 500, 3_000]);
    expect(skips(await submit(w, [spanning]))).to.deep.equal([[1n, 3n, CUSTODY_PENDING]]);
    await (await w.coldChain.connect(w.carrier).acceptCustody(id)).wait();
    const events = await submit(w, [spanning]);
    expect(skips(events)).to.deep.equal([]);
    expect(breaches(events).map((b) => [b.reason, b.custodian])).to.deep.include([
      Breach.AbsoluteLimit,
      w.carrier.address,
    ]);
  });

  it("holds the readings of a created shipment whose first handover is pending; it starts at the boundary", async () => {
    const w = await networkHelpers.loadFixture(world);
    const profileId = await profile(w, VACCINE_PROFILE);
    const id = await createShipment(w, [w.device.id], profileId);
    await networkHelpers.time.increase(HOUR);
    const deadline = (await networkHelpers.time.latest()) + HOUR;
    await (await w.coldChain.connect(w.shipper).offerCustody(id, w.carrier.address, deadline)).wait();
    const boundary = Number((await w.coldChain.custodyOffer(id)).handoverAt);
    const before = readings(w, w.device, 1, boundary - 60, [500]); // before the goods left
    const after = readings(w, w.device, 2, boundary + 1, [500], boundary - 60);
    expect(skips(await submit(w, [...before, ...after]))).to.deep.equal([
      [1n, 1n, OUTSIDE_SHIPMENT_WINDOW],
      [2n, 1n, CUSTODY_PENDING],
    ]);
    await networkHelpers.time.increase(600);
    await (await w.coldChain.connect(w.carrier).acceptCustody(id)).wait();
    expect((await w.coldChain.shipment(id)).startedAt).to.equal(BigInt(boundary));
    expect(skips(await submit(w, after))).to.deep.equal([]);
    expect((await w.coldChain.condition(id)).readingCount).to.equal(1n);
  });

  it("refuses a window whose last sample is at or after the revocation", async () => {
    const w = await networkHelpers.loadFixture(world);
    const { startedAt } = await started(w, await profile(w, VACCINE_PROFILE), [w.device]);
    await networkHelpers.time.increase(HOUR);
    await (await w.registry.connect(w.deviceOwner).revokeDevice(w.device.id)).wait();
    const revokedAt = await networkHelpers.time.latest();
    const before = window(w, w.device, 1, startedAt + 60, [500, 500]);
    const crossing = window(w, w.device, 3, revokedAt - INTERVAL, [500, 500], startedAt + 60 + INTERVAL);
    expect(skips(await submit(w, [crossing, before]))).to.deep.equal([[3n, 2n, REVOKED_DEVICE]]);
  });
});

describe("verdict abuse: the relay order", () => {
  const SEQUENCE_GAP = 11n;

  /** Deterministic shuffle (mulberry32), so a failing order can be replayed from its seed. */
  function shuffled<T>(items: readonly T[], seed: number): T[] {
    let a = seed >>> 0;
    const next = (): number => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = Math.imul(a ^ (a >>> 15), a | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [out[i], out[j]] = [out[j] as T, out[i] as T];
    }
    return out;
  }

  /**
   * Plays one shipment: two loggers, a handover in the middle of an excursion, a freeze on the other logger. The
   * signed items are relayed by `relay` (batches of items per round); every item skipped as SequenceGap is relayed
   * again in the next round, as a relayer that retries does. Returns everything the chain concluded.
   */
  async function verdict(relay: (items: SignedItem[]) => SignedItem[][]) {
    const w = await networkHelpers.loadFixture(world);
    // Every block time pinned, from the fixture's snapshot on, so each play of the story has the same times.
    const startedAt = (await networkHelpers.time.latest()) + 1_000;
    await networkHelpers.time.setNextBlockTimestamp(startedAt - 20);
    const profileId = await profile(w, VACCINE_PROFILE);
    await networkHelpers.time.setNextBlockTimestamp(startedAt - 10);
    const id = await createShipment(w, [w.device.id, w.spare.id], profileId);
    await networkHelpers.time.setNextBlockTimestamp(startedAt);
    await (await w.coldChain.connect(w.shipper).startShipment(id)).wait();
    const handedAt = startedAt + 2 * HOUR;
    await networkHelpers.time.setNextBlockTimestamp(handedAt);
    await (await w.coldChain.connect(w.shipper).offerCustody(id, w.carrier.address, handedAt + HOUR)).wait();
    await networkHelpers.time.setNextBlockTimestamp(handedAt + 60);
    await (await w.coldChain.connect(w.carrier).acceptCustody(id)).wait();
    await networkHelpers.time.increaseTo(startedAt + 5 * HOUR);
    const t0 = startedAt + 60;
    const heat = [...Array<number>(20).fill(500), ...Array<number>(16).fill(1_200), ...Array<number>(10).fill(500)];
    const cold = [...Array<number>(25).fill(400), ...Array<number>(14).fill(-150), ...Array<number>(7).fill(400)];
    const items = [...readings(w, w.device, 1, t0, heat), ...readings(w, w.spare, 1, t0 + 17, cold)];
    expect(t0 + 20 * INTERVAL).to.be.below(handedAt); // the excursion starts under the shipper...
    expect(t0 + 35 * INTERVAL).to.be.above(handedAt); // ...and ends under the carrier
    const events: LogDescription[] = [];
    let pending = items;
    for (let round = 0; pending.length > 0; round++) {
      if (round > 100) throw new Error("the relay does not converge");
      const waiting: SignedItem[] = [];
      for (const batch of relay(pending)) {
        const got = await submit(w, batch);
        events.push(...got);
        for (const skip of named(got, "ReadingSkipped")) {
          expect(skip.args.reason, "only SequenceGap: the order must cost nothing else").to.equal(SEQUENCE_GAP);
          const item = batch.find(
            (i) =>
              i.kind === "reading" &&
              i.reading.deviceId === skip.args.deviceId &&
              BigInt(i.reading.sequence) === skip.args.sequence,
          );
          if (item === undefined) throw new Error("a skip of no relayed item");
          waiting.push(item);
        }
      }
      pending = waiting;
    }
    const key = (e: LogDescription): string => JSON.stringify([e.name, ...e.args], (_, v: unknown) => String(v));
    const concluded = events
      .filter((e) => e.name === "BreachRecorded" || e.name === "BreachRunShared")
      .map(key)
      .sort();
    const track = async (d: Device): Promise<unknown[]> => [
      ...(await w.coldChain.deviceTrack(d.id)),
      ...(await w.coldChain.deviceEvidence(id, d.id)),
    ];
    return {
      condition: [...(await w.coldChain.condition(id))],
      periods: (await w.coldChain.custodyHistory(id)).map((p) => [...p]),
      devices: [await track(w.device), await track(w.spare)],
      concluded,
      readings: named(events, "ReadingsRecorded").reduce((n, e) => n + byteLength(e.args.readings) / 12, 0),
    };
  }

  it("a relayer cannot bend the verdict by the order or the batches it relays readings in", async () => {
    const inOrder = await verdict((items) => [items]);
    expect(inOrder.readings).to.equal(92);
    expect(inOrder.concluded.length).to.be.greaterThan(1);
    const reversed = await verdict((items) => [[...items].reverse()]);
    expect(reversed).to.deep.equal(inOrder);
    for (const seed of [1, 2]) {
      const shuffledInFives = await verdict((items) => {
        const order = shuffled(items, seed);
        return Array.from({ length: Math.ceil(order.length / 5) }, (_, i) => order.slice(i * 5, i * 5 + 5));
      });
      expect(shuffledInFives, `seed ${seed}`).to.deep.equal(inOrder);
    }
  });
});
