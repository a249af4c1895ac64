/**
 * `domain`: the EIP-712 domain devices of a deployment sign for (docs/protocol.md §2), for provisioning: name,
 * version, chain id, verifyingContract (the deployment's ColdChain), the 32-byte domain separator firmware is
 * given, and the Reading / ReadingWindow type hashes. The separator is computed with ethers' TypedDataEncoder and
 * with the protocol's own hashing, and the domain is checked against what the contract itself reports
 * (`eip712Domain()`, ERC-5267): a mismatch fails the command, so a wrong separator is never printed.
 */
import { getAddress, TypedDataEncoder, ZeroHash } from "ethers";

import {
  DOMAIN_NAME,
  DOMAIN_VERSION,
  domainSeparator,
  READING_TYPEHASH,
  READING_WINDOW_TYPEHASH,
  typedDataDomain,
} from "../../sdk/protocol/index.js";
import type { ColdChainDomain } from "../../sdk/protocol/index.js";
import { CliError } from "../command.js";
import type { Command, CommandContext } from "../command.js";

/** ERC-5267 `fields` of a domain with name, version, chainId and verifyingContract (no salt, no extensions). */
const FIELDS_NAME_VERSION_CHAIN_CONTRACT = "0x0f";

/** What `domain` prints (`--json`: this object; chainId as a decimal string). */
export interface DomainReport {
  name: string;
  version: string;
  chainId: bigint;
  verifyingContract: string;
  domainSeparator: string;
  readingTypehash: string;
  readingWindowTypehash: string;
  /** Always true: the command fails when the contract's `eip712Domain()` disagrees. */
  checkedOnChain: true;
}

async function showDomain(ctx: CommandContext): Promise<void> {
  const domain: ColdChainDomain = {
    chainId: BigInt(ctx.deployment.chainId),
    verifyingContract: ctx.deployment.contracts.ColdChain.address,
  };
  const separator = TypedDataEncoder.hashDomain(typedDataDomain(domain));
  if (separator !== domainSeparator(domain)) {
    throw new CliError(
      `internal error: ethers and sdk/protocol disagree on the domain separator of ${JSON.stringify(domain, (_, v: unknown) => (typeof v === "bigint" ? v.toString() : v))}`,
    );
  }
  const onChain = await ctx.contracts.coldChain.eip712Domain();
  const reported = {
    fields: onChain.fields,
    name: onChain.name,
    version: onChain.version,
    chainId: onChain.chainId,
    verifyingContract: getAddress(onChain.verifyingContract),
    salt: onChain.salt,
    extensions: onChain.extensions.length,
  };
  const expected = {
    fields: FIELDS_NAME_VERSION_CHAIN_CONTRACT,
    name: DOMAIN_NAME,
    version: DOMAIN_VERSION,
    chainId: domain.chainId,
    verifyingContract: domain.verifyingContract,
    salt: ZeroHash,
    extensions: 0,
  };
  const differs = (Object.keys(expected) as (keyof typeof expected)[]).filter((k) => reported[k] !== expected[k]);
  if (differs.length > 0) {
    const detail = differs.map((k) => `${k} ${String(reported[k])} (expected ${String(expected[k])})`).join(", ");
    throw new CliError(
      `the ColdChain at ${domain.verifyingContract} reports another EIP-712 domain: ${detail}; ` +
        `do not provision devices from deployments/${ctx.network}.json until it matches the chain`,
    );
  }
  const report: DomainReport = {
    name: DOMAIN_NAME,
    version: DOMAIN_VERSION,
    chainId: domain.chainId,
    verifyingContract: domain.verifyingContract,
    domainSeparator: separator,
    readingTypehash: READING_TYPEHASH,
    readingWindowTypehash: READING_WINDOW_TYPEHASH,
    checkedOnChain: true,
  };
  ctx.out.result(report);
}

export const domainCommand: Command = {
  name: ["domain"],
  summary: "print the EIP-712 domain and domain separator devices sign for (provisioning)",
  usage: `

Prints name, version, chainId, verifyingContract (the deployment's ColdChain), domainSeparator and the Reading /
ReadingWindow type hashes, after checking them against the contract's eip712Domain(). Firmware is provisioned
with the 32-byte domainSeparator (docs/protocol.md §2).
Example: npm run cli -- domain --network sepolia --json`,
  options: {},
  run: (ctx) => showDomain(ctx),
};
