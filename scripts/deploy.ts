/**
 * `npm run deploy -- --network <name> [--migrate] [--reset]`: deploys the suite with Hardhat Ignition and writes
 * `deployments/<network>.json` (docs/deploying.md).
 *
 * Idempotent: the Ignition journal (`ignition/deployments/<id>/`, or `$COLDCHAIN_DEPLOYMENTS_DIR/ignition/<id>/`)
 * records what was sent, so a re-run sends only what the module gained since (e.g. a role added to
 * `ignition/parameters/<network>.json`) and otherwise says "nothing changed".
 *
 * `--migrate` deploys a new suite beside the current one and moves the current one to `previous` (the contracts
 * are immutable: shipments in flight finish on the old suite). `--reset` forgets a suite whose contracts are
 * gone (a restarted `hardhat node`; automatic on localhost).
 */
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";

import { ZeroHash } from "ethers";
import { configVariable } from "hardhat/config";
import type { HttpNetworkConfigOverride } from "hardhat/types/config";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import type { NetworkConnection } from "hardhat/types/network";

import { roleId, suiteRoleGrants } from "../ignition/modules/coldchain.js";
import type { RoleGrant, SuiteRoles } from "../ignition/modules/coldchain.js";
import { SUITE_CONTRACTS } from "../sdk/deployment.js";
import type { Deployment, RetiredDeployment } from "../sdk/deployment.js";
import { deploymentPath, deploymentsDir, loadDeployment, saveDeployment } from "../sdk/node/deployment.js";
import { exitQuietlyOnClosedPipe } from "./lib/closed-pipe.js";
import { USAGE, UsageError, parseDeployArgs } from "./lib/deploy-args.js";
import type { DeployOptions } from "./lib/deploy-args.js";
import { ensureContractsBuilt } from "./lib/ensure-build.js";
import type { DeployedSuite } from "./lib/suite.js";
import type * as SuiteLibModule from "./lib/suite.js";

type SuiteLib = typeof SuiteLibModule;

/** Where the Ignition journal of `deploymentId` lives. */
export function journalDir(deploymentId: string): string {
  return process.env.COLDCHAIN_DEPLOYMENTS_DIR === undefined
    ? join(import.meta.dirname, "..", "ignition", "deployments", deploymentId)
    : join(deploymentsDir(), "ignition", deploymentId);
}

/** Hides API keys in an RPC URL (path segments or query strings of 20 characters or more). */
export function redactUrl(url: string): string {
  return url.replace(/\/[A-Za-z0-9_-]{20,}/g, "/***").replace(/\?.*$/, "?***");
}

// Loaded when a deployment runs, not for --help or a usage error: the suite's module needs the contracts' build.
let hre: HardhatRuntimeEnvironment;
let suiteLib: SuiteLib;

/** The node being deployed to, for the message when it cannot be reached. */
let target: { network: string; url: string | undefined } | undefined;

async function main(options: DeployOptions): Promise<number> {
  if (options.help) {
    console.log(USAGE);
    return 0;
  }
  await ensureContractsBuilt();
  hre = (await import("hardhat")).default;
  suiteLib = await import("./lib/suite.js");
  const { network, rpcUrl } = options;
  const configured = network in hre.config.networks && network !== "default";
  if (!configured && rpcUrl === undefined) {
    const known = Object.keys(hre.config.networks).filter((n) => n !== "default");
    throw new UsageError(
      `unknown network "${network}"; configured: ${known.join(", ")} (hardhat.config.ts), or pass --rpc-url <url>`,
    );
  }
  target = { network: configured ? `${network} node` : "node", url: rpcUrl ?? (await configuredUrl(network)) };
  const connection = await hre.network.create(connectionParams(network, configured, rpcUrl));
  try {
    // A node named only by --rpc-url, with no role parameters of its own: every role to the deployer, as on a
    // local network (configured networks keep requiring ignition/parameters/<network>.json).
    const rolesToDeployer =
      !configured && options.parameters === undefined && !existsSync(suiteLib.parametersPath(network));
    return await deployOn(connection, network, { ...options, rolesToDeployer });
  } finally {
    await connection.close();
  }
}

/**
 * How to connect: the configured network as it is, or with `--rpc-url` in place of its URL (a name that is not
 * configured borrows localhost's settings). The key: on localhost `DEPLOYER_PRIVATE_KEY` from the environment
 * when set (else the node's unlocked accounts); with --rpc-url (and on public networks, by their config)
 * `DEPLOYER_PRIVATE_KEY` from the environment or the keystore.
 */
function connectionParams(
  network: string,
  configured: boolean,
  rpcUrl: string | undefined,
): Parameters<typeof hre.network.create>[0] {
  const envKey = process.env.DEPLOYER_PRIVATE_KEY;
  const accounts = [configVariable("DEPLOYER_PRIVATE_KEY")];
  if (rpcUrl !== undefined) {
    const override: HttpNetworkConfigOverride = { url: rpcUrl, accounts };
    return { network: configured ? network : "localhost", override };
  }
  if (network === "localhost" && envKey !== undefined && envKey !== "") {
    const override: HttpNetworkConfigOverride = { accounts };
    return { network, override };
  }
  return { network };
}

/** The configured URL of `network` as a string, when it is known without asking for a keystore password. */
async function configuredUrl(network: string): Promise<string | undefined> {
  const config = hre.config.networks[network];
  if (config?.type !== "http") return undefined;
  const url: unknown = config.url;
  if (typeof url === "string") return url;
  const variable = url as { name?: string; get?: () => Promise<string> };
  // A literal URL, or a variable set in the environment (the keystore would ask for its password).
  if (variable.name === undefined || process.env[variable.name] !== undefined) return await variable.get?.();
  return undefined;
}

async function deployOn(
  connection: Connection,
  network: string,
  flags: { migrate: boolean; reset: boolean; parameters?: string | undefined; rolesToDeployer: boolean },
): Promise<number> {
  const provider = connection.ethers.provider;
  const chainId = Number((await provider.getNetwork()).chainId);
  const [signer] = await connection.ethers.getSigners();
  if (signer === undefined) {
    throw new Error(
      `no deployer account for ${network}: ${target?.url === undefined ? "the node" : redactUrl(target.url)} has ` +
        "no unlocked account; export DEPLOYER_PRIVATE_KEY=0x…, or pass --rpc-url <url> to use the keystore's",
    );
  }
  const deployer = signer.address;

  let existing: Deployment | undefined = existsSync(deploymentPath(network)) ? loadDeployment(network) : undefined;
  if (existing !== undefined && existing.chainId !== chainId) {
    throw new Error(
      `${deploymentPath(network)} is for chain ${existing.chainId} but ${network} is chain ${chainId}; ` +
        "check the RPC URL, or move the file away to deploy afresh",
    );
  }
  if (existing !== undefined && !(await isRecordedSuite(provider, existing))) {
    if (!flags.reset && !suiteLib.LOCAL_NETWORKS.includes(network)) {
      throw new Error(
        `the contracts in ${deploymentPath(network)} are not on ${network} (no code, or not created by the ` +
          "recorded transactions); " +
          "if the chain was reset, re-run with --reset",
      );
    }
    console.warn(`The recorded ${network} suite is gone (chain reset?): deploying afresh.`);
    rmSync(journalDir(existing.ignitionDeploymentId ?? network), { recursive: true, force: true });
    existing = undefined;
  }
  if (existing === undefined && suiteLib.LOCAL_NETWORKS.includes(network)) {
    // A local chain's journal without an address book belongs to a chain that is gone: start over. (On public
    // networks the journal is kept: it resumes a deployment interrupted before the file was written.)
    rmSync(journalDir(network), { recursive: true, force: true });
  }

  const migrating = flags.migrate && existing !== undefined;
  const deploymentId = migrating
    ? `${network}-${new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14)}`
    : (existing?.ignitionDeploymentId ?? network);
  const journal = journalDir(deploymentId);
  if (existing !== undefined && !migrating && !existsSync(join(journal, "journal.jsonl"))) {
    console.log(`Nothing changed: the suite is already deployed on ${network} (chain ${chainId}).`);
    console.log(`(No Ignition journal at ${journal}; role changes need it, or \`npm run cli -- role grant\`.)`);
    printAddresses(existing);
    return 0;
  }
  const roles = flags.rolesToDeployer
    ? suiteLib.localRoles(deployer)
    : suiteLib.loadSuiteRoles(network, deployer, flags.parameters);
  if (flags.rolesToDeployer) {
    console.log(`Roles: all to the deployer (no ${suiteLib.parametersPath(network)}; --parameters <file> to choose).`);
  }
  let suite: DeployedSuite;
  if (existing !== undefined && !migrating && !(await holdsAdmin(connection, existing, deployer))) {
    // The deployer handed admin over (and renounced its own): it can grant nothing, and a new grant future would
    // depend on the executed renounce (Ignition refuses to reconcile). The admin sends what is missing.
    const missing = await missingGrants(connection, existing, roles);
    if (missing.length > 0) {
      console.error(
        `error: ${deployer} no longer holds DEFAULT_ADMIN_ROLE on ${network} (admin is ${roles.admin}); ` +
          `nothing was sent — the admin must run these ${missing.length} grant(s):`,
      );
      for (const g of missing) {
        console.error(
          `  npm run cli -- role grant --network ${network} --contract ${g.contract} --role ${g.role} --to ${g.account}`,
        );
      }
      return 1;
    }
    suite = {
      deployer,
      roles,
      contracts: existing.contracts,
      executed: [],
      instances: suiteLib.connectSuite(existing.contracts, provider),
    };
  } else {
    suite = await suiteLib.deploySuite(hre, connection, { network, roles, journalDir: journal, deployer });
  }
  let deployment = await suiteLib.buildDeployment(provider, {
    network,
    suite,
    existing: migrating ? undefined : existing,
    ignitionDeploymentId: deploymentId,
  });
  if (migrating && existing !== undefined) {
    const retired: RetiredDeployment = {
      deployedAt: existing.deployedAt,
      retiredAt: new Date().toISOString(),
      contracts: existing.contracts,
      ...(existing.ignitionDeploymentId === undefined ? {} : { ignitionDeploymentId: existing.ignitionDeploymentId }),
    };
    deployment = { ...deployment, previous: [retired, ...(existing.previous ?? [])] };
  }

  if (suite.executed.length === 0 && existing !== undefined && sameSuite(existing, deployment)) {
    console.log(`Nothing changed: the suite is already deployed on ${network} (chain ${chainId}).`);
    printAddresses(existing);
    return 0;
  }
  const path = saveDeployment(deployment);
  console.log(
    migrating
      ? `Migrated ${network}: new suite deployed; the previous one is recorded under "previous" (still live for its shipments).`
      : existing === undefined
        ? `Deployed the suite on ${network} (chain ${chainId}) from ${deployer}.`
        : suite.executed.length === 0
          ? `Refreshed ${deploymentPath(network)} from the chain (roles as they hold now); no transaction sent.`
          : `Updated the suite on ${network}: ${suite.executed.length} transaction(s) (${suite.executed.join(", ")}).`,
  );
  printAddresses(deployment);
  console.log(`Roles: ${deployment.roles.map((r) => `${r.contract}.${r.role}→${r.account}`).join(", ")}`);
  console.log(`Wrote ${path}`);
  if (!deployment.features.p256Precompile) {
    console.warn(
      [
        "",
        "!!! WARNING: this chain has no P256VERIFY precompile (RIP-7212/EIP-7951 at 0x100). !!!",
        "!!! P-256 (secp256r1) devices fall back to the Solidity verifier: ~250k gas per reading. !!!",
        "!!! Prefer secp256k1 devices here, or a chain with the precompile (docs/deploying.md).     !!!",
        "",
      ].join("\n"),
    );
  }
  return 0;
}

/**
 * Whether the recorded contracts are still the ones on chain: code at each address, and each recorded creation
 * transaction created that address (a reset local chain redeployed at the same deterministic addresses has code
 * there but not the recorded transactions and blocks).
 */
async function isRecordedSuite(
  provider: {
    getCode(address: string): Promise<string>;
    getTransactionReceipt(hash: string): Promise<{ contractAddress: string | null; blockNumber: number } | null>;
  },
  deployment: Deployment,
): Promise<boolean> {
  for (const name of SUITE_CONTRACTS) {
    const c = deployment.contracts[name];
    if ((await provider.getCode(c.address)) === "0x") return false;
    const receipt = await provider.getTransactionReceipt(c.transactionHash);
    if (receipt?.contractAddress !== c.address || receipt.blockNumber !== c.blockNumber) return false;
  }
  return true;
}

type Connection = NetworkConnection<string>;

/** Whether `account` still holds DEFAULT_ADMIN_ROLE on both DeviceRegistry and ColdChain of `deployment`. */
async function holdsAdmin(connection: Connection, deployment: Deployment, account: string): Promise<boolean> {
  const { registry, coldChain } = suiteLib.connectSuite(deployment.contracts, connection.ethers.provider);
  return (await registry.hasRole(ZeroHash, account)) && (await coldChain.hasRole(ZeroHash, account));
}

/** The grants of `roles` that do not hold on chain yet. */
async function missingGrants(connection: Connection, deployment: Deployment, roles: SuiteRoles): Promise<RoleGrant[]> {
  const { registry, coldChain } = suiteLib.connectSuite(deployment.contracts, connection.ethers.provider);
  const missing: RoleGrant[] = [];
  for (const grant of suiteRoleGrants(roles)) {
    const target = grant.contract === "ColdChain" ? coldChain : registry;
    if (!(await target.hasRole(roleId(grant.role), grant.account))) missing.push(grant);
  }
  return missing;
}

function sameSuite(a: Deployment, b: Deployment): boolean {
  const strip = (d: Deployment) => JSON.stringify({ ...d, deployedAt: "" });
  return strip(a) === strip(b);
}

function printAddresses(deployment: Deployment): void {
  for (const name of SUITE_CONTRACTS) {
    const c = deployment.contracts[name];
    console.log(`  ${name.padEnd(15)} ${c.address}  (block ${c.blockNumber})`);
  }
  console.log(`  P256VERIFY precompile: ${deployment.features.p256Precompile ? "yes" : "NO"}`);
}

exitQuietlyOnClosedPipe();
try {
  process.exitCode = await main(parseDeployArgs(process.argv.slice(2)));
} catch (error) {
  process.exitCode = error instanceof UsageError ? 2 : 1;
  console.error(`error: ${failureMessage(error)}`);
}

/** One line for a failure: what went wrong and what to do, never a stack trace. */
function failureMessage(error: unknown): string {
  const message = (error as Error).message.split("\n")[0] ?? String(error);
  const variable = /Configuration Variable "(\w+)" not found/.exec(message)?.[1];
  if (variable !== undefined) {
    return `${variable} is not set: \`npx hardhat keystore set ${variable}\` or export ${variable}=… (docs/deploying.md)`;
  }
  if (message.startsWith("HHE703") && target !== undefined) {
    const cause = (error as { cause?: { message?: string } }).cause?.message?.split("\n")[0];
    const where = target.url === undefined ? "its configured URL" : redactUrl(target.url);
    return (
      `cannot reach the ${target.network} at ${where}${cause === undefined ? "" : ` (${cause})`}; ` +
      "start it, or check the URL (--rpc-url, or the network's variable in docs/deploying.md)"
    );
  }
  return message;
}
