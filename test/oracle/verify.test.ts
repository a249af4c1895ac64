/**
 * Signature verification off the intake thread and with cached device keys: FastVerifier gives the same
 * verdict as the sdk's `verifySignedItem` on valid signatures, on tampered items, on signatures of another
 * key, on a flipped secp256k1 yParity, and on high-s; the worker pool answers the same, and a device's cached
 * key stays right after eviction.
 */
import { randomBytes } from "node:crypto";

import { expect } from "chai";
import { getBytes, hexlify } from "ethers";

import { FastVerifier } from "../../oracle/verify.js";
import { VerifyPool } from "../../oracle/verify-pool.js";
import { P256_N, p256PublicKey, secp256k1Address, signReading, verifySignedItem } from "../../sdk/protocol/index.js";
import type {
  ColdChainDomain,
  DevicePrivateKey,
  DeviceVerificationKey,
  SignedItem,
  SignedReading,
} from "../../sdk/protocol/index.js";

const domain: ColdChainDomain = { chainId: 31337n, verifyingContract: "0x5FbDB2315678afecb367f032d93F642f64180aa3" };

interface TestDevice {
  readonly id: bigint;
  readonly key: DevicePrivateKey;
  readonly verification: DeviceVerificationKey;
}

function device(id: bigint, curve: "secp256k1" | "p256"): TestDevice {
  const privateKey = hexlify(randomBytes(32));
  const verification: DeviceVerificationKey =
    curve === "secp256k1"
      ? { keyType: "secp256k1", address: secp256k1Address(privateKey) }
      : { keyType: "p256", ...p256PublicKey(privateKey) };
  return { id, key: { keyType: curve, privateKey }, verification };
}

function signed(d: TestDevice, sequence: number): SignedReading {
  return signReading(
    domain,
    { deviceId: d.id, sequence, observedAt: 1_700_000_000 + sequence, tempCentiC: 450, flags: 0 },
    d.key,
  );
}

/** The item with one bit of the signature's byte `at` flipped. */
function flip(item: SignedReading, at: number, mask = 1): SignedReading {
  const sig = getBytes(item.signature);
  sig[at] = (sig[at] ?? 0) ^ mask;
  return { ...item, signature: hexlify(sig) };
}

function highS(item: SignedReading): SignedReading {
  const sig = getBytes(item.signature);
  const s = BigInt(hexlify(sig.subarray(32)));
  const high = P256_N - s;
  return {
    ...item,
    signature: hexlify(
      new Uint8Array([...sig.subarray(0, 32), ...getBytes(`0x${high.toString(16).padStart(64, "0")}`)]),
    ),
  };
}

/** Cases with the sdk's verdict: valid, tampered reading, another device's key, bad bits in r / s / yParity. */
function cases(devices: readonly TestDevice[]): { item: SignedItem; key: DeviceVerificationKey; valid: boolean }[] {
  const out: { item: SignedItem; key: DeviceVerificationKey; valid: boolean }[] = [];
  devices.forEach((d, i) => {
    const other = devices[(i + 2) % devices.length] as TestDevice; // same curve, another key
    for (let seq = 1; seq <= 3; seq++) {
      const item = signed(d, seq);
      out.push({ item, key: d.verification, valid: true });
      out.push({ item: { ...item, reading: { ...item.reading, tempCentiC: 451 } }, key: d.verification, valid: false });
      out.push({ item, key: other.verification, valid: false });
      out.push({ item: flip(item, 5), key: d.verification, valid: false });
      out.push({ item: flip(item, 63), key: d.verification, valid: false });
      if (d.verification.keyType === "secp256k1")
        out.push({ item: flip(item, 32, 0x80), key: d.verification, valid: false });
      else out.push({ item: highS(item), key: d.verification, valid: false });
    }
  });
  return out;
}

describe("oracle signature verification (cached keys, worker pool)", function () {
  this.timeout(60_000);
  const devices = [device(1n, "secp256k1"), device(2n, "p256"), device(3n, "secp256k1"), device(4n, "p256")];
  const all = cases(devices);

  it("the test cases agree with the sdk verifier", () => {
    for (const c of all) expect(verifySignedItem(domain, c.item, c.key)).to.equal(c.valid);
  });

  it("FastVerifier gives the sdk's verdict, cold and with cached keys, and after evictions", () => {
    for (const cacheSize of [0, 1, 128]) {
      const v = new FastVerifier(domain, cacheSize);
      for (let round = 0; round < 2; round++) {
        for (const c of all) expect(v.verify(c.item, c.key), `cache ${cacheSize}, round ${round}`).to.equal(c.valid);
      }
      expect(v.cachedKeys).to.equal(Math.min(cacheSize, devices.length));
    }
  });

  it("a bad first signature does not cache a wrong secp256k1 key", () => {
    const v = new FastVerifier(domain, 8);
    const [d] = devices as [TestDevice];
    const other = devices[2] as TestDevice;
    expect(v.verify(signed(other, 9), d.verification)).to.equal(false);
    expect(v.cachedKeys).to.equal(0);
    expect(v.verify(signed(d, 9), d.verification)).to.equal(true);
    expect(v.verify(signed(other, 10), d.verification)).to.equal(false);
  });

  it("the worker pool verifies and rejects like the sdk, in parallel", async () => {
    const pool = new VerifyPool(domain, 2, 16);
    try {
      const verdicts = await Promise.all(all.map((c) => pool.check(c.item, c.key)));
      expect(verdicts).to.deep.equal(all.map((c) => c.valid));
    } finally {
      await pool.close();
    }
    let error: unknown;
    await pool
      .check(all[0]?.item as SignedItem, devices[0]?.verification as DeviceVerificationKey)
      .catch((e: unknown) => {
        error = e;
      });
    expect(String(error)).to.match(/closed/);
  });
});
