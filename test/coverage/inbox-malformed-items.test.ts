/**
 * Branches of the readings inbox that the main suite (test/inbox.test.ts) left untaken, found by
 * `npm run coverage`: an empty READINGS item and a truncated WINDOW item (envelope errors: the batch reverts), an
 * empty WINDOW item of a bound device (skipped as malformed), signatures whose r is zero on both curves (skipped as
 * bad signatures before any curve arithmetic), and a profile whose range maximum equals its absolute maximum.
 */
import { expect } from "chai";
import { Wallet } from "ethers";
import { network } from "hardhat";

import type { ColdChainDomain, DevicePrivateKey, SignedItem } from "../../sdk/protocol/index.js";
import {
  BATCH_VERSION,
  ITEM_KIND_READINGS,
  ITEM_KIND_WINDOW,
  READINGS_HEADER_BYTES,
  READING_BYTES,
  SIGNATURE_BYTES,
  WINDOW_HEADER_BYTES,
  encodeBatch,
  signReading,
} from "../../sdk/protocol/index.js";
import { VACCINE_PROFILE, createShipment, deploySuite, registerDevice } from "../support/deploy.js";
import type { Suite } from "../support/deploy.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;

const INTERVAL = 300;
/** IReadingsInbox.SkipReason */
const BAD_SIGNATURE = 0n;
const MALFORMED_ITEM = 9n;

interface World extends Suite {
  domain: ColdChainDomain;
  k1: { id: bigint; key: DevicePrivateKey };
  r1: { id: bigint; key: DevicePrivateKey };
  startedAt: number;
}

async function worldFixture(): Promise<World> {
  const s = await deploySuite(connection);
  await s.coldChain.connect(s.qa).createProfile(VACCINE_PROFILE);
  const k1 = { id: 21n, key: { keyType: "secp256k1", privateKey: Wallet.createRandom().privateKey } as const };
  const r1 = { id: 22n, key: { keyType: "p256", privateKey: Wallet.createRandom().privateKey } as const };
  await registerDevice(s, k1.id, k1.key, INTERVAL);
  await registerDevice(s, r1.id, r1.key, INTERVAL);
  const shipmentId = await createShipment(s, [k1.id, r1.id], 1n);
  await s.coldChain.connect(s.shipper).startShipment(shipmentId);
  const startedAt = await networkHelpers.time.latest();
  await networkHelpers.time.increase(3600);
  const domain = { chainId: s.chainId, verifyingContract: await s.coldChain.getAddress() };
  return { ...s, domain, k1, r1, startedAt };
}

/**
 * A WINDOW item header (kind, device, first sequence, first observed-at, interval, count, and the predecessor of
 * the first sample: none), big-endian.
 */
function windowHeader(deviceId: bigint, firstSequence: number, firstObservedAt: number, count: number): Uint8Array {
  const out = new Uint8Array(WINDOW_HEADER_BYTES);
  const view = new DataView(out.buffer);
  out[0] = ITEM_KIND_WINDOW;
  view.setBigUint64(1, deviceId);
  view.setUint32(9, firstSequence);
  view.setUint8(13, Math.floor(firstObservedAt / 2 ** 32));
  view.setUint32(14, firstObservedAt % 2 ** 32);
  view.setUint32(18, INTERVAL);
  view.setUint16(22, count);
  // bytes 24..28: previousObservedAt = 0 (left zero)
  return out;
}

function batchOf(...items: Uint8Array[]): string {
  return ethers.hexlify(ethers.concat([Uint8Array.of(BATCH_VERSION), ...items]));
}

/** One signed reading in a batch, with r (the signature's first 32 bytes) set to zero. */
function zeroR(item: SignedItem): string {
  const batch = encodeBatch([item]);
  const signatureAt = 1 + READINGS_HEADER_BYTES + READING_BYTES - SIGNATURE_BYTES;
  batch.fill(0, signatureAt, signatureAt + 32);
  return ethers.hexlify(batch);
}

describe("inbox branches the main suite missed (coverage)", () => {
  it("reverts with BatchMalformed on a READINGS item of zero readings", async () => {
    const w = await networkHelpers.loadFixture(worldFixture);
    const header = new Uint8Array(READINGS_HEADER_BYTES);
    header[0] = ITEM_KIND_READINGS;
    new DataView(header.buffer).setBigUint64(1, w.k1.id);
    await expect(w.coldChain.connect(w.relayer).submitReadings(batchOf(header)))
      .to.be.revertedWithCustomError(w.coldChain, "BatchMalformed")
      .withArgs(1n);
  });

  it("reverts with BatchMalformed on a WINDOW item shorter than its sample count says", async () => {
    const w = await networkHelpers.loadFixture(worldFixture);
    const header = windowHeader(w.k1.id, 1, w.startedAt + 600, 2);
    const oneSample = Uint8Array.of(0x01, 0xf4, 0x00);
    await expect(
      w.coldChain.connect(w.relayer).submitReadings(batchOf(header, oneSample, new Uint8Array(SIGNATURE_BYTES))),
    )
      .to.be.revertedWithCustomError(w.coldChain, "BatchMalformed")
      .withArgs(1n);
  });

  it("skips an empty WINDOW item of a bound device as malformed, without reverting", async () => {
    const w = await networkHelpers.loadFixture(worldFixture);
    const batch = batchOf(windowHeader(w.k1.id, 5, w.startedAt + 600, 0), new Uint8Array(SIGNATURE_BYTES));
    const inbox = w.coldChain.connect(w.relayer);
    // `skipped` counts readings, and the item holds none; the event names the item's device and sequence
    expect(await inbox.submitReadings.staticCall(batch)).to.deep.equal([0n, 0n]);
    await expect(inbox.submitReadings(batch))
      .to.emit(w.coldChain, "ReadingSkipped")
      .withArgs(w.k1.id, 5n, 0n, MALFORMED_ITEM);
  });

  for (const device of ["k1", "r1"] as const) {
    it(`skips a ${device === "k1" ? "secp256k1" : "P-256"} reading whose signature has r = 0 as a bad signature`, async () => {
      const w = await networkHelpers.loadFixture(worldFixture);
      const d = w[device];
      const item = signReading(
        w.domain,
        {
          deviceId: d.id,
          sequence: 1,
          observedAt: w.startedAt + 600,
          tempCentiC: 500,
          flags: 0,
          previousObservedAt: 0,
        },
        d.key,
      );
      const inbox = w.coldChain.connect(w.relayer);
      const [accepted, skipped] = await inbox.submitReadings.staticCall(zeroR(item));
      expect([accepted, skipped]).to.deep.equal([0n, 1n]);
      await expect(inbox.submitReadings(zeroR(item)))
        .to.emit(w.coldChain, "ReadingSkipped")
        .withArgs(d.id, 1n, 1n, BAD_SIGNATURE);
      // the same reading, correctly signed, is accepted: the refused one took no place in the device's chain
      expect((await inbox.submitReadings.staticCall(ethers.hexlify(encodeBatch([item]))))[0]).to.equal(1n);
    });
  }

  it("accepts readings under a profile whose range maximum is its absolute maximum", async () => {
    const w = await networkHelpers.loadFixture(worldFixture);
    const profile = { ...VACCINE_PROFILE, absoluteMaxCentiC: VACCINE_PROFILE.maxCentiC };
    await w.coldChain.connect(w.qa).createProfile(profile);
    const key: DevicePrivateKey = { keyType: "secp256k1", privateKey: Wallet.createRandom().privateKey };
    await registerDevice(w, 23n, key, INTERVAL);
    const shipmentId = await createShipment(w, [23n], 2n);
    await w.coldChain.connect(w.shipper).startShipment(shipmentId);
    const startedAt = await networkHelpers.time.latest();
    await networkHelpers.time.increase(3600);
    const items = [0, 1, 2].map((i) =>
      signReading(
        w.domain,
        {
          deviceId: 23n,
          sequence: i + 1,
          observedAt: startedAt + 600 + i * INTERVAL,
          tempCentiC: 500,
          flags: 0,
          previousObservedAt: i === 0 ? 0 : startedAt + 600 + (i - 1) * INTERVAL,
        },
        key,
      ),
    );
    const inbox = w.coldChain.connect(w.relayer);
    const batch = ethers.hexlify(encodeBatch(items));
    expect(await inbox.submitReadings.staticCall(batch)).to.deep.equal([3n, 0n]);
    await (await inbox.submitReadings(batch)).wait();
    expect((await w.coldChain.condition(shipmentId)).readingCount).to.equal(3n);
  });
});
