/**
 * The signed handover: the one text a next custodian gives the current one so that the current custodian can hand
 * custody over in one transaction (`transferCustodyWithSignature`). The CLI (`custody sign-handover` /
 * `custody handover --signed`) and the dashboard both write and read it. One line, short enough for a QR code:
 *
 *   coldchain:handover:v1:<base64url, no padding, of 130 bytes>
 *   bytes: chainId u64 ‖ verifyingContract 20 ‖ shipmentId u64 ‖ custodian 20 ‖ nonce u32 ‖ deadline u40 ‖ sig 65
 *
 * The EIP-712 domain (chain id and ColdChain address) is inside, so a handover signed for another chain or
 * another deployment is refused by {@link decodeHandover} before anything is sent. Browser-safe.
 * Specification and test vector: docs/protocol.md §2.6.
 */
import { concat, decodeBase64, encodeBase64, getAddress, getBytes, hexlify, recoverAddress, toBeHex } from "ethers";

import { custodyAcceptanceDigest } from "./eip712.js";
import type { ColdChainDomain, CustodyAcceptance } from "./types.js";

/** What every handover text starts with. */
export const HANDOVER_PREFIX = "coldchain:handover:v1:";
/** Bytes after the prefix (base64url): 8 + 20 + 8 + 20 + 4 + 5 + 65. */
export const HANDOVER_BYTES = 130;
/** Characters of a whole handover text (prefix + 174 base64url characters). */
export const HANDOVER_LENGTH = HANDOVER_PREFIX.length + Math.ceil((HANDOVER_BYTES * 4) / 3);
/** The dashboard's earlier JSON handover (`{"format":"coldchain-handover/1",…}`, no domain): refused, see below. */
export const LEGACY_DASHBOARD_HANDOVER_FORMAT = "coldchain-handover/1";

/** Stable codes of {@link HandoverError}. */
export type HandoverErrorCode =
  /** Not a handover text at all, cut off, or not base64url. */
  | "HANDOVER_MALFORMED"
  /** The dashboard's earlier JSON text, which does not name the chain and contract. */
  | "HANDOVER_LEGACY_FORMAT"
  /** A field does not fit its place in the text (encoding only). */
  | "HANDOVER_FIELD_RANGE"
  /** Signed for another chain or another ColdChain deployment. */
  | "HANDOVER_WRONG_DOMAIN"
  /** The signature does not recover to the custodian it names (an ordinary account's handover). */
  | "HANDOVER_SIGNER_MISMATCH";

/** Raised for a handover text that cannot be used; the message says what is wrong and what to do. */
export class HandoverError extends Error {
  override readonly name = "HandoverError";

  constructor(
    readonly code: HandoverErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A decoded handover: the domain it was signed for, the acceptance, and the 65-byte wallet signature. */
export interface SignedHandover {
  readonly domain: ColdChainDomain;
  readonly acceptance: CustodyAcceptance;
  /** 65-byte r ‖ s ‖ v, 0x hex. */
  readonly signature: string;
}

function uint(value: bigint, bytes: number, name: string): Uint8Array {
  if (value < 0n || value >= 1n << BigInt(bytes * 8)) {
    throw new HandoverError("HANDOVER_FIELD_RANGE", `${name} ${value} does not fit in ${bytes} bytes`);
  }
  return getBytes(toBeHex(value, bytes));
}

function address(value: string, name: string): Uint8Array {
  try {
    return getBytes(getAddress(value));
  } catch {
    throw new HandoverError("HANDOVER_FIELD_RANGE", `${name} is not an address: ${value}`);
  }
}

/** The handover text of a signed acceptance. */
export function encodeHandover(h: SignedHandover): string {
  let sig: Uint8Array;
  try {
    sig = getBytes(h.signature);
  } catch {
    throw new HandoverError("HANDOVER_FIELD_RANGE", "the signature is not hex");
  }
  if (sig.length !== 65) {
    throw new HandoverError("HANDOVER_FIELD_RANGE", `the signature is ${sig.length} bytes; a wallet signature is 65`);
  }
  const bytes = concat([
    uint(h.domain.chainId, 8, "chainId"),
    address(h.domain.verifyingContract, "verifyingContract"),
    uint(h.acceptance.shipmentId, 8, "shipmentId"),
    address(h.acceptance.custodian, "custodian"),
    uint(h.acceptance.nonce, 4, "nonce"),
    uint(h.acceptance.deadline, 5, "deadline"),
    sig,
  ]);
  return HANDOVER_PREFIX + encodeBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const PASTE_AGAIN = "copy the whole text again (it is one line)";

/**
 * Reads a handover text. Whitespace anywhere is ignored (a text wrapped by a mail client still reads). With
 * `expected`, a handover signed for another chain or ColdChain deployment is refused (`HANDOVER_WRONG_DOMAIN`).
 * The dashboard's earlier JSON text (`coldchain-handover/1`) named no domain and is refused
 * (`HANDOVER_LEGACY_FORMAT`): signed handovers are valid for an hour by default, so the next custodian signs again.
 */
export function decodeHandover(text: string, expected?: ColdChainDomain): SignedHandover {
  const compact = text.replace(/\s+/g, "");
  if (compact.startsWith("{") && compact.includes(LEGACY_DASHBOARD_HANDOVER_FORMAT)) {
    throw new HandoverError(
      "HANDOVER_LEGACY_FORMAT",
      `this is the dashboard's old handover text (${LEGACY_DASHBOARD_HANDOVER_FORMAT}), which does not say which ` +
        `chain and contract it is for; ask the next custodian to sign again (dashboard or \`cli custody sign-handover\`): ` +
        `the new text starts with "${HANDOVER_PREFIX}"`,
    );
  }
  if (!compact.startsWith(HANDOVER_PREFIX)) {
    throw new HandoverError(
      "HANDOVER_MALFORMED",
      `not a signed handover: it must start with "${HANDOVER_PREFIX}"; ${PASTE_AGAIN}`,
    );
  }
  const body = compact.slice(HANDOVER_PREFIX.length);
  if (!/^[A-Za-z0-9_-]*$/.test(body)) {
    throw new HandoverError(
      "HANDOVER_MALFORMED",
      `the signed handover holds characters that are not base64url after "${HANDOVER_PREFIX}"; ${PASTE_AGAIN}`,
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = decodeBase64(body.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (body.length % 4)) % 4));
  } catch {
    throw new HandoverError("HANDOVER_MALFORMED", `the signed handover is not valid base64url; ${PASTE_AGAIN}`);
  }
  if (bytes.length !== HANDOVER_BYTES) {
    throw new HandoverError(
      "HANDOVER_MALFORMED",
      `the signed handover holds ${bytes.length} bytes, expected ${HANDOVER_BYTES} (cut off?); ${PASTE_AGAIN}`,
    );
  }
  let offset = 0;
  const take = (n: number): string => {
    const slice = bytes.subarray(offset, offset + n);
    offset += n;
    return hexlify(slice);
  };
  const chainId = BigInt(take(8));
  const verifyingContract = getAddress(take(20));
  const shipmentId = BigInt(take(8));
  const custodian = getAddress(take(20));
  const nonce = BigInt(take(4));
  const deadline = BigInt(take(5));
  const signature = take(65);
  const h: SignedHandover = {
    domain: { chainId, verifyingContract },
    acceptance: { shipmentId, custodian, nonce, deadline },
    signature,
  };
  if (expected !== undefined) assertHandoverDomain(h, expected);
  return h;
}

/** Throws `HANDOVER_WRONG_DOMAIN` unless `h` was signed for `expected` (chain id and ColdChain address). */
export function assertHandoverDomain(h: SignedHandover, expected: ColdChainDomain): void {
  const sameChain = h.domain.chainId === expected.chainId;
  const sameContract = h.domain.verifyingContract.toLowerCase() === expected.verifyingContract.toLowerCase();
  if (sameChain && sameContract) return;
  throw new HandoverError(
    "HANDOVER_WRONG_DOMAIN",
    `this handover was signed for chain ${h.domain.chainId}, ColdChain ${h.domain.verifyingContract}, not for ` +
      `chain ${expected.chainId}, ColdChain ${getAddress(expected.verifyingContract)} (the deployment in use); ` +
      `check the network, or ask the next custodian to sign for this deployment`,
  );
}

/** The account whose key made the signature (equals `acceptance.custodian` for an ordinary account's handover). */
export function handoverSigner(h: SignedHandover): string {
  return recoverAddress(custodyAcceptanceDigest(h.domain, h.acceptance), h.signature);
}

/**
 * Throws `HANDOVER_SIGNER_MISMATCH` unless the signature recovers to `acceptance.custodian`. Only for a custodian
 * that is an ordinary account: a contract wallet (ERC-1271) signs through its own code, which only the chain can
 * check (the dry run of `transferCustodyWithSignature`).
 */
export function assertHandoverSigner(h: SignedHandover): void {
  let signer: string;
  try {
    signer = handoverSigner(h);
  } catch {
    throw new HandoverError(
      "HANDOVER_SIGNER_MISMATCH",
      "the handover signature is malformed (not a valid r‖s‖v); ask for a new one",
    );
  }
  if (signer.toLowerCase() !== h.acceptance.custodian.toLowerCase()) {
    throw new HandoverError(
      "HANDOVER_SIGNER_MISMATCH",
      `the handover signature does not match its custodian (it names ${h.acceptance.custodian}, the key that ` +
        `signed is ${signer}); ask for a new one`,
    );
  }
}

/**
 * Golden vector (docs/protocol.md §6, "Signed handover"): the custody acceptance test vector (TEST_DOMAIN,
 * TEST_CUSTODY_ACCEPTANCE, signed by the secp256k1 test key) as a handover text. test/protocol.test.ts asserts
 * that {@link encodeHandover} of those inputs gives exactly this.
 */
export const TEST_HANDOVER_TEXT =
  "coldchain:handover:v1:AAAAAAAAemlfvbIxVniv7LNn8DLZP2QvZBgKowAAAAAAAAAH_K0LGbsp1GdFMdbxFSN-Fq_ON3wAAAABAGlXCoAjrq82VasAcoqbSre5XdbVfPPWXBSkyF_jNyDrDN-lMxP3OZlVo2eTiyW5-vfrYAPDaXm46BMIRSD_FsXUR1f6HA";
