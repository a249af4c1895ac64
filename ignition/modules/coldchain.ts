/**
 * Hardhat Ignition module for the whole suite: DeviceRegistry, MktTable, P256Fallback, the ShipmentBook library,
 * ColdChain (linked to it), ColdChainLens,
 * then the role grants of `ignition/parameters/<network>.json`.
 *
 * Ignition cannot loop over a run-time list, so the module is built from the (validated) parameters: one future
 * per grant, each with a stable id (`grant_<Contract>_<ROLE>_<account>`). Adding an account to the parameters and
 * re-running the deploy therefore sends just that grant; an unchanged file sends nothing.
 *
 * The deployer is the first admin (it must be, to grant the roles); when the configured `admin` is another
 * account, the module then grants it DEFAULT_ADMIN_ROLE on both contracts and the deployer renounces its own.
 * After that the module must not gain grants (they would depend on an executed renounce and revert anyway):
 * `scripts/deploy.ts` checks the deployer's admin role on chain first and hands missing grants to the admin.
 */
import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import type { ArgumentType, Artifact, ContractOptions } from "@nomicfoundation/ignition-core";
import { ZeroHash, getAddress, id } from "ethers";

/** Module id: the prefix of every future id in the journal. */
export const SUITE_MODULE_ID = "ColdChainSuite";

/** Who gets which role; every address checksummed. */
export interface SuiteRoles {
  /** DEFAULT_ADMIN_ROLE on DeviceRegistry and ColdChain (grants and revokes every other role). */
  admin: string;
  /** DEVICE_MANAGER_ROLE on DeviceRegistry: registers devices. */
  deviceManagers: string[];
  /** GUARDIAN_ROLE on both contracts: pauses. */
  guardians: string[];
  /** SHIPPER_ROLE on ColdChain: creates shipments. */
  shippers: string[];
  /** QA_ROLE on ColdChain: creates profiles, releases or rejects any delivered shipment. */
  qa: string[];
}

export type GrantedContract = "DeviceRegistry" | "ColdChain";

export interface RoleGrant {
  contract: GrantedContract;
  role: string;
  account: string;
}

/** keccak256 of the role name, as the contracts define them; DEFAULT_ADMIN_ROLE is zero. */
export function roleId(role: string): string {
  return role === "DEFAULT_ADMIN_ROLE" ? ZeroHash : id(role);
}

/** Every grant the suite ends up with (constructor admin included), de-duplicated, in a stable order. */
export function suiteRoleGrants(roles: SuiteRoles): RoleGrant[] {
  const grants: RoleGrant[] = [];
  const add = (contract: GrantedContract, role: string, accounts: string[]) => {
    for (const account of accounts) {
      const checksummed = getAddress(account);
      if (!grants.some((g) => g.contract === contract && g.role === role && g.account === checksummed)) {
        grants.push({ contract, role, account: checksummed });
      }
    }
  };
  add("DeviceRegistry", "DEFAULT_ADMIN_ROLE", [roles.admin]);
  add("ColdChain", "DEFAULT_ADMIN_ROLE", [roles.admin]);
  add("DeviceRegistry", "DEVICE_MANAGER_ROLE", roles.deviceManagers);
  add("DeviceRegistry", "GUARDIAN_ROLE", roles.guardians);
  add("ColdChain", "GUARDIAN_ROLE", roles.guardians);
  add("ColdChain", "SHIPPER_ROLE", roles.shippers);
  add("ColdChain", "QA_ROLE", roles.qa);
  return grants;
}

/** What the module deploys: the suite's contracts and its linked library. */
export type SuiteArtifactName =
  "DeviceRegistry" | "MktTable" | "P256Fallback" | "ShipmentBook" | "ColdChain" | "ColdChainLens";

/**
 * The suite's module for `deployer` (the account that sends every transaction) and `roles`. The result holds
 * one contract future per suite contract (named as in `SUITE_CONTRACTS`). The contracts come from the Hardhat
 * project's own artifacts by name, or from `artifacts` (@coldchain/contracts' module, in a project that does not
 * compile them); the future ids are the same either way.
 */
export function buildColdChainModule(
  deployer: string,
  roles: SuiteRoles,
  artifacts?: Readonly<Record<SuiteArtifactName, Artifact>>,
) {
  const deployerAddress = getAddress(deployer);
  const admin = getAddress(roles.admin);
  return buildModule(SUITE_MODULE_ID, (m) => {
    const deploy = (name: SuiteArtifactName, args: ArgumentType[], options?: ContractOptions) =>
      artifacts === undefined ? m.contract(name, args, options) : m.contract(name, artifacts[name], args, options);
    const registry = deploy("DeviceRegistry", [deployerAddress]);
    const mktTable = deploy("MktTable", []);
    const p256Fallback = deploy("P256Fallback", []);
    // ShipmentBook is a linked library (profile checks, shipment creation): its code lives outside ColdChain,
    // which stays under EIP-170's 24,576 bytes.
    const shipmentBook =
      artifacts === undefined ? m.library("ShipmentBook") : m.library("ShipmentBook", artifacts.ShipmentBook);
    const coldChain = deploy("ColdChain", [deployerAddress, registry, mktTable, p256Fallback], {
      libraries: { ShipmentBook: shipmentBook },
    });
    const lens = deploy("ColdChainLens", [coldChain]);

    const contracts = { DeviceRegistry: registry, ColdChain: coldChain } as const;
    const handover: ReturnType<typeof m.call>[] = [];
    for (const grant of suiteRoleGrants(roles)) {
      if (grant.role === "DEFAULT_ADMIN_ROLE" && grant.account === deployerAddress) continue; // the constructor did it
      const call = m.call(contracts[grant.contract], "grantRole", [roleId(grant.role), grant.account], {
        id: `grant_${grant.contract}_${grant.role}_${grant.account}`,
      });
      handover.push(call);
    }
    if (admin !== deployerAddress) {
      // Only once every grant is through: afterwards the deployer can grant nothing.
      for (const [name, contract] of Object.entries(contracts)) {
        m.call(contract, "renounceRole", [ZeroHash, deployerAddress], {
          id: `renounce_${name}_DEFAULT_ADMIN_ROLE_${deployerAddress}`,
          after: handover,
        });
      }
    }
    return {
      DeviceRegistry: registry,
      MktTable: mktTable,
      P256Fallback: p256Fallback,
      ColdChain: coldChain,
      ColdChainLens: lens,
    };
  });
}
