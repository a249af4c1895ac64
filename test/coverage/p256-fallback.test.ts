/**
 * On a chain without the P256VERIFY precompile (the `prague` in-process network), a P-256 reading is verified by
 * P256Fallback: accepted when signed by the device, skipped as a bad signature otherwise. Found untested by
 * `npm run coverage` (the inbox's `P256_PRECOMPILE == false` branches and P256Fallback itself).
 */
import { expect } from "chai";
import { Wallet } from "ethers";
import { network } from "hardhat";

import type { DevicePrivateKey } from "../../sdk/protocol/index.js";
import { encodeBatch, signReading } from "../../sdk/protocol/index.js";
import { VACCINE_PROFILE, createShipment, deploySuite, registerDevice } from "../support/deploy.js";

const connection = await network.create("prague");
const { ethers, networkHelpers } = connection;

describe("P-256 readings without the precompile (prague, coverage)", () => {
  it("verifies through P256Fallback: the device's signature is accepted, another key's is skipped", async () => {
    const s = await deploySuite(connection);
    expect(await s.coldChain.P256_PRECOMPILE()).to.equal(false);
    await s.coldChain.connect(s.qa).createProfile(VACCINE_PROFILE);
    const key: DevicePrivateKey = { keyType: "p256", privateKey: Wallet.createRandom().privateKey };
    const other: DevicePrivateKey = { keyType: "p256", privateKey: Wallet.createRandom().privateKey };
    await registerDevice(s, 31n, key, 300);
    const shipmentId = await createShipment(s, [31n], 1n);
    await s.coldChain.connect(s.shipper).startShipment(shipmentId);
    const startedAt = await networkHelpers.time.latest();
    await networkHelpers.time.increase(3600);
    const domain = { chainId: s.chainId, verifyingContract: await s.coldChain.getAddress() };
    const reading = (sequence: number) => ({
      deviceId: 31n,
      sequence,
      observedAt: startedAt + 300 * sequence,
      tempCentiC: 500,
      flags: 0,
      previousObservedAt: sequence === 1 ? 0 : startedAt + 300 * (sequence - 1),
    });
    const batch = ethers.hexlify(
      encodeBatch([signReading(domain, reading(1), key), signReading(domain, reading(2), other)]),
    );
    const inbox = s.coldChain.connect(s.relayer);
    expect(await inbox.submitReadings.staticCall(batch)).to.deep.equal([1n, 1n]);
    await expect(inbox.submitReadings(batch)).to.emit(s.coldChain, "ReadingSkipped").withArgs(31n, 2n, 1n, 0n);
    expect(await s.coldChain.isRecorded(31n, startedAt + 300)).to.equal(true);
    expect((await s.coldChain.deviceTrack(31n)).lastObservedAt).to.equal(BigInt(startedAt + 300));
  });
});
