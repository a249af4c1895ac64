/**
 * Readings that wait for a custody handover, against a real node and broker. While a custody offer is pending,
 * the contract skips every reading observed at or after the offer's agreed boundary (`custodyOffer.handoverAt`)
 * as `CustodyPending`, a retryable reason: the same signed item is accepted once the offer is accepted. The oracle
 * must hold such readings back without spending gas on them and without dropping them (they stay pending in its
 * store, no skip is counted), and relay them once the new custodian accepted: they are then charged to the new
 * custodian's period. When the chain skips them anyway (the offer was mined ahead of the oracle's batch), they go
 * back to pending and are relayed later.
 */

import { expect } from "chai";
import { Wallet, parseUnits } from "ethers";

import type { Oracle } from "../../oracle/oracle.js";
import type { StoredItem } from "../../oracle/store/store.js";
import type { SignedItem } from "../../sdk/protocol/index.js";
import { VACCINE_PROFILE, createShipment, registerDevice } from "../support/deploy.js";
import {
  deployWorld,
  INTERVAL_SECONDS,
  Publisher,
  publishStored,
  reading,
  startAedes,
  startChain,
  startLoggedOracle,
  storedItem as storedItemOf,
  waitFor,
} from "./support.js";
import type { AedesHandle, Device, NodeHandle, OracleLogLine, World } from "./support.js";

/** CustodyPending in IReadingsInbox.SkipReason. */
const CUSTODY_PENDING = 10n;
/** AbsoluteLimit in IReadingsInbox.BreachReason. */
const ABSOLUTE_LIMIT = 1n;

describe("oracle: readings waiting for a custody handover (CustodyPending) are held, never dropped", function () {
  this.timeout(180_000);
  let node: NodeHandle;
  let broker: AedesHandle;
  let w: World;
  let device: Publisher;
  let oracle: Oracle;
  let oracleAddress: string;
  let logs: OracleLogLine[];
  let k1: Device;
  let shipmentId: bigint;
  let startedAt: number;
  /** The first handover's boundary (shipper → carrier). */
  let boundary: number;

  before(async () => {
    [node, broker] = await Promise.all([startChain(), startAedes()]);
    w = await deployWorld(node, 0, 7000n);
    // Without the adaptation period, so a reading right after the handover is evaluated at once.
    const profile = { ...VACCINE_PROFILE, adaptationSeconds: 0 };
    const profileId = await w.coldChain.connect(w.qa).createProfile.staticCall(profile);
    await (await w.coldChain.connect(w.qa).createProfile(profile)).wait();
    k1 = { id: 7001n, key: { keyType: "secp256k1", privateKey: Wallet.createRandom().privateKey } };
    await registerDevice(w, k1.id, k1.key, INTERVAL_SECONDS);
    shipmentId = await createShipment(w, [k1.id], profileId);
    await (await w.coldChain.connect(w.shipper).startShipment(shipmentId)).wait();
    startedAt = Number((await w.coldChain.shipment(shipmentId)).startedAt);

    device = await Publisher.connect(broker.url);
    ({
      oracle,
      address: oracleAddress,
      logs,
    } = await startLoggedOracle(w, node, broker.url, { batch: { maxAgeMs: 0 } }, "debug"));
  });
  after(async () => {
    await oracle?.stop();
    await device?.close();
    await Promise.all([node?.stop(), broker?.stop()]);
  });

  const publishAll = (items: SignedItem[]): Promise<number[]> => publishStored(oracle, device, items);
  const storedItem = (id: number | undefined): StoredItem => storedItemOf(oracle, id);

  const metric = async (
    which: "skippedReadings" | "deferredReadings" | "heldReadings",
    labels: Record<string, string>,
  ): Promise<number> =>
    (await oracle.metrics[which].get()).values.find((v) =>
      Object.entries(labels).every(([k, value]) => v.labels[k as keyof typeof v.labels] === value),
    )?.value ?? 0;

  const nonce = (): Promise<number> => node.provider.getTransactionCount(oracleAddress, "latest");

  /** ReadingSkipped events of the device with reason CustodyPending (each one a transaction's gas spent on it). */
  const custodyPendingSkips = async (): Promise<number> =>
    (await w.coldChain.queryFilter(w.coldChain.filters.ReadingSkipped(k1.id))).filter(
      (e) => e.args.reason === CUSTODY_PENDING,
    ).length;

  it("holds readings observed after a pending offer's boundary without spending gas, then relays them to the new custodian's period", async () => {
    // The shipper's leg: one reading, relayed at once.
    const [firstId] = await publishAll([reading(w, k1, 1, startedAt)]);
    await waitFor("the first reading recorded", () => storedItem(firstId).state === "recorded");

    // The shipper offers custody to the carrier: the boundary is fixed now.
    const deadline = (await node.provider.getBlock("latest"))?.timestamp ?? 0;
    await (await w.coldChain.connect(w.shipper).offerCustody(shipmentId, w.carrier.address, deadline + 3600)).wait();
    boundary = Number((await w.coldChain.custodyOffer(shipmentId)).handoverAt);
    expect(boundary).to.be.greaterThan(startedAt + 1);
    const sentBefore = await nonce();

    // One reading before the boundary (the shipper's), one at it, 30 °C (an AbsoluteLimit breach), one after it.
    const [beforeId, hotId, afterId] = await publishAll([
      reading(w, k1, 2, boundary - 1),
      reading(w, k1, 3, boundary, 3000),
      reading(w, k1, 4, boundary + INTERVAL_SECONDS),
    ]);
    await waitFor("the reading before the boundary recorded", () => storedItem(beforeId).state === "recorded");
    await waitFor(
      "both waiting readings held at the pre-flight",
      async () => (await metric("deferredReadings", { reason: "CustodyPending", stage: "preflight" })) >= 2,
      15_000,
    );
    // Several ticks and back-off rounds later: still held, still pending, no gas spent on them.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await waitFor("the held gauge", async () => (await metric("heldReadings", { reason: "CustodyPending" })) === 2);
    for (const id of [hotId, afterId]) expect(storedItem(id)).to.include({ state: "pending", skipReason: null });
    expect(oracle.store.countsByState()).to.deep.equal({
      pending: 2,
      batched: 0,
      recorded: 2,
      skipped: 0,
      unrelayable: 0,
    });
    expect(await nonce(), "one transaction: the reading before the boundary").to.equal(sentBefore + 1);
    expect(await custodyPendingSkips(), "no batch carried them to the chain").to.equal(0);
    expect(await metric("skippedReadings", { reason: "CustodyPending" }), "not a skip").to.equal(0);
    const waiting = logs.filter((l) => l.reason === "CustodyPending" && l.stage === "preflight");
    expect(waiting.length).to.be.greaterThan(0);
    expect(waiting[0]?.msg).to.include(`waiting for the custody handover of shipment ${shipmentId} to be accepted`);
    expect(waiting[0]?.shipmentId).to.equal(shipmentId.toString());

    // The carrier accepts: its period begins at the boundary, and the held readings are relayed.
    await (await w.coldChain.connect(w.carrier).acceptCustody(shipmentId)).wait();
    await waitFor("the held readings recorded", () =>
      [hotId, afterId].every((id) => storedItem(id).state === "recorded"),
    );
    expect(oracle.store.countsByState()).to.deep.equal({
      pending: 0,
      batched: 0,
      recorded: 4,
      skipped: 0,
      unrelayable: 0,
    });
    // One or two batches carry the two held readings (they may become due on different ticks), none wasted: no
    // batch was skipped as CustodyPending (below).
    expect(await nonce(), "a transaction per batch of held readings").to.be.within(sentBefore + 2, sentBefore + 3);
    expect(await custodyPendingSkips()).to.equal(0);
    expect(await metric("skippedReadings", { reason: "CustodyPending" })).to.equal(0);
    expect(await metric("heldReadings", { reason: "CustodyPending" })).to.equal(0);

    const custody = await w.coldChain.custodyHistory(shipmentId);
    expect(custody.map((p) => p.custodian)).to.deep.equal([w.shipper.address, w.carrier.address]);
    expect(Number(custody[1]?.since), "the carrier's period begins at the agreed boundary").to.equal(boundary);
    expect(Number((await w.coldChain.condition(shipmentId)).readingCount)).to.equal(4);
    // The 30 °C reading at the boundary is the carrier's: breach and excursion charged to period 1.
    const breaches = await w.coldChain.queryFilter(w.coldChain.filters.BreachRecorded(shipmentId));
    expect(breaches.map((e) => [e.args.reason, e.args.custodian, e.args.periodIndex, e.args.sequence])).to.deep.equal([
      [ABSOLUTE_LIMIT, w.carrier.address, 1n, 3n],
    ]);
    expect(custody[1]?.excursionSeconds).to.be.greaterThan(0n);
    expect(custody[0]?.excursionSeconds).to.equal(0n);
    expect(custody[0]?.breachFlags).to.equal(0n);
  });

  it("puts readings the chain skipped as CustodyPending (offer mined ahead of the batch) back to pending, and relays them after acceptance", async () => {
    const latest = (await node.provider.getBlock("latest"))?.timestamp ?? 0;
    // After the latest reading on chain too (the next boundary is at least one second after it).
    const lastOnChain = Number((await w.coldChain.condition(shipmentId)).lastObservedAt);
    const observedAt = Math.max(latest, lastOnChain) + 20;
    await node.provider.send("evm_setAutomine", [false]);
    let offerBoundary: number;
    let itemId: number | undefined;
    try {
      // The oracle's dry run sees no pending offer: its batch goes to the mempool.
      const sent = new Promise<void>((resolve) => oracle.relay.events.once("attempt-sent", () => resolve()));
      [itemId] = await publishAll([reading(w, k1, 5, observedAt)]);
      await sent;
      // The carrier offers custody to the hub, with a higher tip: mined ahead of the oracle's batch.
      const offerDeadline = latest + 3600;
      await w.coldChain.connect(w.carrier).offerCustody(shipmentId, w.hub.address, offerDeadline, {
        maxPriorityFeePerGas: parseUnits("50", "gwei"),
        maxFeePerGas: parseUnits("100", "gwei"),
      });
      await node.provider.send("evm_mine", []);
      offerBoundary = Number((await w.coldChain.custodyOffer(shipmentId)).handoverAt);
      expect(offerBoundary).to.be.at.most(observedAt);
    } finally {
      await node.provider.send("evm_setAutomine", [true]);
    }
    expect(await custodyPendingSkips(), "the race happened: the chain skipped it").to.equal(1);

    await waitFor(
      "the skipped reading back to pending",
      async () => (await metric("deferredReadings", { reason: "CustodyPending", stage: "receipt" })) === 1,
      15_000,
    );
    expect(storedItem(itemId)).to.include({ state: "pending", batchId: null, skipReason: null });
    expect(await metric("skippedReadings", { reason: "CustodyPending" }), "not a skip").to.equal(0);
    const warned = logs.filter((l) => l.reason === "CustodyPending" && l.stage === "receipt");
    expect(warned).to.have.length(1);
    expect(warned[0]?.level).to.equal(40); // pino's warn
    expect(warned[0]?.msg).to.include(`waiting for the custody handover of shipment ${shipmentId} to be accepted`);
    // Retried while the offer is pending: held at the pre-flight, no second transaction.
    const sentBefore = await nonce();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(storedItem(itemId).state).to.equal("pending");
    expect(await nonce()).to.equal(sentBefore);

    await (await w.coldChain.connect(w.hub).acceptCustody(shipmentId)).wait();
    await waitFor("the reading recorded", () => storedItem(itemId).state === "recorded");
    expect(await custodyPendingSkips()).to.equal(1);
    expect(await w.coldChain.isRecorded(k1.id, observedAt)).to.equal(true);
    const custody = await w.coldChain.custodyHistory(shipmentId);
    expect(custody.map((p) => [p.custodian, Number(p.since)]).at(-1)).to.deep.equal([w.hub.address, offerBoundary]);
    expect(Number((await w.coldChain.deviceTrack(k1.id)).lastObservedAt)).to.equal(observedAt);
    expect(oracle.store.countsByState()).to.deep.equal({
      pending: 0,
      batched: 0,
      recorded: 5,
      skipped: 0,
      unrelayable: 0,
    });
  });
});
