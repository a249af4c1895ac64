/**
 * ReadingsInbox: signed readings and device windows in, each device's readings recorded as one chain (protocol v2:
 * every reading names its predecessor), rules evaluated, liability charged to the custodian at each reading's time,
 * and every kind of invalid item skipped with its reason without reverting the batch.
 */
import { expect } from "chai";
import { Wallet } from "ethers";
import type { ContractTransactionReceipt, LogDescription } from "ethers";
import { network } from "hardhat";

import type { ColdChainDomain, DevicePrivateKey, Reading, RecordedReading, SignedItem } from "../sdk/protocol/index.js";
import {
  P256_N,
  encodeBatch,
  expandReadings,
  expandWindow,
  groupBatchItems,
  mktAccumulate,
  onchainMktCentiC,
  referenceMktCentiC,
  signReading,
  signWindow,
} from "../sdk/protocol/index.js";
import { VACCINE_PROFILE, createShipment, deploySuite, registerDevice } from "./support/deploy.js";
import type { Suite } from "./support/deploy.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;

const INTERVAL = 300;
const SkipReason = {
  BadSignature: 0n,
  UnknownDevice: 1n,
  RevokedDevice: 2n,
  UnboundDevice: 3n,
  ShipmentNotActive: 4n,
  StaleSequence: 5n,
  DuplicateSequence: 6n,
  FutureTimestamp: 7n,
  OutsideShipmentWindow: 8n,
  MalformedItem: 9n,
  CustodyPending: 10n,
  SequenceGap: 11n,
} as const;
const Breach = {
  None: 0n,
  AbsoluteLimit: 1n,
  SingleExcursion: 2n,
  CumulativeExcursion: 3n,
  Freeze: 4n,
  MissingData: 5n,
  DeviceFault: 6n,
  MktExceeded: 7n,
} as const;

interface Device {
  id: bigint;
  key: DevicePrivateKey;
}

interface World extends Suite {
  domain: ColdChainDomain;
  k1: Device;
  r1: Device;
  spare: Device;
  shipmentId: bigint;
  startedAt: number;
}

function newKey(keyType: "secp256k1" | "p256"): DevicePrivateKey {
  return { keyType, privateKey: Wallet.createRandom().privateKey };
}

async function register(s: Suite, id: bigint, key: DevicePrivateKey): Promise<Device> {
  await registerDevice(s, id, key, INTERVAL);
  return { id, key };
}

/** A started 2–8 °C shipment carrying one secp256k1 and one P-256 device; a spare device is unbound. */
async function worldFixture(): Promise<World> {
  const s = await deploySuite(connection);
  await s.coldChain.connect(s.qa).createProfile(VACCINE_PROFILE);
  const k1 = await register(s, 11n, newKey("secp256k1"));
  const r1 = await register(s, 12n, newKey("p256"));
  const spare = await register(s, 13n, newKey("secp256k1"));
  const shipmentId = await createShipment(s, [k1.id, r1.id], 1n);
  await s.coldChain.connect(s.shipper).startShipment(shipmentId);
  const startedAt = await networkHelpers.time.latest();
  const domain = { chainId: s.chainId, verifyingContract: await s.coldChain.getAddress() };
  return { ...s, domain, k1, r1, spare, shipmentId, startedAt };
}

/**
 * A reading of `device`; `previousObservedAt` is the observation time of the reading the device took before it
 * (default 0: the device's first, which the contract accepts as the first of the shipment).
 */
function reading(
  device: Device,
  sequence: number,
  observedAt: number,
  tempCentiC = 500,
  flags = 0,
  previousObservedAt = 0,
): Reading {
  return { deviceId: device.id, sequence, observedAt, tempCentiC, flags, previousObservedAt };
}

/** What ReadingsRecorded keeps of a reading (all but its predecessor). */
function recordOf(r: Reading): RecordedReading {
  const { previousObservedAt: _, ...record } = r;
  return record;
}

function signed(w: World, device: Device, r: Reading): SignedItem {
  return signReading(w.domain, r, device.key);
}

/**
 * Signed readings of `device` every INTERVAL from `from`, one per temperature, chained as the device took them:
 * the first names `previous` (default 0: none), each other the one before it.
 */
function series(
  w: World,
  device: Device,
  firstSequence: number,
  from: number,
  temps: number[],
  previous = 0,
): SignedItem[] {
  return temps.map((t, i) =>
    signed(
      w,
      device,
      reading(device, firstSequence + i, from + i * INTERVAL, t, 0, i === 0 ? previous : from + (i - 1) * INTERVAL),
    ),
  );
}

async function submit(w: World, items: SignedItem[]) {
  const batch = encodeBatch(items);
  const [accepted, skipped] = await w.coldChain.connect(w.relayer).submitReadings.staticCall(batch);
  const tx = await w.coldChain.connect(w.relayer).submitReadings(batch);
  const receipt = await tx.wait();
  return { tx, receipt: receipt!, accepted, skipped };
}

/** The parsed events of the inbox in a receipt, in log order. */
function inboxEvents(w: World, receipt: ContractTransactionReceipt): LogDescription[] {
  return receipt.logs.map((log) => w.coldChain.interface.parseLog(log)).filter((e): e is LogDescription => e !== null);
}

/** The readings of each ReadingsRecorded of a receipt (one array per event, in log order). */
function recordedReadings(w: World, receipt: ContractTransactionReceipt): RecordedReading[][] {
  return inboxEvents(w, receipt)
    .filter((e) => e.name === "ReadingsRecorded")
    .map((e) => {
      expect(e.args.shipmentId).to.equal(w.shipmentId);
      return expandReadings({ deviceId: e.args.deviceId as bigint, readings: e.args.readings as string });
    });
}

describe("ReadingsInbox", () => {
  describe("accepting readings", () => {
    it("records signed secp256k1 and P-256 readings and emits one ReadingsRecorded per READINGS item", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      const t = w.startedAt + 900;
      await networkHelpers.time.increase(3600);
      const items = [
        signed(w, w.k1, reading(w.k1, 1, t, 512)),
        signed(w, w.k1, reading(w.k1, 2, t + INTERVAL, 498, 0x02, t)),
        signed(w, w.r1, reading(w.r1, 1, t, -3)),
      ];
      expect(groupBatchItems(items)).to.have.length(2); // k1's two readings, then r1's
      const { tx, accepted, skipped, receipt } = await submit(w, items);
      expect([accepted, skipped]).to.deep.equal([3n, 0n]);
      await expect(tx).to.emit(w.coldChain, "ReadingsRecorded");
      expect(recordedReadings(w, receipt)).to.deep.equal([
        [recordOf(reading(w.k1, 1, t, 512)), recordOf(reading(w.k1, 2, t + INTERVAL, 498, 0x02))],
        [recordOf(reading(w.r1, 1, t, -3))],
      ]);
      // Each device's chain head: its latest recorded reading.
      const track = await w.coldChain.deviceTrack(w.k1.id);
      expect([track.lastObservedAt, track.lastSequence]).to.deep.equal([BigInt(t + INTERVAL), 2n]);
      const c = await w.coldChain.condition(w.shipmentId);
      expect(c.readingCount).to.equal(3n);
      expect(c.minCentiC).to.equal(-3n);
      expect(c.maxCentiC).to.equal(512n);
      expect(c.lastObservedAt).to.equal(BigInt(t + INTERVAL));
    });

    it("verifies P-256 through the precompile where it answers, not the ~250,000-gas fallback", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      expect(await w.coldChain.P256_PRECOMPILE()).to.equal(true); // osaka has P256VERIFY (EIP-7951)
      const t = w.startedAt + 900;
      await networkHelpers.time.increase(3600 + 20 * INTERVAL);
      // Twenty readings of the P-256 device, the first through the full path and the rest the quiet way.
      const items = series(
        w,
        w.r1,
        1,
        t,
        Array.from({ length: 20 }, (_, i) => 400 + i),
      );
      const { accepted, skipped, receipt } = await submit(w, items);
      expect([accepted, skipped]).to.deep.equal([20n, 0n]);
      // Through the fallback each reading would cost ~250,000 gas; through the precompile under 10,000 plus the
      // batch's fixed cost (first storage writes of the shipment and the device).
      expect(receipt.gasUsed).to.be.lessThan(20n * 50_000n);
    });

    it("records a device window and emits WindowRecorded with the samples", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      await networkHelpers.time.increase(10 * 3600);
      const window = {
        deviceId: w.k1.id,
        firstSequence: 5,
        firstObservedAt: w.startedAt + 900,
        intervalSeconds: INTERVAL,
        samples: [450, 505, 812, 390].map((tempCentiC) => ({ tempCentiC, flags: 0 })),
        previousObservedAt: w.startedAt - 100, // the device's reading before the shipment started
      };
      const { tx, accepted } = await submit(w, [signWindow(w.domain, window, w.k1.key)]);
      expect(accepted).to.equal(4n);
      const receipt = await tx.wait();
      const event = receipt!.logs
        .map((l) => w.coldChain.interface.parseLog(l))
        .find((e) => e?.name === "WindowRecorded");
      const rebuilt = expandWindow({
        deviceId: event!.args.deviceId as bigint,
        firstSequence: Number(event!.args.firstSequence),
        firstObservedAt: Number(event!.args.firstObservedAt),
        intervalSeconds: Number(event!.args.intervalSeconds),
        samples: event!.args.samples as string,
      });
      expect(rebuilt.map((r) => r.tempCentiC)).to.deep.equal([450, 505, 812, 390]);
      expect(rebuilt.map((r) => r.sequence)).to.deep.equal([5, 6, 7, 8]);
      const c = await w.coldChain.condition(w.shipmentId);
      expect(c.readingCount).to.equal(4n);
      expect(c.cumulativeExcursionSeconds).to.equal(BigInt(INTERVAL)); // 8.12 °C is out of 2–8 °C
      // Every sample's time from the shipment's start to the last one is a recorded position of the chain.
      const last = window.firstObservedAt + 3 * INTERVAL;
      for (let at = window.firstObservedAt; at <= last; at += INTERVAL) {
        expect(await w.coldChain.isRecorded(w.k1.id, at)).to.equal(true);
      }
      expect(await w.coldChain.isRecorded(w.k1.id, last + 1)).to.equal(false);
      expect(await w.coldChain.isRecorded(w.k1.id, w.startedAt - 1)).to.equal(false);
      expect(await w.coldChain.isRecorded(w.r1.id, window.firstObservedAt)).to.equal(false);
      expect((await w.coldChain.deviceTrack(w.k1.id)).lastSequence).to.equal(8n);
    });

    it("a reading that arrives before its predecessor waits (SequenceGap, retryable) and is accepted once the predecessor is recorded", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      await networkHelpers.time.increase(3600);
      const t = w.startedAt + 900;
      const [first, second, third] = series(w, w.k1, 1, t, [500, 510, 520]) as [SignedItem, SignedItem, SignedItem];
      // The third first: its predecessor (the second) is not recorded, nor is anything of the device yet.
      const early = await submit(w, [third]);
      expect([early.accepted, early.skipped]).to.deep.equal([0n, 1n]);
      await expect(early.tx).to.emit(w.coldChain, "ReadingSkipped").withArgs(w.k1.id, 3n, 1n, SkipReason.SequenceGap);
      // The first: its predecessor (none) is before the start.
      expect((await submit(w, [first])).accepted).to.equal(1n);
      // The third again, then the second, in one batch: the third still waits, the second continues the chain.
      const mixed = await submit(w, [third, second]);
      expect([mixed.accepted, mixed.skipped]).to.deep.equal([1n, 1n]);
      await expect(mixed.tx).to.emit(w.coldChain, "ReadingSkipped").withArgs(w.k1.id, 3n, 1n, SkipReason.SequenceGap);
      // Relayed once more, the same signed item is accepted.
      expect((await submit(w, [third])).accepted).to.equal(1n);
      const c = await w.coldChain.condition(w.shipmentId);
      expect([c.readingCount, c.minCentiC, c.maxCentiC]).to.deep.equal([3n, 500n, 520n]);
      expect((await w.coldChain.deviceTrack(w.k1.id)).lastObservedAt).to.equal(BigInt(t + 2 * INTERVAL));
      // The first again: recorded already.
      const again = await submit(w, [first]);
      await expect(again.tx)
        .to.emit(w.coldChain, "ReadingSkipped")
        .withArgs(w.k1.id, 1n, 1n, SkipReason.DuplicateSequence);
    });

    it("a device's first reading in the shipment is one whose predecessor is before the start; a later one waits", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      await networkHelpers.time.increase(3600);
      const t = w.startedAt + 600;
      // k1's predecessor lies at or after the start (a reading it took then was never relayed): it waits.
      const named = signed(w, w.k1, reading(w.k1, 2, t, 500, 0, w.startedAt));
      const gap = await submit(w, [named]);
      await expect(gap.tx).to.emit(w.coldChain, "ReadingSkipped").withArgs(w.k1.id, 2n, 1n, SkipReason.SequenceGap);
      // r1's predecessor lies one second before the start (its last reading before the shipment): accepted.
      const before = signed(w, w.r1, reading(w.r1, 7, t, 500, 0, w.startedAt - 1));
      expect((await submit(w, [before])).accepted).to.equal(1n);
    });

    it("refuses a reading that does not continue the recorded chain as stale: two histories, or a device that lost its state", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      await networkHelpers.time.increase(3600);
      const t = w.startedAt + 600;
      await submit(w, series(w, w.k1, 1, t, [500, 510, 520]));
      // Another reading after the first, signed by the same device: a second history.
      const fork = signed(w, w.k1, reading(w.k1, 9, t + 3 * INTERVAL, 530, 0, t));
      const forked = await submit(w, [fork]);
      await expect(forked.tx)
        .to.emit(w.coldChain, "ReadingSkipped")
        .withArgs(w.k1.id, 9n, 1n, SkipReason.StaleSequence);
      // The device lost its state: its next reading names none (0) and is stale...
      const lost = reading(w.k1, 1, t + 4 * INTERVAL, 540, 0, 0);
      const afterLoss = await submit(w, [signed(w, w.k1, lost)]);
      await expect(afterLoss.tx)
        .to.emit(w.coldChain, "ReadingSkipped")
        .withArgs(w.k1.id, 1n, 1n, SkipReason.StaleSequence);
      // ...and the ones it takes after it name a reading that will never be recorded: they wait for ever.
      const next = signed(w, w.k1, reading(w.k1, 2, t + 5 * INTERVAL, 540, 0, lost.observedAt));
      const waiting = await submit(w, [next]);
      await expect(waiting.tx).to.emit(w.coldChain, "ReadingSkipped").withArgs(w.k1.id, 2n, 1n, SkipReason.SequenceGap);
      expect((await w.coldChain.condition(w.shipmentId)).readingCount).to.equal(3n);
      expect((await w.coldChain.deviceTrack(w.k1.id)).lastObservedAt).to.equal(BigInt(t + 2 * INTERVAL));
      // The genuine chain goes on: the device's reading after its third is accepted.
      const genuine = signed(w, w.k1, reading(w.k1, 4, t + 3 * INTERVAL, 530, 0, t + 2 * INTERVAL));
      expect((await submit(w, [genuine])).accepted).to.equal(1n);
    });

    it("returns the counts from submitReadings and anyone may relay", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      await networkHelpers.time.increase(3600);
      const batch = encodeBatch(series(w, w.k1, 1, w.startedAt + 600, [400, 410, 420]));
      const result = await w.coldChain.connect(w.stranger).submitReadings.staticCall(batch);
      expect(result).to.deep.equal([3n, 0n]);
    });
  });

  describe("skipping invalid items without reverting the batch", () => {
    it("skips each kind of invalid item with its reason and records every valid one", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      await networkHelpers.time.increase(3600);
      const now = await networkHelpers.time.latest();
      const t = w.startedAt + 600;
      const unknown: Device = { id: 999n, key: newKey("secp256k1") };
      const forged = signReading(w.domain, reading(w.k1, 2, t + INTERVAL, 500, 0, t), newKey("secp256k1")); // wrong key
      const items: SignedItem[] = [
        signed(w, w.k1, reading(w.k1, 1, t)), // valid
        forged, // BadSignature
        signed(w, w.k1, reading(w.k1, 1, t)), // DuplicateSequence (same batch)
        signed(w, w.k1, reading(w.k1, 3, now + 10_000, 500, 0, t)), // FutureTimestamp
        signed(w, w.k1, reading(w.k1, 4, w.startedAt - 10)), // OutsideShipmentWindow (before the start)
        signed(w, unknown, reading(unknown, 1, t)), // UnknownDevice
        signed(w, w.spare, reading(w.spare, 1, t)), // UnboundDevice
        signed(w, w.k1, reading(w.k1, 5, t + INTERVAL, 500, 0, t)), // valid
      ];
      const { tx, accepted, skipped } = await submit(w, items);
      expect([accepted, skipped]).to.deep.equal([2n, 6n]);
      await expect(tx)
        .to.emit(w.coldChain, "ReadingSkipped")
        .withArgs(w.k1.id, 2n, 1n, SkipReason.BadSignature)
        .and.to.emit(w.coldChain, "ReadingSkipped")
        .withArgs(w.k1.id, 1n, 1n, SkipReason.DuplicateSequence)
        .and.to.emit(w.coldChain, "ReadingSkipped")
        .withArgs(w.k1.id, 3n, 1n, SkipReason.FutureTimestamp)
        .and.to.emit(w.coldChain, "ReadingSkipped")
        .withArgs(w.k1.id, 4n, 1n, SkipReason.OutsideShipmentWindow)
        .and.to.emit(w.coldChain, "ReadingSkipped")
        .withArgs(999n, 1n, 1n, SkipReason.UnknownDevice)
        .and.to.emit(w.coldChain, "ReadingSkipped")
        .withArgs(w.spare.id, 1n, 1n, SkipReason.UnboundDevice);
      expect((await w.coldChain.condition(w.shipmentId)).readingCount).to.equal(2n);
      // The forged item took no place in the chain: the device's own reading after its first was recorded.
      const track = await w.coldChain.deviceTrack(w.k1.id);
      expect([track.lastObservedAt, track.lastSequence]).to.deep.equal([BigInt(t + INTERVAL), 5n]);
    });

    it("skips a bad reading inside a READINGS item before one ReadingsRecorded of the item's accepted readings", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      await networkHelpers.time.increase(3600);
      const t = w.startedAt + 600;
      const first = reading(w.k1, 1, t, 510);
      // The device's next reading; a stranger's forgery in between claims a place after the first.
      const third = reading(w.k1, 3, t + 2 * INTERVAL, -250, 0x02, t);
      const items: SignedItem[] = [
        signed(w, w.k1, first),
        signReading(w.domain, reading(w.k1, 2, t + INTERVAL, 500, 0, t), newKey("secp256k1")), // BadSignature
        signed(w, w.k1, third),
      ];
      expect(groupBatchItems(items)).to.have.length(1); // one READINGS item of 3 readings
      const { accepted, skipped, receipt } = await submit(w, items);
      expect([accepted, skipped]).to.deep.equal([2n, 1n]);
      const events = inboxEvents(w, receipt).filter(
        (e) => e.name === "ReadingSkipped" || e.name === "ReadingsRecorded",
      );
      expect(events.map((e) => e.name)).to.deep.equal(["ReadingSkipped", "ReadingsRecorded"]);
      expect([...events[0]!.args]).to.deep.equal([w.k1.id, 2n, 1n, SkipReason.BadSignature]);
      expect(events[1]!.args.deviceId).to.equal(w.k1.id);
      expect(recordedReadings(w, receipt)).to.deep.equal([[recordOf(first), recordOf(third)]]);
    });

    it("emits no ReadingsRecorded for an item whose readings are all skipped", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      await networkHelpers.time.increase(3600);
      const t = w.startedAt + 600;
      const wrongKey = newKey("secp256k1");
      const forged: SignedItem[] = [1, 2].map((seq) =>
        signReading(w.domain, reading(w.k1, seq, t + seq * INTERVAL, 500, 0, t + (seq - 1) * INTERVAL), wrongKey),
      );
      // Skipped reading by reading (bad signatures), then as a whole device (unbound).
      const only = await submit(w, [...forged, ...series(w, w.spare, 1, t, [500, 500])]);
      expect([only.accepted, only.skipped]).to.deep.equal([0n, 4n]);
      await expect(only.tx).to.not.emit(w.coldChain, "ReadingsRecorded");
      expect(inboxEvents(w, only.receipt).map((e) => e.name)).to.deep.equal(Array(4).fill("ReadingSkipped"));
      // Next to an accepted item, the all-skipped one still has none: one ReadingsRecorded, r1's.
      const valid = reading(w.r1, 1, t, 450);
      const mixed = await submit(w, [...forged, signed(w, w.r1, valid)]);
      expect([mixed.accepted, mixed.skipped]).to.deep.equal([1n, 2n]);
      expect(recordedReadings(w, mixed.receipt)).to.deep.equal([[recordOf(valid)]]);
      expect((await w.coldChain.condition(w.shipmentId)).readingCount).to.equal(1n);
    });

    it("refuses a revoked device's readings observed from the revocation on, and keeps those observed before", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      await networkHelpers.time.increase(3600);
      await (await w.registry.connect(w.deviceOwner).revokeDevice(w.k1.id)).wait();
      const revokedAt = await networkHelpers.time.latest();
      const before = signed(w, w.k1, reading(w.k1, 1, w.startedAt + 600)); // observed before: genuine, in flight
      const after = signed(w, w.k1, reading(w.k1, 2, revokedAt, 500, 0, w.startedAt + 600)); // observed at the revocation
      const { tx } = await submit(w, [before, after]);
      expect((await w.coldChain.condition(w.shipmentId)).readingCount).to.equal(1n);
      await expect(tx).to.emit(w.coldChain, "ReadingSkipped").withArgs(w.k1.id, 2n, 1n, SkipReason.RevokedDevice);
    });

    it("skips readings of a shipment that is not in transit or delivered", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      const device = await register(w, 20n, newKey("secp256k1"));
      await createShipment(w, [device.id], 1n); // created, never started
      await networkHelpers.time.increase(3600);
      const { tx } = await submit(w, [signed(w, device, reading(device, 1, w.startedAt + 600))]);
      await expect(tx).to.emit(w.coldChain, "ReadingSkipped").withArgs(device.id, 1n, 1n, SkipReason.ShipmentNotActive);
    });

    it("skips a window whose interval differs from the registered one, or that is empty or too long", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      await networkHelpers.time.increase(3600);
      const base = { deviceId: w.k1.id, firstSequence: 1, firstObservedAt: w.startedAt + 600, previousObservedAt: 0 };
      const wrongInterval = signWindow(
        w.domain,
        { ...base, intervalSeconds: 60, samples: [{ tempCentiC: 400, flags: 0 }] },
        w.k1.key,
      );
      const { tx, skipped } = await submit(w, [wrongInterval]);
      expect(skipped).to.equal(1n);
      await expect(tx).to.emit(w.coldChain, "ReadingSkipped").withArgs(w.k1.id, 1n, 1n, SkipReason.MalformedItem);
    });

    it("skips a whole window whose first sample is recorded already, and takes the rest of the chain as a window after it", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      await networkHelpers.time.increase(3600);
      const t = w.startedAt + 600;
      const temps = [400, 410, 420, 430];
      // The device's first reading went out alone; later its logger uploads a window of the same four.
      await submit(w, [signed(w, w.k1, reading(w.k1, 1, t, 400))]);
      const window = {
        deviceId: w.k1.id,
        firstSequence: 1,
        firstObservedAt: t,
        intervalSeconds: INTERVAL,
        samples: temps.map((tempCentiC) => ({ tempCentiC, flags: 0 })),
        previousObservedAt: 0,
      };
      const { tx, skipped } = await submit(w, [signWindow(w.domain, window, w.k1.key)]);
      expect(skipped).to.equal(4n);
      await expect(tx).to.emit(w.coldChain, "ReadingSkipped").withArgs(w.k1.id, 1n, 4n, SkipReason.DuplicateSequence);
      // The three after it, as a window naming the first: the chain goes on.
      const rest = {
        ...window,
        firstSequence: 2,
        firstObservedAt: t + INTERVAL,
        samples: window.samples.slice(1),
        previousObservedAt: t,
      };
      expect((await submit(w, [signWindow(w.domain, rest, w.k1.key)])).accepted).to.equal(3n);
      expect((await w.coldChain.condition(w.shipmentId)).readingCount).to.equal(4n);
    });
  });

  describe("signature domain and malleability", () => {
    it("refuses a signature made for another chain id or another contract", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      await networkHelpers.time.increase(3600);
      const r = reading(w.k1, 1, w.startedAt + 600);
      const otherChain = signReading({ ...w.domain, chainId: w.domain.chainId + 1n }, r, w.k1.key);
      const otherContract = signReading({ ...w.domain, verifyingContract: w.stranger.address }, r, w.k1.key);
      const { accepted, skipped } = await submit(w, [otherChain, otherContract]);
      expect([accepted, skipped]).to.deep.equal([0n, 2n]);
    });

    it("refuses the high-s twin of a valid P-256 signature and accepts the low-s original", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      await networkHelpers.time.increase(3600);
      const low = signed(w, w.r1, reading(w.r1, 1, w.startedAt + 600));
      const s = BigInt("0x" + low.signature.slice(66));
      const highS = "0x" + low.signature.slice(2, 66) + (P256_N - s).toString(16).padStart(64, "0");
      const twin: SignedItem = { ...low, signature: highS };
      const first = await submit(w, [twin]);
      expect(first.skipped).to.equal(1n);
      await expect(first.tx).to.emit(w.coldChain, "ReadingSkipped").withArgs(w.r1.id, 1n, 1n, SkipReason.BadSignature);
      const second = await submit(w, [low]);
      expect(second.accepted).to.equal(1n);
    });

    it("refuses a secp256k1 signature with high s", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      await networkHelpers.time.increase(3600);
      const low = signed(w, w.k1, reading(w.k1, 1, w.startedAt + 600));
      const vs = BigInt("0x" + low.signature.slice(66));
      const parity = vs >> 255n;
      const s = vs & ((1n << 255n) - 1n);
      const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
      // The high-s twin has the opposite parity; with s >= n/2 it cannot be expressed as low-s compact: the
      // top bit holds the parity, so s' = n - s is written as is.
      const highVs = ((parity ^ 1n) << 255n) | (n - s);
      const twin: SignedItem = {
        ...low,
        signature: "0x" + low.signature.slice(2, 66) + highVs.toString(16).padStart(64, "0"),
      };
      const { skipped } = await submit(w, [twin]);
      expect(skipped).to.equal(1n);
    });
  });

  describe("rules and liability", () => {
    it("charges an excursion to the custodian who held the shipment at the reading's time, even when it arrives late", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      const t0 = w.startedAt + 600;
      await networkHelpers.time.increaseTo(t0 + 12 * INTERVAL);
      // Custody passes shipper -> carrier now; the readings observed before arrive only afterwards.
      await w.coldChain.connect(w.shipper).offerCustody(w.shipmentId, w.carrier.address, t0 + 100 * INTERVAL);
      await w.coldChain.connect(w.carrier).acceptCustody(w.shipmentId);
      const handoverAt = await networkHelpers.time.latest();
      await networkHelpers.time.increase(20 * INTERVAL);
      // 13 readings at 12 °C (65 min out of range) observed while the shipper held the goods...
      const beforeHandover = series(w, w.k1, 1, t0, Array<number>(13).fill(1200));
      // ...and 2 readings out of range in the carrier's time.
      const afterHandover = series(w, w.k1, 14, handoverAt + INTERVAL, [1200, 1200], t0 + 12 * INTERVAL);
      const { tx } = await submit(w, [...beforeHandover, ...afterHandover]);
      await expect(tx)
        .to.emit(w.coldChain, "BreachRecorded")
        .withArgs(
          w.shipmentId,
          w.shipper.address,
          Breach.SingleExcursion,
          0n,
          w.k1.id,
          12n,
          BigInt(t0 + 11 * INTERVAL),
        );
      expect(await w.lens.excursionSecondsOf(w.shipmentId, w.shipper.address)).to.equal(13n * 300n);
      expect(await w.lens.excursionSecondsOf(w.shipmentId, w.carrier.address)).to.equal(2n * 300n);
      const c = await w.coldChain.condition(w.shipmentId);
      expect(c.cumulativeExcursionSeconds).to.equal(15n * 300n);
      const history = await w.coldChain.custodyHistory(w.shipmentId);
      expect(history.reduce((sum, p) => sum + p.excursionSeconds, 0n)).to.equal(c.cumulativeExcursionSeconds);
      expect(c.firstBreach).to.equal(Breach.SingleExcursion);
    });

    it("a late reading from before a handover is charged to the earlier custodian: the later one waits for it", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      const t0 = w.startedAt + 600;
      await networkHelpers.time.increaseTo(t0 + 4 * INTERVAL);
      await w.coldChain.connect(w.shipper).offerCustody(w.shipmentId, w.carrier.address, t0 + 100 * INTERVAL);
      await w.coldChain.connect(w.carrier).acceptCustody(w.shipmentId);
      const handoverAt = await networkHelpers.time.latest();
      await networkHelpers.time.increase(10 * INTERVAL);
      const late = signed(w, w.k1, reading(w.k1, 2, t0 + INTERVAL, 3000));
      const later = signed(w, w.k1, reading(w.k1, 10, handoverAt + INTERVAL, 500, 0, t0 + INTERVAL));
      // The carrier-time reading is relayed first: it waits for its predecessor, observed in the shipper's time.
      const first = await submit(w, [later]);
      await expect(first.tx).to.emit(w.coldChain, "ReadingSkipped").withArgs(w.k1.id, 10n, 1n, SkipReason.SequenceGap);
      const { tx } = await submit(w, [late]);
      await expect(tx)
        .to.emit(w.coldChain, "BreachRecorded")
        .withArgs(w.shipmentId, w.shipper.address, Breach.AbsoluteLimit, 0n, w.k1.id, 2n, BigInt(t0 + INTERVAL));
      expect((await submit(w, [later])).accepted).to.equal(1n);
      expect(await w.lens.excursionSecondsOf(w.shipmentId, w.shipper.address)).to.equal(300n);
      expect(await w.lens.excursionSecondsOf(w.shipmentId, w.carrier.address)).to.equal(0n);
      expect((await w.coldChain.condition(w.shipmentId)).readingCount).to.equal(2n);
    });

    it("detects freeze, missing data and device faults", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      const t0 = w.startedAt + 600;
      await networkHelpers.time.increase(48 * 3600);
      const freeze = series(w, w.k1, 1, t0, Array<number>(13).fill(-100)); // -1 °C for 65 min
      // Switched off for 18 intervals: the next reading names the last one before (the chain resumes).
      const gap = signed(w, w.k1, reading(w.k1, 14, t0 + 30 * INTERVAL, 500, 0, t0 + 12 * INTERVAL));
      const tamper = signed(w, w.k1, reading(w.k1, 15, t0 + 31 * INTERVAL, 500, 0x04, t0 + 30 * INTERVAL));
      const { tx } = await submit(w, [...freeze, gap, tamper]);
      await expect(tx)
        .to.emit(w.coldChain, "BreachRecorded")
        .withArgs(w.shipmentId, w.shipper.address, Breach.Freeze, 0n, w.k1.id, 12n, BigInt(t0 + 11 * INTERVAL));
      await expect(tx)
        .to.emit(w.coldChain, "BreachRecorded")
        .withArgs(w.shipmentId, w.shipper.address, Breach.MissingData, 0n, w.k1.id, 14n, BigInt(t0 + 30 * INTERVAL));
      await expect(tx)
        .to.emit(w.coldChain, "BreachRecorded")
        .withArgs(w.shipmentId, w.shipper.address, Breach.DeviceFault, 0n, w.k1.id, 15n, BigInt(t0 + 31 * INTERVAL));
      const c = await w.coldChain.condition(w.shipmentId);
      const bits =
        (1n << Breach.Freeze) |
        (1n << Breach.MissingData) |
        (1n << Breach.DeviceFault) |
        (1n << Breach.SingleExcursion);
      expect(c.breachFlags & bits).to.equal(bits);
    });

    it("does not evaluate readings inside the adaptation period", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      await networkHelpers.time.increase(3600);
      await submit(w, [signed(w, w.k1, reading(w.k1, 1, w.startedAt + 60, 3000))]); // 30 °C after 1 min
      const c = await w.coldChain.condition(w.shipmentId);
      expect(c.readingCount).to.equal(1n);
      expect(c.breachFlags).to.equal(0n);
      expect(c.cumulativeExcursionSeconds).to.equal(0n);
    });

    it("ColdChainLens: no MKT before a temperature is evaluated, ShipmentUnknown for an unknown shipment", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      expect(await w.lens.meanKineticTemperature(w.shipmentId)).to.deep.equal([false, 0n]);
      await expect(w.lens.meanKineticTemperature(999n))
        .to.be.revertedWithCustomError(w.coldChain, "ShipmentUnknown")
        .withArgs(999n);
      expect(await w.lens.COLD_CHAIN()).to.equal(await w.coldChain.getAddress());
      expect(await w.lens.MKT_TABLE()).to.equal(await w.mktTable.getAddress());
      await expect(
        connection.ethers.deployContract("ColdChainLens", [w.stranger.address]),
      ).to.be.revertedWithCustomError(w.lens, "ColdChainLensConfigInvalid");
    });

    it("computes MKT within 0.05 °C of the reference and breaches when it exceeds the limit", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      const t0 = w.startedAt + 600;
      await networkHelpers.time.increase(30 * 3600);
      // 24 h of readings at 7.5–7.9 °C with 4 h at 12 °C: the MKT (about 8.6 °C) exceeds the 8.0 °C limit.
      const temps = Array.from({ length: 288 }, (_, i) => (i >= 100 && i < 148 ? 1200 : 750 + (i % 5) * 10));
      const windows: SignedItem[] = [];
      for (let first = 0; first < temps.length; first += 96) {
        const samples = temps.slice(first, first + 96).map((tempCentiC) => ({ tempCentiC, flags: 0 }));
        windows.push(
          signWindow(
            w.domain,
            {
              deviceId: w.k1.id,
              firstSequence: first + 1,
              firstObservedAt: t0 + first * INTERVAL,
              intervalSeconds: INTERVAL,
              samples,
              previousObservedAt: first === 0 ? 0 : t0 + (first - 1) * INTERVAL,
            },
            w.k1.key,
          ),
        );
      }
      const { tx } = await submit(w, windows);
      const [known, mkt] = await w.lens.meanKineticTemperature(w.shipmentId);
      expect(known).to.equal(true);
      const samples = temps.map((tempCentiC) => ({ tempCentiC, seconds: INTERVAL }));
      const reference = referenceMktCentiC(samples);
      expect(Math.abs(Number(mkt) - reference)).to.be.lessThan(5);
      const sums = mktAccumulate(samples);
      expect(Number(mkt)).to.equal(onchainMktCentiC(sums.sumWeighted, sums.sumSeconds));
      expect(reference).to.be.greaterThan(800);
      await expect(tx)
        .to.emit(w.coldChain, "BreachRecorded")
        .withArgs(w.shipmentId, w.shipper.address, Breach.MktExceeded, 0n, w.k1.id, 288n, BigInt(t0 + 287 * INTERVAL));
    });
  });

  describe("envelope and pause", () => {
    it("reverts with BatchMalformed on a bad version byte, an unknown kind or a truncated item", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      const inbox = w.coldChain.connect(w.relayer);
      await expect(inbox.submitReadings("0x"))
        .to.be.revertedWithCustomError(w.coldChain, "BatchMalformed")
        .withArgs(0n);
      // A protocol v1 batch (version 0x01), and another unknown version.
      await expect(inbox.submitReadings(ethers.hexlify(Uint8Array.of(0x01, 0x01))))
        .to.be.revertedWithCustomError(w.coldChain, "BatchMalformed")
        .withArgs(0n);
      await expect(inbox.submitReadings("0x03"))
        .to.be.revertedWithCustomError(w.coldChain, "BatchMalformed")
        .withArgs(0n);
      await expect(inbox.submitReadings("0x0207"))
        .to.be.revertedWithCustomError(w.coldChain, "BatchMalformed")
        .withArgs(1n);
      const good = encodeBatch([signed(w, w.k1, reading(w.k1, 1, w.startedAt + 600))]);
      const truncated = ethers.hexlify(good.subarray(0, good.length - 1));
      await expect(inbox.submitReadings(truncated))
        .to.be.revertedWithCustomError(w.coldChain, "BatchMalformed")
        .withArgs(1n);
    });

    it("reverts while paused and works again after unpause", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      await networkHelpers.time.increase(3600);
      const batch = encodeBatch([signed(w, w.k1, reading(w.k1, 1, w.startedAt + 600))]);
      await w.coldChain.connect(w.guardian).pause();
      await expect(w.coldChain.connect(w.relayer).submitReadings(batch)).to.be.revertedWithCustomError(
        w.coldChain,
        "EnforcedPause",
      );
      await w.coldChain.connect(w.guardian).unpause();
      await expect(w.coldChain.connect(w.relayer).submitReadings(batch)).to.emit(w.coldChain, "ReadingsRecorded");
    });

    it("lets the admin change the future skew, and nobody else", async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      await expect(w.coldChain.connect(w.admin).setMaxFutureSkewSeconds(60))
        .to.emit(w.coldChain, "MaxFutureSkewChanged")
        .withArgs(300n, 60n);
      expect(await w.coldChain.maxFutureSkewSeconds()).to.equal(60n);
      await expect(w.coldChain.connect(w.stranger).setMaxFutureSkewSeconds(0)).to.be.revertedWithCustomError(
        w.coldChain,
        "AccessControlUnauthorizedAccount",
      );
    });
  });
});
