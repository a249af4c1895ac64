/**
 * The deployment address book: `deployments/<network>.json`, written by `npm run deploy` and read by the
 * oracle, the simulator, the CLI, the SDK and the web app (nothing else holds contract addresses).
 * Browser-safe: parsing only; `sdk/node/deployment.ts` reads and writes the files.
 */
import { getAddress, isAddress, isHexString } from "ethers";
import { z } from "zod";

/** Value of the `format` field; bumped when the file's shape changes incompatibly. */
export const DEPLOYMENT_FORMAT = "coldchain-deployment/1";

/** Contracts of the suite, in deployment order. */
export const SUITE_CONTRACTS = ["DeviceRegistry", "MktTable", "P256Fallback", "ColdChain", "ColdChainLens"] as const;
export type SuiteContractName = (typeof SUITE_CONTRACTS)[number];

const address = z
  .string()
  .refine((a) => isAddress(a), "an 0x-prefixed 20-byte address")
  .transform((a) => getAddress(a));
const txHash = z.string().refine((h) => isHexString(h, 32), "a 32-byte 0x-prefixed transaction hash");

const deployedContract = z
  .object({
    address,
    /** Block of the deployment transaction: the first block worth reading events from. */
    blockNumber: z.number().int().min(0),
    transactionHash: txHash,
    /** `<contract name>@<package version>`, e.g. `ColdChain@0.1.0`: which ABI the address speaks. */
    abi: z.string().regex(/^[A-Za-z0-9]+@\d+\.\d+\.\d+/, "`<Contract>@<semver>`"),
  })
  .strict();

const roleGrant = z
  .object({
    contract: z.enum(SUITE_CONTRACTS),
    /** Role name as the contract's constant, e.g. `SHIPPER_ROLE` or `DEFAULT_ADMIN_ROLE`. */
    role: z.string().regex(/^[A-Z0-9_]+$/),
    account: address,
  })
  .strict();

const suiteContracts = z
  .object({
    DeviceRegistry: deployedContract,
    MktTable: deployedContract,
    P256Fallback: deployedContract,
    ColdChain: deployedContract,
    ColdChainLens: deployedContract,
  })
  .strict();

/**
 * A suite this network used before a migration (docs/deploying.md, "Upgrades"): the contracts are immutable, so
 * shipments created there finish there; readers of old history query these addresses too.
 */
const retiredDeployment = z
  .object({
    deployedAt: z.string().datetime(),
    /** ISO 8601 time the next suite replaced it (new shipments go to the new one from then on). */
    retiredAt: z.string().datetime(),
    ignitionDeploymentId: z.string().optional(),
    contracts: suiteContracts,
  })
  .strict();

export const DEPLOYMENT_SCHEMA = z
  .object({
    format: z.literal(DEPLOYMENT_FORMAT),
    /** Hardhat network name the file was written for (`localhost`, `sepolia`, …). */
    network: z.string().min(1),
    chainId: z.number().int().positive(),
    /** ISO 8601 time the suite was first deployed. */
    deployedAt: z.string().datetime(),
    contracts: suiteContracts,
    roles: z.array(roleGrant),
    /** Chain features the suite depends on, as probed at deployment. */
    features: z
      .object({
        /** RIP-7951 / EIP-7951 P256VERIFY at 0x100; without it P-256 readings cost ~250k gas each. */
        p256Precompile: z.boolean(),
      })
      .strict(),
    /** Hardhat Ignition deployment id whose journal produced the contracts (`ignition/deployments/<id>`). */
    ignitionDeploymentId: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/)
      .optional(),
    /** Earlier suites on this network, newest first (immutable contracts, migration by redeployment). */
    previous: z.array(retiredDeployment).optional(),
  })
  .strict();

export type Deployment = z.infer<typeof DEPLOYMENT_SCHEMA>;
export type DeployedContract = Deployment["contracts"][SuiteContractName];
export type RetiredDeployment = NonNullable<Deployment["previous"]>[number];

/** Raised for a missing, unreadable or malformed deployment file; the message says what to do. */
export class DeploymentError extends Error {
  override readonly name = "DeploymentError";
}

/** Validates a parsed JSON value as a deployment; `source` names it in the error (a path or URL). */
export function parseDeployment(value: unknown, source = "deployment"): Deployment {
  const result = DEPLOYMENT_SCHEMA.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? "" : ` at ${issue.path.join(".")}`;
    throw new DeploymentError(
      `${source} is not a coldchain deployment (${DEPLOYMENT_FORMAT})${where}: ${issue?.message ?? "invalid"}; ` +
        "re-run `npm run deploy -- --network <name>` to rewrite it",
    );
  }
  return result.data;
}

/** The earliest block of the suite: where event queries start. */
export function deploymentStartBlock(deployment: Deployment): number {
  return Math.min(...SUITE_CONTRACTS.map((name) => deployment.contracts[name].blockNumber));
}
