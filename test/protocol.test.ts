/**
 * Unit tests of sdk/protocol: EIP-712 hashing (against ethers' TypedDataEncoder), device signatures
 * on both curves (against ethers and the EVM precompiles), the batch envelope, event records, MKT
 * (table mirror against the float64 reference) and the golden vectors.
 */
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";

import { p256 } from "@noble/curves/nist.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { expect } from "chai";
import {
  AbiCoder,
  concat,
  getAddress,
  getBytes,
  hexlify,
  id,
  Interface,
  keccak256,
  SigningKey,
  toBeHex,
  toUtf8Bytes,
  TypedDataEncoder,
  verifyTypedData,
  Wallet,
  zeroPadValue,
} from "ethers";
import { network } from "hardhat";

import {
  calldataGas,
  calldataTokens,
  assertHandoverSigner,
  computeTestVectors,
  CUSTODY_ACCEPTANCE_TYPE,
  decodeHandover,
  encodeHandover,
  HANDOVER_LENGTH,
  HandoverError,
  handoverSigner,
  CUSTODY_ACCEPTANCE_TYPES,
  custodyAcceptanceDigest,
  custodyAcceptanceTypedData,
  decodeBatch,
  decodeMqttPayload,
  decodeSamples,
  domainSeparator,
  EIP712_DOMAIN_TYPE,
  EIP712_DOMAIN_TYPEHASH,
  encodeBatch,
  encodeBatchItems,
  encodedBatchSize,
  encodeMqttPayload,
  encodeSamples,
  expandReadings,
  expandWindow,
  flattenBatchItems,
  groupBatchItems,
  hashCustodyAcceptance,
  hashReading,
  hashReadingWindow,
  isP256HighS,
  isProtocolError,
  MQTT_JSON_VERSION,
  MqttPayloadError,
  mqttJsonOf,
  mktAccumulate,
  mktFactorIndex,
  mktTable,
  normaliseP256S,
  onchainMktCentiC,
  onchainMktOfReadings,
  P256_HALF_N,
  P256_N,
  p256PublicKey,
  packReadingRecord,
  BATCH_VERSION,
  DOMAIN_VERSION,
  READING_BYTES,
  READING_TYPE,
  READING_TYPEHASH,
  READING_TYPES,
  READING_WINDOW_TYPE,
  READING_WINDOW_TYPEHASH,
  READING_WINDOW_TYPES,
  readingDigest,
  readingsItemSize,
  readingTypedValue,
  readingWindowDigest,
  readingWindowTypedValue,
  READINGS_EVENTS_ABI,
  READINGS_HEADER_BYTES,
  READINGS_MAX_COUNT,
  READING_RECORD_BYTES,
  WINDOW_HEADER_BYTES,
  recoverSecp256k1Signer,
  referenceMktCentiC,
  secp256k1Address,
  secp256k1CompactFromRS,
  SECP256K1_N,
  signCustodyAcceptance,
  signDigestP256,
  signDigestSecp256k1,
  signReading,
  signWindow,
  splitCompactSignature,
  TEST_ALT_DOMAIN,
  TEST_CUSTODY_ACCEPTANCE,
  TEST_DOMAIN,
  TEST_HANDOVER_TEXT,
  TEST_NEGATIVE_READING,
  TEST_P256_PRIVATE_KEY,
  TEST_P256_PUBLIC_KEY,
  TEST_READING,
  TEST_SECP256K1_ADDRESS,
  TEST_SECP256K1_PRIVATE_KEY,
  TEST_VECTORS,
  TEST_WINDOW,
  typedDataDigest,
  typedDataDomain,
  UINT40_MAX,
  UINT64_MAX,
  verificationKeyOf,
  verifyP256,
  verifySecp256k1,
  verifySignedItem,
  windowItemSize,
  windowReadings,
} from "../sdk/protocol/index.js";
import type {
  DevicePrivateKey,
  MktSample,
  ProtocolErrorCode,
  Reading,
  ReadingWindow,
  RecordedReading,
  SignedItem,
  SignedReading,
} from "../sdk/protocol/index.js";
import { MKT_TABLE_SOL_PATH, renderMktTableSol } from "../scripts/lib/mkt-table-sol.js";
import { renderTestVectorsMarkdown } from "../scripts/lib/test-vectors-md.js";
import { ColdChain__factory } from "../types/ethers-contracts/index.js";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const K1_KEY: DevicePrivateKey = { keyType: "secp256k1", privateKey: TEST_SECP256K1_PRIVATE_KEY };
const P256_KEY: DevicePrivateKey = { keyType: "p256", privateKey: TEST_P256_PRIVATE_KEY };

/** Deterministic PRNG (mulberry32) so every random case can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomInt(rand: () => number, min: number, max: number): number {
  return min + Math.floor(rand() * (max - min + 1));
}

function expectProtocolError(fn: () => unknown, code: ProtocolErrorCode, offset?: number): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(isProtocolError(thrown), `expected a ProtocolError ${code}, got ${String(thrown)}`).to.equal(true);
  if (!isProtocolError(thrown)) return;
  expect(thrown.code).to.equal(code);
  expect(thrown.message).to.match(new RegExp(`^${code}: `));
  if (offset !== undefined) expect(thrown.offset).to.equal(offset);
}

/** |actual − expected| ≤ tolerance, for floats (hardhat's chai matchers make closeTo integer-only). */
function expectClose(actual: number, expected: number, tolerance: number, message?: string): void {
  expect(
    Math.abs(actual - expected) <= tolerance,
    `${message ?? ""} expected ${actual} to be within ${tolerance} of ${expected}`,
  ).to.equal(true);
}

/** A syntactically valid 64-byte signature that encodes `tag` (the encoder does not verify). */
function fakeSignature(tag: number): string {
  return hexlify(new Uint8Array(64).fill(tag & 0xff));
}

/** A reading one minute after its predecessor, observed at `observedAt` (default: `sequence` minutes after 2026). */
function single(
  deviceId: bigint,
  sequence: number,
  tag = sequence,
  observedAt = 1767225600 + sequence * 60,
): SignedReading {
  return {
    kind: "reading",
    reading: {
      deviceId,
      sequence,
      observedAt,
      tempCentiC: 500 - (sequence % 1000),
      flags: 0,
      previousObservedAt: observedAt - 60,
    },
    signature: fakeSignature(tag),
  };
}

function window(deviceId: bigint, firstSequence: number, count: number): SignedItem {
  return {
    kind: "window",
    window: {
      deviceId,
      firstSequence,
      firstObservedAt: 1767225600,
      intervalSeconds: 300,
      samples: Array.from({ length: count }, (_, i) => ({ tempCentiC: -i * 7, flags: i % 8 })),
      previousObservedAt: 1767225300,
    },
    signature: fakeSignature(0xee),
  };
}

/** What the events keep of a reading: every field but previousObservedAt. */
function recordOf(reading: Reading): RecordedReading {
  const { previousObservedAt: _, ...record } = reading;
  return record;
}

const EXTREME_READINGS: Reading[] = [
  TEST_READING,
  TEST_NEGATIVE_READING,
  { deviceId: 1n, sequence: 0, observedAt: 1, tempCentiC: -32768, flags: 0xff, previousObservedAt: 0 },
  {
    deviceId: UINT64_MAX,
    sequence: 0xffff_ffff,
    observedAt: UINT40_MAX,
    tempCentiC: 32767,
    flags: 0x07,
    previousObservedAt: UINT40_MAX - 1,
  },
  {
    deviceId: 0x8000_0000_0000_0000n,
    sequence: 0x8000_0000,
    observedAt: 2 ** 39,
    tempCentiC: -1,
    flags: 0x80,
    previousObservedAt: 2 ** 32 + 0x0102_0304,
  },
];

// ---------------------------------------------------------------------------------------------
// EIP-712
// ---------------------------------------------------------------------------------------------

describe("protocol: EIP-712 hashing", () => {
  const domain = typedDataDomain(TEST_DOMAIN);

  it("type hashes are keccak256 of the exact type strings", () => {
    expect(EIP712_DOMAIN_TYPEHASH).to.equal(keccak256(toUtf8Bytes(EIP712_DOMAIN_TYPE)));
    expect(READING_TYPEHASH).to.equal(keccak256(toUtf8Bytes(READING_TYPE)));
    expect(READING_WINDOW_TYPEHASH).to.equal(keccak256(toUtf8Bytes(READING_WINDOW_TYPE)));
    expect(TypedDataEncoder.from(READING_TYPES).encodeType("Reading")).to.equal(READING_TYPE);
    expect(TypedDataEncoder.from(READING_WINDOW_TYPES).encodeType("ReadingWindow")).to.equal(READING_WINDOW_TYPE);
    expect(TypedDataEncoder.from(CUSTODY_ACCEPTANCE_TYPES).encodeType("CustodyAcceptance")).to.equal(
      CUSTODY_ACCEPTANCE_TYPE,
    );
  });

  it("protocol v2: domain version 2, previousObservedAt (uint40) signed last in both types, and it changes the digest", () => {
    expect(DOMAIN_VERSION).to.equal("2");
    expect(domain.version).to.equal("2");
    expect(READING_TYPE).to.equal(
      "Reading(uint64 deviceId,uint32 sequence,uint40 observedAt,int16 tempCentiC,uint8 flags,uint40 previousObservedAt)",
    );
    expect(READING_WINDOW_TYPE).to.equal(
      "ReadingWindow(uint64 deviceId,uint32 firstSequence,uint40 firstObservedAt,uint32 intervalSeconds,bytes samples,uint40 previousObservedAt)",
    );
    expect(READING_TYPES.Reading?.at(-1)).to.deep.equal({ name: "previousObservedAt", type: "uint40" });
    expect(READING_WINDOW_TYPES.ReadingWindow?.at(-1)).to.deep.equal({ name: "previousObservedAt", type: "uint40" });
    expect(Object.keys(readingTypedValue(TEST_READING)).at(-1)).to.equal("previousObservedAt");
    expect(readingWindowTypedValue(TEST_WINDOW).previousObservedAt).to.equal(0);
    // hashStruct's last word is previousObservedAt.
    const words = AbiCoder.defaultAbiCoder().encode(
      ["bytes32", "uint64", "uint32", "uint40", "int16", "uint8", "uint40"],
      [READING_TYPEHASH, 0xc0ffeen, 42, 1767225600, 512, 0, 1767225300],
    );
    expect(hashReading(TEST_READING)).to.equal(keccak256(words));
    // Another predecessor is another signed message, for a reading and for a window.
    expect(hashReading({ ...TEST_READING, previousObservedAt: 0 })).to.not.equal(hashReading(TEST_READING));
    expect(hashReadingWindow({ ...TEST_WINDOW, previousObservedAt: 1 })).to.not.equal(hashReadingWindow(TEST_WINDOW));
    const signed = signReading(TEST_DOMAIN, TEST_READING, K1_KEY);
    const moved = {
      ...signed,
      reading: { ...TEST_READING, previousObservedAt: TEST_READING.previousObservedAt - 300 },
    };
    expect(verifySignedItem(TEST_DOMAIN, moved, verificationKeyOf(K1_KEY))).to.equal(false);
  });

  it("the domain separator agrees with ethers", () => {
    expect(domainSeparator(TEST_DOMAIN)).to.equal(TypedDataEncoder.hashDomain(domain));
    const other = { chainId: 11155111n, verifyingContract: "0x000000000000000000000000000000000000dEaD" };
    expect(domainSeparator(other)).to.equal(TypedDataEncoder.hashDomain(typedDataDomain(other)));
    expect(domainSeparator(other)).to.not.equal(domainSeparator(TEST_DOMAIN));
  });

  it("Reading struct hashes and digests agree with ethers, extremes and negatives included", () => {
    for (const reading of EXTREME_READINGS) {
      const value = readingTypedValue(reading);
      expect(hashReading(reading)).to.equal(TypedDataEncoder.hashStruct("Reading", READING_TYPES, value));
      expect(readingDigest(TEST_DOMAIN, reading)).to.equal(TypedDataEncoder.hash(domain, READING_TYPES, value));
    }
  });

  it("ReadingWindow struct hashes and digests agree with ethers (1, 4 and 256 samples)", () => {
    const windows: ReadingWindow[] = [
      TEST_WINDOW,
      { ...TEST_WINDOW, samples: [{ tempCentiC: -32768, flags: 0xff }] },
      {
        ...TEST_WINDOW,
        deviceId: UINT64_MAX,
        firstSequence: 0xffff_ffff - 255,
        samples: Array.from({ length: 256 }, (_, i) => ({ tempCentiC: i * 257 - 32768, flags: i })),
      },
    ];
    for (const w of windows) {
      const value = readingWindowTypedValue(w);
      expect(hashReadingWindow(w)).to.equal(TypedDataEncoder.hashStruct("ReadingWindow", READING_WINDOW_TYPES, value));
      expect(readingWindowDigest(TEST_DOMAIN, w)).to.equal(TypedDataEncoder.hash(domain, READING_WINDOW_TYPES, value));
    }
  });

  it("CustodyAcceptance hash agrees with ethers, and a wallet signature recovers the custodian", async () => {
    const { domain: d, types, value } = custodyAcceptanceTypedData(TEST_DOMAIN, TEST_CUSTODY_ACCEPTANCE);
    expect(hashCustodyAcceptance(TEST_CUSTODY_ACCEPTANCE)).to.equal(
      TypedDataEncoder.hashStruct("CustodyAcceptance", types, value),
    );
    expect(custodyAcceptanceDigest(TEST_DOMAIN, TEST_CUSTODY_ACCEPTANCE)).to.equal(
      TypedDataEncoder.hash(d, types, value),
    );
    const signature = await signCustodyAcceptance(
      new Wallet(TEST_SECP256K1_PRIVATE_KEY),
      TEST_DOMAIN,
      TEST_CUSTODY_ACCEPTANCE,
    );
    expect(getBytes(signature)).to.have.length(65);
    expect(verifyTypedData(d, types, value, signature)).to.equal(TEST_CUSTODY_ACCEPTANCE.custodian);
  });

  it("the samples bytes are int16 big-endian two's complement then flags", () => {
    const samples = [
      { tempCentiC: 450, flags: 0 },
      { tempCentiC: -30, flags: 0x05 },
      { tempCentiC: -32768, flags: 0xff },
      { tempCentiC: 32767, flags: 0x80 },
    ];
    const bytes = encodeSamples(samples);
    expect(hexlify(bytes)).to.equal("0x01c200ffe2058000ff7fff80");
    expect(decodeSamples(bytes)).to.deep.equal(samples);
    expectProtocolError(() => decodeSamples("0x01c2"), "WINDOW_INVALID");
  });

  it("rejects out-of-range fields with typed errors", () => {
    expectProtocolError(() => hashReading({ ...TEST_READING, deviceId: 0n }), "READING_INVALID");
    expectProtocolError(() => hashReading({ ...TEST_READING, deviceId: UINT64_MAX + 1n }), "READING_INVALID");
    expectProtocolError(() => hashReading({ ...TEST_READING, sequence: -1 }), "READING_INVALID");
    expectProtocolError(() => hashReading({ ...TEST_READING, sequence: 2 ** 32 }), "READING_INVALID");
    expectProtocolError(() => hashReading({ ...TEST_READING, observedAt: UINT40_MAX + 1 }), "READING_INVALID");
    expectProtocolError(() => hashReading({ ...TEST_READING, tempCentiC: 32768 }), "READING_INVALID");
    expectProtocolError(() => hashReading({ ...TEST_READING, tempCentiC: 5.5 }), "READING_INVALID");
    expectProtocolError(() => hashReading({ ...TEST_READING, flags: 256 }), "READING_INVALID");
    // previousObservedAt: a uint40 before observedAt; 0 (no predecessor) is fine.
    expect(() => hashReading({ ...TEST_READING, previousObservedAt: 0 })).to.not.throw();
    expect(() => hashReading({ ...TEST_READING, previousObservedAt: TEST_READING.observedAt - 1 })).to.not.throw();
    for (const previousObservedAt of [-1, 1.5, TEST_READING.observedAt, TEST_READING.observedAt + 1, UINT40_MAX + 1]) {
      expectProtocolError(() => hashReading({ ...TEST_READING, previousObservedAt }), "READING_INVALID");
    }
    expectProtocolError(
      () => hashReading({ ...TEST_READING, previousObservedAt: undefined as unknown as number }),
      "READING_INVALID",
    );
    expect(() => hashReading({ ...TEST_READING, previousObservedAt: TEST_READING.observedAt })).to.throw(
      /previousObservedAt \(1767225600\) must be before observedAt \(1767225600\)/,
    );
    expectProtocolError(
      () => hashReading({ ...TEST_READING, observedAt: 0, previousObservedAt: 0 }),
      "READING_INVALID",
    );
    expectProtocolError(
      () => hashReadingWindow({ ...TEST_WINDOW, previousObservedAt: TEST_WINDOW.firstObservedAt }),
      "WINDOW_INVALID",
    );
    expectProtocolError(() => hashReadingWindow({ ...TEST_WINDOW, previousObservedAt: -1 }), "WINDOW_INVALID");
    expect(() =>
      hashReadingWindow({ ...TEST_WINDOW, previousObservedAt: TEST_WINDOW.firstObservedAt - 1 }),
    ).to.not.throw();
    expectProtocolError(() => hashReadingWindow({ ...TEST_WINDOW, samples: [] }), "WINDOW_INVALID");
    const tooMany = Array.from({ length: 257 }, () => ({ tempCentiC: 0, flags: 0 }));
    expectProtocolError(() => hashReadingWindow({ ...TEST_WINDOW, samples: tooMany }), "WINDOW_INVALID");
    expectProtocolError(() => hashReadingWindow({ ...TEST_WINDOW, firstSequence: 0xffff_ffff - 2 }), "WINDOW_INVALID");
    expectProtocolError(
      () => hashReadingWindow({ ...TEST_WINDOW, firstObservedAt: UINT40_MAX - 600 }),
      "WINDOW_INVALID",
    );
    expectProtocolError(
      () => hashReadingWindow({ ...TEST_WINDOW, samples: [{ tempCentiC: -40000, flags: 0 }] }),
      "WINDOW_INVALID",
    );
    expectProtocolError(
      () => hashCustodyAcceptance({ ...TEST_CUSTODY_ACCEPTANCE, custodian: "0x1234" }),
      "CUSTODY_ACCEPTANCE_INVALID",
    );
    expectProtocolError(
      () => hashCustodyAcceptance({ ...TEST_CUSTODY_ACCEPTANCE, nonce: -1n }),
      "CUSTODY_ACCEPTANCE_INVALID",
    );
    expectProtocolError(
      () => domainSeparator({ chainId: 0n, verifyingContract: TEST_DOMAIN.verifyingContract }),
      "DOMAIN_INVALID",
    );
    expectProtocolError(() => domainSeparator({ chainId: 1n, verifyingContract: "0xnope" }), "DOMAIN_INVALID");
  });
});

// ---------------------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------------------

describe("protocol: device signatures", () => {
  const digest = readingDigest(TEST_DOMAIN, TEST_READING);

  it("secp256k1: sign, recover and verify round-trip on many digests", () => {
    const rand = prng(7);
    for (let i = 0; i < 25; i++) {
      const reading = {
        ...TEST_READING,
        sequence: randomInt(rand, 0, 0xffff_ffff),
        tempCentiC: randomInt(rand, -3000, 3000),
      };
      const d = readingDigest(TEST_DOMAIN, reading);
      const sig = signDigestSecp256k1(d, TEST_SECP256K1_PRIVATE_KEY);
      expect(getBytes(sig)).to.have.length(64);
      expect(recoverSecp256k1Signer(d, sig)).to.equal(TEST_SECP256K1_ADDRESS);
      expect(verifySecp256k1(d, sig, TEST_SECP256K1_ADDRESS)).to.equal(true);
      expect(verifySecp256k1(d, sig, TEST_SECP256K1_ADDRESS.toLowerCase())).to.equal(true);
      expect(
        verifySecp256k1(readingDigest(TEST_DOMAIN, { ...reading, flags: 1 }), sig, TEST_SECP256K1_ADDRESS),
      ).to.equal(false);
      expect(verifySecp256k1(d, sig, TEST_DOMAIN.verifyingContract)).to.equal(false);
    }
  });

  it("secp256k1: the signature is the EIP-2098 compact form of ethers' (low-s, yParity in the top bit)", () => {
    const ours = signDigestSecp256k1(digest, TEST_SECP256K1_PRIVATE_KEY);
    const theirs = new SigningKey(TEST_SECP256K1_PRIVATE_KEY).sign(digest);
    expect(ours).to.equal(theirs.compactSerialized);
    const { r, s, yParity } = splitCompactSignature(ours);
    expect(toBeHex(r, 32)).to.equal(theirs.r);
    expect(toBeHex(s, 32)).to.equal(theirs.s);
    expect(yParity).to.equal(theirs.yParity);
    expect(s <= SECP256K1_N >> 1n).to.equal(true);
    expect(signDigestSecp256k1(digest, TEST_SECP256K1_PRIVATE_KEY)).to.equal(ours); // RFC 6979: deterministic
  });

  it("secp256k1: a high-s or out-of-range signature recovers nothing", () => {
    const { r } = splitCompactSignature(signDigestSecp256k1(digest, TEST_SECP256K1_PRIVATE_KEY));
    const highS = (SECP256K1_N >> 1n) + 1n; // fits the 255 bits of yParityAndS, but s > n/2
    expect(recoverSecp256k1Signer(digest, concat([toBeHex(r, 32), toBeHex(highS, 32)]))).to.equal(undefined);
    expect(recoverSecp256k1Signer(digest, concat([toBeHex(0n, 32), toBeHex(1n, 32)]))).to.equal(undefined);
    expect(recoverSecp256k1Signer(digest, concat([toBeHex(SECP256K1_N, 32), toBeHex(1n, 32)]))).to.equal(undefined);
    expect(verifySecp256k1(digest, concat([toBeHex(r, 32), toBeHex(highS, 32)]), TEST_SECP256K1_ADDRESS)).to.equal(
      false,
    );
  });

  it("nonces are RFC 6979 with HMAC-SHA256 and the digest itself as h1, on both curves", () => {
    /** RFC 6979 §3.2 for a 256-bit order and SHA-256, with node:crypto's HMAC (independent of noble's DRBG). */
    const rfc6979K = (privateKey: string, h1: string, n: bigint): bigint => {
      const hmac = (key: Uint8Array, ...parts: Uint8Array[]): Uint8Array => {
        const h = createHmac("sha256", key);
        for (const part of parts) h.update(part);
        return new Uint8Array(h.digest());
      };
      const x = getBytes(privateKey);
      const h = getBytes(toBeHex(BigInt(h1) % n, 32)); // bits2octets(h1)
      let v: Uint8Array = new Uint8Array(32).fill(1);
      let k: Uint8Array = new Uint8Array(32);
      k = hmac(k, v, Uint8Array.of(0), x, h);
      v = hmac(k, v);
      k = hmac(k, v, Uint8Array.of(1), x, h);
      v = hmac(k, v);
      for (;;) {
        v = hmac(k, v);
        const candidate = BigInt(hexlify(v));
        if (candidate >= 1n && candidate < n) return candidate;
        k = hmac(k, v, Uint8Array.of(0));
        v = hmac(k, v);
      }
    };
    for (const d of [TEST_VECTORS.reading.digest, TEST_VECTORS.window.digest, TEST_VECTORS.altDomain.reading.digest]) {
      const k1 = rfc6979K(TEST_SECP256K1_PRIVATE_KEY, d, SECP256K1_N);
      expect(splitCompactSignature(signDigestSecp256k1(d, TEST_SECP256K1_PRIVATE_KEY)).r).to.equal(
        secp256k1.Point.BASE.multiply(k1).toAffine().x % SECP256K1_N,
      );
      const k2 = rfc6979K(TEST_P256_PRIVATE_KEY, d, P256_N);
      expect(BigInt(hexlify(getBytes(signDigestP256(d, TEST_P256_PRIVATE_KEY)).subarray(0, 32)))).to.equal(
        p256.Point.BASE.multiply(k2).toAffine().x % P256_N,
      );
    }
    // Another nonce (hedged: extra entropy) gives another signature that verifies as well.
    const hedged = p256.sign(getBytes(digest), getBytes(TEST_P256_PRIVATE_KEY), {
      prehash: false,
      lowS: true,
      extraEntropy: true,
    });
    const hedgedSig = hexlify(hedged.toBytes("compact"));
    expect(hedgedSig).to.not.equal(signDigestP256(digest, TEST_P256_PRIVATE_KEY));
    expect(verifyP256(digest, hedgedSig, TEST_P256_PUBLIC_KEY)).to.equal(true);
  });

  it("secp256k1 without a recovery id: (r, s) from a secure element becomes the compact form by trying both parities", () => {
    const rand = prng(11);
    for (let i = 0; i < 8; i++) {
      const d = readingDigest(TEST_DOMAIN, { ...TEST_READING, sequence: randomInt(rand, 0, 0xffff_ffff) });
      // A secure element: (r, s) only, s either half (lowS: false), no recovery id.
      const bare = secp256k1.sign(getBytes(d), getBytes(TEST_SECP256K1_PRIVATE_KEY), { prehash: false, lowS: false });
      const compact = secp256k1CompactFromRS(d, bare.r, bare.s, TEST_SECP256K1_ADDRESS);
      expect(compact).to.equal(signDigestSecp256k1(d, TEST_SECP256K1_PRIVATE_KEY));
      expect(splitCompactSignature(compact).s <= SECP256K1_N >> 1n).to.equal(true);
      // The high-s twin gives the same compact signature (n − s, parity flipped).
      expect(secp256k1CompactFromRS(d, bare.r, SECP256K1_N - bare.s, TEST_SECP256K1_ADDRESS)).to.equal(compact);
    }
    const { r, s } = splitCompactSignature(TEST_VECTORS.reading.secp256k1Signature);
    expectProtocolError(
      () => secp256k1CompactFromRS(TEST_VECTORS.window.digest, r, s, TEST_SECP256K1_ADDRESS),
      "SIGNATURE_INVALID",
    );
    expectProtocolError(() => secp256k1CompactFromRS(digest, 0n, s, TEST_SECP256K1_ADDRESS), "SIGNATURE_INVALID");
  });

  it("P-256: sign and verify round-trip; the digest is the message hash (no extra SHA-256)", () => {
    const pub = p256PublicKey(TEST_P256_PRIVATE_KEY);
    expect(pub).to.deep.equal(TEST_P256_PUBLIC_KEY);
    const rand = prng(11);
    for (let i = 0; i < 25; i++) {
      const reading = {
        ...TEST_READING,
        sequence: randomInt(rand, 0, 0xffff_ffff),
        tempCentiC: randomInt(rand, -3000, 3000),
      };
      const d = readingDigest(TEST_DOMAIN, reading);
      const sig = signDigestP256(d, TEST_P256_PRIVATE_KEY);
      expect(getBytes(sig)).to.have.length(64);
      expect(isP256HighS(sig)).to.equal(false);
      expect(verifyP256(d, sig, pub)).to.equal(true);
      expect(verifyP256(readingDigest(TEST_DOMAIN, { ...reading, flags: 1 }), sig, pub)).to.equal(false);
      // Prehashing once more (SHA-256 of the digest) is a different message: must not verify.
      const pubBytes = concat(["0x04", pub.x, pub.y]);
      expect(p256.verify(getBytes(sig), getBytes(d), getBytes(pubBytes), { prehash: true })).to.equal(false);
    }
    expect(signDigestP256(digest, TEST_P256_PRIVATE_KEY)).to.equal(signDigestP256(digest, TEST_P256_PRIVATE_KEY));
  });

  it("P-256: the high-s twin is detected, rejected by verify and normalised back", () => {
    const rand = prng(13);
    let sawFlip = false;
    for (let i = 0; i < 10; i++) {
      const d = readingDigest(TEST_DOMAIN, { ...TEST_READING, sequence: randomInt(rand, 0, 1_000_000) });
      const low = signDigestP256(d, TEST_P256_PRIVATE_KEY);
      const r = getBytes(low).subarray(0, 32);
      const s = BigInt(hexlify(getBytes(low).subarray(32)));
      const twin = concat([r, toBeHex(P256_N - s, 32)]);
      expect(isP256HighS(twin)).to.equal(true);
      expect(P256_N - s > P256_HALF_N).to.equal(true);
      // Plain ECDSA accepts both forms; the protocol accepts only the low-s one.
      const pubBytes = getBytes(concat(["0x04", TEST_P256_PUBLIC_KEY.x, TEST_P256_PUBLIC_KEY.y]));
      expect(p256.verify(getBytes(twin), getBytes(d), pubBytes, { prehash: false, lowS: false })).to.equal(true);
      expect(verifyP256(d, twin, TEST_P256_PUBLIC_KEY)).to.equal(false);
      expect(normaliseP256S(twin)).to.equal(low);
      expect(normaliseP256S(low)).to.equal(low);
      sawFlip = true;
    }
    expect(sawFlip).to.equal(true);
    expectProtocolError(() => normaliseP256S(concat([toBeHex(0n, 32), toBeHex(1n, 32)])), "SIGNATURE_INVALID");
    expectProtocolError(() => normaliseP256S(concat([toBeHex(1n, 32), toBeHex(P256_N, 32)])), "SIGNATURE_INVALID");
  });

  it("curve-agnostic helpers sign and verify readings and windows; keys do not cross", () => {
    for (const key of [K1_KEY, P256_KEY]) {
      const vk = verificationKeyOf(key);
      const other = verificationKeyOf(key === K1_KEY ? P256_KEY : K1_KEY);
      const signedReading = signReading(TEST_DOMAIN, TEST_READING, key);
      const signedWindow = signWindow(TEST_DOMAIN, TEST_WINDOW, key);
      expect(verifySignedItem(TEST_DOMAIN, signedReading, vk)).to.equal(true);
      expect(verifySignedItem(TEST_DOMAIN, signedWindow, vk)).to.equal(true);
      expect(verifySignedItem(TEST_DOMAIN, signedReading, other)).to.equal(false);
      const otherDomain = { ...TEST_DOMAIN, chainId: 1n };
      expect(verifySignedItem(otherDomain, signedReading, vk)).to.equal(false);
      const tampered = { ...signedWindow, window: { ...TEST_WINDOW, intervalSeconds: 301 } };
      expect(verifySignedItem(TEST_DOMAIN, tampered, vk)).to.equal(false);
    }
    expect(verificationKeyOf(K1_KEY)).to.deep.equal({ keyType: "secp256k1", address: TEST_SECP256K1_ADDRESS });
  });

  it("rejects malformed keys, digests and signatures with typed errors", () => {
    expectProtocolError(() => signDigestSecp256k1(digest, toBeHex(0n, 32)), "KEY_INVALID");
    expectProtocolError(() => signDigestP256(digest, toBeHex(P256_N, 32)), "KEY_INVALID");
    expectProtocolError(() => signDigestP256(digest, "0x1234"), "KEY_INVALID");
    expectProtocolError(() => secp256k1Address("not hex"), "KEY_INVALID");
    expectProtocolError(() => signDigestSecp256k1("0x1234", TEST_SECP256K1_PRIVATE_KEY), "SIGNATURE_INVALID");
    expectProtocolError(() => verifyP256(digest, "0x1234", TEST_P256_PUBLIC_KEY), "SIGNATURE_INVALID");
    expectProtocolError(
      () => recoverSecp256k1Signer(digest, new SigningKey(TEST_SECP256K1_PRIVATE_KEY).sign(digest).serialized),
      "SIGNATURE_INVALID",
    );
    expectProtocolError(() => verifySecp256k1(digest, fakeSignature(1), "0x1234"), "KEY_INVALID");
    // A public key that is not on the curve verifies nothing.
    const sig = signDigestP256(digest, TEST_P256_PRIVATE_KEY);
    expect(verifyP256(digest, sig, { x: TEST_P256_PUBLIC_KEY.x, y: toBeHex(1n, 32) })).to.equal(false);
  });
});

describe("protocol: signatures against the EVM precompiles (EDR, osaka)", () => {
  it("P256VERIFY (0x100) accepts our P-256 signatures (and would accept the high-s twin: the contract must check s)", async () => {
    const { ethers } = await network.create();
    const call = async (d: string, sig: string): Promise<string> =>
      ethers.provider.call({
        to: "0x0000000000000000000000000000000000000100",
        data: concat([d, sig, TEST_P256_PUBLIC_KEY.x, TEST_P256_PUBLIC_KEY.y]),
      });
    const ONE = toBeHex(1n, 32);
    for (const d of [TEST_VECTORS.reading.digest, TEST_VECTORS.negativeReading.digest, TEST_VECTORS.window.digest]) {
      const sig = signDigestP256(d, TEST_P256_PRIVATE_KEY);
      expect(await call(d, sig)).to.equal(ONE);
      const s = BigInt(hexlify(getBytes(sig).subarray(32)));
      const twin = concat([getBytes(sig).subarray(0, 32), toBeHex(P256_N - s, 32)]);
      expect(await call(d, twin)).to.equal(ONE);
      expect(await call(TEST_VECTORS.custodyAcceptance.digest, sig)).to.equal("0x");
    }
  });

  it("ecrecover (0x01) recovers the device address from the expanded compact signature", async () => {
    const { ethers } = await network.create();
    for (const d of [TEST_VECTORS.reading.digest, TEST_VECTORS.window.digest]) {
      const { r, s, yParity } = splitCompactSignature(signDigestSecp256k1(d, TEST_SECP256K1_PRIVATE_KEY));
      const out = await ethers.provider.call({
        to: "0x0000000000000000000000000000000000000001",
        data: concat([d, toBeHex(27 + yParity, 32), toBeHex(r, 32), toBeHex(s, 32)]),
      });
      expect(getAddress(hexlify(getBytes(out).subarray(12)))).to.equal(TEST_SECP256K1_ADDRESS);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Batch envelope
// ---------------------------------------------------------------------------------------------

describe("protocol: batch envelope", () => {
  const A = 0xaaaan;
  const B = 0xbbbbn;
  const C = 0xccccn;

  it("groups consecutive readings of one device, keeps the caller's order, and round-trips", () => {
    const items: SignedItem[] = [
      single(A, 1),
      single(A, 2),
      single(B, 1),
      window(A, 10, 3),
      single(A, 3),
      single(A, 4),
      single(B, 2),
    ];
    const grouped = groupBatchItems(items);
    expect(
      grouped.map((g) => (g.kind === "readings" ? `R${g.deviceId.toString(16)}x${g.readings.length}` : "W")),
    ).to.deep.equal(["Raaaax2", "Rbbbbx1", "W", "Raaaax2", "Rbbbbx1"]);
    const batch = encodeBatch(items);
    expect(batch.length).to.equal(encodedBatchSize(grouped));
    expect(batch.length).to.equal(1 + readingsItemSize(2) * 2 + readingsItemSize(1) * 2 + windowItemSize(3));
    expect(readingsItemSize(1)).to.equal(11 + 81);
    expect(windowItemSize(4)).to.equal(29 + 12 + 64);
    const decoded = decodeBatch(batch);
    expect(decoded.map((d) => d.offset)).to.deep.equal([
      1,
      1 + 173,
      1 + 173 + 92,
      1 + 173 + 92 + 102,
      1 + 173 + 92 + 102 + 173,
    ]);
    expect(flattenBatchItems(decoded)).to.deep.equal(items);
    expect(hexlify(encodeBatchItems(decoded))).to.equal(hexlify(batch));
  });

  it("sortReadings orders readings by device then observation time (the chain's order) between windows, never across one", () => {
    const items: SignedItem[] = [
      single(B, 2),
      single(A, 2),
      // Device B lost its state: its counter restarted at 1, but this reading is its latest.
      single(B, 1, 1, 1767225600 + 3 * 60),
      single(B, 1),
      single(A, 1),
      window(C, 5, 2),
      single(C, 9),
      single(A, 3),
    ];
    const grouped = groupBatchItems(items, { sortReadings: true });
    const shape = grouped.map((g) =>
      g.kind === "readings"
        ? `${g.deviceId.toString(16)}:${g.readings.map((r) => `${r.reading.sequence}@${(r.reading.observedAt - 1767225600) / 60}`).join(",")}`
        : "W",
    );
    expect(shape).to.deep.equal(["aaaa:1@1,2@2", "bbbb:1@1,2@2,1@3", "W", "aaaa:3@3", "cccc:9@9"]);
    const decoded = flattenBatchItems(decodeBatch(encodeBatch(items, { sortReadings: true })));
    expect(decoded).to.have.length(items.length);
    // Without the option the order is the caller's: adjacent readings of one device only are grouped.
    expect(groupBatchItems(items)).to.have.length(7);
  });

  it("an empty item list encodes to the version byte alone", () => {
    const batch = encodeBatch([]);
    expect(hexlify(batch)).to.equal("0x02");
    expect(BATCH_VERSION).to.equal(2);
    expect(decodeBatch(batch)).to.deep.equal([]);
  });

  it("splits a run of more than 65,535 readings of one device into several READINGS items", () => {
    const items = Array.from({ length: READINGS_MAX_COUNT + 2 }, (_, i) => single(A, i, 1));
    const grouped = groupBatchItems(items);
    expect(grouped.map((g) => (g.kind === "readings" ? g.readings.length : -1))).to.deep.equal([READINGS_MAX_COUNT, 2]);
    const decoded = decodeBatch(encodeBatch(items));
    expect(decoded).to.have.length(2);
    expect(flattenBatchItems(decoded)).to.have.length(items.length);
  });

  it("the encoder rejects bad signatures and out-of-range values", () => {
    expectProtocolError(() => encodeBatch([{ ...single(A, 1), signature: "0x1234" }]), "SIGNATURE_INVALID");
    expectProtocolError(() => encodeBatch([{ ...single(A, 1), signature: "zz" }]), "SIGNATURE_INVALID");
    expectProtocolError(() => encodeBatch([single(0n, 1)]), "READING_INVALID");
    expectProtocolError(() => encodeBatch([window(A, 0, 0)]), "WINDOW_INVALID");
    expectProtocolError(() => encodeBatch([window(A, 0, 257)]), "WINDOW_INVALID");
    expectProtocolError(() => encodeBatchItems([{ kind: "readings", deviceId: A, readings: [] }]), "READING_INVALID");
    expectProtocolError(
      () => encodeBatchItems([{ kind: "readings", deviceId: A, readings: [single(B, 1)] }]),
      "READING_INVALID",
    );
  });

  it("decodes the golden batch field by field", () => {
    const decoded = decodeBatch(TEST_VECTORS.batch);
    expect(decoded).to.have.length(2);
    const [readings, win] = decoded;
    expect(readings).to.deep.equal({
      kind: "readings",
      deviceId: 0xc0ffeen,
      offset: 1,
      readings: [
        { kind: "reading", reading: TEST_READING, signature: TEST_VECTORS.reading.secp256k1Signature },
        { kind: "reading", reading: TEST_NEGATIVE_READING, signature: TEST_VECTORS.negativeReading.secp256k1Signature },
      ],
    });
    expect(win).to.deep.equal({
      kind: "window",
      window: TEST_WINDOW,
      signature: TEST_VECTORS.window.secp256k1Signature,
      offset: 174,
    });
  });

  it("previousObservedAt sits at bytes 12..16 of a reading and 24..28 of a window header (uint40, big-endian)", () => {
    expect([READING_BYTES, WINDOW_HEADER_BYTES, READING_RECORD_BYTES]).to.deep.equal([81, 29, 12]);
    const golden = getBytes(TEST_VECTORS.batch);
    const first = 1 + READINGS_HEADER_BYTES;
    const uint40 = (o: number): number => Number(BigInt(hexlify(golden.subarray(o, o + 5))));
    expect(uint40(first + 4)).to.equal(TEST_READING.observedAt);
    expect(uint40(first + 12)).to.equal(TEST_READING.previousObservedAt);
    expect(hexlify(golden.subarray(first + 17, first + READING_BYTES))).to.equal(
      TEST_VECTORS.reading.secp256k1Signature,
    );
    expect(uint40(first + READING_BYTES + 12)).to.equal(TEST_NEGATIVE_READING.previousObservedAt);
    const w = first + 2 * READING_BYTES;
    expect(golden[w]).to.equal(0x02);
    expect(uint40(w + 13)).to.equal(TEST_WINDOW.firstObservedAt);
    expect(uint40(w + 24)).to.equal(TEST_WINDOW.previousObservedAt);
    expect(hexlify(golden.subarray(w + WINDOW_HEADER_BYTES, w + WINDOW_HEADER_BYTES + 12))).to.equal(
      TEST_VECTORS.window.samples,
    );
    // A predecessor with all five bytes used round-trips, in a reading and in a window.
    const far = 0x01_0203_0405;
    const items: SignedItem[] = [
      {
        kind: "reading",
        reading: { ...TEST_READING, observedAt: far + 1, previousObservedAt: far },
        signature: fakeSignature(1),
      },
      {
        kind: "window",
        window: { ...TEST_WINDOW, firstObservedAt: far + 7, previousObservedAt: far },
        signature: fakeSignature(2),
      },
    ];
    const encoded = encodeBatch(items);
    expect(hexlify(encoded.subarray(first + 12, first + 17))).to.equal("0x0102030405");
    expect(hexlify(encoded.subarray(first + READING_BYTES + 24, first + READING_BYTES + 29))).to.equal("0x0102030405");
    expect(flattenBatchItems(decodeBatch(encoded))).to.deep.equal(items);
  });

  it("decoding returns a predecessor as found (the contract judges it); the encoder refuses one not before the reading", () => {
    const batch = getBytes(TEST_VECTORS.batch);
    const at = 1 + READINGS_HEADER_BYTES + 12;
    batch.set(getBytes(toBeHex(TEST_READING.observedAt + 5, 5)), at);
    const [item] = decodeBatch(batch);
    expect(item?.kind === "readings" ? item.readings[0]?.reading.previousObservedAt : -1).to.equal(
      TEST_READING.observedAt + 5,
    );
    expectProtocolError(() => encodeBatchItems(decodeBatch(batch)), "READING_INVALID");
    expectProtocolError(
      () => encodeBatch([{ ...single(A, 1), reading: { ...single(A, 1).reading, previousObservedAt: 1767225660 } }]),
      "READING_INVALID",
    );
  });

  it("reports every malformed envelope with a typed error and the offset", () => {
    expectProtocolError(() => decodeBatch("0x"), "BATCH_TRUNCATED", 0);
    expectProtocolError(() => decodeBatch("0x00"), "BATCH_VERSION_UNSUPPORTED", 0);
    expectProtocolError(() => decodeBatch("0x03010000"), "BATCH_VERSION_UNSUPPORTED", 0);
    // A protocol v1 batch (version 0x01) is refused, saying why.
    expectProtocolError(() => decodeBatch("0x01010000"), "BATCH_VERSION_UNSUPPORTED", 0);
    expect(() => decodeBatch("0x01010000")).to.throw(/0x01 is protocol v1/);
    expectProtocolError(() => decodeBatch("0x0203"), "BATCH_ITEM_KIND_UNKNOWN", 1);
    expectProtocolError(() => decodeBatch("0x0200"), "BATCH_ITEM_KIND_UNKNOWN", 1);
    const golden = getBytes(TEST_VECTORS.batch);
    const badKind = Uint8Array.from(golden);
    badKind[174] = 0x7f;
    expectProtocolError(() => decodeBatch(badKind), "BATCH_ITEM_KIND_UNKNOWN", 174);
    expectProtocolError(() => decodeBatch("0x02010000000000c0ffee0000"), "BATCH_COUNT_ZERO", 1);
    // A batch of version byte + one WINDOW header; `.slice(4)` drops "0x02" to append it as a second item.
    const windowHeader = (count: number): string =>
      concat([
        "0x02",
        "0x02",
        zeroPadValue("0xc0ffee", 8),
        toBeHex(100, 4),
        toBeHex(1767225600, 5),
        toBeHex(300, 4),
        toBeHex(count, 2),
        toBeHex(1767225300, 5),
      ]);
    expectProtocolError(() => decodeBatch(windowHeader(0)), "BATCH_COUNT_ZERO", 1);
    expectProtocolError(() => decodeBatch(windowHeader(257)), "BATCH_WINDOW_TOO_LARGE", 1);
    expectProtocolError(() => decodeBatch(concat([windowHeader(1), "0x000000"])), "BATCH_TRUNCATED", 1);
    expectProtocolError(() => decodeBatch(concat(["0x02", "0x010000000000c0ffee0002", "0x00"])), "BATCH_TRUNCATED", 1);
    // A WINDOW header cut inside its previousObservedAt is truncated.
    expectProtocolError(() => decodeBatch(windowHeader(1).slice(0, -2)), "BATCH_TRUNCATED", 1);
    // The contract skips (does not revert on) a window of 0 or > 256 samples; the lenient mode mirrors that.
    const lenient = decodeBatch(
      concat([
        windowHeader(0),
        fakeSignature(2),
        `0x${windowHeader(257).slice(4)}`,
        new Uint8Array(771),
        fakeSignature(3),
      ]),
      {
        allowMalformedWindows: true,
      },
    );
    expect(lenient.map((item) => (item.kind === "window" ? item.window.samples.length : -1))).to.deep.equal([0, 257]);
    expect(lenient.map((item) => item.offset)).to.deep.equal([1, 1 + 29 + 64]);
    expect(decodeBatch(concat([windowHeader(1), "0x000000", fakeSignature(1)]))).to.have.length(1);
    // The golden batch cut anywhere but an item boundary is truncated; at a boundary it decodes.
    const boundaries = new Map([
      [1, 0],
      [174, 1],
      [golden.length, 2],
    ]);
    for (let length = 1; length <= golden.length; length++) {
      const prefix = golden.subarray(0, length);
      const items = boundaries.get(length);
      if (items === undefined) expectProtocolError(() => decodeBatch(prefix), "BATCH_TRUNCATED");
      else expect(decodeBatch(prefix)).to.have.length(items);
    }
    // Trailing garbage after a valid item is an unknown kind or a truncated item, never silently ignored.
    expectProtocolError(() => decodeBatch(concat([golden, "0x01"])), "BATCH_TRUNCATED", golden.length);
  });

  it("calldataGas charges 16 per nonzero and 4 per zero byte; calldataTokens counts EIP-7623 tokens", () => {
    expect(calldataGas("0x")).to.equal(0);
    expect(calldataGas("0x00ff0001")).to.equal(4 + 16 + 4 + 16);
    expect(calldataTokens("0x00ff0001")).to.equal(1 + 4 + 1 + 4);
    const golden = getBytes(TEST_VECTORS.batch);
    const zeros = golden.filter((b) => b === 0).length;
    expect(calldataGas(golden)).to.equal(4 * zeros + 16 * (golden.length - zeros));
  });
});

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

describe("protocol: event decoding", () => {
  it("packs a reading into a 12-byte record at the documented byte positions", () => {
    const record = getBytes(packReadingRecord(TEST_NEGATIVE_READING));
    expect(record).to.have.length(12);
    const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
    expect(view.getUint32(0)).to.equal(43); // bytes 0..3: sequence
    expect(view.getUint8(4) * 2 ** 32 + view.getUint32(5)).to.equal(1767225900); // bytes 4..8: observedAt
    expect(view.getUint16(9)).to.equal(0x10000 - 1850); // bytes 9..10: tempCentiC, two's complement
    expect(view.getUint8(11)).to.equal(2); // byte 11: flags
    expect(packReadingRecord(TEST_NEGATIVE_READING)).to.equal("0x0000002b006955ba2cf8c602");
    // The deviceId is an argument of the event, not part of the record.
    expect(packReadingRecord({ ...TEST_NEGATIVE_READING, deviceId: 1n })).to.equal(
      packReadingRecord(TEST_NEGATIVE_READING),
    );
  });

  it("a record is the first 12 bytes of the reading in the batch", () => {
    const batch = getBytes(TEST_VECTORS.batch);
    const first = 1 + READINGS_HEADER_BYTES;
    expect(hexlify(batch.slice(first, first + 12))).to.equal(packReadingRecord(TEST_READING));
    expect(hexlify(batch.slice(first + READING_BYTES, first + READING_BYTES + 12))).to.equal(
      packReadingRecord(TEST_NEGATIVE_READING),
    );
  });

  it("pack/expand round-trips, negative and extreme values included, one record or many, hex or bytes", () => {
    for (const reading of EXTREME_READINGS) {
      const record = packReadingRecord(reading);
      // The record leaves previousObservedAt out: the event gives the other fields back.
      expect(packReadingRecord(recordOf(reading))).to.equal(record);
      expect(expandReadings({ deviceId: reading.deviceId, readings: record })).to.deep.equal([recordOf(reading)]);
      expect(expandReadings({ deviceId: reading.deviceId, readings: getBytes(record) })).to.deep.equal([
        recordOf(reading),
      ]);
    }
    const rand = prng(3);
    for (let i = 0; i < 50; i++) {
      const deviceId = BigInt(randomInt(rand, 1, 2 ** 31)) * BigInt(randomInt(rand, 1, 2 ** 31));
      const readings: RecordedReading[] = Array.from({ length: randomInt(rand, 1, 8) }, () => ({
        deviceId,
        sequence: randomInt(rand, 0, 0xffff_ffff),
        observedAt: randomInt(rand, 0, UINT40_MAX),
        tempCentiC: randomInt(rand, -32768, 32767),
        flags: randomInt(rand, 0, 255),
      }));
      const data = concat(readings.map(packReadingRecord));
      expect(expandReadings({ deviceId, readings: data })).to.deep.equal(readings);
      // deviceId as ethers may decode it from a log (bigint) or as a plain number.
      if (deviceId <= BigInt(Number.MAX_SAFE_INTEGER)) {
        expect(expandReadings({ deviceId: Number(deviceId), readings: data })).to.deep.equal(readings);
      }
    }
    expect(expandReadings({ deviceId: 1n, readings: "0x" })).to.deep.equal([]);
  });

  it("rejects records of the wrong length, a bad deviceId and out-of-range readings", () => {
    const two = concat([TEST_VECTORS.reading.record, TEST_VECTORS.negativeReading.record]);
    for (const length of [1, 11, 13, 23, 25, 32]) {
      const bytes = getBytes(concat([two, new Uint8Array(24)])).slice(0, length);
      expectProtocolError(() => expandReadings({ deviceId: 0xc0ffeen, readings: bytes }), "READINGS_INVALID");
    }
    expectProtocolError(() => expandReadings({ deviceId: 0n, readings: two }), "READINGS_INVALID");
    expectProtocolError(() => expandReadings({ deviceId: UINT64_MAX + 1n, readings: two }), "READINGS_INVALID");
    expectProtocolError(() => expandReadings({ deviceId: 1.5, readings: two }), "READINGS_INVALID");
    expectProtocolError(() => packReadingRecord({ ...TEST_READING, deviceId: 0n }), "READING_INVALID");
    expectProtocolError(() => packReadingRecord({ ...TEST_READING, sequence: 2 ** 32 }), "READING_INVALID");
    expectProtocolError(() => packReadingRecord({ ...TEST_READING, observedAt: UINT40_MAX + 1 }), "READING_INVALID");
    expectProtocolError(() => packReadingRecord({ ...TEST_READING, tempCentiC: -32769 }), "READING_INVALID");
    expectProtocolError(() => packReadingRecord({ ...TEST_READING, flags: 256 }), "READING_INVALID");
  });

  it("decodes ReadingsRecorded and WindowRecorded logs with the event ABI", () => {
    const iface = new Interface(READINGS_EVENTS_ABI);
    const shipmentTopic = toBeHex(7n, 32);
    const readingsEvent = iface.getEvent("ReadingsRecorded");
    const windowEvent = iface.getEvent("WindowRecorded");
    if (readingsEvent === null || windowEvent === null) throw new Error("event ABI is missing an event");
    expect(readingsEvent.topicHash).to.equal(keccak256(toUtf8Bytes("ReadingsRecorded(uint64,uint64,bytes)")));
    const readingsLog = iface.parseLog({
      topics: [readingsEvent.topicHash, shipmentTopic],
      data: AbiCoder.defaultAbiCoder().encode(
        ["uint64", "bytes"],
        [TEST_READING.deviceId, concat([TEST_VECTORS.reading.record, TEST_VECTORS.negativeReading.record])],
      ),
    });
    expect(readingsLog?.name).to.equal("ReadingsRecorded");
    expect(readingsLog?.args.getValue("shipmentId")).to.equal(7n);
    expect(
      expandReadings({
        deviceId: readingsLog?.args.getValue("deviceId") as bigint,
        readings: readingsLog?.args.getValue("readings") as string,
      }),
    ).to.deep.equal([recordOf(TEST_READING), recordOf(TEST_NEGATIVE_READING)]);
    const data = AbiCoder.defaultAbiCoder().encode(
      ["uint64", "uint32", "uint40", "uint32", "bytes"],
      [
        TEST_WINDOW.deviceId,
        TEST_WINDOW.firstSequence,
        TEST_WINDOW.firstObservedAt,
        TEST_WINDOW.intervalSeconds,
        TEST_VECTORS.window.samples,
      ],
    );
    const windowLog = iface.parseLog({ topics: [windowEvent.topicHash, shipmentTopic], data });
    const args = windowLog?.args;
    if (args === undefined) throw new Error("WindowRecorded did not parse");
    const readings = expandWindow({
      deviceId: args.getValue("deviceId") as bigint,
      firstSequence: args.getValue("firstSequence") as bigint,
      firstObservedAt: args.getValue("firstObservedAt") as bigint,
      intervalSeconds: args.getValue("intervalSeconds") as bigint,
      samples: args.getValue("samples") as string,
    });
    expect(readings).to.deep.equal(windowReadings(TEST_WINDOW).map(recordOf));
  });

  it("expands a window into readings with consecutive sequences and equally spaced times", () => {
    const readings = expandWindow({ ...TEST_WINDOW, samples: TEST_VECTORS.window.samples });
    expect(readings).to.deep.equal([
      { deviceId: 0xc0ffeen, sequence: 100, observedAt: 1767225600, tempCentiC: 450, flags: 0 },
      { deviceId: 0xc0ffeen, sequence: 101, observedAt: 1767225900, tempCentiC: 505, flags: 0 },
      { deviceId: 0xc0ffeen, sequence: 102, observedAt: 1767226200, tempCentiC: 812, flags: 0 },
      { deviceId: 0xc0ffeen, sequence: 103, observedAt: 1767226500, tempCentiC: -30, flags: 0 },
    ]);
    expectProtocolError(
      () => expandWindow({ ...TEST_WINDOW, firstSequence: 0xffff_ffff, samples: TEST_VECTORS.window.samples }),
      "WINDOW_INVALID",
    );
    expectProtocolError(() => expandWindow({ ...TEST_WINDOW, samples: "0x0102" }), "WINDOW_INVALID");
  });

  it("windowReadings chains a window's samples: the first names the window's predecessor, each other the sample before", () => {
    expect(windowReadings(TEST_WINDOW).map((r) => [r.previousObservedAt, r.observedAt])).to.deep.equal([
      [0, 1767225600],
      [1767225600, 1767225900],
      [1767225900, 1767226200],
      [1767226200, 1767226500],
    ]);
    const named = windowReadings({ ...TEST_WINDOW, previousObservedAt: 1767225300 });
    expect(named[0]?.previousObservedAt).to.equal(1767225300);
    expect(named.slice(1).map((r) => r.previousObservedAt)).to.deep.equal([1767225600, 1767225900, 1767226200]);
  });
});

// ---------------------------------------------------------------------------------------------
// MQTT payloads
// ---------------------------------------------------------------------------------------------

describe("protocol: MQTT payloads", () => {
  const reading = signReading(TEST_DOMAIN, TEST_READING, K1_KEY);
  const win = signWindow(TEST_DOMAIN, TEST_WINDOW, P256_KEY);
  const json = (o: Record<string, unknown>): Uint8Array => toUtf8Bytes(JSON.stringify(o));
  const expectInvalid = (payload: Uint8Array | string, message: RegExp): void => {
    let thrown: unknown;
    try {
      decodeMqttPayload(payload);
    } catch (error) {
      thrown = error;
    }
    expect(thrown, `expected MQTT_PAYLOAD_INVALID matching ${String(message)}`).to.be.instanceOf(MqttPayloadError);
    expect((thrown as MqttPayloadError).code).to.equal("MQTT_PAYLOAD_INVALID");
    expect((thrown as Error).message).to.match(message);
  };

  it("both forms carry previousObservedAt and round-trip, readings and windows", () => {
    for (const item of [reading, win]) {
      for (const format of ["json", "binary"] as const) {
        const decoded = decodeMqttPayload(encodeMqttPayload(item, format));
        expect(decoded).to.deep.equal({ format, item });
      }
    }
    expect(mqttJsonOf(reading)).to.deep.equal({
      v: 2,
      kind: "reading",
      deviceId: "12648430",
      sequence: 42,
      observedAt: 1767225600,
      tempCentiC: 512,
      flags: 0,
      previousObservedAt: 1767225300,
      signature: reading.signature,
    });
    expect(mqttJsonOf(win)).to.include({ v: MQTT_JSON_VERSION, previousObservedAt: 0, firstObservedAt: 1767225600 });
    // Binary: the batch envelope of one item (93 bytes for a reading, 94 + 3N for a window).
    expect(encodeMqttPayload(reading, "binary")).to.have.length(1 + READINGS_HEADER_BYTES + READING_BYTES);
    expect(encodeMqttPayload(reading, "binary")[0]).to.equal(0x02);
    expect(encodeMqttPayload(win, "binary")).to.have.length(94 + 3 * TEST_WINDOW.samples.length);
  });

  it("refuses a JSON message without previousObservedAt, with a bad one, or with an unknown field, naming it", () => {
    const base = mqttJsonOf(reading);
    const { previousObservedAt: _, ...missing } = base;
    expectInvalid(json(missing), /the field "previousObservedAt" is missing/);
    const { previousObservedAt: __, ...missingW } = mqttJsonOf(win);
    expectInvalid(json(missingW), /the field "previousObservedAt" is missing/);
    expectInvalid(json({ ...base, previousObservedAt: "1767225300" }), /previousObservedAt must be an integer/);
    expectInvalid(json({ ...base, previousObservedAt: -1 }), /previousObservedAt must be an integer/);
    expectInvalid(json({ ...base, previousObservedAt: 2 ** 40 }), /previousObservedAt must be an integer/);
    expectInvalid(json({ ...base, previousObservedAt: 1767225600 }), /must be before observedAt/);
    expectInvalid(json({ ...mqttJsonOf(win), previousObservedAt: 1767225601 }), /must be before firstObservedAt/);
    expectInvalid(json({ ...base, previous: 1767225300 }), /unknown field "previous"/);
    const { sequence: ___, ...noSequence } = base;
    expectInvalid(json(noSequence), /the field "sequence" is missing/);
  });

  it("refuses protocol v1 payloads with an error that says to update the device", () => {
    const { previousObservedAt: _, ...rest } = mqttJsonOf(reading);
    const v1 = { ...rest, v: 1 };
    expectInvalid(json(v1), /"v" must be 2 \(protocol v1 readings do not name their predecessor/);
    expectInvalid(json({ ...mqttJsonOf(reading), v: 3 }), /"v" must be 2$/);
    const binary = encodeMqttPayload(reading, "binary");
    const asV1 = Uint8Array.from(binary);
    asV1[0] = 0x01;
    expectInvalid(asV1, /protocol v1 \(first byte 0x01\).*update the device to protocol v2 \(first byte 0x02\)/);
    expectInvalid(Uint8Array.of(0x07, 0x01), /neither '\{' \(JSON form\) nor 0x02 \(binary form\)/);
  });

  it("refuses a binary message whose predecessor is not before its reading, and a truncated one", () => {
    const binary = encodeMqttPayload(reading, "binary");
    const bad = Uint8Array.from(binary);
    bad.set(getBytes(toBeHex(TEST_READING.observedAt, 5)), 1 + READINGS_HEADER_BYTES + 12);
    expectInvalid(bad, /previousObservedAt \(1767225600\) must be before observedAt/);
    expectInvalid(binary.subarray(0, binary.length - 1), /binary form: BATCH_TRUNCATED/);
    const w = encodeMqttPayload(win, "binary");
    const badW = Uint8Array.from(w);
    badW.set(getBytes(toBeHex(TEST_WINDOW.firstObservedAt + 1, 5)), 1 + 24);
    expectInvalid(badW, /must be before firstObservedAt/);
  });
});

// ---------------------------------------------------------------------------------------------
// MKT
// ---------------------------------------------------------------------------------------------

describe("protocol: mean kinetic temperature", () => {
  const table = mktTable();

  it("the table has 1601 strictly increasing uint64 entries from −80.0 to +80.0 °C", () => {
    expect(table).to.have.length(1601);
    for (let i = 1; i < table.length; i++) expect((table[i] ?? 0n) > (table[i - 1] ?? 0n), `entry ${i}`).to.equal(true);
    expect(table[0]).to.equal(BigInt(Math.round(Math.exp(-10000 / 193.15) * 1e30)));
    expect(table[1600]).to.equal(BigInt(Math.round(Math.exp(-10000 / 353.15) * 1e30)));
    expect((table[1600] ?? 0n) < 1n << 64n).to.equal(true);
    expectClose(Number(table[1600]), 5.03e17, 0.01e17);
    mktTable()[0] = 0n; // a copy: mutating it does not touch the module's table
    expect(mktTable()[0]).to.equal(table[0]);
  });

  it("mktFactorIndex rounds to the nearest 0.1 °C, halves upward, negatives included, and clamps", () => {
    const cases: [number, number][] = [
      [-32768, 0],
      [-8006, 0],
      [-8005, 0],
      [-8000, 0],
      [-7996, 0],
      [-7995, 1],
      [-6, 799],
      [-5, 800],
      [0, 800],
      [4, 800],
      [5, 801],
      [512, 851],
      [-1850, 615],
      [-1855, 615],
      [-1856, 614],
      [7994, 1599],
      [7995, 1600],
      [8000, 1600],
      [32767, 1600],
    ];
    for (const [temp, index] of cases) expect(mktFactorIndex(temp), `tempCentiC ${temp}`).to.equal(index);
    expectProtocolError(() => mktFactorIndex(1.5), "MKT_INPUT_INVALID");
  });

  it("contracts/MktTable.sol is generated from this table and up to date", () => {
    const source = readFileSync(MKT_TABLE_SOL_PATH, "utf8");
    expect(source).to.equal(renderMktTableSol(), "run: npx hardhat run --no-compile scripts/gen-mkt-table.ts");
    expect(source).to.contain("GENERATED by scripts/gen-mkt-table.ts — do not edit");
    const hex = [...source.matchAll(/hex"([0-9a-f]*)"/g)].map((m) => m[1]).join("");
    expect(`0x${hex}`).to.equal(concat(["0x00", ...table.map((v) => toBeHex(v, 8))]));
  });

  it("the deployed MktTable's runtime code is 0x00 followed by the big-endian entries", async () => {
    const { ethers } = await network.create();
    const contract = await ethers.deployContract("MktTable");
    const code = await ethers.provider.getCode(await contract.getAddress());
    expect(getBytes(code)).to.have.length(1 + 8 * 1601);
    expect(code).to.equal(concat(["0x00", ...table.map((v) => toBeHex(v, 8))]));
  });

  it("is exact for a constant temperature on the 0.1 °C grid, over the whole table", () => {
    for (let centi = -8000; centi <= 8000; centi += 10) {
      const samples: MktSample[] = [
        { tempCentiC: centi, seconds: 300 },
        { tempCentiC: centi, seconds: 7 },
      ];
      expect(onchainMktOfReadings(samples), `${centi}`).to.equal(centi);
      expectClose(referenceMktCentiC(samples), centi, 1e-6, `${centi}`);
    }
    // Off the grid, the reading is first quantised to the nearest 0.1 °C: 5.12 °C reads as 5.10 °C.
    expect(onchainMktOfReadings([{ tempCentiC: 512, seconds: 60 }])).to.equal(510);
  });

  it("a known two-level profile: half the time at 20 °C, half at 30 °C gives ≈ 26.26 °C", () => {
    const samples = [
      { tempCentiC: 2000, seconds: 3600 },
      { tempCentiC: 3000, seconds: 3600 },
    ];
    const reference = referenceMktCentiC(samples);
    const expected = (10000 / -Math.log((Math.exp(-10000 / 293.15) + Math.exp(-10000 / 303.15)) / 2) - 273.15) * 100;
    expectClose(reference, expected, 1e-9);
    expectClose(reference, 2626, 0.5);
    expectClose(onchainMktOfReadings(samples), reference, 5);
  });

  it("the on-chain mirror stays within 0.05 °C of the float64 reference on 200 random profiles (seeded)", () => {
    const profiles = [
      { min: 150, max: 950 }, // refrigerated, with excursions
      { min: -3000, max: -800 }, // freezer
      { min: 1200, max: 3200 }, // controlled room temperature
      { min: -7900, max: 7900 }, // the whole table
    ];
    let worst = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const rand = prng(seed);
      const profile = profiles[seed % profiles.length] ?? { min: 0, max: 0 };
      const samples: MktSample[] = Array.from({ length: randomInt(rand, 1, 60) }, () => ({
        tempCentiC: randomInt(rand, profile.min, profile.max),
        seconds: randomInt(rand, 1, 3600),
      }));
      const reference = referenceMktCentiC(samples);
      const onchain = onchainMktOfReadings(samples);
      const error = onchain - reference;
      worst = Math.max(worst, Math.abs(error));
      expectClose(onchain, reference, 5, `seed ${seed}:`);
    }
    expect(worst > 0).to.equal(true);
  });

  it("replay: a concrete freezer profile, by value", () => {
    const samples: MktSample[] = [
      { tempCentiC: -1850, seconds: 300 },
      { tempCentiC: -1205, seconds: 600 },
      { tempCentiC: -2999, seconds: 60 },
      { tempCentiC: -801, seconds: 1200 },
    ];
    const { sumWeighted, sumSeconds } = mktAccumulate(samples);
    expect(sumSeconds).to.equal(2160n);
    expect(onchainMktCentiC(sumWeighted, sumSeconds)).to.equal(-1009);
    expectClose(referenceMktCentiC(samples), -1010.2345639116777, 1e-9);
  });

  it("replay: the worst case of the error bound (every reading 0.04 °C above a grid point, floor loses ~0.01 °C)", () => {
    // Found by an adversarial search; the documented bound is (−0.0503, +0.05] °C (sdk/protocol/mkt.ts).
    const samples: MktSample[] = [
      { tempCentiC: -7676, seconds: 961 },
      { tempCentiC: -7696, seconds: 326 },
    ];
    const error = onchainMktOfReadings(samples) - referenceMktCentiC(samples);
    expect(error < -5 && error > -5.03, `error ${error}`).to.equal(true);
  });

  it("interpolates between table entries and clamps outside the table", () => {
    const f800 = table[800] ?? 0n;
    const f801 = table[801] ?? 0n;
    // A mean factor 30 % of the way from 0.0 °C to 0.1 °C reads 0.03 °C.
    const weighted = f800 * 10n + ((f801 - f800) * 10n * 3n) / 10n;
    expect(onchainMktCentiC(weighted, 10n)).to.equal(3);
    expect(onchainMktCentiC(f800 * 10n - 1n, 10n)).to.equal(-1);
    expect(onchainMktOfReadings([{ tempCentiC: -9000, seconds: 10 }])).to.equal(-8000);
    expect(onchainMktOfReadings([{ tempCentiC: 9000, seconds: 10 }])).to.equal(8000);
    expect(onchainMktCentiC(0n, 1n)).to.equal(-8000);
    expectProtocolError(() => onchainMktCentiC(1n, 0n), "MKT_NO_DATA");
    expectProtocolError(() => referenceMktCentiC([]), "MKT_NO_DATA");
    expectProtocolError(() => mktAccumulate([{ tempCentiC: 0, seconds: -1 }]), "MKT_INPUT_INVALID");
  });
});

// ---------------------------------------------------------------------------------------------
// Golden vectors
// ---------------------------------------------------------------------------------------------

describe("protocol: golden test vectors", () => {
  it("the recomputation equals the literals", () => {
    expect(computeTestVectors()).to.deep.equal(TEST_VECTORS);
  });

  it("the literals are consistent with the keys and with ethers", () => {
    expect(secp256k1Address(TEST_SECP256K1_PRIVATE_KEY)).to.equal(TEST_SECP256K1_ADDRESS);
    expect(p256PublicKey(TEST_P256_PRIVATE_KEY)).to.deep.equal(TEST_P256_PUBLIC_KEY);
    const domain = typedDataDomain(TEST_DOMAIN);
    expect(TEST_VECTORS.domainSeparator).to.equal("0xbd6d8dfdb0784def1a6e0b8ee00edd22f8ba191589f67b01789bc11fa6aa9288");
    expect(TEST_VECTORS.domainSeparator).to.equal(TypedDataEncoder.hashDomain(domain));
    expect(TEST_VECTORS.reading.digest).to.equal(
      TypedDataEncoder.hash(domain, READING_TYPES, readingTypedValue(TEST_READING)),
    );
    expect(TEST_VECTORS.window.digest).to.equal(
      TypedDataEncoder.hash(domain, READING_WINDOW_TYPES, readingWindowTypedValue(TEST_WINDOW)),
    );
    for (const v of [TEST_VECTORS.reading, TEST_VECTORS.negativeReading, TEST_VECTORS.window]) {
      expect(verifySecp256k1(v.digest, v.secp256k1Signature, TEST_SECP256K1_ADDRESS)).to.equal(true);
      expect(verifyP256(v.digest, v.p256Signature, TEST_P256_PUBLIC_KEY)).to.equal(true);
      expect(isP256HighS(v.p256Signature)).to.equal(false);
    }
    expect(TEST_VECTORS.reading.record).to.equal(packReadingRecord(TEST_READING));
    expect(
      expandReadings({ deviceId: TEST_NEGATIVE_READING.deviceId, readings: TEST_VECTORS.negativeReading.record }),
    ).to.deep.equal([recordOf(TEST_NEGATIVE_READING)]);
    expect(
      verifyTypedData(
        domain,
        CUSTODY_ACCEPTANCE_TYPES,
        { ...TEST_CUSTODY_ACCEPTANCE },
        TEST_VECTORS.custodyAcceptance.signature,
      ),
    ).to.equal(TEST_SECP256K1_ADDRESS);
  });

  it("a second domain (chain 11155111, verifyingContract 0xC0C0…): digests agree with ethers, signatures verify", () => {
    const alt = TEST_VECTORS.altDomain;
    const domain = typedDataDomain(TEST_ALT_DOMAIN);
    expect(TEST_ALT_DOMAIN.verifyingContract).to.equal(getAddress("0xc0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0"));
    expect(alt.domainSeparator).to.equal(TypedDataEncoder.hashDomain(domain));
    expect(alt.domainSeparator).to.equal("0x443e839fae78a2ec9a6643c10761cc0d3fd0a544ae6b510bf5a5e2321567d215");
    expect(alt.reading.digest).to.equal(TypedDataEncoder.hash(domain, READING_TYPES, readingTypedValue(TEST_READING)));
    expect(alt.window.digest).to.equal(
      TypedDataEncoder.hash(domain, READING_WINDOW_TYPES, readingWindowTypedValue(TEST_WINDOW)),
    );
    expect(alt.reading.digest).to.equal(typedDataDigest(alt.domainSeparator, TEST_VECTORS.reading.structHash));
    expect(alt.window.digest).to.equal(typedDataDigest(alt.domainSeparator, TEST_VECTORS.window.structHash));
    for (const v of [alt.reading, alt.window]) {
      expect(v.secp256k1Signature).to.equal(
        new SigningKey(TEST_SECP256K1_PRIVATE_KEY).sign(v.digest).compactSerialized,
      );
      expect(verifySecp256k1(v.digest, v.secp256k1Signature, TEST_SECP256K1_ADDRESS)).to.equal(true);
      expect(verifyP256(v.digest, v.p256Signature, TEST_P256_PUBLIC_KEY)).to.equal(true);
      expect(isP256HighS(v.p256Signature)).to.equal(false);
    }
    expect(
      verifySignedItem(
        TEST_ALT_DOMAIN,
        { kind: "window", window: TEST_WINDOW, signature: alt.window.p256Signature },
        verificationKeyOf(P256_KEY),
      ),
    ).to.equal(true);
    // Nothing carries over from the first domain: a signature for one does not verify for the other.
    const first = [TEST_VECTORS.domainSeparator, TEST_VECTORS.reading.digest, TEST_VECTORS.window.digest];
    for (const value of [alt.domainSeparator, alt.reading.digest, alt.window.digest])
      expect(first).to.not.include(value);
    expect(
      verifySecp256k1(alt.reading.digest, TEST_VECTORS.reading.secp256k1Signature, TEST_SECP256K1_ADDRESS),
    ).to.equal(false);
    expect(verifyP256(TEST_VECTORS.window.digest, alt.window.p256Signature, TEST_P256_PUBLIC_KEY)).to.equal(false);
  });

  it("the signed handover text (§2.6): the vector, its fields, and the refusals", () => {
    const vector = {
      domain: TEST_DOMAIN,
      acceptance: TEST_CUSTODY_ACCEPTANCE,
      signature: TEST_VECTORS.custodyAcceptance.signature,
    };
    expect(encodeHandover(vector)).to.equal(TEST_HANDOVER_TEXT);
    expect(TEST_HANDOVER_TEXT)
      .to.have.length(HANDOVER_LENGTH)
      .and.match(/^coldchain:handover:v1:[A-Za-z0-9_-]{174}$/);
    expect(decodeHandover(TEST_HANDOVER_TEXT, TEST_DOMAIN)).to.deep.equal(vector);
    expect(handoverSigner(vector)).to.equal(TEST_SECP256K1_ADDRESS);
    expect(() => assertHandoverSigner(vector)).to.not.throw();
    // The byte layout of docs/protocol.md: chainId u64 ‖ contract ‖ shipmentId u64 ‖ custodian ‖ nonce u32 ‖ deadline u40 ‖ sig.
    const bytes = Buffer.from(TEST_HANDOVER_TEXT.slice("coldchain:handover:v1:".length), "base64url");
    expect(hexlify(bytes)).to.equal(
      [
        "0x",
        zeroPadValue(toBeHex(31337), 8).slice(2),
        TEST_DOMAIN.verifyingContract.slice(2).toLowerCase(),
        zeroPadValue(toBeHex(7), 8).slice(2),
        TEST_SECP256K1_ADDRESS.slice(2).toLowerCase(),
        "00000001",
        zeroPadValue(toBeHex(1767312000), 5).slice(2),
        TEST_VECTORS.custodyAcceptance.signature.slice(2),
      ].join(""),
    );
    const code = (fn: () => unknown): string => {
      try {
        fn();
      } catch (error) {
        expect(error).to.be.instanceOf(HandoverError);
        return (error as HandoverError).code;
      }
      throw new Error("expected a HandoverError");
    };
    expect(code(() => decodeHandover(TEST_HANDOVER_TEXT, TEST_ALT_DOMAIN))).to.equal("HANDOVER_WRONG_DOMAIN");
    expect(code(() => decodeHandover('{"format":"coldchain-handover/1"}'))).to.equal("HANDOVER_LEGACY_FORMAT");
    expect(code(() => decodeHandover(TEST_HANDOVER_TEXT.slice(0, -4)))).to.equal("HANDOVER_MALFORMED");
    expect(code(() => encodeHandover({ ...vector, acceptance: { ...vector.acceptance, nonce: 1n << 32n } }))).to.equal(
      "HANDOVER_FIELD_RANGE",
    );
    const tampered = { ...vector, acceptance: { ...vector.acceptance, deadline: vector.acceptance.deadline + 1n } };
    expect(code(() => assertHandoverSigner(tampered))).to.equal("HANDOVER_SIGNER_MISMATCH");
  });

  it("docs/protocol.md carries the signed handover vector", () => {
    const doc = readFileSync(new URL("../docs/protocol.md", import.meta.url), "utf8");
    expect(doc).to.contain(TEST_HANDOVER_TEXT);
    expect(renderTestVectorsMarkdown(TEST_VECTORS)).to.contain(TEST_HANDOVER_TEXT);
  });

  it("docs/protocol.md lists the contract's event topics and error selector", () => {
    const doc = readFileSync(new URL("../docs/protocol.md", import.meta.url), "utf8");
    const abi = new Interface(ColdChain__factory.abi);
    const skipped = abi.getEvent("ReadingSkipped");
    expect(skipped?.format("sighash")).to.equal("ReadingSkipped(uint64,uint32,uint16,uint8)");
    expect(skipped?.topicHash).to.equal(id("ReadingSkipped(uint64,uint32,uint16,uint8)"));
    const malformed = abi.getError("BatchMalformed");
    expect(malformed?.format("sighash")).to.equal("BatchMalformed(uint256)");
    for (const fragment of [
      skipped,
      abi.getEvent("ReadingsRecorded"),
      abi.getEvent("WindowRecorded"),
      malformed,
      abi.getFunction("submitReadings"),
      abi.getFunction("transferCustodyWithSignature"),
    ]) {
      if (fragment === null || fragment === undefined) throw new Error("missing ABI fragment");
      const signature = fragment.format("sighash");
      const hash = "topicHash" in fragment ? fragment.topicHash : id(signature).slice(0, 10);
      expect(doc, signature).to.contain(`\`${signature}\``);
      expect(doc, signature).to.contain(`\`${hash}\``);
    }
    // SkipReason values, in the enum's order.
    const reasons = [
      "BadSignature",
      "UnknownDevice",
      "RevokedDevice",
      "UnboundDevice",
      "ShipmentNotActive",
      "StaleSequence",
      "DuplicateSequence",
      "FutureTimestamp",
      "OutsideShipmentWindow",
      "MalformedItem",
      "CustodyPending",
      "SequenceGap",
    ];
    reasons.forEach((name, code) => expect(doc).to.match(new RegExp(`\\| ${name} +\\| +${code} \\|`)));
  });

  it("the markdown for docs/protocol.md carries every value", () => {
    const md = renderTestVectorsMarkdown(TEST_VECTORS);
    const strings = (o: object): string[] => Object.values(o).filter((v): v is string => typeof v === "string");
    const values = [
      TEST_VECTORS.domainSeparator,
      ...strings(TEST_VECTORS.typehashes),
      ...strings(TEST_VECTORS.reading),
      ...strings(TEST_VECTORS.negativeReading),
      ...strings(TEST_VECTORS.window),
      ...strings(TEST_VECTORS.custodyAcceptance),
      TEST_VECTORS.altDomain.domainSeparator,
      ...strings(TEST_VECTORS.altDomain.reading),
      ...strings(TEST_VECTORS.altDomain.window),
      TEST_VECTORS.batch,
    ];
    expect(values).to.have.length(1 + 4 + 5 + 5 + 5 + 3 + 1 + 3 + 3 + 1);
    for (const value of values) expect(md).to.contain(value);
  });
});
