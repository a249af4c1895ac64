/**
 * The signed handover text a next custodian gives the current one (copy/paste or a QR code), in the one format the
 * CLI uses too (`coldchain:handover:v1:…`, defined in sdk/protocol/handover.ts, docs/protocol.md §2.6): the
 * EIP-712 `CustodyAcceptance`, the domain it was signed for, and the signature `transferCustodyWithSignature`
 * takes. Pure; unit-tested.
 */
import {
  assertHandoverDomain,
  assertHandoverSigner,
  decodeHandover,
  encodeHandover,
  HandoverError,
} from "../../../sdk/protocol/index.js";
import type { ColdChainDomain, SignedHandover } from "../../../sdk/protocol/index.js";

export { assertHandoverDomain, assertHandoverSigner, decodeHandover, encodeHandover, HandoverError };
export type { SignedHandover };

/** What a handover is checked against: a deployment's chain id and ColdChain address. */
export interface HandoverTarget {
  readonly chainId: number;
  readonly contracts: { readonly ColdChain: { readonly address: string } };
}

/** The EIP-712 domain of a deployment's ColdChain (what a handover for it must name). */
export function deploymentDomain(deployment: HandoverTarget): ColdChainDomain {
  return { chainId: BigInt(deployment.chainId), verifyingContract: deployment.contracts.ColdChain.address };
}

/**
 * Reads a pasted handover for `deployment`: refuses malformed text, the dashboard's old JSON, and a handover signed
 * for another chain or ColdChain deployment, each with a message saying what to do ({@link HandoverError}).
 */
export function readHandover(text: string, deployment: HandoverTarget): SignedHandover {
  return decodeHandover(text, deploymentDomain(deployment));
}
