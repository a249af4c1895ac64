/**
 * Anchor copies held (`mqtt.anchorHoldMs`, oracle/intake/anchor.ts): two instances of one share group whose anchors
 * both stored the same reading relay it once, in one mined transaction, and the other skips it before sending.
 * Deterministic: the messages are handed to each instance's intake as its anchor (or a share member) would, and the
 * two holds are set apart (1 s and 5 s, each plus its spread of at most half; the first then waits its claim window
 * of 2 s, oracle/relay/anchor-claims.ts, whose claims need an MQTT 5 anchor: see anchor-claims.test.ts). The broker restarts that produce such
 * copies are drilled in broker-restart.test.ts (b) and the fault drills.
 *
 * Asserted: nothing relayed within the hold; the reading on chain once; carried by one mined transaction of the two
 * instances; the later instance's copy skipped (`DuplicateSequence`) without a transaction; a share member's copy
 * ends the hold at once (relayed before the hold would end).
 */
import { getAddress } from "ethers";

import { expect } from "chai";

import { COLD_CHAIN_ABI } from "../../oracle/chain.js";
import type { Oracle } from "../../oracle/oracle.js";
import { decodeBatch, encodeMqttPayload, mqttReadingsTopic } from "../../sdk/protocol/index.js";
import type { SignedItem } from "../../sdk/protocol/index.js";
import {
  deployWorld,
  onchainReadingCount,
  reading,
  startAedes,
  startChain,
  startLoggedOracle,
  waitFor,
} from "./support.js";
import type { AedesHandle, Device, NodeHandle, World } from "./support.js";

describe("oracle: anchor copies held with several instances (mqtt.anchorHoldMs)", function () {
  this.timeout(120_000);
  let node: NodeHandle;
  let w: World;
  let aedes: AedesHandle;
  let first: { oracle: Oracle; address: string };
  let second: { oracle: Oracle; address: string };
  let fromBlock = 0;
  const items: SignedItem[] = [];

  before(async () => {
    node = await startChain();
    w = await deployWorld(node, 1, 31_000n);
    const device = w.devices[0] as Device;
    for (let k = 1; k <= 2; k++) items.push(reading(w, device, k, w.startedAt + 60 * k, 480 + k));
    await node.provider.send("evm_setNextBlockTimestamp", [w.startedAt + 600]);
    await node.provider.send("evm_mine", []);
    aedes = await startAedes();
    const group = `hold-${Date.now()}`;
    const start = (name: string, holdMs: number) =>
      startLoggedOracle(w, node, aedes.url, {
        oracleId: `hold-${name}-${Date.now()}`,
        mqtt: { shareGroup: group, anchorHoldMs: holdMs },
        verify: { maxFutureSkewSeconds: 3_600 },
      });
    first = await start("first", 1_000);
    second = await start("second", 5_000);
    fromBlock = await node.provider.getBlockNumber();
  });
  after(async () => {
    await Promise.all([first?.oracle.stop(), second?.oracle.stop()]);
    await Promise.all([aedes?.stop(), node?.stop()]);
  });

  const deliver = (oracle: Oracle, item: SignedItem, origin?: "anchor") =>
    oracle.intake.handle(
      mqttReadingsTopic(item.kind === "reading" ? item.reading.deviceId : item.window.deviceId),
      encodeMqttPayload(item, "binary"),
      origin,
    );

  /** Readings of the two instances' mined transactions since the start, by `device:observedAt`, and the count. */
  const carried = async (): Promise<{ carried: Map<string, number>; txs: Map<string, number> }> => {
    const from = new Map([first.address, second.address].map((a) => [getAddress(a), 0]));
    const out = new Map<string, number>();
    const head = await node.provider.getBlockNumber();
    for (let b = fromBlock + 1; b <= head; b++) {
      const block = await node.provider.getBlock(b, true);
      for (const tx of block?.prefetchedTransactions ?? []) {
        const sender = getAddress(tx.from);
        if (!from.has(sender)) continue;
        from.set(sender, (from.get(sender) ?? 0) + 1);
        const [batch] = COLD_CHAIN_ABI.decodeFunctionData("submitReadings", tx.data) as unknown as [string];
        for (const item of decodeBatch(batch)) {
          if (item.kind !== "readings") continue;
          for (const r of item.readings) {
            const key = `${r.reading.deviceId}:${r.reading.observedAt}`;
            out.set(key, (out.get(key) ?? 0) + 1);
          }
        }
      }
    }
    return { carried: out, txs: from };
  };

  const keyOf = (item: SignedItem): string =>
    item.kind === "reading" ? `${item.reading.deviceId}:${item.reading.observedAt}` : "window";

  it("a reading both anchors stored is relayed once, after the shorter hold; the other instance skips it without gas", async () => {
    const item = items[0] as SignedItem;
    const before = await onchainReadingCount(w);
    const storedAt = Date.now();
    const [a, b] = await Promise.all([deliver(first.oracle, item, "anchor"), deliver(second.oracle, item, "anchor")]);
    expect(a.ok && b.ok, "stored by both instances").to.equal(true);
    const idA = a.ok ? a.itemId : -1;
    const idB = b.ok ? b.itemId : -1;
    expect(first.oracle.store.item(idA)?.relayAfter).to.be.greaterThan(storedAt + 999);
    expect(second.oracle.store.item(idB)?.relayAfter).to.be.greaterThan(storedAt + 4_999);
    expect(first.oracle.relay.heldReadings, "held, not due").to.equal(1);

    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(await onchainReadingCount(w), "nothing relayed within the hold").to.equal(before);

    await waitFor("the reading on chain", async () => (await onchainReadingCount(w)) === before + 1, 10_000, 50);
    const onChainAfterMs = Date.now() - storedAt;
    // The second instance's hold ends (5 s and more): its pre-flight finds the reading on chain.
    await waitFor(
      "the second instance's copy judged",
      () => second.oracle.store.item(idB)?.state !== "pending",
      15_000,
    );
    expect(second.oracle.store.item(idB)).to.include({ state: "skipped", skipReason: "DuplicateSequence" });
    await waitFor("the first instance's batch confirmed", () => first.oracle.store.item(idA)?.state === "recorded");
    const { carried: byKey, txs } = await carried();
    expect(byKey.get(keyOf(item)), "carried by one mined transaction").to.equal(1);
    expect(txs.get(getAddress(second.address)), "the second instance sent nothing").to.equal(0);
    expect(await onchainReadingCount(w)).to.equal(before + 1);
    console.log(
      `      on chain ${onChainAfterMs} ms after both stored it; transactions: first ${txs.get(getAddress(first.address))}, ` +
        `second ${txs.get(getAddress(second.address))}`,
    );
  });

  it("a share member's copy of a held reading ends the hold: relayed at once by that instance, skipped by the other", async () => {
    const item = items[1] as SignedItem;
    const before = await onchainReadingCount(w);
    const [a, b] = await Promise.all([deliver(first.oracle, item, "anchor"), deliver(second.oracle, item, "anchor")]);
    const idA = a.ok ? a.itemId : -1;
    const idB = b.ok ? b.itemId : -1;
    // The group gives the message to a member of the second instance (the one with the longer hold).
    const releasedAt = Date.now();
    const share = await deliver(second.oracle, item);
    expect(share).to.include({ ok: false, reason: "duplicate" });
    expect(second.oracle.store.item(idB)?.relayAfter, "released").to.equal(null);
    expect((await second.oracle.metrics.anchorReleased.get()).values[0]?.value).to.equal(1);
    await waitFor("the reading on chain", async () => (await onchainReadingCount(w)) === before + 1, 10_000, 50);
    const tookMs = Date.now() - releasedAt;
    expect(tookMs, "relayed before the first instance's hold (1 s and more) ends").to.be.lessThan(1_000);
    await waitFor("the first instance's copy judged", () => first.oracle.store.item(idA)?.state !== "pending", 10_000);
    expect(first.oracle.store.item(idA)).to.include({ state: "skipped", skipReason: "DuplicateSequence" });
    const { carried: byKey } = await carried();
    expect(byKey.get(keyOf(item)), "carried by one mined transaction").to.equal(1);
    for (const [key, n] of byKey) expect(n, `${key} carried once`).to.equal(1);
    console.log(`      relayed ${tookMs} ms after the share member's copy came`);
  });
});
