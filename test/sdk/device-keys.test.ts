/**
 * Keys bound to time in the verdict, on a real chain (in-process EDR): the key rotations and revocations of a
 * shipment's devices while it was open are `shipmentHistory(...).deviceKeyEvents` (DeviceRegistry events), and
 * `show` prints them in words under the devices. A rotation before the shipment's creation, one after its end and
 * one of a device the shipment does not carry are not its events.
 */
import { expect } from "chai";
import { Wallet, ZeroAddress } from "ethers";
import { network } from "hardhat";

import { formatShipment } from "../../cli/commands/show.js";
import {
  connectSuite,
  encodeBatch,
  formatDateTime,
  p256PublicKey,
  readShipment,
  shipmentHistory,
  signReading,
} from "../../sdk/index.js";
import type { ColdChainDomain, ColdChainSuite, DevicePrivateKey, ShipmentHistory } from "../../sdk/index.js";
import { VACCINE_PROFILE, createShipment, deploySuite, registerDevice } from "../support/deploy.js";
import type { Suite } from "../support/deploy.js";
import { deploymentOf } from "./scenario.js";

const INTERVAL = 300;
/** secp256k1, rotated while the shipment is open (and before it, and after it). */
const ROTATED = 51n;
/** P-256, revoked by a device manager from an earlier time while the shipment is open. */
const REVOKED = 52n;
/** Not on the shipment; rotated while it is open. */
const OTHER = 53n;

const k1 = (): DevicePrivateKey => ({ keyType: "secp256k1", privateKey: Wallet.createRandom().privateKey });

describe("SDK: a shipment's device key rotations and revocations (deviceKeyEvents) and show", function () {
  this.timeout(120_000);
  let s: Suite;
  let suite: ColdChainSuite;
  let id: bigint;
  let history: ShipmentHistory;
  let rotation: { block: number; tx: string; at: number; signer: string };
  let distrust: { block: number; tx: string; from: number };

  before(async () => {
    const connection = await network.create();
    s = await deploySuite(connection);
    suite = connectSuite(await deploymentOf(s), connection.ethers.provider);
    await registerDevice(s, ROTATED, k1(), INTERVAL);
    const p256Key: DevicePrivateKey = { keyType: "p256", privateKey: Wallet.createRandom().privateKey };
    await registerDevice(s, REVOKED, p256Key, INTERVAL);
    await registerDevice(s, OTHER, k1(), INTERVAL);
    const owner = s.registry.connect(s.deviceOwner);
    // Before the shipment: not its event.
    const earlyKey = k1();
    await (await owner.rotateSecp256k1Key(ROTATED, new Wallet(earlyKey.privateKey).address)).wait();

    const profileId = await s.coldChain.connect(s.qa).createProfile.staticCall(VACCINE_PROFILE);
    await (await s.coldChain.connect(s.qa).createProfile(VACCINE_PROFILE)).wait();
    id = await createShipment(s, [ROTATED, REVOKED], profileId);
    await (await s.coldChain.connect(s.shipper).startShipment(id)).wait();
    const startedAt = Number((await s.coldChain.shipment(id)).startedAt);
    await connection.networkHelpers.time.increase(3600);

    // The device reads at startedAt + 60 under the key of that time, then its key is rotated.
    const domain: ColdChainDomain = { chainId: s.chainId, verifyingContract: await s.coldChain.getAddress() };
    const newKey = k1();
    const signer = new Wallet(newKey.privateKey).address;
    const rotated = await (await owner.rotateSecp256k1Key(ROTATED, signer)).wait();
    if (rotated === null) throw new Error("not mined");
    const at = (await connection.ethers.provider.getBlock(rotated.blockNumber))?.timestamp ?? 0;
    rotation = { block: rotated.blockNumber, tx: rotated.hash, at, signer };
    await (await owner.rotateSecp256k1Key(OTHER, new Wallet(k1().privateKey).address)).wait();

    // A device manager distrusts the P-256 device from half an hour ago.
    const from = at - 1800;
    const revoked = await (await s.registry.connect(s.deviceManager).revokeDeviceFrom(REVOKED, from)).wait();
    if (revoked === null) throw new Error("not mined");
    distrust = { block: revoked.blockNumber, tx: revoked.hash, from };

    // Evidence relayed late still counts: under the key of its time, and from before the distrust time.
    const byEarlyKey = signReading(
      domain,
      { deviceId: ROTATED, sequence: 1, observedAt: startedAt + 60, tempCentiC: 500, flags: 0, previousObservedAt: 0 },
      earlyKey,
    );
    const beforeDistrust = signReading(
      domain,
      { deviceId: REVOKED, sequence: 1, observedAt: startedAt + 120, tempCentiC: 500, flags: 0, previousObservedAt: 0 },
      p256Key,
    );
    await (await s.coldChain.connect(s.relayer).submitReadings(encodeBatch([byEarlyKey, beforeDistrust]))).wait();

    // The shipper cancels: the shipment's end. A rotation after it is not its event.
    await (await s.coldChain.connect(s.shipper).cancelShipment(id)).wait();
    const { x, y } = p256PublicKey(Wallet.createRandom().privateKey);
    await (await owner.rotateP256Key(ROTATED, x, y)).wait();
    history = await shipmentHistory(suite, id);
  });

  it("returns the rotation and the distrust of the shipment's devices while it was open, in chain order", () => {
    const events = history.deviceKeyEvents;
    expect(events.map((e) => [e.kind, e.deviceId])).to.deep.equal([
      ["keyRotated", ROTATED],
      ["distrusted", REVOKED],
    ]);
    expect(events[0]).to.deep.include({
      kind: "keyRotated",
      deviceId: ROTATED,
      keyIndex: 2,
      validFrom: rotation.at,
      keyType: "Secp256k1",
      signer: rotation.signer,
      blockNumber: rotation.block,
      blockTime: rotation.at,
      transactionHash: rotation.tx,
    });
    expect(events[1]).to.deep.include({
      kind: "distrusted",
      deviceId: REVOKED,
      distrustedFrom: distrust.from,
      by: s.deviceManager.address,
      blockNumber: distrust.block,
      transactionHash: distrust.tx,
    });
    // Relayed after the rotation and the revocation, both readings are recorded (keys bound to time).
    expect(history.readings.map((r) => [r.deviceId, r.sequence])).to.deep.equal([
      [ROTATED, 1],
      [REVOKED, 1],
    ]);
    expect(events.every((e) => e.kind !== "keyRotated" || e.signer !== ZeroAddress)).to.equal(true);
  });

  it("show prints them in words under the devices", async () => {
    const text = formatShipment(await readShipment(suite, id), history);
    const lines = text.split("\n");
    const devices = lines.findIndex((l) => l.startsWith("devices"));
    const iso = (t: number): string => formatDateTime(t); // show's dates: "2026-12-07 03:00:00 UTC"
    expect(lines[devices + 1]?.trim()).to.equal(
      `device ${ROTATED}: key rotated in block ${rotation.block} (key #2, secp256k1 ${rotation.signer}), valid from ` +
        `${iso(rotation.at)}; earlier readings verify under the previous key`,
    );
    expect(lines[devices + 2]?.trim()).to.equal(
      `device ${REVOKED}: distrusted from ${iso(distrust.from)} by ${s.deviceManager.address} (revoked in block ` +
        `${distrust.block}); its readings observed from then on are refused`,
    );
  });
});
