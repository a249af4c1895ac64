/**
 * EIP-712 hashing of the ColdChain structs. Computed by hand (typehash + abi-encoded words) to
 * mirror what the contracts do; the tests check every hash against ethers' TypedDataEncoder.
 *
 *   digest = keccak256(0x1901 || domainSeparator || hashStruct(message))
 */
import { AbiCoder, concat, getAddress, hexlify, keccak256, toUtf8Bytes } from "ethers";
import type { TypedDataDomain, TypedDataField } from "ethers";

import {
  CUSTODY_ACCEPTANCE_TYPE,
  DOMAIN_NAME,
  DOMAIN_VERSION,
  EIP712_DOMAIN_TYPE,
  READING_TYPE,
  READING_WINDOW_TYPE,
  UINT256_MAX,
} from "./constants.js";
import { ProtocolError } from "./errors.js";
import { encodeSamples } from "./samples.js";
import type { ColdChainDomain, CustodyAcceptance, Reading, ReadingWindow } from "./types.js";
import { assertCustodyAcceptance, assertReading, assertWindow } from "./validate.js";

const abi = AbiCoder.defaultAbiCoder();

/** keccak256 of the EIP712Domain type string. */
export const EIP712_DOMAIN_TYPEHASH = keccak256(toUtf8Bytes(EIP712_DOMAIN_TYPE));
/** keccak256 of the Reading type string. */
export const READING_TYPEHASH = keccak256(toUtf8Bytes(READING_TYPE));
/** keccak256 of the ReadingWindow type string. */
export const READING_WINDOW_TYPEHASH = keccak256(toUtf8Bytes(READING_WINDOW_TYPE));
/** keccak256 of the CustodyAcceptance type string. */
export const CUSTODY_ACCEPTANCE_TYPEHASH = keccak256(toUtf8Bytes(CUSTODY_ACCEPTANCE_TYPE));

/** ethers `types` argument for a Reading (signTypedData / TypedDataEncoder). */
export const READING_TYPES: Record<string, TypedDataField[]> = {
  Reading: [
    { name: "deviceId", type: "uint64" },
    { name: "sequence", type: "uint32" },
    { name: "observedAt", type: "uint40" },
    { name: "tempCentiC", type: "int16" },
    { name: "flags", type: "uint8" },
    { name: "previousObservedAt", type: "uint40" },
  ],
};

/** ethers `types` argument for a ReadingWindow. */
export const READING_WINDOW_TYPES: Record<string, TypedDataField[]> = {
  ReadingWindow: [
    { name: "deviceId", type: "uint64" },
    { name: "firstSequence", type: "uint32" },
    { name: "firstObservedAt", type: "uint40" },
    { name: "intervalSeconds", type: "uint32" },
    { name: "samples", type: "bytes" },
    { name: "previousObservedAt", type: "uint40" },
  ],
};

/** ethers `types` argument for a CustodyAcceptance. */
export const CUSTODY_ACCEPTANCE_TYPES: Record<string, TypedDataField[]> = {
  CustodyAcceptance: [
    { name: "shipmentId", type: "uint256" },
    { name: "custodian", type: "address" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

/** The full ethers TypedDataDomain for a ColdChain deployment. */
export function typedDataDomain(domain: ColdChainDomain): TypedDataDomain {
  return {
    name: DOMAIN_NAME,
    version: DOMAIN_VERSION,
    chainId: checkedChainId(domain.chainId),
    verifyingContract: checkedAddress(domain.verifyingContract, "verifyingContract"),
  };
}

/** keccak256(abi.encode(EIP712_DOMAIN_TYPEHASH, keccak256("ColdChain"), keccak256("2"), chainId, verifyingContract)). */
export function domainSeparator(domain: ColdChainDomain): string {
  return keccak256(
    abi.encode(
      ["bytes32", "bytes32", "bytes32", "uint256", "address"],
      [
        EIP712_DOMAIN_TYPEHASH,
        keccak256(toUtf8Bytes(DOMAIN_NAME)),
        keccak256(toUtf8Bytes(DOMAIN_VERSION)),
        checkedChainId(domain.chainId),
        checkedAddress(domain.verifyingContract, "verifyingContract"),
      ],
    ),
  );
}

/** hashStruct(Reading). Throws READING_INVALID on an out-of-range field. */
export function hashReading(reading: Reading): string {
  assertReading(reading);
  return keccak256(
    abi.encode(
      ["bytes32", "uint64", "uint32", "uint40", "int16", "uint8", "uint40"],
      [
        READING_TYPEHASH,
        reading.deviceId,
        reading.sequence,
        reading.observedAt,
        reading.tempCentiC,
        reading.flags,
        reading.previousObservedAt,
      ],
    ),
  );
}

/** hashStruct(ReadingWindow); `samples` is hashed as keccak256 of its packed bytes. Throws WINDOW_INVALID. */
export function hashReadingWindow(window: ReadingWindow): string {
  assertWindow(window);
  return keccak256(
    abi.encode(
      ["bytes32", "uint64", "uint32", "uint40", "uint32", "bytes32", "uint40"],
      [
        READING_WINDOW_TYPEHASH,
        window.deviceId,
        window.firstSequence,
        window.firstObservedAt,
        window.intervalSeconds,
        keccak256(encodeSamples(window.samples)),
        window.previousObservedAt,
      ],
    ),
  );
}

/** hashStruct(CustodyAcceptance). Throws CUSTODY_ACCEPTANCE_INVALID. */
export function hashCustodyAcceptance(acceptance: CustodyAcceptance): string {
  assertCustodyAcceptance(acceptance);
  return keccak256(
    abi.encode(
      ["bytes32", "uint256", "address", "uint256", "uint256"],
      [
        CUSTODY_ACCEPTANCE_TYPEHASH,
        acceptance.shipmentId,
        getAddress(acceptance.custodian),
        acceptance.nonce,
        acceptance.deadline,
      ],
    ),
  );
}

/** keccak256(0x1901 || domainSeparator || structHash). */
export function typedDataDigest(separator: string, structHash: string): string {
  return keccak256(concat(["0x1901", separator, structHash]));
}

/** The digest a device signs for one reading. */
export function readingDigest(domain: ColdChainDomain, reading: Reading): string {
  return typedDataDigest(domainSeparator(domain), hashReading(reading));
}

/** The digest a device signs for a window. */
export function readingWindowDigest(domain: ColdChainDomain, window: ReadingWindow): string {
  return typedDataDigest(domainSeparator(domain), hashReadingWindow(window));
}

/** The digest the next custodian signs to accept custody. */
export function custodyAcceptanceDigest(domain: ColdChainDomain, acceptance: CustodyAcceptance): string {
  return typedDataDigest(domainSeparator(domain), hashCustodyAcceptance(acceptance));
}

/** The ethers `value` argument for a Reading (exactly the six signed fields). */
export function readingTypedValue(reading: Reading): Record<string, unknown> {
  assertReading(reading);
  return {
    deviceId: reading.deviceId,
    sequence: reading.sequence,
    observedAt: reading.observedAt,
    tempCentiC: reading.tempCentiC,
    flags: reading.flags,
    previousObservedAt: reading.previousObservedAt,
  };
}

/** The ethers `value` argument for a ReadingWindow (samples packed to hex). */
export function readingWindowTypedValue(window: ReadingWindow): Record<string, unknown> {
  assertWindow(window);
  return {
    deviceId: window.deviceId,
    firstSequence: window.firstSequence,
    firstObservedAt: window.firstObservedAt,
    intervalSeconds: window.intervalSeconds,
    samples: hexlify(encodeSamples(window.samples)),
    previousObservedAt: window.previousObservedAt,
  };
}

/** Arguments for `signer.signTypedData(domain, types, value)` of a custody acceptance (the wallet signs it). */
export function custodyAcceptanceTypedData(
  domain: ColdChainDomain,
  acceptance: CustodyAcceptance,
): { domain: TypedDataDomain; types: Record<string, TypedDataField[]>; value: Record<string, unknown> } {
  assertCustodyAcceptance(acceptance);
  return { domain: typedDataDomain(domain), types: CUSTODY_ACCEPTANCE_TYPES, value: { ...acceptance } };
}

/** Signs a custody acceptance with an ethers signer (65-byte r || s || v, as `transferCustodyWithSignature` takes). */
export async function signCustodyAcceptance(
  signer: {
    signTypedData(
      domain: TypedDataDomain,
      types: Record<string, TypedDataField[]>,
      value: Record<string, unknown>,
    ): Promise<string>;
  },
  domain: ColdChainDomain,
  acceptance: CustodyAcceptance,
): Promise<string> {
  const { domain: d, types, value } = custodyAcceptanceTypedData(domain, acceptance);
  return signer.signTypedData(d, types, value);
}

function checkedAddress(address: string, field: string): string {
  try {
    return getAddress(address);
  } catch (cause) {
    throw new ProtocolError(
      "DOMAIN_INVALID",
      `${field} must be a valid address (checksummed or lowercase), got ${address}`,
      {
        cause,
      },
    );
  }
}

function checkedChainId(chainId: bigint): bigint {
  if (typeof chainId !== "bigint" || chainId <= 0n || chainId > UINT256_MAX) {
    throw new ProtocolError("DOMAIN_INVALID", `chainId must be a positive bigint, got ${String(chainId)}`);
  }
  return chainId;
}
