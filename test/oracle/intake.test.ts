/**
 * Intake over a real broker (aedes, TCP) and a real node: every kind of bad input is dropped with its reason
 * counted while the valid stream goes on; a P-256 high-s signature is normalised and accepted; the same
 * message delivered many times gives one stored row and one on-chain record.
 */

import { expect } from "chai";
import { Wallet, getBytes, hexlify, toBeHex } from "ethers";

import type { IntakeResult } from "../../oracle/verification/judge.js";
import { DROP_REASONS } from "../../oracle/health/metrics.js";
import { Oracle } from "../../oracle/oracle.js";
import { P256_N, encodeMqttPayload, mqttReadingsTopic, signWindow } from "../../sdk/protocol/index.js";
import type { SignedItem, SignedReading } from "../../sdk/protocol/index.js";
import {
  INTERVAL_SECONDS,
  Publisher,
  deployWorld,
  fundedOracleKey,
  oracleConfig,
  predecessorOf,
  reading,
  startAedes,
  startChain,
  testLogger,
  onchainReadingCount,
  waitFor,
} from "./support.js";
import type { BrokerHandle, Device, NodeHandle, World } from "./support.js";

/** Resolves with the next `n` intake results of the oracle. */
function nextResults(oracle: Oracle, n: number): Promise<IntakeResult[]> {
  return new Promise((resolve) => {
    const results: IntakeResult[] = [];
    const on = (r: IntakeResult): void => {
      results.push(r);
      if (results.length === n) {
        oracle.events.off("intake", on);
        resolve(results);
      }
    };
    oracle.events.on("intake", on);
  });
}

async function dropCount(oracle: Oracle, reason: string): Promise<number> {
  const metric = await oracle.metrics.dropped.get();
  return metric.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

describe("oracle intake (aedes + Hardhat chain over JSON-RPC)", function () {
  this.timeout(120_000);
  let node: NodeHandle;
  let broker: BrokerHandle;
  let w: World;
  let oracle: Oracle;
  let device: Publisher;

  before(async () => {
    [node, broker] = await Promise.all([startChain(), startAedes()]);
    w = await deployWorld(node, 2, 3000n);
    oracle = new Oracle(
      // Verdicts in the order the messages came: a first look-up is waited for (none set aside on a slow machine).
      oracleConfig(w, node, broker.url, { mqtt: { maxPayloadBytes: 1024 }, verify: { lookupWaitMs: 2_000 } }),
      { privateKey: await fundedOracleKey(node), mqttPassword: undefined },
      { log: testLogger() },
    );
    await oracle.start();
    device = await Publisher.connect(broker.url);
  });
  after(async () => {
    await device?.close();
    await oracle?.stop();
    await Promise.all([node?.stop(), broker?.stop()]);
  });

  it("drops each kind of bad input with its reason and keeps relaying the valid stream", async () => {
    const [k1, r1] = w.devices as [Device, Device];
    const t = w.startedAt + 1;
    const stranger: Device = {
      id: 987_654n,
      key: { keyType: "secp256k1", privateKey: Wallet.createRandom().privateKey },
    };
    const revoked = { id: 3500n, key: { keyType: "secp256k1", privateKey: Wallet.createRandom().privateKey } } as const;
    const registry = w.registry.connect(w.deviceManager);
    await (
      await registry.registerSecp256k1Device(
        revoked.id,
        w.deviceOwner.address,
        INTERVAL_SECONDS,
        new Wallet(revoked.key.privateKey).address,
      )
    ).wait();
    await (await registry.revokeDevice(revoked.id)).wait();
    // Distrusted from the revocation's block time: a reading observed then is dropped (earlier ones would count).
    const distrustedFrom = Number((await registry.verificationKey(revoked.id)).revokedFrom);
    const valid = reading(w, k1, 10, t);
    const forged: SignedItem = {
      ...(reading(w, k1, 11, t) as SignedReading),
      signature: (reading(w, r1, 11, t) as SignedReading).signature,
    };
    const wrongInterval = signWindowWithInterval(w, r1, 20, t, 2 * INTERVAL_SECONDS);
    const cases: [string, () => Promise<void>][] = [
      ["too_large", () => device.raw(mqttReadingsTopic(k1.id), `{"pad":"${"x".repeat(2000)}"}`)],
      ["malformed", () => device.raw(mqttReadingsTopic(k1.id), "{not json")],
      ["malformed", () => device.raw(mqttReadingsTopic(k1.id), new Uint8Array([0x01, 0x07, 0x00]))],
      ["malformed", () => device.raw(mqttReadingsTopic(k1.id), new Uint8Array([0xff, 0x00]))],
      [
        "topic_mismatch",
        () => device.raw(mqttReadingsTopic(r1.id), encodeMqttPayload(reading(w, k1, 12, t), "binary")),
      ],
      ["unknown_device", () => device.publish(reading(w, stranger, 1, t))],
      ["revoked_device", () => device.publish(reading(w, revoked, 1, distrustedFrom))],
      ["interval_mismatch", () => device.publish(wrongInterval, "json")],
      ["future_timestamp", () => device.publish(reading(w, k1, 13, Math.floor(Date.now() / 1000) + 3600))],
      ["bad_signature", () => device.publish(forged)],
      ["ok", () => device.publish(valid)],
      ["duplicate", () => device.publish(valid, "json")],
    ];
    const results = nextResults(oracle, cases.length);
    for (const [, send] of cases) await send();
    const got = (await results).map((r) => (r.ok ? "ok" : r.reason));
    expect(got).to.deep.equal(cases.map(([reason]) => reason));
    for (const reason of DROP_REASONS) {
      const expected = cases.filter(([r]) => r === reason).length;
      expect(await dropCount(oracle, reason), reason).to.equal(expected);
    }
    // The valid stream goes on after the bad input.
    // Wait for the chain itself, not for one batch event: under load the readings may land in two batches.
    await device.publish(reading(w, r1, 30, t));
    await waitFor(
      "k1/10 and r1/30 on chain",
      async () => (await w.coldChain.isRecorded(k1.id, t)) && (await w.coldChain.isRecorded(r1.id, t)),
    );
  });

  it("normalises a P-256 signature with a high s and relays it", async () => {
    const r1 = w.devices[1] as Device;
    const item = reading(w, r1, 40, w.startedAt + 2) as SignedReading;
    const bytes = getBytes(item.signature);
    const s = BigInt(hexlify(bytes.subarray(32)));
    const highS = hexlify(new Uint8Array([...bytes.subarray(0, 32), ...getBytes(toBeHex(P256_N - s, 32))]));
    const result = nextResults(oracle, 1);
    await device.publish({ ...item, signature: highS });
    expect((await result)[0]).to.include({ ok: true });
    await waitFor("r1/40 on chain", () => w.coldChain.isRecorded(r1.id, w.startedAt + 2));
  });

  it("stores and submits one message delivered many times once", async () => {
    const k1 = w.devices[0] as Device;
    const item = reading(w, k1, 50, w.startedAt + 3);
    const before = await onchainReadingCount(w);
    const results = nextResults(oracle, 25);
    for (let i = 0; i < 25; i++) await device.publish(item, i % 2 === 0 ? "binary" : "json");
    const outcomes = await results;
    expect(outcomes.filter((r) => r.ok)).to.have.length(1);
    expect(outcomes.filter((r) => !r.ok && r.reason === "duplicate")).to.have.length(24);
    await waitFor("k1/50 on chain", () => w.coldChain.isRecorded(k1.id, w.startedAt + 3));
    expect(await onchainReadingCount(w)).to.equal(before + 1);
    expect(oracle.store.hasAnyObservation(k1.id, w.startedAt + 3, 1, 0)).to.equal(true);
    const skipped = await oracle.metrics.skippedReadings.get();
    expect(skipped.values.filter((v) => v.labels.reason === "DuplicateSequence")).to.have.length(0);
  });
});

function signWindowWithInterval(w: World, d: Device, first: number, at: number, intervalSeconds: number): SignedItem {
  const samples = [500, 500].map((tempCentiC) => ({ tempCentiC, flags: 0 }));
  return signWindow(
    w.domain,
    {
      deviceId: d.id,
      firstSequence: first,
      firstObservedAt: at,
      intervalSeconds,
      samples,
      previousObservedAt: predecessorOf(w, d, at),
    },
    d.key,
  );
}
