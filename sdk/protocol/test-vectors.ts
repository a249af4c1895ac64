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

/** 5.12 °C, no flags, 2026-01-01T00:00:00Z. */
export const TEST_READING: Reading = {
  deviceId: 0xc0ffeen,
  sequence: 42,
  observedAt: 1767225600,
  tempCentiC: 512,
  flags: 0,
};

/** −18.50 °C with LOW_BATTERY, the next reading of the same device five minutes later. */
export const TEST_NEGATIVE_READING: Reading = {
  deviceId: 0xc0ffeen,
  sequence: 43,
  observedAt: 1767225900,
  tempCentiC: -1850,
  flags: 0x02,
};

/** Four readings five minutes apart: 4.50, 5.05, 8.12 (above 2–8 °C) and −0.30 °C. */
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
    reading: "0xabe54e5555e29a5337ea42592382d2e9aa79d57e29147f0cbc533671e204ee8b",
    readingWindow: "0x587d359fc29d66ac1512554bb6a384a236c0be29ac7fd115354293ffab14404d",
    custodyAcceptance: "0xa7a32312fc68c532f2367b2797507678ca0c2863744fd0b3e7dfcca706bc1814",
  },
  domainSeparator: "0x56ecf7bb493d7bbe8d3f7f59a1ff6546cea075cdabefd7b23d9d3dd24d4c41c1",
  reading: {
    structHash: "0x349d2ad973ae3e0adfc5eac6b68882d7dd0767769f4a3d542e668bd370234a0f",
    digest: "0xd1b8e34dee4ee60a2a3a47303052a06a559b811345e14363fc7ac32887596734",
    secp256k1Signature:
      "0xfa8bb71f6a24b4a73feb718d714d8f8324825d710ce5b09f3b03a4472eda992f7441de4bdab4924d301736940609872f18b32961d167144ad2eeaa44caf384e6",
    p256Signature:
      "0xdca57cf587383e200c4bf06830b9f592acee9459d3137b13dde64d84e15ce7a93bd6ca1ea3e4611951eae44f07414f3ca576c83e4f9a62c91bf6225fa10bf257",
    record: "0x0000002a006955b900020000",
  },
  negativeReading: {
    structHash: "0x401ad689ed992159c4f90da9bf5f6365a5b032f584fec39269417540ca435c15",
    digest: "0x8d46ebe3f7d324344709c6ea65a150efcb01279e9a1c61289622251781d4d8ad",
    secp256k1Signature:
      "0x6368ff66766c66e2c0758aaeffaf191aedb336420c64cb8ce0dcfa090e1ebd31d095ab738405f671f01e727334cbcb2d91dd1ba47c6bf92838e6b43db6faef1b",
    p256Signature:
      "0x919159b921f819ed14a675bfbc423213826dc32195923d4ff789cd639cfc1a0a028288ecd157c565247c214a622863a2d812d72b7ddead271c82a15565448cfc",
    record: "0x0000002b006955ba2cf8c602",
  },
  window: {
    samples: "0x01c20001f900032c00ffe200",
    structHash: "0x470242d973aab594902c1699454479d7daf37f11dfd8e6206b93c695620f5d27",
    digest: "0x0f7bb3f397aa5f44d1e727a6cedfe10757806f01f1a2c56c86f41139aa9b91e1",
    secp256k1Signature:
      "0xbb9bbfdd2b9c1e6b18f3fd0e181b4a415f74bd5cb7372e30c8c0a80a710e29169f9a041c934fa812f08177da4c537e9329a4d9024ccc99b01bf36a442b19a095",
    p256Signature:
      "0xe2a52cf021cebf741a9c22985ebcaf8aaea32617f676c8549d6ab84cd8c712183c99d5cc1d60194ba7cc71d80419962367b31b24d5f56b9ddf6d66d7132fac51",
  },
  custodyAcceptance: {
    structHash: "0xe3197aa4f7a521ba237b1d6ac48eb271e04ee5faff8da33028d075bb4b825c82",
    digest: "0xe6ff2d1f2dee9321b8fbb9ff80184bef695e453d95c807e5a1f9c02ef959915b",
    signature:
      "0x6395fa40cabc6c1cd5617e25c07083732c6b4acc22b5690fa9d7d54f141dbd006ad22a68844c274eea26cc0d039c007274e245d1fbf7cf37d6317925967a73531c",
  },
  altDomain: {
    domainSeparator: "0xc858d12c4d50ef3fc58891dbeed4959fc9b793369299ec5b1864041c9117bd04",
    reading: {
      digest: "0x8ca2dc927943377d4e66eb4b4d7917ebc543cb8416824f0432d5023a90ae293b",
      secp256k1Signature:
        "0xc1a8c94bf0bcc4772c5bdfcc1a42a21e30f4b4ef4ed734455132469140f07ba3f1be69994d26e81841ba75236a6621f15cf30796488576c2889c14265b05af31",
      p256Signature:
        "0xd536045dd445b99665801a756cca556cc30fe86054bd46aaf04bd70a0720cd9a79c398aeba812895be4d918040288601c70a086c5d5089ecf190cd2283cb9e08",
    },
    window: {
      digest: "0xb9f059076f420142b4858d218da4f34bd161d1b22b8a6a0857496be034a9df66",
      secp256k1Signature:
        "0x5112722483c5cfa2c7f54d9f8025fb18140f096fba69341fcb818f87851434befca17db22eb7acca51fe089060b021f5141f7230218301dc132771217562361e",
      p256Signature:
        "0x511f79384c4038722c33ec7b2e7f185f6b290b391c0307616889150311be3f6f1134a3600c6b6a20a4d7738dcf81a30f77f23b2a902a3678ceafc9575c05732e",
    },
  },
  batch: [
    "0x",
    "01", // version
    "010000000000c0ffee0002", // READINGS: kind, deviceId 0xc0ffee, count 2
    "0000002a006955b900020000", // sequence 42, observedAt 1767225600, 5.12 °C, flags 0
    "fa8bb71f6a24b4a73feb718d714d8f8324825d710ce5b09f3b03a4472eda992f7441de4bdab4924d301736940609872f18b32961d167144ad2eeaa44caf384e6", // signature (secp256k1)
    "0000002b006955ba2cf8c602", // sequence 43, observedAt 1767225900, −18.50 °C, flags 0x02
    "6368ff66766c66e2c0758aaeffaf191aedb336420c64cb8ce0dcfa090e1ebd31d095ab738405f671f01e727334cbcb2d91dd1ba47c6bf92838e6b43db6faef1b", // signature (secp256k1)
    "020000000000c0ffee00000064006955b9000000012c0004", // WINDOW: kind, deviceId, firstSequence 100, firstObservedAt, interval 300, count 4
    "01c20001f900032c00ffe200", // samples 450/0, 505/0, 812/0, −30/0
    "bb9bbfdd2b9c1e6b18f3fd0e181b4a415f74bd5cb7372e30c8c0a80a710e29169f9a041c934fa812f08177da4c537e9329a4d9024ccc99b01bf36a442b19a095", // signature (secp256k1)
  ].join(""),
};
