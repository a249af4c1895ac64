/**
 * The relay against a real node (Hardhat's JSON-RPC node): RPC failover past a dead endpoint, restart recovery
 * from the store (pending readings batched again; an attempt in flight re-sent with the same nonce), a stuck
 * transaction the base fee outgrew re-priced with the same nonce and higher fees, and a reorg (evm_snapshot / evm_revert) that drops
 * a confirmed batch, which is then sent again.
 */
import { once } from "node:events";

import { expect } from "chai";

import type { OracleConfig } from "../../oracle/config/index.js";
import { Oracle } from "../../oracle/oracle.js";
import {
  Publisher,
  deployWorld,
  freePort,
  fundedOracleKey,
  oracleConfig,
  reading,
  startAedes,
  startChain,
  testLogger,
} from "./support.js";
import type { AedesHandle, Device, NodeHandle, World } from "./support.js";

describe("oracle relay against a real node", function () {
  this.timeout(120_000);
  let node: NodeHandle;
  let broker: AedesHandle;
  let w: World;
  let device: Publisher;
  let nextSeq = 1;

  before(async () => {
    [node, broker] = await Promise.all([startChain(), startAedes()]);
    w = await deployWorld(node, 2, 7000n);
    device = await Publisher.connect(broker.url);
  });
  after(async () => {
    await device?.close();
    await Promise.all([node?.stop(), broker?.stop()]);
  });

  const k1 = (): Device => w.devices[0] as Device;
  /** Reading `seq` of k1 is observed `seq` seconds after the start: one chain of readings across the tests. */
  const at = (seq: number): number => w.startedAt + seq;
  /** Whether k1's reading `seq` is recorded on chain (`isRecorded` by its observation time). */
  const recorded = (seq: number): Promise<boolean> => w.coldChain.isRecorded(k1().id, at(seq));
  const oracleWith = async (config: OracleConfig, privateKey?: string): Promise<Oracle> =>
    new Oracle(
      config,
      { privateKey: privateKey ?? (await fundedOracleKey(node)), mqttPassword: undefined },
      { log: testLogger() },
    );

  it("fails over from a dead RPC endpoint to a live one", async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const oracle = await oracleWith(oracleConfig(w, node, broker.url, { chain: { rpcUrls: [dead, node.url] } }));
    await oracle.start();
    try {
      const confirmed = once(oracle.relay.events, "batch-confirmed");
      const seq = nextSeq++;
      await device.publish(reading(w, k1(), seq, at(seq)));
      await confirmed;
      expect(await recorded(seq)).to.equal(true);
      const errors = await oracle.metrics.rpcErrors.get();
      expect(errors.values.find((v) => v.labels.endpoint === "0")?.value ?? 0).to.be.greaterThan(0);
      expect(oracle.rpc.endpoint).to.equal(1);
    } finally {
      await oracle.stop();
    }
  });

  it("rides out an RPC node outage: intake goes on, the relay backs off and resumes by itself", async function () {
    if (node.outage === undefined) this.skip(); // only the in-process chain can be taken down and back
    const oracle = await oracleWith(oracleConfig(w, node, broker.url));
    await oracle.start();
    try {
      let confirmed = once(oracle.relay.events, "batch-confirmed");
      const first = nextSeq++;
      await device.publish(reading(w, k1(), first, at(first))); // caches the device
      await confirmed;
      const outage = node.outage();
      const failedTick = new Promise<void>((resolve) => {
        const on = (e: { ok: boolean }): void => {
          if (!e.ok) {
            oracle.relay.events.off("tick", on);
            resolve();
          }
        };
        oracle.relay.events.on("tick", on);
      });
      const stored = once(oracle.events, "intake");
      const second = nextSeq++;
      await device.publish(reading(w, k1(), second, at(second)));
      const [result] = (await stored) as [{ ok: boolean }];
      expect(result.ok, "stored while the node is down").to.equal(true);
      await failedTick;
      expect(oracle.health().ok).to.equal(true); // within the grace period of the last good tick
      confirmed = once(oracle.relay.events, "batch-confirmed");
      await outage.restore();
      await confirmed;
      expect(await recorded(second)).to.equal(true);
    } finally {
      await oracle.stop();
    }
  });

  it("after a restart, batches what was pending and re-sends the attempt in flight with the same nonce", async () => {
    const key = await fundedOracleKey(node);
    // Readings stay pending: batches wait for 1,000 readings or an hour.
    const config = oracleConfig(w, node, broker.url, { batch: { maxReadings: 1000, maxAgeMs: 3_600_000 } });
    const first = await oracleWith(config, key);
    await first.start();
    const seqs = [nextSeq++, nextSeq++, nextSeq++];
    const stored = new Promise<void>((resolve) => {
      let n = 0;
      first.events.on("intake", () => {
        if (++n === seqs.length) resolve();
      });
    });
    for (const seq of seqs) await device.publish(reading(w, k1(), seq, at(seq)));
    await stored;
    await first.stop();

    // Second run: sends the batch while the node does not mine, then stops with the attempt in flight.
    await node.provider.send("evm_setAutomine", [false]);
    try {
      const second = await oracleWith({ ...config, batch: { ...config.batch, maxAgeMs: 0 } }, key);
      await second.start();
      const [sent] = (await once(second.relay.events, "attempt-sent")) as [{ hash: string; nonce: number }];
      await second.stop();
      // The node forgets it (as a node restart or a mempool eviction would).
      await node.provider.send("hardhat_dropTransaction", [sent.hash]);

      const third = await oracleWith({ ...config, batch: { ...config.batch, maxAgeMs: 0 } }, key);
      const resent = once(third.relay.events, "attempt-sent");
      await third.start();
      try {
        const [again] = (await resent) as [{ hash: string; nonce: number; kind: string }];
        expect(again).to.include({ hash: sent.hash, nonce: sent.nonce, kind: "rebroadcast" });
        const confirmed = once(third.relay.events, "batch-confirmed");
        await node.provider.send("evm_mine", []);
        const [event] = (await confirmed) as [{ recorded: number }];
        expect(event.recorded).to.equal(seqs.length);
        for (const seq of seqs) expect(await recorded(seq)).to.equal(true);
      } finally {
        await third.stop();
      }
    } finally {
      await node.provider.send("evm_setAutomine", [true]);
    }
  });

  it("holds intake at backpressure.maxPendingReadings while the chain does not keep up, then drains it all", async () => {
    const config = oracleConfig(w, node, broker.url, {
      batch: { maxReadings: 2, maxAgeMs: 0 },
      backpressure: { maxPendingReadings: 3 },
    });
    const oracle = await oracleWith(config);
    let stored = 0;
    let maxPending = 0;
    oracle.events.on("intake", () => {
      stored++;
      maxPending = Math.max(maxPending, oracle.store.pendingReadings());
    });
    await node.provider.send("evm_setAutomine", [false]);
    await oracle.start();
    try {
      const seqs = Array.from({ length: 20 }, () => nextSeq++);
      const held = new Promise<void>((resolve) => {
        oracle.events.on("intake", () => {
          if (stored === 4 * 2 + 3) resolve(); // 4 batches in flight of 2, and 3 pending on disk
        });
      });
      for (const seq of seqs) await device.publish(reading(w, k1(), seq, at(seq)));
      await held;
      // Intake stays held over many relay ticks (the broker keeps the rest).
      await new Promise<void>((resolve) => {
        let ticks = 0;
        oracle.relay.events.on("tick", () => {
          if (++ticks === 20) resolve();
        });
      });
      expect(stored).to.equal(11);
      const drained = new Promise<void>((resolve) => {
        let recorded = 0;
        oracle.relay.events.on("batch-confirmed", (e) => {
          recorded += e.recorded;
          if (recorded === seqs.length) resolve();
        });
      });
      await node.provider.send("evm_setAutomine", [true]);
      await node.provider.send("evm_mine", []);
      await drained;
      expect(maxPending).to.be.at.most(3);
      for (const seq of seqs) expect(await recorded(seq)).to.equal(true);
    } finally {
      await node.provider.send("evm_setAutomine", [true]);
      await oracle.stop();
    }
  });

  it("re-prices a transaction the base fee outgrew: same nonce, higher fees, without waiting replaceAfterMs", async () => {
    const config = oracleConfig(w, node, broker.url, { fees: { replaceAfterMs: 600_000 } });
    const oracle = await oracleWith(config);
    const attempts: { hash: string; nonce: number; kind: string }[] = [];
    oracle.relay.events.on("attempt-sent", (e) => attempts.push(e));
    await node.provider.send("evm_setAutomine", [false]);
    await oracle.start();
    try {
      const firstAttempt = once(oracle.relay.events, "attempt-sent");
      const seq = nextSeq++;
      await device.publish(reading(w, k1(), seq, at(seq)));
      const [original] = (await firstAttempt) as [{ hash: string; nonce: number }];
      const first = await node.provider.getTransaction(original.hash);
      // The next block's base fee is far above what the oracle offered: the transaction cannot be mined.
      const replaced = once(oracle.relay.events, "attempt-sent");
      await node.provider.send("hardhat_setNextBlockBaseFeePerGas", ["0x" + (100n * 10n ** 9n).toString(16)]);
      await node.provider.send("evm_mine", []);
      expect(await node.provider.getTransactionReceipt(original.hash)).to.equal(null);

      const [replacement] = (await replaced) as [{ hash: string; nonce: number; kind: string }];
      expect(replacement.kind).to.equal("replacement");
      expect(replacement.nonce).to.equal(original.nonce);
      expect(replacement.hash).to.not.equal(original.hash);
      const tx = await node.provider.getTransaction(replacement.hash);
      const next = (await node.provider.getBlock("latest"))?.baseFeePerGas ?? 0n;
      // Fees from the policy (2 x the next base fee + tip), at least 25 % above the first attempt, under the ceiling.
      expect(tx?.maxFeePerGas).to.be.at.least(next);
      expect(tx?.maxFeePerGas).to.be.at.least(((first?.maxFeePerGas ?? 0n) * 125n) / 100n);
      expect(tx?.maxFeePerGas).to.be.at.most(200n * 10n ** 9n);

      const confirmed = once(oracle.relay.events, "batch-confirmed");
      await node.provider.send("evm_mine", []);
      await confirmed;
      expect(await recorded(seq)).to.equal(true);
      expect((await node.provider.getTransactionReceipt(replacement.hash))?.status).to.equal(1);
      expect(await node.provider.getTransactionReceipt(original.hash)).to.equal(null);
      expect(attempts.map((a) => a.kind)).to.deep.equal(["new", "replacement"]);
    } finally {
      await node.provider.send("evm_setAutomine", [true]);
      await oracle.stop();
    }
  });

  it("re-submits a confirmed batch that a reorg dropped", async () => {
    const oracle = await oracleWith(oracleConfig(w, node, broker.url));
    await oracle.start();
    try {
      const snapshot = (await node.provider.send("evm_snapshot", [])) as string;
      const confirmed = once(oracle.relay.events, "batch-confirmed");
      const seq = nextSeq++;
      await device.publish(reading(w, k1(), seq, at(seq)));
      await confirmed;
      expect(await recorded(seq)).to.equal(true);

      const reorg = once(oracle.relay.events, "reorg");
      const reconfirmed = once(oracle.relay.events, "batch-confirmed");
      await node.provider.send("evm_revert", [snapshot]);
      expect(await recorded(seq)).to.equal(false);
      await reorg;
      await reconfirmed;
      expect(await recorded(seq)).to.equal(true);
      expect(oracle.store.countsByState()).to.include({ pending: 0, batched: 0 });
    } finally {
      await oracle.stop();
    }
  });
});
