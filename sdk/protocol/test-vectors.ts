/**
 * Golden test vectors: fixed keys, a fixed domain and fixed messages, with every intermediate
 * value as a literal. Firmware, the contracts' Solidity tests and docs/protocol.md use the same
 * numbers; `scripts/print-test-vectors.ts` recomputes and prints them, and test/protocol.test.ts
 * asserts that the recomputation equals these literals.
 *
 * THE KEYS ARE PUBLIC TEST KEYS. Never use them for anything but tests.
 */
import { hexlify, SigningKey } from "ethers";

import { encodeBatch } from "./batch.js";
import {
  CUSTODY_ACCEPTANCE_TYPEHASH,
  custodyAcceptanceDigest,
  domainSeparator,
  EIP712_DOMAIN_TYPEHASH,
  hashCustodyAcceptance,
  hashReading,
  hashReadingWindow,
  READING_TYPEHASH,
  READING_WINDOW_TYPEHASH,
  readingDigest,
  readingWindowDigest,
} from "./eip712.js";
import { packReadingRecord } from "./events.js";
import { encodeSamples } from "./samples.js";
import { p256PublicKey, secp256k1Address, signDigestP256, signDigestSecp256k1 } from "./signing.js";
import type { ColdChainDomain, CustodyAcceptance, Reading, ReadingWindow } from "./types.js";

/** secp256k1 test device key. */
export const TEST_SECP256K1_PRIVATE_KEY = "0x0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/** Its Ethereum address (what the registry stores). */
export const TEST_SECP256K1_ADDRESS = "0xFCAd0B19bB29D4674531d6f115237E16AfCE377c";
/** P-256 test device key. */
export const TEST_P256_PRIVATE_KEY = "0x1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";
/** Its public key (what the registry stores). */
export const TEST_P256_PUBLIC_KEY = {
  x: "0x984225585d2285c138033d6140e3cef8b91859704e53c313f8b636ba4f967649",
  y: "0x9734144f46fd19a767a545287c4396b97b69dd38faaea8981adc1a4fed9b401e",
} as const;

/**
 * Hardhat's default chain id and the address of the first contract its first account creates (on a fresh local
 * chain a deploy puts one of the suite's other contracts there, not ColdChain): see also TEST_ALT_DOMAIN.
 */
export const TEST_DOMAIN: ColdChainDomain = {
  chainId: 31337n,
  verifyingContract: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
};

/**
 * A second domain: Sepolia's chain id and a made-up verifyingContract (no local deploy creates a contract there). TEST_DOMAIN's
 * address is where a fresh Hardhat chain puts its first contract (not ColdChain in a local deploy of the suite)
 * and 31337 is Hardhat's chain id, so firmware that hard-codes either still passes the TEST_DOMAIN vectors: it
 * cannot pass these.
 */
export const TEST_ALT_DOMAIN: ColdChainDomain = {
  chainId: 11155111n,
  verifyingContract: "0xC0C0c0c0C0C0c0c0c0C0c0C0C0C0C0C0C0C0c0c0",
};

/** 5.12 °C, no flags, 2026-01-01T00:00:00Z; the device's previous reading was five minutes earlier. */
export const TEST_READING: Reading = {
  deviceId: 0xc0ffeen,
  sequence: 42,
  observedAt: 1767225600,
  tempCentiC: 512,
  flags: 0,
  previousObservedAt: 1767225300,
};

/** −18.50 °C with LOW_BATTERY, the next reading of the same device five minutes later (its predecessor: TEST_READING). */
export const TEST_NEGATIVE_READING: Reading = {
  deviceId: 0xc0ffeen,
  sequence: 43,
  observedAt: 1767225900,
  tempCentiC: -1850,
  flags: 0x02,
  previousObservedAt: 1767225600,
};

/**
 * Four readings five minutes apart: 4.50, 5.05, 8.12 (above 2–8 °C) and −0.30 °C, with no predecessor
 * (previousObservedAt 0: the first readings of a device), so the vectors show both a named predecessor and none.
 */
export const TEST_WINDOW: ReadingWindow = {
  deviceId: 0xc0ffeen,
  firstSequence: 100,
  firstObservedAt: 1767225600,
  intervalSeconds: 300,
  samples: [
    { tempCentiC: 450, flags: 0 },
    { tempCentiC: 505, flags: 0 },
    { tempCentiC: 812, flags: 0 },
    { tempCentiC: -30, flags: 0 },
  ],
  previousObservedAt: 0,
};

/** The secp256k1 test account accepts custody of shipment 7 (Ethereum wallet signature, 65 bytes). */
export const TEST_CUSTODY_ACCEPTANCE: CustodyAcceptance = {
  shipmentId: 7n,
  custodian: TEST_SECP256K1_ADDRESS,
  nonce: 1n,
  deadline: 1767312000n,
};

/** Everything derived from the inputs above. */
export interface TestVectorValues {
  readonly secp256k1Address: string;
  readonly p256PublicKey: { readonly x: string; readonly y: string };
  readonly typehashes: {
    readonly eip712Domain: string;
    readonly reading: string;
    readonly readingWindow: string;
    readonly custodyAcceptance: string;
  };
  readonly domainSeparator: string;
  readonly reading: ReadingVector;
  readonly negativeReading: ReadingVector;
  readonly window: {
    readonly samples: string;
    readonly structHash: string;
    readonly digest: string;
    readonly secp256k1Signature: string;
    readonly p256Signature: string;
  };
  readonly custodyAcceptance: { readonly structHash: string; readonly digest: string; readonly signature: string };
  /** TEST_READING and TEST_WINDOW under TEST_ALT_DOMAIN (their hashStructs are those above: only the domain differs). */
  readonly altDomain: {
    readonly domainSeparator: string;
    readonly reading: SignatureVector;
    readonly window: SignatureVector;
  };
  /**
   * encodeBatch([reading, negativeReading, window]) with the secp256k1 signatures: one READINGS
   * item of two readings, then one WINDOW item (an encoding vector for the contract's decoder).
   */
  readonly batch: string;
}

/** A digest and its signatures with both test keys. */
export interface SignatureVector {
  readonly digest: string;
  /** 64-byte EIP-2098 compact. */
  readonly secp256k1Signature: string;
  /** 64-byte r || s, low-s. */
  readonly p256Signature: string;
}

/** The vectors of one reading. */
export interface ReadingVector {
  readonly structHash: string;
  readonly digest: string;
  /** 64-byte EIP-2098 compact. */
  readonly secp256k1Signature: string;
  /** 64-byte r || s, low-s. */
  readonly p256Signature: string;
  /** The 12-byte record of the reading in ReadingsRecorded (sequence, observedAt, tempCentiC, flags). */
  readonly record: string;
}

/** Recomputes every vector from the inputs (deterministic: RFC 6979 signatures). */
export function computeTestVectors(): TestVectorValues {
  const readingVector = (reading: Reading): ReadingVector => {
    const digest = readingDigest(TEST_DOMAIN, reading);
    return {
      structHash: hashReading(reading),
      digest,
      secp256k1Signature: signDigestSecp256k1(digest, TEST_SECP256K1_PRIVATE_KEY),
      p256Signature: signDigestP256(digest, TEST_P256_PRIVATE_KEY),
      record: packReadingRecord(reading),
    };
  };
  const reading = readingVector(TEST_READING);
  const negativeReading = readingVector(TEST_NEGATIVE_READING);
  const windowDigest = readingWindowDigest(TEST_DOMAIN, TEST_WINDOW);
  const window = {
    samples: hexlify(encodeSamples(TEST_WINDOW.samples)),
    structHash: hashReadingWindow(TEST_WINDOW),
    digest: windowDigest,
    secp256k1Signature: signDigestSecp256k1(windowDigest, TEST_SECP256K1_PRIVATE_KEY),
    p256Signature: signDigestP256(windowDigest, TEST_P256_PRIVATE_KEY),
  };
  const custodyDigest = custodyAcceptanceDigest(TEST_DOMAIN, TEST_CUSTODY_ACCEPTANCE);
  const signatures = (digest: string): SignatureVector => ({
    digest,
    secp256k1Signature: signDigestSecp256k1(digest, TEST_SECP256K1_PRIVATE_KEY),
    p256Signature: signDigestP256(digest, TEST_P256_PRIVATE_KEY),
  });
  const batch = encodeBatch([
    { kind: "reading", reading: TEST_READING, signature: reading.secp256k1Signature },
    { kind: "reading", reading: TEST_NEGATIVE_READING, signature: negativeReading.secp256k1Signature },
    { kind: "window", window: TEST_WINDOW, signature: window.secp256k1Signature },
  ]);
  return {
    secp256k1Address: secp256k1Address(TEST_SECP256K1_PRIVATE_KEY),
    p256PublicKey: p256PublicKey(TEST_P256_PRIVATE_KEY),
    typehashes: {
      eip712Domain: EIP712_DOMAIN_TYPEHASH,
      reading: READING_TYPEHASH,
      readingWindow: READING_WINDOW_TYPEHASH,
      custodyAcceptance: CUSTODY_ACCEPTANCE_TYPEHASH,
    },
    domainSeparator: domainSeparator(TEST_DOMAIN),
    reading,
    negativeReading,
    window,
    custodyAcceptance: {
      structHash: hashCustodyAcceptance(TEST_CUSTODY_ACCEPTANCE),
      digest: custodyDigest,
      signature: new SigningKey(TEST_SECP256K1_PRIVATE_KEY).sign(custodyDigest).serialized,
    },
    altDomain: {
      domainSeparator: domainSeparator(TEST_ALT_DOMAIN),
      reading: signatures(readingDigest(TEST_ALT_DOMAIN, TEST_READING)),
      window: signatures(readingWindowDigest(TEST_ALT_DOMAIN, TEST_WINDOW)),
    },
    batch: hexlify(batch),
  };
}

/** The expected values, as literals (printed into docs/protocol.md by scripts/print-test-vectors.ts). */
export const TEST_VECTORS: TestVectorValues = {
  secp256k1Address: "0xFCAd0B19bB29D4674531d6f115237E16AfCE377c",
  p256PublicKey: TEST_P256_PUBLIC_KEY,
  typehashes: {
    eip712Domain: "0x8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f",
    reading: "0x4dd0e7f7450ddaeece55422ef8d1517ba8873984bb66995f3ae177b7e7df9951",
    readingWindow: "0xf5d575fa12cac3c1f00c02633ee5b7193ae2c25068531e391e82f118852f7c53",
    custodyAcceptance: "0xa7a32312fc68c532f2367b2797507678ca0c2863744fd0b3e7dfcca706bc1814",
  },
  domainSeparator: "0xbd6d8dfdb0784def1a6e0b8ee00edd22f8ba191589f67b01789bc11fa6aa9288",
  reading: {
    structHash: "0x4890ebfc93e2ec9a7d00592114a767f64ebed7eb70fc0eb723fc65e9b9e974f8",
    digest: "0xf20658c9df7879ee6f3a3bf9774f1152c33889578caec49abd6fc6802924e77c",
    secp256k1Signature:
      "0xf8f4fab1c164448b5f4ab906b0d56b499906d30ee439de7e8bf1048c6d225f3098beb6a9998339d4c402e82f5934cc84c173909e08ad44b9cd7ceacb1544c004",
    p256Signature:
      "0xed6139cd359d9c2f17bf4826fb652dfb28f4968d0db8fa23f390c0bbde8afe2244d5558290717dee927157de5aa2cdf2531689f8f3ba11804d94945cb8317260",
    record: "0x0000002a006955b900020000",
  },
  negativeReading: {
    structHash: "0x1009e87d418ae627123e47dc51488877680f3a4adf097ba66fb63e4ca173a787",
    digest: "0xeb64f8069978aed680d05f0d2fe5aca124e837f1c15ffa2c65d2bbec358997d2",
    secp256k1Signature:
      "0x9103c00667cb0a4db82836df9722190168d82a815d65ed833b8bbbd5d2fb1c1d36d33758d58b15fd11166ed9e92d6c3ae2ea7b53c43e58a43b9d609409efa672",
    p256Signature:
      "0x50e64f78f48d7198185423adc242bf5c13a8654922c42b8fe6d4942697283a980020978bfb44bbcd7290c70c9d86625f971eadf475d53fd5f3f646dbd3717df3",
    record: "0x0000002b006955ba2cf8c602",
  },
  window: {
    samples: "0x01c20001f900032c00ffe200",
    structHash: "0x7a8584f84886a01baf7f416202c1f6bb6f54031ffefadc494426217e0e2ae7bf",
    digest: "0xadf9ddb454ba731e12b37a19486d6bec53b56cc2e63489c6f2ecbacef34eefb9",
    secp256k1Signature:
      "0xd83c88dd19b0ae0e5cb1d142ed6bd670dd1e9ef8c20dc213490af141aa73451c019dc1f533d12010b8af511ebac6d4641e822792b8d22f438439c5d72a0e121b",
    p256Signature:
      "0x91dbf338e6f9dcb4d7ba3c6250c7c036bf144319314a67e57b3186f433e59fc67373e2a0ca74a7d29a37a4f33fb087602867b8243c4f7f821b10f4076ae47081",
  },
  custodyAcceptance: {
    structHash: "0xe3197aa4f7a521ba237b1d6ac48eb271e04ee5faff8da33028d075bb4b825c82",
    digest: "0x3cb3ad0acf144cea9ce0e4cecf7bdd4d4c6bbb98a5ec2bc50f67206d9ff267f4",
    signature:
      "0x23aeaf3655ab00728a9b4ab7b95dd6d57cf3d65c14a4c85fe33720eb0cdfa53313f7399955a367938b25b9faf7eb6003c36979b8e813084520ff16c5d44757fa1c",
  },
  altDomain: {
    domainSeparator: "0x443e839fae78a2ec9a6643c10761cc0d3fd0a544ae6b510bf5a5e2321567d215",
    reading: {
      digest: "0x5ca3f40b70f1ebecb2856fb30f2dc2bae712444dc9d0e5869dfd38bb73f5edcb",
      secp256k1Signature:
        "0xc5e9b3ce49977c5812732ba7480d83bd52945d94a1d1588b389811b19c582c93250019d5230fb03cd38e08557fa8e09b9ae55de20894f2a53f5972f6d29e0a41",
      p256Signature:
        "0x6bb5c07a91c4c3526b4d593eb4ca8ee04f8f0485c4f0d44fd297b727f8364da861138adf846a4ab524a84da19a4942427ddab68ba57c0c446b8099c7dd95b8c1",
    },
    window: {
      digest: "0x76d4556de21903366dbe0cb99be059d86f49f5ac8a82337607f82d4cf52a9a74",
      secp256k1Signature:
        "0x73fb110032d867d19d0011fff076326c51c9305ba8ec2a8a657b277eaf321b8d1bc1d932b635b883305c2e91ddb0e775d3115630c0d9917b638fea8d84c0c794",
      p256Signature:
        "0xd641ae3ac6e475001716cf69be3716fe2f429078d1fb01630515d17ded160670187a698befc3d43eb3144a383520bfe71626e350c20ec20a7ad50ffbb3abc14f",
    },
  },
  batch: [
    "0x",
    "02", // version 2
    "010000000000c0ffee0002", // READINGS: kind, deviceId 0xc0ffee, count 2
    "0000002a006955b900020000", // sequence 42, observedAt 1767225600, 5.12 °C, flags 0
    "006955b7d4", // previousObservedAt 1767225300
    "f8f4fab1c164448b5f4ab906b0d56b499906d30ee439de7e8bf1048c6d225f3098beb6a9998339d4c402e82f5934cc84c173909e08ad44b9cd7ceacb1544c004", // signature (secp256k1)
    "0000002b006955ba2cf8c602", // sequence 43, observedAt 1767225900, −18.50 °C, flags 0x02
    "006955b900", // previousObservedAt 1767225600
    "9103c00667cb0a4db82836df9722190168d82a815d65ed833b8bbbd5d2fb1c1d36d33758d58b15fd11166ed9e92d6c3ae2ea7b53c43e58a43b9d609409efa672", // signature (secp256k1)
    "020000000000c0ffee00000064006955b9000000012c0004", // WINDOW: kind, deviceId, firstSequence 100, firstObservedAt, interval 300, count 4
    "0000000000", // previousObservedAt 0
    "01c20001f900032c00ffe200", // samples 450/0, 505/0, 812/0, −30/0
    "d83c88dd19b0ae0e5cb1d142ed6bd670dd1e9ef8c20dc213490af141aa73451c019dc1f533d12010b8af511ebac6d4641e822792b8d22f438439c5d72a0e121b", // signature (secp256k1)
  ].join(""),
};
