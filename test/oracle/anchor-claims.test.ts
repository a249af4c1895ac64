/**
 * Claims of anchor copies (oracle/relay/anchor-claims.ts): two instances of one share group on Mosquitto (MQTT 5, so
 * each has its anchor session) both store the same reading as an anchor copy, with holds (2 s plus a spread of up to 1 s) that end within a
 * second of each other, and blocks mined every 2 s: relayed at once when their holds end, both transactions would
 * land in one block and the reading would be carried twice (the fault drill's "2 readings carried by two mined
 * transactions"). With claims, the instances agree through the broker which one relays it.
 *
 * Asserted, for several readings in turn: on chain once; carried by one mined transaction; the other instance
 * yielded its copy (metric), sent nothing for it and its pre-flight skipped it (`DuplicateSequence`). And the claim
 * parser takes claims only: fences, junk and oversized claims are ignored.
 */
import { getAddress } from "ethers";

import { expect } from "chai";

import { COLD_CHAIN_ABI } from "../../oracle/chain.js";
import type { Oracle } from "../../oracle/oracle.js";
import { ANCHOR_CLAIM_MAX_ITEMS, parseClaim } from "../../oracle/relay/anchor-claims.js";
import { decodeBatch, encodeMqttPayload, mqttReadingsTopic } from "../../sdk/protocol/index.js";
import type { SignedItem } from "../../sdk/protocol/index.js";
import {
  deployWorld,
  onchainReadingCount,
  reading,
  startChain,
  startLoggedOracle,
  startMosquitto,
  waitFor,
} from "./support.js";
import type { Device, MosquittoHandle, NodeHandle, World } from "./support.js";

const bytes = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

describe("oracle: claims of anchor copies between instances (oracle/relay/anchor-claims.ts)", function () {
  this.timeout(180_000);
  let node: NodeHandle;
  let w: World;
  let broker: MosquittoHandle;
  const instances: { oracle: Oracle; address: string; id: string }[] = [];
  let fromBlock = 0;

  before(async function () {
    broker = await startMosquitto();
    node = await startChain();
    w = await deployWorld(node, 1, 32_000n);
    await node.provider.send("evm_setNextBlockTimestamp", [w.startedAt + 3_600]);
    await node.provider.send("evm_mine", []);
    const group = `claims-${Date.now()}`;
    for (const name of ["a", "b"]) {
      const id = `claims-${name}-${Date.now()}`;
      const started = await startLoggedOracle(w, node, broker.url, {
        oracleId: id,
        mqtt: { shareGroup: group, anchorHoldMs: 2_000, protocolVersion: 5 },
        verify: { maxFutureSkewSeconds: 7_200 },
      });
      instances.push({ ...started, id });
    }
    await waitFor("both anchors caught up", () => instances.every((i) => i.oracle.ingest.anchorCatchingUp === false));
    // Blocks every 2 s: two instances sending within a block of each other land in the same block.
    await node.provider.send("evm_setAutomine", [false]);
    await node.provider.send("evm_setIntervalMining", [2_000]);
    fromBlock = await node.provider.getBlockNumber();
  });
  after(async () => {
    await Promise.all(instances.map((i) => i.oracle.stop()));
    await Promise.all([broker?.stop(), node?.stop()]);
  });

  /** Mined transactions of the two instances since the start: readings carried (by `device:observedAt`) and count. */
  const carried = async (): Promise<{ readings: Map<string, number>; txs: Map<string, number> }> => {
    const txs = new Map(instances.map((i) => [getAddress(i.address), 0]));
    const readings = new Map<string, number>();
    const head = await node.provider.getBlockNumber();
    for (let b = fromBlock + 1; b <= head; b++) {
      const block = await node.provider.getBlock(b, true);
      for (const tx of block?.prefetchedTransactions ?? []) {
        const sender = getAddress(tx.from);
        if (!txs.has(sender)) continue;
        txs.set(sender, (txs.get(sender) ?? 0) + 1);
        const [batch] = COLD_CHAIN_ABI.decodeFunctionData("submitReadings", tx.data) as unknown as [string];
        for (const item of decodeBatch(batch)) {
          if (item.kind !== "readings") continue;
          for (const r of item.readings) {
            const key = `${r.reading.deviceId}:${r.reading.observedAt}`;
            readings.set(key, (readings.get(key) ?? 0) + 1);
          }
        }
      }
    }
    return { readings, txs };
  };

  const metric = async (oracle: Oracle, event: string): Promise<number> =>
    (await oracle.metrics.anchorClaims.get()).values.find((v) => v.labels.event === event)?.value ?? 0;

  it("a copy both anchors stored is relayed by one instance: the other yields it to the claim and sends nothing", async () => {
    const device = w.devices[0] as Device;
    for (let k = 1; k <= 3; k++) {
      const item: SignedItem = reading(w, device, k, w.startedAt + 60 * k, 400 + k);
      const before = await onchainReadingCount(w);
      const yieldedBefore = await Promise.all(instances.map((i) => metric(i.oracle, "yielded")));
      const results = await Promise.all(
        instances.map((i) =>
          i.oracle.intake.handle(mqttReadingsTopic(device.id), encodeMqttPayload(item, "binary"), "anchor"),
        ),
      );
      const ids = results.map((r) => (r.ok ? r.itemId : -1));
      expect(ids, "stored by both instances").to.not.include(-1);
      await waitFor("the reading on chain", async () => (await onchainReadingCount(w)) === before + 1, 30_000, 100);
      await waitFor(
        "both copies judged",
        () => instances.every((inst, n) => inst.oracle.store.item(ids[n] as number)?.state !== "pending"),
        30_000,
      );
      const states = instances.map((inst, n) => inst.oracle.store.item(ids[n] as number));
      const recorded = states.filter((s) => s?.state === "recorded" || s?.state === "batched");
      const skipped = states.filter((s) => s?.state === "skipped");
      expect(recorded, `reading ${k}: one instance relayed it`).to.have.length(1);
      expect(
        skipped.map((s) => s?.skipReason),
        `reading ${k}: the other skipped it`,
      ).to.deep.equal(["DuplicateSequence"]);
      const yielded = await Promise.all(instances.map((i) => metric(i.oracle, "yielded")));
      const newlyYielded = yielded.map((y, n) => y - (yieldedBefore[n] as number));
      expect(
        newlyYielded.reduce((a, b) => a + b, 0),
        `reading ${k}: one instance yielded its copy`,
      ).to.equal(1);
      const { readings } = await carried();
      expect(readings.get(`${device.id}:${w.startedAt + 60 * k}`), `reading ${k} carried once`).to.equal(1);
      expect(await onchainReadingCount(w)).to.equal(before + 1);
    }
    const { readings, txs } = await carried();
    for (const [key, n] of readings) expect(n, `${key} carried once`).to.equal(1);
    console.log(
      `      transactions: ${[...txs.values()].join(" + ")}; claims: ${(
        await Promise.all(
          instances.map(
            async (i) =>
              `${i.id.split("-")[1]} claimed ${await metric(i.oracle, "claimed")}, yielded ${await metric(i.oracle, "yielded")}, kept ${await metric(i.oracle, "kept")}`,
          ),
        )
      ).join("; ")}`,
    );
  });

  it("takes claims only: fences, junk, bad ranges and oversized claims are not claims", () => {
    expect(parseClaim(bytes({ claim: "x", items: [["5", 10, 20]] }))).to.deep.equal({
      claim: "x",
      items: [["5", 10, 20]],
    });
    expect(parseClaim(bytes({ anchor: "c-anchor", nonce: "ab" })), "a fence").to.equal(undefined);
    expect(parseClaim(new TextEncoder().encode("not json"))).to.equal(undefined);
    expect(parseClaim(bytes({ claim: "", items: [] })), "no claimant").to.equal(undefined);
    expect(parseClaim(bytes({ claim: "x", items: [["-5", 10, 20]] })), "not a device id").to.equal(undefined);
    expect(parseClaim(bytes({ claim: "x", items: [["5", 20, 10]] })), "first after last").to.equal(undefined);
    expect(parseClaim(bytes({ claim: "x", items: [["5", 1.5, 2]] })), "not an integer").to.equal(undefined);
    const many = Array.from({ length: ANCHOR_CLAIM_MAX_ITEMS + 1 }, (_, i) => ["5", i, i]);
    expect(parseClaim(bytes({ claim: "x", items: many })), "too many items").to.equal(undefined);
  });
});
