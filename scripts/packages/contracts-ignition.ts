/**
 * The Ignition module of `@coldchain/contracts` (bundled into the package as `ignition/index.js` by
 * scripts/packages/build-contracts.ts): the repository's module (ignition/modules/coldchain.ts) deploying the
 * package's own artifacts (`artifacts/<Contract>.json`, the bytecode this repository compiled), so that a Hardhat
 * project deploys the suite — a local chain for integration tests, a testnet of its own — without compiling it.
 *
 *   import { buildColdChainModule } from "@coldchain/contracts/ignition";
 *   export default buildColdChainModule(deployer, { admin: deployer, deviceManagers: [], guardians: [], shippers: [], qa: [] });
 */
import { readFileSync } from "node:fs";

import type { Artifact } from "@nomicfoundation/ignition-core";

import {
  SUITE_MODULE_ID,
  buildColdChainModule as buildSuiteModule,
  roleId,
  suiteRoleGrants,
} from "../../ignition/modules/coldchain.js";
import type { RoleGrant, SuiteArtifactName, SuiteRoles } from "../../ignition/modules/coldchain.js";

/** Every artifact the module deploys (the package ships these, and only these, under artifacts/). */
export const SUITE_ARTIFACTS: readonly SuiteArtifactName[] = [
  "DeviceRegistry",
  "MktTable",
  "P256Fallback",
  "ShipmentBook",
  "ColdChain",
  "ColdChainLens",
];

function packagedArtifacts(): Record<SuiteArtifactName, Artifact> {
  const entries = SUITE_ARTIFACTS.map((name) => {
    const url = new URL(`../artifacts/${name}.json`, import.meta.url);
    return [name, JSON.parse(readFileSync(url, "utf8")) as Artifact] as const;
  });
  return Object.fromEntries(entries) as Record<SuiteArtifactName, Artifact>;
}

/**
 * The suite's Ignition module (id `ColdChainSuite`): DeviceRegistry, MktTable, P256Fallback, the ShipmentBook
 * library, ColdChain linked to it, ColdChainLens, then the role grants of `roles`. `deployer` is the account that
 * sends the transactions (the first admin); when `roles.admin` is another account, the deployer hands it the
 * admin role and renounces its own.
 */
export function buildColdChainModule(deployer: string, roles: SuiteRoles): ReturnType<typeof buildSuiteModule> {
  return buildSuiteModule(deployer, roles, packagedArtifacts());
}

export { SUITE_MODULE_ID, roleId, suiteRoleGrants };
export type { RoleGrant, SuiteRoles };
