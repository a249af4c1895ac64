/**
 * Programmatic deployment of the suite with Hardhat Ignition (`ignition/modules/coldchain.ts`), for
 * `scripts/deploy.ts` (`npm run deploy`) and for scripts that bring up a chain themselves (`npm start`).
 *
 *   const connection = await hre.network.create();
 *   const suite = await deploySuite(hre, connection, { network: "default", roles: localRoles(deployer) });
 *   const deployment = await buildDeployment(connection.ethers.provider, { network: "default", suite });
 *
 * Nothing is written unless asked: `journalDir` undefined keeps Ignition's journal in memory (one-off chains);
 * `saveDeployment` (sdk/node/deployment.ts) writes the address book.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { HardhatArtifactResolver } from "@nomicfoundation/hardhat-ignition/helpers";
import { DeploymentResultType, deploy } from "@nomicfoundation/ignition-core";
import type { DeploymentResult, ExecutionEventListener } from "@nomicfoundation/ignition-core";
import { ZeroAddress, getAddress, isAddress } from "ethers";
import type { ContractRunner, Provider } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import type { NetworkConnection } from "hardhat/types/network";
import { z } from "zod";

import { SUITE_MODULE_ID, buildColdChainModule, roleId, suiteRoleGrants } from "../../ignition/modules/coldchain.js";
import type { SuiteRoles } from "../../ignition/modules/coldchain.js";
import { DEPLOYMENT_FORMAT, SUITE_CONTRACTS, parseDeployment } from "../../sdk/deployment.js";
import type { DeployedContract, Deployment, SuiteContractName } from "../../sdk/deployment.js";
import type {
  ColdChain,
  ColdChainLens,
  DeviceRegistry,
  MktTable,
  P256Fallback,
} from "../../types/ethers-contracts/index.js";
import {
  ColdChainLens__factory,
  ColdChain__factory,
  DeviceRegistry__factory,
  MktTable__factory,
  P256Fallback__factory,
} from "../../types/ethers-contracts/index.js";

const REPO_ROOT = join(import.meta.dirname, "..", "..");

/** Networks whose default parameters give every role to the deployer (no parameter file needed). */
export const LOCAL_NETWORKS: readonly string[] = ["default", "localhost", "hardhat", "prague"];

const address = z
  .string()
  .refine((a) => isAddress(a), "an 0x-prefixed 20-byte address")
  .transform((a) => getAddress(a));

/** `ignition/parameters/<network>.json`: `{ "ColdChainSuite": { admin, deviceManagers, … } }` (Ignition's shape). */
export const SUITE_PARAMETERS_SCHEMA = z
  .object({
    [SUITE_MODULE_ID]: z
      .object({
        admin: address.optional(),
        deviceManagers: z.array(address).default([]),
        guardians: z.array(address).default([]),
        shippers: z.array(address).default([]),
        qa: z.array(address).default([]),
      })
      .strict(),
  })
  .strict();

/** Every role to the deployer: the default on local networks. */
export function localRoles(deployer: string): SuiteRoles {
  const d = getAddress(deployer);
  return { admin: d, deviceManagers: [d], guardians: [d], shippers: [d], qa: [d] };
}

export function parametersPath(network: string): string {
  return join(REPO_ROOT, "ignition", "parameters", `${network}.json`);
}

/**
 * The roles for `network`: from `ignition/parameters/<network>.json` when it exists (a missing `admin` means the
 * deployer), else — on local networks only — everything to the deployer.
 */
export function loadSuiteRoles(network: string, deployer: string, path: string = parametersPath(network)): SuiteRoles {
  if (!existsSync(path)) {
    if (LOCAL_NETWORKS.includes(network)) return localRoles(deployer);
    throw new Error(
      `no role parameters for "${network}": create ${path} (see ignition/parameters/example.json and docs/deploying.md)`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new Error(`${path} is not valid JSON (${(error as Error).message})`, { cause: error });
  }
  const parsed = SUITE_PARAMETERS_SCHEMA.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${path}: ${issue?.path.join(".") ?? ""}: ${issue?.message ?? "invalid"}; fix the file`);
  }
  const p = parsed.data[SUITE_MODULE_ID];
  const placeholders = placeholderAddresses();
  for (const key of ["admin", "deviceManagers", "guardians", "shippers", "qa"] as const) {
    const value = p[key];
    const list = value === undefined ? [] : Array.isArray(value) ? value : [value];
    list.forEach((account, index) => {
      const reason = placeholders.get(account);
      if (reason === undefined) return;
      const where = Array.isArray(value) ? `${SUITE_MODULE_ID}.${key}.${index}` : `${SUITE_MODULE_ID}.${key}`;
      throw new Error(
        `${path}: ${where}: ${account} is ${reason}, not a real account; put the address that should hold the role`,
      );
    });
  }
  return {
    admin: p.admin ?? getAddress(deployer),
    deviceManagers: p.deviceManagers,
    guardians: p.guardians,
    shippers: p.shippers,
    qa: p.qa,
  };
}

/**
 * Addresses that must never hold a role (nobody has their key): the zero address, the 0x…dEaD burn address and
 * the placeholders of `ignition/parameters/example.json`; each with why.
 */
export function placeholderAddresses(): Map<string, string> {
  const map = new Map<string, string>([
    [ZeroAddress, "the zero address"],
    [getAddress("0x000000000000000000000000000000000000dEaD"), "the 0x…dEaD burn address"],
  ]);
  const example = join(REPO_ROOT, "ignition", "parameters", "example.json");
  if (existsSync(example)) {
    const text = readFileSync(example, "utf8");
    for (const match of text.matchAll(/0x[0-9a-fA-F]{40}/g)) {
      const account = getAddress(match[0].toLowerCase());
      if (!map.has(account)) map.set(account, "a placeholder of ignition/parameters/example.json");
    }
  }
  return map;
}

export interface DeploySuiteOptions {
  /** Hardhat network name (recorded in the Deployment). */
  network: string;
  roles: SuiteRoles;
  /** Ignition journal directory; undefined keeps the journal in memory (nothing written). */
  journalDir?: string | undefined;
  /** The deploying account; default the connection's first account. */
  deployer?: string;
}

/** One deployed contract: address and the transaction that created it (when known). */
export interface SuiteContractRecord {
  address: string;
  transactionHash: string | undefined;
}

export interface DeployedSuite {
  deployer: string;
  roles: SuiteRoles;
  contracts: Record<SuiteContractName, SuiteContractRecord>;
  /** Ignition future ids that sent a transaction in this run (empty: nothing changed). */
  executed: string[];
  /** TypeChain instances of the deployed contracts, connected to the deployer. */
  instances: SuiteInstances;
}

export interface SuiteInstances {
  registry: DeviceRegistry;
  mktTable: MktTable;
  p256Fallback: P256Fallback;
  coldChain: ColdChain;
  lens: ColdChainLens;
}

/** TypeChain instances of a suite's contracts bound to `runner` (a signer to send, a provider to read). */
export function connectSuite(
  contracts: Record<SuiteContractName, { address: string }>,
  runner: ContractRunner,
): SuiteInstances {
  return {
    registry: DeviceRegistry__factory.connect(contracts.DeviceRegistry.address, runner),
    mktTable: MktTable__factory.connect(contracts.MktTable.address, runner),
    p256Fallback: P256Fallback__factory.connect(contracts.P256Fallback.address, runner),
    coldChain: ColdChain__factory.connect(contracts.ColdChain.address, runner),
    lens: ColdChainLens__factory.connect(contracts.ColdChainLens.address, runner),
  };
}

/**
 * Deploys (or, with a journal that already holds it, resumes/reconciles) the suite on `connection`. Throws with
 * Ignition's explanation when the deployment fails or the journal disagrees with the module.
 */
export async function deploySuite(
  hre: Pick<HardhatRuntimeEnvironment, "artifacts">,
  connection: NetworkConnection<string>,
  options: DeploySuiteOptions,
): Promise<DeployedSuite> {
  const accounts = (await connection.provider.request({ method: "eth_accounts" })) as string[];
  const deployer = getAddress(options.deployer ?? accounts[0] ?? "");
  const ignitionModule = buildColdChainModule(deployer, options.roles);
  const executed = new Set<string>();
  const confirmed = new Map<string, string>();
  const listener = new Proxy({} as ExecutionEventListener, {
    get: (_target, property) => async (event: { futureId?: string; hash?: string }) => {
      if (property === "transactionSend" && event.futureId !== undefined) executed.add(event.futureId);
      if (property === "transactionConfirm" && event.futureId !== undefined && event.hash !== undefined) {
        confirmed.set(event.futureId, event.hash);
      }
      return Promise.resolve();
    },
  });
  const result = await deploy({
    artifactResolver: new HardhatArtifactResolver(hre.artifacts),
    provider: connection.provider,
    deploymentDir: options.journalDir,
    ignitionModule,
    deploymentParameters: {},
    accounts,
    defaultSender: deployer,
    executionEventListener: listener,
  });
  if (result.type !== DeploymentResultType.SUCCESSFUL_DEPLOYMENT) {
    throw new Error(describeIgnitionFailure(result, options.journalDir));
  }
  const journalHashes =
    options.journalDir === undefined ? new Map<string, string>() : readJournalHashes(options.journalDir);
  const contracts = Object.fromEntries(
    SUITE_CONTRACTS.map((name) => {
      const futureId = `${SUITE_MODULE_ID}#${name}`;
      const deployed = result.contracts[futureId];
      if (deployed === undefined) throw new Error(`Ignition returned no ${name}`);
      return [
        name,
        {
          address: getAddress(deployed.address),
          transactionHash: confirmed.get(futureId) ?? journalHashes.get(futureId),
        },
      ];
    }),
  ) as Record<SuiteContractName, SuiteContractRecord>;
  const signer = await connection.ethers.getSigner(deployer);
  return {
    deployer,
    roles: options.roles,
    contracts,
    executed: [...executed],
    instances: connectSuite(contracts, signer),
  };
}

/**
 * One line explaining a failed Ignition deployment: the first failing future, its message, how many more, and
 * what to do about it.
 */
export function describeIgnitionFailure(result: DeploymentResult, journalDir?: string): string {
  const first = (errors: Record<string, string[]>): [string, string, number] => {
    const entries = Object.entries(errors);
    const [futureId, messages] = entries[0] ?? ["(unknown future)", []];
    const count = entries.reduce((n, [, m]) => n + Math.max(m.length, 1), 0);
    return [futureId, (messages[0] ?? "no message").replace(/\s+/g, " "), count - 1];
  };
  const more = (n: number) => (n > 0 ? ` (+${n} more)` : "");
  const journal = journalDir === undefined ? "the Ignition journal" : journalDir;
  switch (result.type) {
    case DeploymentResultType.RECONCILIATION_ERROR: {
      const [futureId, message, rest] = first(result.errors);
      const hint = /from account|sender|from address/i.test(message)
        ? "the deployer changed: deploy with the original deployer's key (DEPLOYER_PRIVATE_KEY)"
        : "the contracts or their arguments changed since the recorded deployment: re-run with --migrate to deploy " +
          "a new suite beside it";
      return `Ignition reconciliation failed against ${journal}: ${futureId}: ${message}${more(rest)}; ${hint}`;
    }
    case DeploymentResultType.VALIDATION_ERROR: {
      const [futureId, message, rest] = first(result.errors);
      return `Ignition validation failed: ${futureId}: ${message}${more(rest)}; check the build (npx hardhat build) and the parameters`;
    }
    case DeploymentResultType.PREVIOUS_RUN_ERROR: {
      const [futureId, message, rest] = first(result.errors);
      return (
        `a previous deployment run failed at ${futureId}: ${message}${more(rest)}; fix the cause, then ` +
        `\`npx hardhat ignition wipe <deployment-id> ${futureId}\` (journal ${journal}) and re-run`
      );
    }
    case DeploymentResultType.EXECUTION_ERROR: {
      const failed = result.failed[0];
      if (failed !== undefined) {
        const rest = result.failed.length - 1 + result.timedOut.length + result.held.length;
        return `Ignition execution failed: ${failed.futureId}: ${failed.error.replace(/\s+/g, " ")}${more(rest)}; fix the cause and re-run (sent transactions are kept in ${journal})`;
      }
      const timedOut = result.timedOut[0];
      if (timedOut !== undefined) {
        return `Ignition execution timed out: ${timedOut.futureId} was not mined in time${more(result.timedOut.length - 1)}; re-run to keep waiting (or bump the fee)`;
      }
      const held = result.held[0];
      return `Ignition execution held: ${held?.futureId ?? "(unknown future)"}: ${held?.reason ?? "no reason"}; re-run later`;
    }
    case DeploymentResultType.SUCCESSFUL_DEPLOYMENT:
      return "Ignition deployment succeeded";
  }
}

/** futureId → hash of its confirmed transaction, from an Ignition journal (`journal.jsonl`). */
export function readJournalHashes(journalDir: string): Map<string, string> {
  const hashes = new Map<string, string>();
  const path = join(journalDir, "journal.jsonl");
  if (!existsSync(path)) return hashes;
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const message = JSON.parse(line) as { type?: string; futureId?: string; hash?: string };
    if (message.type === "TRANSACTION_CONFIRM" && message.futureId !== undefined && message.hash !== undefined) {
      hashes.set(message.futureId, message.hash);
    }
  }
  return hashes;
}

export interface BuildDeploymentOptions {
  network: string;
  suite: DeployedSuite;
  /** package.json version for the `abi` identifiers; default this repository's. */
  version?: string;
  /** Keep `deployedAt` (and `previous`) of an earlier record of the same suite. */
  existing?: Deployment | undefined;
  ignitionDeploymentId?: string | undefined;
}

/**
 * The address book entry for a deployed suite: chain id, each contract's address, block and transaction, ABI
 * identifier, the roles as they hold on chain now, and whether the chain has P256VERIFY.
 */
export async function buildDeployment(provider: Provider, options: BuildDeploymentOptions): Promise<Deployment> {
  const { suite, network } = options;
  const version = options.version ?? packageVersion();
  const { chainId } = await provider.getNetwork();
  const contracts = {} as Record<SuiteContractName, DeployedContract>;
  for (const name of SUITE_CONTRACTS) {
    const record = suite.contracts[name];
    const known = options.existing?.contracts[name];
    let transactionHash = record.transactionHash;
    let blockNumber: number | undefined;
    if (transactionHash === undefined && known !== undefined && known.address === record.address) {
      ({ transactionHash, blockNumber } = known);
    }
    if (transactionHash === undefined) {
      throw new Error(`no creation transaction known for ${name} at ${record.address} (Ignition journal missing?)`);
    }
    if (blockNumber === undefined) {
      const receipt = await provider.getTransactionReceipt(transactionHash);
      if (receipt === null) throw new Error(`receipt of ${name}'s creation ${transactionHash} not found`);
      blockNumber = receipt.blockNumber;
    }
    contracts[name] = {
      address: record.address,
      blockNumber,
      transactionHash: transactionHash as DeployedContract["transactionHash"],
      // The recorded identifier names the ABI the bytecode was built from: a re-run after a version bump must
      // not relabel contracts that were not redeployed.
      abi: known !== undefined && known.address === record.address ? known.abi : `${name}@${version}`,
    };
  }
  const coldChain = ColdChain__factory.connect(contracts.ColdChain.address, provider);
  const registry = DeviceRegistry__factory.connect(contracts.DeviceRegistry.address, provider);
  const roles: Deployment["roles"] = [];
  for (const grant of suiteRoleGrants(suite.roles)) {
    const target = grant.contract === "ColdChain" ? coldChain : registry;
    if (await target.hasRole(roleId(grant.role), grant.account)) roles.push(grant);
  }
  const deployment: Deployment = {
    format: DEPLOYMENT_FORMAT,
    network,
    chainId: Number(chainId),
    deployedAt: options.existing?.deployedAt ?? new Date().toISOString(),
    contracts,
    roles,
    features: { p256Precompile: await coldChain.P256_PRECOMPILE() },
    ...(options.ignitionDeploymentId === undefined ? {} : { ignitionDeploymentId: options.ignitionDeploymentId }),
    ...(options.existing?.previous === undefined ? {} : { previous: options.existing.previous }),
  };
  return parseDeployment(deployment, `deployment for ${network}`);
}

/** This repository's package.json version. */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
  return pkg.version;
}
