/**
 * The oracle's pre-flight against a real node and broker, protocol v2 (each reading names its device's previous
 * reading, `previousObservedAt`; the chain records a device's readings only as that chain):
 * - a reading that does not continue the device's recorded chain (its predecessor is older than the latest recorded
 *   reading: a device that lost its state) is StaleSequence, lost evidence (metric, store state, error log), never
 *   reported as a duplicate already on-chain, and no transaction is sent for it; a reading the chain holds
 *   (`isRecorded`) is still skipped as a duplicate;
 * - a reading whose predecessor is not recorded yet (SequenceGap, retryable) is held, pending, without gas, and
 *   relayed once the chain reaches its predecessor (another relayer recorded it);
 * - a device's readings that arrive out of order go out in one batch in observation order when they are batched
 *   together: a window whose predecessor is in the same batch is recorded with it;
 * - a reading sent after its predecessor's batch, still in flight, is skipped as SequenceGap when that batch never
 *   makes it (its nonce taken): it goes back to pending, waits, and is recorded after the predecessor is sent again.
 */

import { expect } from "chai";

import type { Oracle } from "../../oracle/oracle.js";
import { encodeBatch } from "../../sdk/protocol/index.js";
import type { SignedItem } from "../../sdk/protocol/index.js";
import {
  INTERVAL_SECONDS,
  Publisher,
  deployWorld,
  publishStored,
  reading,
  startAedes,
  startChain,
  startLoggedOracle,
  storedItem,
  waitFor,
  window,
} from "./support.js";
import type { AedesHandle, Device, NodeHandle, World } from "./support.js";

/** pino's level numbers. */
const DEBUG = 20;
const WARN = 40;
const ERROR = 50;
/** SequenceGap in IReadingsInbox.SkipReason. */
const SEQUENCE_GAP = 11n;

describe("oracle pre-flight, protocol v2: lost readings, duplicates and gaps", function () {
  this.timeout(120_000);
  let node: NodeHandle;
  let broker: AedesHandle;
  let w: World;
  let device: Publisher;

  before(async () => {
    [node, broker] = await Promise.all([startChain(), startAedes()]);
    w = await deployWorld(node, 4, 9000n);
    device = await Publisher.connect(broker.url);
  });
  after(async () => {
    await device?.close();
    await Promise.all([node?.stop(), broker?.stop()]);
  });

  /** Submits items straight to the contract (another relayer, or the oracle's earlier readings). */
  const submitDirectly = async (items: SignedItem[]): Promise<void> => {
    await (await w.coldChain.submitReadings(encodeBatch(items))).wait();
  };

  const startOracle = (batch: { maxReadings: number; maxAgeMs: number }) =>
    startLoggedOracle(w, node, broker.url, { batch }, "debug");

  const publishAll = (oracle: Oracle, items: SignedItem[]): Promise<number[]> => publishStored(oracle, device, items);

  const counter = async (
    oracle: Oracle,
    which: "skippedReadings" | "deferredReadings" | "heldReadings",
    labels: Record<string, string>,
  ): Promise<number> =>
    (await oracle.metrics[which].get()).values.find((v) =>
      Object.entries(labels).every(([k, value]) => v.labels[k as keyof typeof v.labels] === value),
    )?.value ?? 0;

  it("reports a reading that does not continue the device's recorded chain as StaleSequence, sends no transaction, and still drops a duplicate", async () => {
    const k1 = w.devices[0] as Device;
    const t = w.startedAt + 1;
    // On chain: two readings of k1, the second naming the first.
    const first = reading(w, k1, 1, t);
    await submitDirectly([first, reading(w, k1, 2, t + 10)]);
    expect(Number((await w.coldChain.deviceTrack(k1.id)).lastObservedAt)).to.equal(t + 10);

    // One batch of both items: a batch is built only when 2 readings are pending.
    const { oracle, address, logs } = await startOracle({ maxReadings: 2, maxAgeMs: 3_600_000 });
    const sent: unknown[] = [];
    oracle.relay.events.on("batch-sent", (e) => sent.push(e));
    const preflight: { itemIds: number[]; reason: string }[] = [];
    oracle.relay.events.on("preflight-skipped", (e) => preflight.push(e));
    try {
      expect(await counter(oracle, "skippedReadings", { reason: "StaleSequence" }), "the loss series exists").to.equal(
        0,
      );
      const [staleId, duplicateId] = await publishAll(oracle, [
        // Valid, signed by the device: but it lost its state (counts from 0 again, names no predecessor) after the
        // chain recorded t + 10. It can never continue the recorded chain.
        reading(w, k1, 0, t + 20, 500, 0),
        first, // the chain holds it
      ]);
      await waitFor("both items skipped", () => oracle.store.countsByState().skipped === 2);

      expect(storedItem(oracle, staleId)).to.include({ state: "skipped", skipReason: "StaleSequence" });
      expect(storedItem(oracle, duplicateId)).to.include({ state: "skipped", skipReason: "DuplicateSequence" });
      expect(await counter(oracle, "skippedReadings", { reason: "StaleSequence" })).to.equal(1);
      expect(await counter(oracle, "skippedReadings", { reason: "DuplicateSequence" })).to.equal(1);
      expect(preflight).to.deep.include({ itemIds: [staleId], reason: "StaleSequence" });
      expect(preflight).to.deep.include({ itemIds: [duplicateId], reason: "DuplicateSequence" });
      expect(oracle.store.countsByState()).to.deep.equal({
        pending: 0,
        batched: 0,
        recorded: 0,
        skipped: 2,
        unrelayable: 0,
      });

      // No gas spent: the oracle's key sent nothing, no batch was built, no broadcast counted.
      expect(await node.provider.getTransactionCount(address, "latest")).to.equal(0);
      expect(sent).to.have.length(0);
      expect((await oracle.metrics.txAttempts.get()).values.reduce((n, v) => n + v.value, 0)).to.equal(0);
      // The chain's view: the duplicate is recorded, the lost reading is not (t + 20 is after the latest).
      expect(await w.coldChain.isRecorded(k1.id, t)).to.equal(true);
      expect(await w.coldChain.isRecorded(k1.id, t + 20)).to.equal(false);

      const lost = logs.filter((l) => l.level === ERROR && l.reason === "StaleSequence");
      expect(lost).to.have.length(1);
      expect(lost[0]).to.include({ deviceId: k1.id.toString(), firstSequence: 0, lastSequence: 0 });
      expect(lost[0]?.msg)
        .to.include("LOST as evidence")
        .and.include("do not continue the device's recorded chain")
        .and.include(`(${t + 10})`);
      const onChain = logs.filter((l) => l.msg.startsWith("already on-chain"));
      expect(onChain, "one 'already on-chain' line, for the duplicate alone").to.have.length(1);
      expect(onChain[0]).to.include({ items: 1, readings: 1 });
    } finally {
      await oracle.stop();
    }
  });

  it("holds a reading whose predecessor is not recorded (SequenceGap) without gas, and relays it once another relayer recorded the predecessor", async () => {
    const r1 = w.devices[1] as Device; // a P-256 device
    const t = w.startedAt + 1;
    const predecessor = reading(w, r1, 1, t);
    const successor = reading(w, r1, 2, t + INTERVAL_SECONDS); // names t
    expect(successor.kind === "reading" && successor.reading.previousObservedAt).to.equal(t);

    const { oracle, address, logs } = await startOracle({ maxReadings: 8, maxAgeMs: 0 });
    try {
      const [id] = await publishAll(oracle, [successor]);
      await waitFor(
        "the reading held at the pre-flight",
        async () => (await counter(oracle, "deferredReadings", { reason: "SequenceGap", stage: "preflight" })) >= 1,
        15_000,
      );
      // Several ticks later: still held, still pending, no gas spent on it.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(await counter(oracle, "heldReadings", { reason: "SequenceGap" })).to.equal(1);
      expect(storedItem(oracle, id)).to.include({ state: "pending", skipReason: null });
      expect(await node.provider.getTransactionCount(address, "latest")).to.equal(0);
      expect(await counter(oracle, "skippedReadings", { reason: "SequenceGap" }), "not a skip").to.equal(0);
      const waiting = logs.filter((l) => l.reason === "SequenceGap" && l.stage === "preflight");
      expect(waiting.length, "debug lines: routine with a shared subscription").to.be.greaterThan(0);
      expect(waiting.every((l) => l.level === DEBUG)).to.equal(true);
      expect(waiting[0]?.msg)
        .to.include(`device ${r1.id}'s reading observed at`)
        .and.include(`waits for its predecessor (observed at`)
        .and.include(`(${t})`);

      // Another relayer records the predecessor: the chain moves, and the held reading goes out.
      await submitDirectly([predecessor]);
      await waitFor("the held reading recorded", () => storedItem(oracle, id).state === "recorded");
      expect(await w.coldChain.isRecorded(r1.id, t + INTERVAL_SECONDS)).to.equal(true);
      expect(await node.provider.getTransactionCount(address, "latest"), "one transaction").to.equal(1);
      expect(await counter(oracle, "heldReadings", { reason: "SequenceGap" })).to.equal(0);
      const gapSkips = (await w.coldChain.queryFilter(w.coldChain.filters.ReadingSkipped(r1.id))).filter(
        (e) => e.args.reason === SEQUENCE_GAP,
      );
      expect(gapSkips, "no batch carried it to the chain too early").to.have.length(0);
    } finally {
      await oracle.stop();
    }
  });

  it("sends a device's readings in observation order: a window and its predecessor that arrived after it go in one batch", async () => {
    const k3 = w.devices[2] as Device;
    const t = w.startedAt + 1;
    const head = reading(w, k3, 1, t); // names none (the device's first)
    const tail = window(w, k3, 2, t + INTERVAL_SECONDS, [510, 520, 530]); // names t
    // Built once 4 readings are pending: both items, whatever their order of arrival.
    const { oracle, address } = await startOracle({ maxReadings: 4, maxAgeMs: 3_600_000 });
    try {
      const [tailId, headId] = await publishAll(oracle, [tail, head]);
      await waitFor(
        "both recorded",
        () => storedItem(oracle, tailId).state === "recorded" && storedItem(oracle, headId).state === "recorded",
      );
      expect(storedItem(oracle, tailId).batchId).to.equal(storedItem(oracle, headId).batchId);
      expect(await node.provider.getTransactionCount(address, "latest")).to.equal(1);
      expect(Number((await w.coldChain.deviceTrack(k3.id)).lastObservedAt)).to.equal(t + 3 * INTERVAL_SECONDS);
      expect((await w.coldChain.queryFilter(w.coldChain.filters.ReadingSkipped(k3.id))).length).to.equal(0);
    } finally {
      await oracle.stop();
    }
  });

  it("puts a reading the chain skipped as SequenceGap (its predecessor's batch in flight never mined) back to pending, and records it after the predecessor", async () => {
    const k4 = w.devices[3] as Device;
    const t = w.startedAt + 1;
    const { oracle, address, logs } = await startOracle({ maxReadings: 1, maxAgeMs: 0 });
    const released: { batchId: number; state: string }[] = [];
    oracle.relay.events.on("batch-released", (e) => released.push(e));
    await node.provider.send("evm_setAutomine", [false]);
    let successorId: number | undefined;
    let predecessorId: number | undefined;
    try {
      // The predecessor's batch (nonce 0) goes to the mempool; the successor's (nonce 1) is sent counting on it.
      let sent = new Promise<void>((resolve) => oracle.relay.events.once("attempt-sent", () => resolve()));
      [predecessorId] = await publishAll(oracle, [reading(w, k4, 1, t)]);
      await sent;
      sent = new Promise<void>((resolve) => oracle.relay.events.once("attempt-sent", () => resolve()));
      [successorId] = await publishAll(oracle, [reading(w, k4, 2, t + INTERVAL_SECONDS)]);
      await sent;
      expect(await node.provider.send("eth_getTransactionCount", [address, "pending"])).to.equal("0x2");
      // Something else takes nonce 0 (another process with the key, a replacement): the predecessor's batch is
      // never mined, the successor's is, without it.
      await node.provider.send("hardhat_impersonateAccount", [address]);
      await node.provider.send("eth_sendTransaction", [
        {
          from: address,
          to: address,
          value: "0x0",
          nonce: "0x0",
          maxFeePerGas: "0x174876e800",
          maxPriorityFeePerGas: "0x174876e800",
        },
      ]);
      await node.provider.send("hardhat_stopImpersonatingAccount", [address]);
      await node.provider.send("evm_mine", []);
    } finally {
      await node.provider.send("evm_setAutomine", [true]);
    }
    try {
      await waitFor(
        "the successor back to pending at the receipt",
        async () => (await counter(oracle, "deferredReadings", { reason: "SequenceGap", stage: "receipt" })) === 1,
        15_000,
      );
      const gapSkips = (await w.coldChain.queryFilter(w.coldChain.filters.ReadingSkipped(k4.id))).filter(
        (e) => e.args.reason === SEQUENCE_GAP,
      );
      expect(gapSkips, "the chain skipped it").to.have.length(1);
      await waitFor("both recorded", () =>
        [predecessorId, successorId].every((id) => storedItem(oracle, id).state === "recorded"),
      );
      expect(
        released.map((r) => r.state),
        "the predecessor's batch released: its nonce was taken",
      ).to.include("dropped");
      expect(await w.coldChain.isRecorded(k4.id, t + INTERVAL_SECONDS)).to.equal(true);
      expect(await counter(oracle, "skippedReadings", { reason: "SequenceGap" }), "not a skip").to.equal(0);
      expect(oracle.store.countsByState()).to.include({ pending: 0, batched: 0, recorded: 2, skipped: 0 });
      const warned = logs.filter((l) => l.reason === "SequenceGap" && l.stage === "receipt");
      expect(warned).to.have.length(1);
      expect(warned[0]?.level).to.equal(WARN);
    } finally {
      await oracle.stop();
    }
  });
});
