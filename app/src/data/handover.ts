/**
 * The signed handover string a next custodian gives the current one (copy/paste or a QR code): a one-line JSON
 * object with the EIP-712 `CustodyAcceptance` fields and the signature, which `transferCustodyWithSignature`
 * takes. Pure; unit-tested.
 */
import { getAddress, isHexString } from "ethers";

export const HANDOVER_FORMAT = "coldchain-handover/1";

export interface SignedHandover {
  readonly shipmentId: bigint;
  readonly custodian: string;
  readonly nonce: bigint;
  readonly deadline: bigint;
  /** 65-byte r || s || v, 0x hex. */
  readonly signature: string;
}

export function encodeHandover(h: SignedHandover): string {
  return JSON.stringify({
    format: HANDOVER_FORMAT,
    shipmentId: h.shipmentId.toString(),
    custodian: h.custodian,
    nonce: h.nonce.toString(),
    deadline: h.deadline.toString(),
    signature: h.signature,
  });
}

/** Raised for a pasted text that is not a signed handover; the message says what is wrong. */
export class HandoverFormatError extends Error {
  override readonly name = "HandoverFormatError";
}

function bigintField(o: Record<string, unknown>, key: string): bigint {
  const v = o[key];
  if (typeof v !== "string" || !/^\d+$/.test(v)) {
    throw new HandoverFormatError(`the signed handover's "${key}" must be a decimal string; paste the whole text`);
  }
  return BigInt(v);
}

export function decodeHandover(text: string): SignedHandover {
  let o: unknown;
  try {
    o = JSON.parse(text.trim());
  } catch {
    throw new HandoverFormatError(
      `not a signed handover (expected the ${HANDOVER_FORMAT} JSON the next custodian copied); paste it unchanged`,
    );
  }
  if (typeof o !== "object" || o === null || (o as { format?: unknown }).format !== HANDOVER_FORMAT) {
    throw new HandoverFormatError(`not a signed handover: "format" must be "${HANDOVER_FORMAT}"`);
  }
  const r = o as Record<string, unknown>;
  const custodian = r.custodian;
  let address: string;
  try {
    address = getAddress(String(custodian));
  } catch {
    throw new HandoverFormatError(`the signed handover's "custodian" is not an address: ${String(custodian)}`);
  }
  const signature = r.signature;
  if (typeof signature !== "string" || !isHexString(signature, 65)) {
    throw new HandoverFormatError('the signed handover\'s "signature" must be 65 bytes of 0x hex');
  }
  return {
    shipmentId: bigintField(r, "shipmentId"),
    custodian: address,
    nonce: bigintField(r, "nonce"),
    deadline: bigintField(r, "deadline"),
    signature,
  };
}
