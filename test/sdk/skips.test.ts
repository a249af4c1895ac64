/**
 * Skips no party can bend into evidence, on a real chain (in-process EDR): `submitReadings` is open to anyone, and
 * some `ReadingSkipped` reasons are decided before or without a device signature. A stranger submits, for a live
 * shipment's device, a reading with a garbage signature (BadSignature) and a malformed window (MalformedItem), a
 * reading of a made-up device (UnknownDevice), and a reading of a device whose shipment has not started
 * (ShipmentNotActive). `shipmentHistory` must keep all of them out of `skipped`, and `show` must not list them;
 * the device's genuine reading relayed twice (DuplicateSequence) and one relayed before its predecessor
 * (SequenceGap, retryable: recorded once relayed again) are evidence and stay in `skipped`.
 */
import { expect } from "chai";
import { Wallet, hexlify, randomBytes } from "ethers";
import type { TransactionReceipt } from "ethers";
import { network } from "hardhat";

import { formatShipment } from "../../cli/commands/show.js";
import {
  AUTHENTICATED_SKIP_REASONS,
  SKIP_REASONS,
  connectSuite,
  encodeBatch,
  isAuthenticatedSkip,
  readShipment,
  shipmentHistory,
  signReading,
} from "../../sdk/index.js";
import type {
  ColdChainDomain,
  ColdChainSuite,
  DevicePrivateKey,
  ShipmentHistory,
  SignedItem,
  SkippedReadings,
} from "../../sdk/index.js";
import { VACCINE_PROFILE, createShipment, deploySuite, registerDevice } from "../support/deploy.js";
import type { Suite } from "../support/deploy.js";
import { deploymentOf } from "./scenario.js";

const INTERVAL = 300;
/** The live (started) shipment's device. */
const LIVE = 31n;
/** The device of a shipment created but not started. */
const IDLE = 32n;
/** Registered nowhere. */
const MADE_UP = 4_242_424n;

const garbage = (): string => hexlify(randomBytes(64));
const brief = (skips: readonly SkippedReadings[]): [bigint, number, number, string][] =>
  skips.map((x) => [x.deviceId, x.sequence, x.count, x.reason]);

describe("SDK: skips anyone can cause are never a shipment's evidence", function () {
  this.timeout(120_000);
  let s: Suite;
  let suite: ColdChainSuite;
  let live: bigint;
  let idle: bigint;
  let strangerReceipt: TransactionReceipt;
  let history: ShipmentHistory;

  before(async () => {
    const connection = await network.create();
    s = await deploySuite(connection);
    suite = connectSuite(await deploymentOf(s), connection.ethers.provider);
    const key: DevicePrivateKey = { keyType: "secp256k1", privateKey: Wallet.createRandom().privateKey };
    await registerDevice(s, LIVE, key, INTERVAL);
    await registerDevice(s, IDLE, { keyType: "secp256k1", privateKey: Wallet.createRandom().privateKey }, INTERVAL);
    const profileId = await s.coldChain.connect(s.qa).createProfile.staticCall(VACCINE_PROFILE);
    await (await s.coldChain.connect(s.qa).createProfile(VACCINE_PROFILE)).wait();
    live = await createShipment(s, [LIVE], profileId);
    idle = await createShipment(s, [IDLE], profileId);
    await (await s.coldChain.connect(s.shipper).startShipment(live)).wait();
    const startedAt = Number((await s.coldChain.shipment(live)).startedAt);
    await connection.networkHelpers.time.increase(3600);
    const domain: ColdChainDomain = { chainId: s.chainId, verifyingContract: await s.coldChain.getAddress() };

    // The device's readings 1..3, each naming the one before (the first: none).
    const genuine = [1, 2, 3].map((k) =>
      signReading(
        domain,
        {
          deviceId: LIVE,
          sequence: k,
          observedAt: startedAt + 60 * k,
          tempCentiC: 500,
          flags: 0,
          previousObservedAt: k === 1 ? 0 : startedAt + 60 * (k - 1),
        },
        key,
      ),
    );
    const [one, two, three] = genuine as [SignedItem, SignedItem, SignedItem];
    const relayer = s.coldChain.connect(s.relayer);
    // The relayer relays reading 1, then relays it again: DuplicateSequence, signed by the device.
    await (await relayer.submitReadings(encodeBatch([one]))).wait();
    await (await relayer.submitReadings(encodeBatch([one]))).wait();
    // Reading 3 before 2: SequenceGap, signed by the device; relayed again after 2, it is recorded.
    await (await relayer.submitReadings(encodeBatch([three]))).wait();
    await (await relayer.submitReadings(encodeBatch([two, three]))).wait();

    // A stranger makes up items naming devices and sequences of its choice; nothing in them is signed by a device.
    const now = await connection.networkHelpers.time.latest();
    const made: SignedItem[] = [
      // The live device, a sequence far ahead, 60 °C: BadSignature.
      {
        kind: "reading",
        reading: {
          deviceId: LIVE,
          sequence: 7777,
          observedAt: now,
          tempCentiC: 6000,
          flags: 0,
          previousObservedAt: startedAt + 180,
        },
        signature: garbage(),
      },
      // A window of the live device at the wrong interval: MalformedItem, refused before its signature is read.
      {
        kind: "window",
        window: {
          deviceId: LIVE,
          firstSequence: 8888,
          firstObservedAt: now - 2,
          intervalSeconds: 1,
          samples: [
            { tempCentiC: 6000, flags: 0 },
            { tempCentiC: 6000, flags: 0 },
          ],
          previousObservedAt: startedAt + 180,
        },
        signature: garbage(),
      },
      // A made-up device: UnknownDevice.
      {
        kind: "reading",
        reading: { deviceId: MADE_UP, sequence: 1, observedAt: now, tempCentiC: 6000, flags: 0, previousObservedAt: 0 },
        signature: garbage(),
      },
      // The device of a shipment not yet started: ShipmentNotActive.
      {
        kind: "reading",
        reading: { deviceId: IDLE, sequence: 5, observedAt: now, tempCentiC: 6000, flags: 0, previousObservedAt: 0 },
        signature: garbage(),
      },
    ];
    const tx = await s.coldChain.connect(s.stranger).submitReadings(encodeBatch(made));
    const receipt = await tx.wait();
    if (receipt === null) throw new Error("the stranger's batch was not mined");
    strangerReceipt = receipt;
    history = await shipmentHistory(suite, live);
  });

  it("classifies exactly the reasons emitted after the device's signature verified as authenticated", () => {
    expect([...AUTHENTICATED_SKIP_REASONS].sort()).to.deep.equal(
      [
        "CustodyPending",
        "DuplicateSequence",
        "FutureTimestamp",
        "OutsideShipmentWindow",
        "SequenceGap",
        "StaleSequence",
      ].sort(),
    );
    expect(SKIP_REASONS.filter((r) => isAuthenticatedSkip(r))).to.deep.equal([
      "StaleSequence",
      "DuplicateSequence",
      "FutureTimestamp",
      "OutsideShipmentWindow",
      "CustodyPending",
      "SequenceGap",
    ]);
    // By enum value too (IReadingsInbox.SkipReason: BadSignature 0, DuplicateSequence 6, MalformedItem 9,
    // CustodyPending 10, SequenceGap 11).
    expect([0, 6, 9n, 10, 11n].map((v) => isAuthenticatedSkip(v))).to.deep.equal([false, true, false, true, true]);
  });

  it("lets a stranger make the contract emit the skips (the abuse is real)", () => {
    const skips = strangerReceipt.logs
      .map((log) => s.coldChain.interface.parseLog(log))
      .filter((e) => e?.name === "ReadingSkipped")
      .map((e) => [BigInt(e?.args.deviceId as bigint), Number(e?.args.sequence), SKIP_REASONS[Number(e?.args.reason)]]);
    expect(skips).to.deep.equal([
      [LIVE, 7777, "BadSignature"],
      [LIVE, 8888, "MalformedItem"],
      [MADE_UP, 1, "UnknownDevice"],
      [IDLE, 5, "ShipmentNotActive"],
    ]);
  });

  it("keeps the live shipment's evidence to the skip its device signed", () => {
    expect(brief(history.skipped)).to.deep.equal([
      [LIVE, 1, 1, "DuplicateSequence"],
      [LIVE, 3, 1, "SequenceGap"],
    ]);
    expect(history.readings.map((r) => r.sequence)).to.deep.equal([1, 2, 3]);
  });

  it("lists the stranger's skips of the live device as unauthenticated, apart from the evidence", () => {
    expect(brief(history.unauthenticatedSkips)).to.deep.equal([
      [LIVE, 7777, 1, "BadSignature"],
      [LIVE, 8888, 2, "MalformedItem"],
    ]);
    for (const x of history.unauthenticatedSkips) expect(x.transactionHash).to.equal(strangerReceipt.hash);
    // The made-up device belongs to no shipment: its skip is in neither list.
    const all = [...history.skipped, ...history.unauthenticatedSkips];
    expect(all.filter((x) => x.deviceId === MADE_UP || x.reason === "UnknownDevice")).to.deep.equal([]);
  });

  it("keeps a not-yet-started shipment's evidence empty", async () => {
    const idleHistory = await shipmentHistory(suite, idle);
    expect(idleHistory.skipped).to.deep.equal([]);
    expect(brief(idleHistory.unauthenticatedSkips)).to.deep.equal([[IDLE, 5, 1, "ShipmentNotActive"]]);
  });

  it("show lists only the signed skip and counts the rest as relay noise", async () => {
    const text = formatShipment(await readShipment(suite, live), history);
    expect(text).to.match(/^Skipped readings: 31#1 DuplicateSequence, 31#3 SequenceGap$/m);
    expect(text).to.match(/^Relay noise: 2 unauthenticated skip events for this shipment's devices /m);
    expect(text).not.to.match(/BadSignature|MalformedItem|7777|8888/);
  });
});
