/**
 * The MKT of readings beyond the MKT table (±80.0 °C): each reading's factor is clamped to the table, so the MKT
 * of a shipment whose every reading is at or above +80.0 °C is exactly the table's top, 80.00 °C (MktLib's upper
 * clamp, found untested by `npm run coverage`), and one at or below −80.0 °C reads −80.00 °C.
 */
import { expect } from "chai";
import { Wallet } from "ethers";
import { network } from "hardhat";

import type { DevicePrivateKey } from "../../sdk/protocol/index.js";
import { encodeBatch, signReading } from "../../sdk/protocol/index.js";
import { VACCINE_PROFILE, createShipment, deploySuite, registerDevice } from "../support/deploy.js";

const connection = await network.create();
const { ethers, networkHelpers } = connection;
const INTERVAL = 300;

describe("MKT beyond the table range (coverage)", () => {
  for (const [tempCentiC, expected] of [
    [9_000, 8_000n],
    [8_000, 8_000n],
    [-9_000, -8_000n],
  ] as const) {
    it(`reads ${Number(expected) / 100} °C for readings at ${tempCentiC / 100} °C`, async () => {
      const s = await deploySuite(connection);
      await s.coldChain.connect(s.qa).createProfile(VACCINE_PROFILE);
      const key: DevicePrivateKey = { keyType: "secp256k1", privateKey: Wallet.createRandom().privateKey };
      await registerDevice(s, 41n, key, INTERVAL);
      const shipmentId = await createShipment(s, [41n], 1n);
      await s.coldChain.connect(s.shipper).startShipment(shipmentId);
      const startedAt = await networkHelpers.time.latest();
      await networkHelpers.time.increase(6 * 3600);
      const domain = { chainId: s.chainId, verifyingContract: await s.coldChain.getAddress() };
      // after the 10-minute adaptation period, so every reading is evaluated
      const items = [0, 1, 2, 3].map((i) =>
        signReading(
          domain,
          {
            deviceId: 41n,
            sequence: i + 1,
            observedAt: startedAt + 1200 + i * INTERVAL,
            tempCentiC,
            flags: 0,
            previousObservedAt: i === 0 ? 0 : startedAt + 1200 + (i - 1) * INTERVAL,
          },
          key,
        ),
      );
      const batch = ethers.hexlify(encodeBatch(items));
      expect(await s.coldChain.connect(s.relayer).submitReadings.staticCall(batch)).to.deep.equal([4n, 0n]);
      await (await s.coldChain.connect(s.relayer).submitReadings(batch)).wait();
      expect(await s.lens.meanKineticTemperature(shipmentId)).to.deep.equal([true, expected]);
    });
  }
});
