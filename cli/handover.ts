/**
 * The signed-handover string: the next custodian's EIP-712 `CustodyAcceptance` signature and everything the
 * current custodian needs to submit `transferCustodyWithSignature` in one transaction, as one copy-pasteable
 * line short enough for a QR code (174 characters after the prefix):
 *
 *   coldchain:handover:v1:<base64url of 130 bytes>
 *   bytes: chainId u64 ‖ verifyingContract 20 ‖ shipmentId u64 ‖ custodian 20 ‖ nonce u32 ‖ deadline u40 ‖ sig 65
 */
import { concat, getAddress, getBytes, hexlify, toBeHex, zeroPadValue } from "ethers";

import { custodyAcceptanceDigest } from "../sdk/protocol/eip712.js";
import type { ColdChainDomain, CustodyAcceptance } from "../sdk/protocol/types.js";
import { recoverAddress } from "ethers";

export const HANDOVER_PREFIX = "coldchain:handover:v1:";
const LENGTH = 8 + 20 + 8 + 20 + 4 + 5 + 65;

export interface SignedHandover {
  domain: ColdChainDomain;
  acceptance: CustodyAcceptance;
  /** 65-byte r ‖ s ‖ v signature, hex. */
  signature: string;
}

export class HandoverFormatError extends Error {
  override readonly name = "HandoverFormatError";
}

function uint(value: bigint, bytes: number, name: string): string {
  if (value < 0n || value >= 1n << BigInt(bytes * 8)) throw new HandoverFormatError(`${name} out of range`);
  return zeroPadValue(toBeHex(value), bytes);
}

export function encodeHandover(h: SignedHandover): string {
  const sig = getBytes(h.signature);
  if (sig.length !== 65) throw new HandoverFormatError("the signature must be 65 bytes");
  const bytes = getBytes(
    concat([
      uint(h.domain.chainId, 8, "chainId"),
      getAddress(h.domain.verifyingContract),
      uint(h.acceptance.shipmentId, 8, "shipmentId"),
      getAddress(h.acceptance.custodian),
      uint(h.acceptance.nonce, 4, "nonce"),
      uint(h.acceptance.deadline, 5, "deadline"),
      sig,
    ]),
  );
  return HANDOVER_PREFIX + Buffer.from(bytes).toString("base64url");
}

export function decodeHandover(text: string): SignedHandover {
  const trimmed = text.trim();
  if (!trimmed.startsWith(HANDOVER_PREFIX)) {
    throw new HandoverFormatError(`a signed handover starts with "${HANDOVER_PREFIX}"`);
  }
  const body = trimmed.slice(HANDOVER_PREFIX.length);
  if (!/^[A-Za-z0-9_-]+$/.test(body)) throw new HandoverFormatError("the handover string is not base64url");
  const bytes = Buffer.from(body, "base64url");
  if (bytes.length !== LENGTH) {
    throw new HandoverFormatError(`the handover string holds ${bytes.length} bytes, expected ${LENGTH} (cut off?)`);
  }
  let offset = 0;
  const take = (n: number) => {
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
  return { domain: { chainId, verifyingContract }, acceptance: { shipmentId, custodian, nonce, deadline }, signature };
}

/** The address that signed the acceptance (equals `acceptance.custodian` for a genuine handover). */
export function handoverSigner(h: SignedHandover): string {
  return recoverAddress(custodyAcceptanceDigest(h.domain, h.acceptance), h.signature);
}
