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
import { parseArgs } from "node:util";

import { ZeroHash } from "ethers";
import hre from "hardhat";

import { roleId, suiteRoleGrants } from "../ignition/modules/coldchain.js";
import type { RoleGrant, SuiteRoles } from "../ignition/modules/coldchain.js";
import { SUITE_CONTRACTS } from "../sdk/deployment.js";
import type { Deployment, RetiredDeployment } from "../sdk/deployment.js";
import { deploymentPath, deploymentsDir, loadDeployment, saveDeployment } from "../sdk/node/deployment.js";
import { LOCAL_NETWORKS, buildDeployment, connectSuite, deploySuite, loadSuiteRoles } from "./lib/suite.js";
import type { DeployedSuite } from "./lib/suite.js";

const USAGE = `Usage: npm run deploy -- --network <name> [--migrate] [--reset] [--parameters <file>]

Deploys DeviceRegistry, MktTable, P256Fallback, ColdChain and ColdChainLens with Hardhat Ignition, grants the
roles of ignition/parameters/<network>.json (local networks: everything to the deployer) and writes
deployments/<network>.json. Re-running changes nothing unless the parameters gained a role.

  --network <name>     a network of hardhat.config.ts (localhost, sepolia, hoodi, baseSepolia, opSepolia,
                       arbitrumSepolia, polygonAmoy)
  --migrate            deploy a new suite and record the current one under "previous" (docs/deploying.md, Upgrades)
  --reset              the recorded contracts are gone (chain reset): forget them and deploy afresh
  --parameters <file>  role parameters instead of ignition/parameters/<network>.json`;

/** Where the Ignition journal of `deploymentId` lives. */
export function journalDir(deploymentId: string): string {
  return process.env.COLDCHAIN_DEPLOYMENTS_DIR === undefined
    ? join(import.meta.dirname, "..", "ignition", "deployments", deploymentId)
    : join(deploymentsDir(), "ignition", deploymentId);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      network: { type: "string" },
      migrate: { type: "boolean", default: false },
      reset: { type: "boolean", default: false },
      parameters: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const network = values.network;
  if (network === undefined) throw new Error("missing --network <name> (e.g. --network localhost); see --help");
  if (!(network in hre.config.networks) || network === "default") {
    const known = Object.keys(hre.config.networks).filter((n) => n !== "default");
    throw new Error(`unknown network "${network}"; configured: ${known.join(", ")} (hardhat.config.ts)`);
  }
  const connection = await hre.network.create({ network });
  try {
    return await deployOn(connection, network, values);
  } finally {
    await connection.close();
  }
}

async function deployOn(
  connection: Connection,
  network: string,
  flags: { migrate: boolean; reset: boolean; parameters?: string | undefined },
): Promise<number> {
  const provider = connection.ethers.provider;
  const chainId = Number((await provider.getNetwork()).chainId);
  const [signer] = await connection.ethers.getSigners();
  if (signer === undefined) throw new Error(`no deployer account for ${network}: set DEPLOYER_PRIVATE_KEY`);
  const deployer = signer.address;

  let existing: Deployment | undefined = existsSync(deploymentPath(network)) ? loadDeployment(network) : undefined;
  if (existing !== undefined && existing.chainId !== chainId) {
    throw new Error(
      `${deploymentPath(network)} is for chain ${existing.chainId} but ${network} is chain ${chainId}; ` +
        "check the RPC URL, or move the file away to deploy afresh",
    );
  }
  if (existing !== undefined && !(await isRecordedSuite(provider, existing))) {
    if (!flags.reset && !LOCAL_NETWORKS.includes(network)) {
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
  if (existing === undefined && LOCAL_NETWORKS.includes(network)) {
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
  const roles = loadSuiteRoles(network, deployer, flags.parameters);
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
      instances: connectSuite(existing.contracts, provider),
    };
  } else {
    suite = await deploySuite(hre, connection, { network, roles, journalDir: journal, deployer });
  }
  let deployment = await buildDeployment(provider, {
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

type Connection = Awaited<ReturnType<typeof hre.network.create>>;

/** Whether `account` still holds DEFAULT_ADMIN_ROLE on both DeviceRegistry and ColdChain of `deployment`. */
async function holdsAdmin(connection: Connection, deployment: Deployment, account: string): Promise<boolean> {
  const { registry, coldChain } = connectSuite(deployment.contracts, connection.ethers.provider);
  return (await registry.hasRole(ZeroHash, account)) && (await coldChain.hasRole(ZeroHash, account));
}

/** The grants of `roles` that do not hold on chain yet. */
async function missingGrants(connection: Connection, deployment: Deployment, roles: SuiteRoles): Promise<RoleGrant[]> {
  const { registry, coldChain } = connectSuite(deployment.contracts, connection.ethers.provider);
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

try {
  process.exitCode = await main();
} catch (error) {
  let message = (error as Error).message.split("\n")[0] ?? String(error);
  const variable = /Configuration Variable "(\w+)" not found/.exec(message)?.[1];
  if (variable !== undefined) {
    message = `${variable} is not set: \`npx hardhat keystore set ${variable}\` or export ${variable}=… (docs/deploying.md)`;
  } else if ((error as { code?: string }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    message = `${message}; see --help`;
  }
  console.error(`error: ${message}`);
  process.exitCode = 1;
}
