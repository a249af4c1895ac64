/**
 * A custody handover in the middle of an excursion, on a real chain (in-process EDR). The shipper's leg ends with
 * a device out of range; the shipper offers custody to the carrier (the boundary is fixed by the offer) and a
 * reading observed after the boundary is relayed while the offer is pending: skipped as `CustodyPending`, signed
 * by the device and retryable. The carrier accepts, the same reading is relayed again and recorded, and the run
 * goes on until it crosses the single-excursion limit in the carrier's period: the breach is the carrier's, and
 * `BreachRunShared` names each custodian's share of the run. `shipmentHistory` must return the shares and the
 * retryable skip as evidence, and `show` print the shares under the breach.
 */
import { expect } from "chai";
import { Wallet } from "ethers";
import { network } from "hardhat";

import { formatShipment } from "../../cli/commands/show.js";
import {
  RETRYABLE_SKIP_REASONS,
  SKIP_REASONS,
  connectSuite,
  encodeBatch,
  isAuthenticatedSkip,
  isRetryableSkip,
  readShipment,
  runSharesOf,
  shipmentHistory,
  signReading,
} from "../../sdk/index.js";
import type { ColdChainDomain, ColdChainSuite, DevicePrivateKey, ShipmentHistory } from "../../sdk/index.js";
import { VACCINE_PROFILE, createShipment, deploySuite, registerDevice } from "../support/deploy.js";
import type { Suite } from "../support/deploy.js";
import { deploymentOf } from "./scenario.js";

const INTERVAL = 300;
const DEVICE = 41n;

describe("SDK: a custody handover in the middle of an excursion", function () {
  this.timeout(120_000);
  let s: Suite;
  let suite: ColdChainSuite;
  let shipmentId: bigint;
  let startedAt: number;
  let boundary: number;
  let history: ShipmentHistory;

  before(async () => {
    const connection = await network.create();
    const { time } = connection.networkHelpers;
    s = await deploySuite(connection);
    suite = connectSuite(await deploymentOf(s), connection.ethers.provider);
    const key: DevicePrivateKey = { keyType: "secp256k1", privateKey: Wallet.createRandom().privateKey };
    await registerDevice(s, DEVICE, key, INTERVAL);
    // No adaptation period: every reading is evaluated. Single excursion limit: 1 h.
    const profile = { ...VACCINE_PROFILE, adaptationSeconds: 0 };
    const profileId = await s.coldChain.connect(s.qa).createProfile.staticCall(profile);
    await (await s.coldChain.connect(s.qa).createProfile(profile)).wait();
    shipmentId = await createShipment(s, [DEVICE], profileId);
    await (await s.coldChain.connect(s.shipper).startShipment(shipmentId)).wait();
    startedAt = Number((await s.coldChain.shipment(shipmentId)).startedAt);
    const domain: ColdChainDomain = { chainId: s.chainId, verifyingContract: await s.coldChain.getAddress() };
    const at = (k: number): number => startedAt + k * INTERVAL;
    // Reading k: 5 °C at k = 1, then 12 °C (out of the 2..8 °C range) from k = 2 on.
    const signed = (k: number) =>
      signReading(
        domain,
        {
          deviceId: DEVICE,
          sequence: k,
          observedAt: at(k),
          tempCentiC: k === 1 ? 500 : 1200,
          flags: 0,
          previousObservedAt: k === 1 ? 0 : at(k - 1),
        },
        key,
      );
    const relay = async (ks: number[]): Promise<void> => {
      await (await s.coldChain.connect(s.relayer).submitReadings(encodeBatch(ks.map(signed)))).wait();
    };

    // The shipper's leg: the run begins at k = 2 (at(2)), 15 minutes long at k = 5.
    await time.increaseTo(at(5) + 100);
    await relay([1, 2, 3, 4, 5]);
    const latest = await time.latest();
    await (await s.coldChain.connect(s.shipper).offerCustody(shipmentId, s.carrier.address, latest + 3600)).wait();
    boundary = Number((await s.coldChain.custodyOffer(shipmentId)).handoverAt);
    // k = 6 is observed after the boundary: it waits (CustodyPending) while the offer is pending.
    expect(at(6)).to.be.at.least(boundary);
    await relay([6]);
    await (await s.coldChain.connect(s.carrier).acceptCustody(shipmentId)).wait();
    // Relayed again after the acceptance: recorded, in the carrier's period. The run goes on past 1 h.
    await relay([6]);
    await time.increaseTo(at(20) + 5);
    await relay(Array.from({ length: 14 }, (_, i) => i + 7));
    history = await shipmentHistory(suite, shipmentId);
  });

  it("names CustodyPending after MalformedItem and SequenceGap after it, both authenticated and retryable (as FutureTimestamp)", () => {
    expect(SKIP_REASONS.indexOf("CustodyPending")).to.equal(10);
    expect(SKIP_REASONS.indexOf("SequenceGap")).to.equal(11);
    expect(SKIP_REASONS[9]).to.equal("MalformedItem");
    expect(isAuthenticatedSkip("CustodyPending")).to.equal(true);
    expect(isAuthenticatedSkip(10n)).to.equal(true);
    expect(isAuthenticatedSkip(11n)).to.equal(true);
    expect([...RETRYABLE_SKIP_REASONS]).to.deep.equal(["FutureTimestamp", "CustodyPending", "SequenceGap"]);
    expect(SKIP_REASONS.filter((r) => isRetryableSkip(r))).to.deep.equal([
      "FutureTimestamp",
      "CustodyPending",
      "SequenceGap",
    ]);
    expect(isRetryableSkip(11n)).to.equal(true);
    expect(["StaleSequence", "DuplicateSequence"].map((r) => isRetryableSkip(r))).to.deep.equal([false, false]);
  });

  it("keeps the reading that waited as signed evidence, and records it once relayed again", () => {
    expect(history.skipped.map((x) => [x.deviceId, x.sequence, x.count, x.reason])).to.deep.equal([
      [DEVICE, 6, 1, "CustodyPending"],
    ]);
    expect(history.unauthenticatedSkips).to.deep.equal([]);
    expect(history.readings.map((r) => r.sequence)).to.deep.equal(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(history.custody.map((c) => [c.periodIndex, c.to])).to.deep.equal([
      [0, s.shipper.address],
      [1, s.carrier.address],
    ]);
    expect(history.custody[1]?.since, "the carrier's period begins at the offer's boundary").to.equal(boundary);
  });

  it("returns each custodian's share of a run that crossed its limit after the handover", () => {
    const breach = history.breaches.find((b) => b.reason === "SingleExcursion");
    if (breach === undefined) throw new Error("no SingleExcursion breach");
    expect(breach).to.include({ custodian: s.carrier.address, periodIndex: 1 });
    const runStart = startedAt + 2 * INTERVAL;
    const runEnd = breach.observedAt + INTERVAL;
    const shares = runSharesOf(history, breach);
    expect(shares.map((x) => [x.reason, x.custodian, x.periodIndex, x.deviceId, x.runSeconds])).to.deep.equal([
      ["SingleExcursion", s.carrier.address, 1, DEVICE, runEnd - boundary],
      ["SingleExcursion", s.shipper.address, 0, DEVICE, boundary - runStart],
    ]);
    expect(history.runShares).to.deep.equal(shares);
    for (const x of shares) {
      expect(x.transactionHash).to.equal(breach.transactionHash);
      expect(x.blockTime).to.be.greaterThan(0);
    }
    // Any other breach (none here but the run's) has no shares.
    for (const b of history.breaches.filter((x) => x !== breach)) expect(runSharesOf(history, b)).to.deep.equal([]);
  });

  it("show prints the shares under the breach", async () => {
    const text = formatShipment(await readShipment(suite, shipmentId), history);
    const lines = text.split("\n");
    const at = lines.findIndex((l) => l.startsWith("SingleExcursion "));
    expect(at).to.be.greaterThan(0);
    const breach = history.breaches.find((b) => b.reason === "SingleExcursion");
    const runEnd = (breach?.observedAt ?? 0) + INTERVAL;
    const min = (seconds: number): string => {
      const m = seconds / 60;
      return `${Number.isInteger(m) ? m : m.toFixed(1)} min`;
    };
    expect(lines[at + 1]).to.equal(
      `  run shared: ${s.carrier.address} ${min(runEnd - boundary)} (period 1), ` +
        `${s.shipper.address} ${min(boundary - (startedAt + 2 * INTERVAL))} (period 0)`,
    );
    expect(text).to.match(/^Skipped readings: 41#6 CustodyPending$/m);
    // --json prints the same history: the shares are plain data (bigints as decimal strings).
    const json = JSON.parse(
      JSON.stringify(history, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)),
    ) as {
      runShares: { custodian: string; runSeconds: number; deviceId: string }[];
    };
    expect(json.runShares.map((x) => [x.custodian, x.deviceId, x.runSeconds])).to.deep.equal(
      history.runShares.map((x) => [x.custodian, String(x.deviceId), x.runSeconds]),
    );
  });
});
