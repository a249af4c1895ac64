/**
 * Readings older than the contract's replay window (more than 255 sequences behind the device's highest
 * on-chain sequence) against a real node and broker: the oracle reports them as StaleSequence, lost evidence
 * (metric, store state, error log), never as duplicates already on-chain, and sends no transaction for them;
 * a reading the chain holds is still skipped as a duplicate, and a window only partly older than the replay
 * window is submitted for the contract to judge.
 */

import { expect } from "chai";

import type { Oracle } from "../../oracle/oracle.js";
import { encodeBatch } from "../../sdk/protocol/index.js";
import type { SignedItem } from "../../sdk/protocol/index.js";
import {
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

/** pino's level number of `error`. */
const ERROR = 50;

describe("oracle pre-flight: stale sequences are lost evidence, not duplicates", function () {
  this.timeout(120_000);
  let node: NodeHandle;
  let broker: AedesHandle;
  let w: World;
  let device: Publisher;

  before(async () => {
    [node, broker] = await Promise.all([startChain(), startAedes()]);
    w = await deployWorld(node, 2, 9000n);
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
    startLoggedOracle(w, node, broker.url, { batch });

  const publishAll = (oracle: Oracle, items: SignedItem[]): Promise<number[]> => publishStored(oracle, device, items);

  const skippedCount = async (oracle: Oracle, reason: string): Promise<number> =>
    (await oracle.metrics.skippedReadings.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;

  it("reports a reading 300 behind the device's highest as StaleSequence, sends no transaction, and still drops a duplicate", async () => {
    const k1 = w.devices[0] as Device;
    const t = w.startedAt + 1;
    const H = 400;
    // On chain: sequences H - 10 and H; the device's highest is H.
    await submitDirectly([reading(w, k1, H - 10, t), reading(w, k1, H, t)]);
    expect((await w.coldChain.deviceTrack(k1.id)).highestSequence).to.equal(BigInt(H));

    // One batch of both items: a batch is built only when 2 readings are pending.
    const { oracle, address, logs } = await startOracle({ maxReadings: 2, maxAgeMs: 3_600_000 });
    const sent: unknown[] = [];
    oracle.relay.events.on("batch-sent", (e) => sent.push(e));
    const preflight: { itemIds: number[]; reason: string }[] = [];
    oracle.relay.events.on("preflight-skipped", (e) => preflight.push(e));
    try {
      expect(await skippedCount(oracle, "StaleSequence"), "the loss series exists from the start").to.equal(0);
      const [staleId, duplicateId] = await publishAll(oracle, [
        reading(w, k1, H - 300, t), // valid, signed by the device: but older than the replay window
        reading(w, k1, H - 10, t), // the chain holds it
      ]);
      await waitFor("both items skipped", () => oracle.store.countsByState().skipped === 2);

      expect(storedItem(oracle, staleId)).to.include({ state: "skipped", skipReason: "StaleSequence" });
      expect(storedItem(oracle, duplicateId)).to.include({ state: "skipped", skipReason: "DuplicateSequence" });
      expect(await skippedCount(oracle, "StaleSequence")).to.equal(1);
      expect(await skippedCount(oracle, "DuplicateSequence")).to.equal(1);
      expect(preflight).to.deep.include({ itemIds: [staleId], reason: "StaleSequence" });
      expect(preflight).to.deep.include({ itemIds: [duplicateId], reason: "DuplicateSequence" });
      expect(oracle.store.countsByState()).to.deep.equal({ pending: 0, batched: 0, recorded: 0, skipped: 2 });

      // No gas spent: the oracle's key sent nothing, no batch was built, no broadcast counted.
      expect(await node.provider.getTransactionCount(address, "latest")).to.equal(0);
      expect(sent).to.have.length(0);
      expect((await oracle.metrics.txAttempts.get()).values.reduce((n, v) => n + v.value, 0)).to.equal(0);
      expect(await w.coldChain.isSequenceUsed(k1.id, H - 300)).to.equal(true); // why isSequenceUsed alone misleads

      const lost = logs.filter((l) => l.level === ERROR && l.reason === "StaleSequence");
      expect(lost).to.have.length(1);
      expect(lost[0]).to.include({ deviceId: k1.id.toString(), firstSequence: H - 300, lastSequence: H - 300 });
      expect(lost[0]?.msg).to.include("LOST as evidence").and.include("more than 255 sequences behind");
      const onChain = logs.filter((l) => l.msg.startsWith("already on-chain"));
      expect(onChain, "one 'already on-chain' line, for the duplicate alone").to.have.length(1);
      expect(onChain[0]).to.include({ items: 1, readings: 1 });
    } finally {
      await oracle.stop();
    }
  });

  it("judges windows by their whole range: all older than the window is StaleSequence before submission, partly older goes to the contract", async () => {
    const r1 = w.devices[1] as Device; // a P-256 device
    const t = w.startedAt + 1;
    const H = 1000;
    await submitDirectly([reading(w, r1, H, t)]);

    const { oracle, address, logs } = await startOracle({ maxReadings: 8, maxAgeMs: 0 });
    try {
      // [H - 300, H - 297]: every sequence older than the window. [H - 258, H - 255]: the first two are, the last
      // two are within it (the contract refuses the window whole as StaleSequence: it is accepted whole or not
      // at all).
      const [staleId, partlyId] = await publishAll(oracle, [
        window(w, r1, H - 300, t, [500, 510, 520, 530]),
        window(w, r1, H - 258, t, [500, 510, 520, 530]),
      ]);
      await waitFor("both windows skipped", () => oracle.store.countsByState().skipped === 8);

      expect(storedItem(oracle, staleId)).to.include({ state: "skipped", skipReason: "StaleSequence", batchId: null });
      const partly = storedItem(oracle, partlyId);
      expect(partly).to.include({ state: "skipped", skipReason: "StaleSequence" });
      expect(partly.batchId, "submitted: the contract judged it").to.not.equal(null);
      expect(await skippedCount(oracle, "StaleSequence")).to.equal(8);
      expect(await skippedCount(oracle, "DuplicateSequence")).to.equal(0);
      expect(await node.provider.getTransactionCount(address, "latest")).to.equal(1); // the partly stale window's

      const lost = logs.filter((l) => l.level === ERROR && l.reason === "StaleSequence");
      expect(lost.map((l) => [l.firstSequence, l.lastSequence])).to.have.deep.members([
        [H - 300, H - 297],
        [H - 258, H - 255],
      ]);
    } finally {
      await oracle.stop();
    }
  });
});
