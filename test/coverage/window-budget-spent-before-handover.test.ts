/**
 * A window excursion after the cumulative excursion budget was spent under the previous custodian (found
 * untested by `npm run coverage`: `_excursionRoom` with the budget used up but its breach not yet recorded in
 * the current custody period). The quiet window loop must leave such a sample to the full path, which records
 * the cumulative-excursion breach again, this time charged to the new custodian with the sample's seconds.
 */
import { expect } from "chai";
import { Wallet } from "ethers";
import { network } from "hardhat";

import type { DevicePrivateKey } from "../../sdk/protocol/index.js";
import { encodeBatch, signWindow } from "../../sdk/protocol/index.js";
import { VACCINE_PROFILE, createShipment, deploySuite, registerDevice } from "../support/deploy.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;
const INTERVAL = 300;
const DEVICE = 52n;
/** BreachReason.CumulativeExcursion (IReadingsInbox). */
const CUMULATIVE_EXCURSION = 3n;

describe("window excursion after the budget was spent under the previous custodian (coverage)", () => {
  it("charges the new custodian a cumulative-excursion breach and the sample's seconds", async () => {
    const s = await deploySuite(connection);
    // 2–8 °C with a 20-minute cumulative budget: four out-of-range readings spend it, a one-hour single limit.
    await s.coldChain.connect(s.qa).createProfile({ ...VACCINE_PROFILE, maxCumulativeExcursionSeconds: 4 * INTERVAL });
    const key: DevicePrivateKey = { keyType: "secp256k1", privateKey: Wallet.createRandom().privateKey };
    await registerDevice(s, DEVICE, key, INTERVAL);
    const shipmentId = await createShipment(s, [DEVICE], 1n);
    await s.coldChain.connect(s.shipper).startShipment(shipmentId);
    const startedAt = await networkHelpers.time.latest();
    const domain = { chainId: s.chainId, verifyingContract: await s.coldChain.getAddress() };
    /** A window of the device; `previousObservedAt` names its reading before the first sample (0: none). */
    const submit = async (firstSequence: number, firstObservedAt: number, temps: number[], previousObservedAt = 0) => {
      const samples = temps.map((tempCentiC) => ({ tempCentiC, flags: 0 }));
      const window = {
        deviceId: DEVICE,
        firstSequence,
        firstObservedAt,
        intervalSeconds: INTERVAL,
        samples,
        previousObservedAt,
      };
      const batch = ethers.hexlify(encodeBatch([signWindow(domain, window, key)]));
      const receipt = await (await s.coldChain.connect(s.relayer).submitReadings(batch)).wait();
      return receipt;
    };

    // The shipper's leg, after the adaptation period: five isolated readings at 9 °C spend the budget.
    const first = startedAt + 900;
    await networkHelpers.time.increaseTo(first + 9 * INTERVAL + 10); // just after the window's last reading
    await submit(1, first, [500, 900, 500, 900, 500, 900, 500, 900, 500, 900]);
    expect((await s.coldChain.condition(shipmentId)).cumulativeExcursionSeconds).to.equal(5n * BigInt(INTERVAL));
    expect(await s.lens.excursionSecondsOf(shipmentId, s.shipper.address)).to.equal(5n * BigInt(INTERVAL));

    // Handover to the carrier before the next reading is taken (the whole next window is in the carrier's period:
    // the quiet loop takes it).
    const deadline = (await networkHelpers.time.latest()) + 3600;
    await s.coldChain.connect(s.shipper).offerCustody(shipmentId, s.carrier.address, deadline);
    await s.coldChain.connect(s.carrier).acceptCustody(shipmentId);

    // The carrier's first window: one isolated reading at 9 °C, contiguous with the shipper's readings.
    const next = first + 10 * INTERVAL;
    await networkHelpers.time.increaseTo(next + 4 * INTERVAL);
    const receipt = await submit(11, next, [500, 500, 900, 500], first + 9 * INTERVAL);
    const breaches = (receipt?.logs ?? [])
      .map((log) => {
        try {
          return s.coldChain.interface.parseLog(log);
        } catch {
          return null;
        }
      })
      .filter((e) => e?.name === "BreachRecorded");
    const charged = breaches.map((e): unknown[] => [
      e?.args.custodian,
      e?.args.reason,
      e?.args.periodIndex,
      e?.args.sequence,
    ]);
    expect(charged).to.deep.equal([[s.carrier.address, CUMULATIVE_EXCURSION, 1n, 13n]]);
    expect(await s.lens.excursionSecondsOf(shipmentId, s.carrier.address)).to.equal(BigInt(INTERVAL));
    expect(await s.lens.excursionSecondsOf(shipmentId, s.shipper.address)).to.equal(5n * BigInt(INTERVAL));
    const condition = await s.coldChain.condition(shipmentId);
    expect(condition.cumulativeExcursionSeconds).to.equal(6n * BigInt(INTERVAL));
    expect(condition.readingCount).to.equal(14n);
  });
});
