/**
 * Keys bound to time, against a real node and broker: the oracle judges a reading as the contract does, by its
 * observation time. After a key rotation, readings the device signed with its old key before the rotation (and
 * published after it) are still relayed and recorded; a reading signed with the new key but dated before the
 * rotation is dropped as bad_signature; a window across the rotation verifies under no key. After a revocation,
 * readings observed before the distrust time are recorded, later ones dropped as revoked_device. A rotation the
 * oracle's registry sync has not seen yet is found by re-reading the device when a signature fails.
 */
import { expect } from "chai";
import { Wallet } from "ethers";

import type { IntakeResult } from "../../oracle/verification/judge.js";
import { Oracle } from "../../oracle/oracle.js";
import { p256PublicKey } from "../../sdk/protocol/index.js";
import type { DevicePrivateKey, SignedItem } from "../../sdk/protocol/index.js";
import {
  INTERVAL_SECONDS,
  Publisher,
  deployWorld,
  fundedOracleKey,
  onchainReadingCount,
  oracleConfig,
  reading,
  startAedes,
  startChain,
  testLogger,
  waitFor,
  window,
} from "./support.js";
import type { AedesHandle, Device, NodeHandle, World } from "./support.js";

/** The chain runs this far ahead of the wall clock, so readings can be dated well before a rotation. */
const AHEAD_SECONDS = 1800;

describe("oracle: keys bound to time (rotation and revocation judged by observation time)", function () {
  this.timeout(180_000);
  let node: NodeHandle;
  let broker: AedesHandle;
  let w: World;
  let oracle: Oracle;
  let device: Publisher;

  before(async () => {
    [node, broker] = await Promise.all([startChain(), startAedes()]);
    w = await deployWorld(node, 3, 9000n);
    await node.provider.send("evm_increaseTime", [AHEAD_SECONDS]);
    await node.provider.send("evm_mine", []);
    oracle = new Oracle(
      oracleConfig(w, node, broker.url, { verify: { maxFutureSkewSeconds: 2 * AHEAD_SECONDS } }),
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

  /** Publishes one item to `to` and resolves with its intake result. */
  const judge = (item: SignedItem, to: Oracle = oracle, via: Publisher = device): Promise<IntakeResult> => {
    const result = new Promise<IntakeResult>((resolve) => to.events.once("intake", resolve));
    return via.publish(item).then(() => result);
  };

  /** Waits until the device's readings observed at `times` are recorded on chain (`isRecorded`). */
  const recorded = (d: Device, times: number[]): Promise<void> =>
    waitFor(`device ${d.id} readings observed at ${times.join(", ")} recorded on chain`, async () => {
      for (const t of times) if (!(await w.coldChain.isRecorded(d.id, t))) return false;
      return true;
    });

  /** Waits until the oracle's registry sync has read past `block`. */
  const synced = (block: number, o: Oracle = oracle): Promise<void> =>
    waitFor(`registry sync past block ${block}`, () => Number(o.store.getMeta("registry.syncedBlock") ?? 0) >= block);

  const chainTime = async (): Promise<number> => (await node.provider.getBlock("latest"))?.timestamp ?? 0;

  it("relays readings signed and observed before a rotation but published after it; refuses the new key's readings dated before it", async () => {
    const before = w.devices[0] as Device;
    const now = await chainTime();
    expect(await judge(reading(w, before, 1, now - 1000))).to.include({ ok: true });
    await recorded(before, [now - 1000]);

    const newKey: DevicePrivateKey = { keyType: "secp256k1", privateKey: Wallet.createRandom().privateKey };
    const after: Device = { id: before.id, key: newKey };
    const tx = await w.registry
      .connect(w.deviceOwner)
      .rotateSecp256k1Key(before.id, new Wallet(newKey.privateKey).address);
    const receipt = await tx.wait();
    const rotatedAt = (await node.provider.getBlock(receipt?.blockNumber ?? 0))?.timestamp ?? 0;
    expect(Number((await w.registry.verificationKey(before.id)).keyValidFrom)).to.equal(rotatedAt);
    await synced(receipt?.blockNumber ?? 0);

    // Signed with the old key, observed before the rotation, published now: a window, then a reading.
    expect(await judge(window(w, before, 2, rotatedAt - 300, [500, 510, 520]))).to.include({ ok: true });
    expect(await judge(reading(w, before, 5, rotatedAt - 30))).to.include({ ok: true });
    // The new key from the rotation on.
    expect(await judge(reading(w, after, 6, rotatedAt))).to.include({ ok: true });
    await recorded(before, [rotatedAt - 300, rotatedAt - 240, rotatedAt - 180, rotatedAt - 30, rotatedAt]);

    // The new key never verifies a reading dated before the rotation.
    const backdated = await judge(reading(w, after, 7, rotatedAt - 10));
    expect(backdated).to.include({ ok: false, reason: "bad_signature" });
    expect(backdated.ok ? "" : backdated.message).to.include("a later key never verifies earlier readings");
    // A window across the rotation verifies under no key, whichever signed it.
    const across = await judge(window(w, before, 8, rotatedAt - 40, [500, 500]));
    expect(across).to.include({ ok: false, reason: "bad_signature" });
    expect(across.ok ? "" : across.message).to.include("spans");
    expect(oracle.store.hasAnyObservation(before.id, rotatedAt - 10, 1, 0)).to.equal(false);
    expect(oracle.store.hasAnyObservation(before.id, rotatedAt - 40, 2, INTERVAL_SECONDS)).to.equal(false);
    // Another batch goes through, and the refused ones never reached the chain.
    expect(await judge(reading(w, after, 10, rotatedAt + 1))).to.include({ ok: true });
    await recorded(before, [rotatedAt + 1]);
    expect(await onchainReadingCount(w), "1 + 3 + 1 + 1 + 1 readings, none of the refused").to.equal(7);
    expect(oracle.devices.historyDevices).to.equal(1);
  });

  it("records a revoked device's readings observed before its revocation and drops later ones as revoked_device", async () => {
    const d = w.devices[1] as Device; // P-256
    const now = await chainTime();
    expect(await judge(reading(w, d, 1, now - 1000))).to.include({ ok: true });
    const tx = await w.registry.connect(w.deviceOwner).revokeDevice(d.id);
    const receipt = await tx.wait();
    const revokedAt = (await node.provider.getBlock(receipt?.blockNumber ?? 0))?.timestamp ?? 0;
    expect(Number((await w.registry.verificationKey(d.id)).revokedFrom)).to.equal(revokedAt);
    await synced(receipt?.blockNumber ?? 0);

    expect(await judge(window(w, d, 2, revokedAt - 200, [500, 500]))).to.include({ ok: true });
    expect(await judge(reading(w, d, 4, revokedAt - 60))).to.include({ ok: true });
    await recorded(d, [now - 1000, revokedAt - 200, revokedAt - 140, revokedAt - 60]);

    const late = await judge(reading(w, d, 5, revokedAt));
    expect(late).to.include({ ok: false, reason: "revoked_device" });
    expect(late.ok ? "" : late.message).to.include(
      `distrusted from ${new Date(revokedAt * 1000).toISOString().replace(".000Z", "Z")} (${revokedAt})`,
    );
    // A window whose last sample is at or after the distrust time is refused whole, as on chain.
    const straddling = await judge(window(w, d, 6, revokedAt - 30, [500, 500]));
    expect(straddling).to.include({ ok: false, reason: "revoked_device" });
    expect(oracle.store.hasAnyObservation(d.id, revokedAt, 1, 0)).to.equal(false);
    expect(oracle.store.hasAnyObservation(d.id, revokedAt - 30, 2, INTERVAL_SECONDS)).to.equal(false);
  });

  it("notices a rotation its registry sync has not seen yet: re-reads the device when a signature fails", async () => {
    // A second oracle that syncs the registry only when woken (a long poll interval), on its own broker.
    const broker2 = await startAedes();
    const slow = new Oracle(
      oracleConfig(w, node, broker2.url, {
        chain: { pollIntervalMs: 600_000 },
        // Woken by each stored reading (a full batch), so it relays at once; its sync runs only then.
        batch: { maxReadings: 1 },
        verify: { maxFutureSkewSeconds: 2 * AHEAD_SECONDS },
      }),
      { privateKey: await fundedOracleKey(node), mqttPassword: undefined },
      { log: testLogger() },
    );
    const publisher = await Publisher.connect(broker2.url);
    try {
      await slow.start();
      const d = w.devices[2] as Device;
      const now = await chainTime();
      expect(await judge(reading(w, d, 1, now - 1000), slow, publisher)).to.include({ ok: true });
      await recorded(d, [now - 1000]);
      const syncedBefore = Number(slow.store.getMeta("registry.syncedBlock"));
      // Past the bound on re-reads after a failed signature (STALE_KEY_REFRESH_MS).
      await new Promise((resolve) => setTimeout(resolve, 1200));

      const newKey: DevicePrivateKey = { keyType: "p256", privateKey: Wallet.createRandom().privateKey };
      const { x, y } = p256PublicKey(newKey.privateKey);
      const receipt = await (await w.registry.connect(w.deviceOwner).rotateP256Key(d.id, x, y)).wait();
      const rotatedAt = (await node.provider.getBlock(receipt?.blockNumber ?? 0))?.timestamp ?? 0;
      expect(Number(slow.store.getMeta("registry.syncedBlock")), "the sync has not run").to.equal(syncedBefore);

      // The device took a reading under its old key before the rotation, and one under the new key after it (which
      // names the old key's reading as its predecessor); the new key's arrives first.
      const oldKeyReading = reading(w, d, 2, rotatedAt - 5);
      const newKeyReading = reading(w, { id: d.id, key: newKey }, 3, rotatedAt + 1);
      const result = await judge(newKeyReading, slow, publisher);
      expect(result).to.include({ ok: true });
      // The old key's readings from before the rotation still count; the new key's waited for it (SequenceGap).
      expect(await judge(oldKeyReading, slow, publisher)).to.include({ ok: true });
      await recorded(d, [rotatedAt - 5, rotatedAt + 1]);
    } finally {
      await publisher.close();
      await slow.stop();
      await broker2.stop();
    }
  });
});
