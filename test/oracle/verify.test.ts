/**
 * The intake's signature checks (oracle/verification/signature.ts: EIP-712 digests by hand, secp256k1 recovery in libsecp256k1, native
 * and WebAssembly, P-256 with OpenSSL's scalar multiplications) give the same verdict as the sdk's `verifySignedItem` /
 * `verifyDigest` on valid signatures, tampered items, another device's key, flipped bits in r and s, a flipped
 * secp256k1 yParity, high-s on both curves, r or s out of range, malformed signatures and keys, and P-256 corner cases
 * (u1 = 0, t·G = Q); for devices seen for the first time and with kept keys; and the worker pool (which loads
 * libsecp256k1 in each worker) answers the same.
 */
import { randomBytes } from "node:crypto";
import { arch, platform } from "node:os";

import { p256 } from "@noble/curves/nist.js";
import { expect } from "chai";
import { getBytes, hexlify, toBeHex } from "ethers";

import { FastVerifier, ItemDigests, SECP256K1_BACKEND } from "../../oracle/verification/signature.js";
import type { Secp256k1Backend } from "../../oracle/verification/signature.js";
import { ANSWER_EVERY, VerifyPool } from "../../oracle/verification/pool.js";
import {
  P256_N,
  SECP256K1_N,
  p256PublicKey,
  readingDigest,
  readingWindowDigest,
  secp256k1Address,
  signDigestP256,
  signDigestSecp256k1,
  signReading,
  signWindow,
  verifyDigest,
  verifySignedItem,
} from "../../sdk/protocol/index.js";
import type {
  ColdChainDomain,
  DevicePrivateKey,
  DeviceVerificationKey,
  Reading,
  ReadingWindow,
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
    {
      deviceId: d.id,
      sequence,
      observedAt: 1_700_000_000 + sequence,
      tempCentiC: 450 - sequence * 300,
      flags: 0,
      previousObservedAt: 1_700_000_000 + sequence - 1,
    },
    d.key,
  );
}

function withSignature(item: SignedReading, signature: string): SignedReading {
  return { ...item, signature };
}

/** The item with one bit of the signature's byte `at` flipped. */
function flip(item: SignedReading, at: number, mask = 1): SignedReading {
  const sig = getBytes(item.signature);
  sig[at] = (sig[at] ?? 0) ^ mask;
  return withSignature(item, hexlify(sig));
}

function words(r: bigint, s: bigint): string {
  return hexlify(new Uint8Array([...getBytes(toBeHex(r, 32)), ...getBytes(toBeHex(s, 32))]));
}

/** s replaced by n - s: P-256 high-s; secp256k1 high-s with the other yParity (a valid ECDSA twin). */
function highS(item: SignedReading, curve: "secp256k1" | "p256"): SignedReading {
  const sig = getBytes(item.signature);
  const r = BigInt(hexlify(sig.subarray(0, 32)));
  const vs = BigInt(hexlify(sig.subarray(32)));
  if (curve === "p256") return withSignature(item, words(r, P256_N - vs));
  const s = vs & ((1n << 255n) - 1n);
  const parity = vs >> 255n;
  return withSignature(item, words(r, ((1n - parity) << 255n) | (SECP256K1_N - s)));
}

interface Case {
  readonly what: string;
  readonly item: SignedItem;
  readonly key: DeviceVerificationKey;
}

/** The sdk's verdict; a thrown error (malformed signature or key) counts as "not valid". */
function sdkVerdict(c: Case): boolean {
  try {
    return verifySignedItem(domain, c.item, c.key);
  } catch {
    return false;
  }
}

function cases(devices: readonly TestDevice[]): Case[] {
  const out: Case[] = [];
  devices.forEach((d, i) => {
    const curve = d.verification.keyType;
    const other = devices[(i + 2) % devices.length] as TestDevice; // same curve, another key
    const otherCurve = devices[(i + 1) % devices.length] as TestDevice;
    const n = curve === "secp256k1" ? SECP256K1_N : P256_N;
    for (let seq = 1; seq <= 3; seq++) {
      const item = signed(d, seq);
      const sig = getBytes(item.signature);
      const r = BigInt(hexlify(sig.subarray(0, 32)));
      const s = BigInt(hexlify(sig.subarray(32)));
      const c = (what: string, it: SignedItem, key = d.verification): void => {
        out.push({ what: `${curve} device ${d.id} seq ${seq}: ${what}`, item: it, key });
      };
      c("valid", item);
      c("tampered reading", { ...item, reading: { ...item.reading, tempCentiC: item.reading.tempCentiC + 1 } });
      c("another device's key", item, other.verification);
      c("a key of the other curve", item, otherCurve.verification);
      c("flipped bit in r", flip(item, 5));
      c("flipped low bit of s", flip(item, 63));
      c("high-s", highS(item, curve));
      c("r = 0", withSignature(item, words(0n, s)));
      c("r = n", withSignature(item, words(n, s)));
      c("r = 2^256 - 1", withSignature(item, words((1n << 256n) - 1n, s)));
      c("s = 0", withSignature(item, words(r, curve === "secp256k1" ? s & (1n << 255n) : 0n)));
      c("63 bytes", withSignature(item, hexlify(sig.subarray(0, 63))));
      c("65 bytes", withSignature(item, hexlify(new Uint8Array([...sig, 0]))));
      c("not hex", withSignature(item, `0x${"zz".repeat(64)}`));
      c("empty", withSignature(item, "0x"));
      if (curve === "secp256k1") {
        c("flipped yParity", flip(item, 32, 0x80));
        const bad = d.verification.address.replace(/[a-f]/, (ch) => ch.toUpperCase());
        if (bad !== d.verification.address)
          c("address with a bad checksum", item, { keyType: "secp256k1", address: bad });
        c("lowercase address", item, { keyType: "secp256k1", address: d.verification.address.toLowerCase() });
      } else {
        const { x, y } = d.verification as { x: string; y: string };
        c("a point off the curve", item, { keyType: "p256", x, y: toBeHex((BigInt(y) + 1n) % (1n << 256n), 32) });
        c("the negated key", item, { keyType: "p256", x, y: toBeHex(P256_FIELD - BigInt(y), 32) });
      }
    }
  });
  return out;
}

const P256_FIELD = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;

describe("oracle signature verification (native and WebAssembly secp256k1, OpenSSL P-256, worker pool)", function () {
  this.timeout(60_000);
  const devices = [device(1n, "secp256k1"), device(2n, "p256"), device(3n, "secp256k1"), device(4n, "p256")];
  const all = cases(devices);
  const backends: Secp256k1Backend[] = SECP256K1_BACKEND === "native" ? ["native", "wasm"] : ["wasm"];

  it("loads the native secp256k1 binding where the package ships one (linux-x64 here), and uses it by default", () => {
    const forcedWasm = process.env.ORACLE_SECP256K1 === "wasm";
    if (platform() === "linux" && arch() === "x64" && !forcedWasm) expect(SECP256K1_BACKEND).to.equal("native");
    if (SECP256K1_BACKEND === "wasm") expect(() => new FastVerifier(domain, 4, "native")).to.throw(/native binding/);
  });

  it("the test cases have both verdicts on each curve", () => {
    for (const curve of ["secp256k1", "p256"]) {
      const verdicts = all.filter((c) => c.key.keyType === curve).map(sdkVerdict);
      expect(verdicts.filter((v) => v).length, curve).to.be.at.least(6);
      expect(verdicts.filter((v) => !v).length, curve).to.be.greaterThan(30);
    }
  });

  it("digests are byte for byte the sdk's readingDigest and readingWindowDigest", () => {
    const digests = new ItemDigests(domain);
    const edge: Reading[] = [
      { deviceId: 1n, sequence: 0, observedAt: 1, tempCentiC: -32768, flags: 0, previousObservedAt: 0 },
      {
        deviceId: (1n << 64n) - 1n,
        sequence: 2 ** 32 - 1,
        observedAt: 2 ** 40 - 1,
        tempCentiC: 32767,
        flags: 255,
        previousObservedAt: 2 ** 40 - 2,
      },
      {
        deviceId: 12648430n,
        sequence: 42,
        observedAt: 1_767_225_600,
        tempCentiC: -1,
        flags: 3,
        previousObservedAt: 1_767_225_300,
      },
    ];
    const random: Reading[] = Array.from({ length: 300 }, () => {
      const observedAt = Math.max(1, randomBytes(5).readUIntBE(0, 5));
      return {
        deviceId: BigInt(hexlify(randomBytes(8))) | 1n,
        sequence: randomBytes(4).readUInt32BE(),
        observedAt,
        tempCentiC: randomBytes(2).readInt16BE(),
        flags: randomBytes(1).readUInt8(),
        previousObservedAt: Math.floor(Math.random() * observedAt),
      };
    });
    for (const reading of [...edge, ...random]) {
      const item: SignedItem = { kind: "reading", reading, signature: "0x" };
      expect(hexlify(digests.of(item))).to.equal(readingDigest(domain, reading));
    }
    for (const r of [...edge, ...random.slice(0, 50)]) {
      const count = 1 + (r.sequence % 256);
      const window: ReadingWindow = {
        deviceId: r.deviceId,
        firstSequence: Math.min(r.sequence, 2 ** 32 - count),
        firstObservedAt: Math.min(r.observedAt, 2 ** 39),
        intervalSeconds: r.sequence % 4000,
        samples: Array.from({ length: count }, (_, i) => ({
          tempCentiC: r.tempCentiC ^ i,
          flags: (r.flags + i) % 256,
        })),
        previousObservedAt: Math.min(r.previousObservedAt, Math.min(r.observedAt, 2 ** 39) - 1),
      };
      const item: SignedItem = { kind: "window", window, signature: "0x" };
      expect(hexlify(digests.of(item))).to.equal(readingWindowDigest(domain, window));
    }
    const bad = { kind: "reading", reading: { ...edge[0], sequence: -1 }, signature: "0x" } as SignedItem;
    expect(() => digests.of(bad)).to.throw(/sequence/);
  });

  it("gives the sdk's verdict for first-seen devices, kept keys, and after evictions, on each backend", () => {
    for (const backend of backends) {
      for (const cacheSize of [0, 1, 128]) {
        const v = new FastVerifier(domain, cacheSize, backend);
        for (let round = 0; round < 2; round++) {
          for (const c of all) {
            const what = `${c.what}; ${backend}, cache ${cacheSize}, round ${round}`;
            expect(v.verify(c.item, c.key), what).to.equal(sdkVerdict(c));
          }
        }
        expect(v.cachedKeys).to.be.at.most(cacheSize);
      }
      // Every case on a verifier that never saw the device (a fresh one each time).
      for (const c of all) {
        expect(new FastVerifier(domain, 128, backend).verify(c.item, c.key), `${c.what}; ${backend}`).to.equal(
          sdkVerdict(c),
        );
      }
    }
  });

  it("a device's kept public key refuses a valid signature by another key (secp256k1, each backend)", () => {
    const [a, , b] = devices as [TestDevice, TestDevice, TestDevice];
    for (const backend of backends) {
      const v = new FastVerifier(domain, 128, backend);
      expect(v.verify(signed(a, 1), a.verification), backend).to.equal(true); // a's key is now kept
      expect(v.verify(signed(b, 1), a.verification), backend).to.equal(false);
      expect(v.verify(flip(signed(a, 2), 32, 0x80), a.verification), backend).to.equal(false); // other yParity
      expect(v.verify(signed(a, 2), a.verification), backend).to.equal(true);
    }
  });

  it("windows: valid, tampered, and another device's key", () => {
    const v = new FastVerifier(domain);
    for (const d of devices) {
      const item = signWindow(
        domain,
        {
          deviceId: d.id,
          firstSequence: 10,
          firstObservedAt: 1_700_000_000,
          intervalSeconds: 300,
          samples: [
            { tempCentiC: 450, flags: 0 },
            { tempCentiC: -20, flags: 1 },
          ],
          previousObservedAt: 1_699_999_700,
        },
        d.key,
      );
      const tampered: SignedItem = { ...item, window: { ...item.window, intervalSeconds: 301 } };
      expect(v.verify(item, d.verification)).to.equal(true);
      expect(v.verify(tampered, d.verification)).to.equal(false);
      expect(v.verify(item, (devices[Number(d.id + 1n) % 4] as TestDevice).verification)).to.equal(false);
    }
  });

  it("verifyDigest agrees with the sdk on random digests and on the P-256 corner case u1 = 0", () => {
    for (const backend of backends) agreesOnDigests(new FastVerifier(domain, 4, backend));
  });

  it("P-256 corner case t·G = Q (digest e = d·r): the doubling Q + t·G goes to @noble/curves, valid and tampered", () => {
    // A signature made with a chosen nonce k so that e / r = d, the private key: then t·G = Q in the
    // verifier's R = u2·(Q + t·G), which the point addition cannot take.
    const n = P256_N;
    const modn = (a: bigint): bigint => ((a % n) + n) % n;
    for (let i = 0; i < 4; i++) {
      const d = modn(BigInt(hexlify(randomBytes(32)))) || 1n;
      const k = modn(BigInt(hexlify(randomBytes(32)))) || 1n;
      const r = modn(p256.Point.BASE.multiply(k).x);
      const e = modn(d * r);
      let s = modn(p256.Point.Fn.inv(k) * modn(e + r * d));
      if (s > n / 2n) s = n - s;
      const Q = p256.Point.BASE.multiply(d);
      const key: DeviceVerificationKey = { keyType: "p256", x: toBeHex(Q.x, 32), y: toBeHex(Q.y, 32) };
      const digest = getBytes(toBeHex(e, 32));
      const signature = words(r, s);
      expect(verifyDigest(key, digest, signature), "the sdk's verdict").to.equal(true);
      expect(new FastVerifier(domain).verifyDigest(digest, signature, key)).to.equal(true);
      const other = words(r, s === 1n ? 2n : s - 1n);
      expect(new FastVerifier(domain).verifyDigest(digest, other, key)).to.equal(verifyDigest(key, digest, other));
    }
  });

  function agreesOnDigests(v: FastVerifier): void {
    const digests = [new Uint8Array(32), getBytes(toBeHex(P256_N, 32)), getBytes(toBeHex(SECP256K1_N, 32))];
    for (let i = 0; i < 40; i++) digests.push(randomBytes(32));
    for (const digest of digests) {
      for (const d of devices) {
        const signature =
          d.key.keyType === "secp256k1"
            ? signDigestSecp256k1(digest, d.key.privateKey)
            : signDigestP256(digest, d.key.privateKey);
        for (const key of devices.map((x) => x.verification)) {
          const expected = key.keyType === d.key.keyType && verifyDigest(key, digest, signature);
          expect(v.verifyDigest(digest, signature, key), hexlify(digest)).to.equal(expected);
        }
      }
    }
    expect(
      v.verifyDigest(new Uint8Array(31), signed(devices[0] as TestDevice, 1).signature, devices[0]!.verification),
    ).to.equal(false);
  }

  it("the worker pool gives the same verdicts, in batches and one at a time", async () => {
    const pool = new VerifyPool(domain, 2, 16);
    try {
      const verdicts = await Promise.all(all.map((c) => pool.check(c.item, c.key)));
      expect(verdicts).to.deep.equal(all.map(sdkVerdict));
      // One at a time too (a batch of one per turn).
      for (const c of all.slice(0, 10)) expect(await pool.check(c.item, c.key), c.what).to.equal(sdkVerdict(c));
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

  it("a worker answers a large batch in parts of ANSWER_EVERY verdicts, in order (commits need not wait for all)", async () => {
    const pool = new VerifyPool(domain, 1, 16);
    try {
      const batch = [...all, ...all].slice(0, 10 * ANSWER_EVERY + 3);
      const verdicts = await Promise.all(batch.map((c) => pool.check(c.item, c.key)));
      expect(verdicts).to.deep.equal(batch.map(sdkVerdict));
      expect(pool.answers).to.equal(Math.ceil(batch.length / ANSWER_EVERY));
    } finally {
      await pool.close();
    }
  });
});
