/**
 * `role grant | revoke`: AccessControl administration of DeviceRegistry and ColdChain (DEFAULT_ADMIN_ROLE).
 */
import { ZeroHash, id as keccakId } from "ethers";

import { outcomeFields, parseAddress, requireRole, requireString, sendTransaction, usageError } from "../command.js";
import type { Command, CommandArgs, CommandContext, SuiteRole } from "../command.js";

const ROLES = {
  DeviceRegistry: ["DEVICE_MANAGER_ROLE", "GUARDIAN_ROLE", "DEFAULT_ADMIN_ROLE"],
  ColdChain: ["SHIPPER_ROLE", "QA_ROLE", "GUARDIAN_ROLE", "DEFAULT_ADMIN_ROLE"],
} as const;

function parseRole(args: CommandArgs): SuiteRole & { to: string } {
  const contract = requireString(args, "contract");
  const role = requireString(args, "role");
  if (contract !== "DeviceRegistry" && contract !== "ColdChain") {
    usageError(`--contract must be DeviceRegistry or ColdChain, got "${contract}"`);
  }
  const allowed: readonly string[] = ROLES[contract];
  if (!allowed.includes(role)) usageError(`--role on ${contract} must be one of ${allowed.join(", ")}`);
  return { contract, role, to: parseAddress(requireString(args, "to"), "to") } as SuiteRole & { to: string };
}

async function change(ctx: CommandContext, args: CommandArgs, grant: boolean): Promise<void> {
  const { to, ...role } = parseRole(args);
  const signer = await ctx.signer();
  await requireRole(ctx, { contract: role.contract, role: "DEFAULT_ADMIN_ROLE" }, signer.address);
  const contract = (role.contract === "ColdChain" ? ctx.contracts.coldChain : ctx.contracts.registry).connect(signer);
  const roleId = role.role === "DEFAULT_ADMIN_ROLE" ? ZeroHash : keccakId(role.role);
  const method = grant ? contract.grantRole : contract.revokeRole;
  const outcome = await sendTransaction(ctx, {
    label: `${grant ? "grantRole" : "revokeRole"}(${role.role}, ${to}) on ${role.contract}`,
    staticCall: () => method.staticCall(roleId, to),
    estimateGas: () => method.estimateGas(roleId, to),
    send: () => method(roleId, to),
  });
  if (!ctx.dryRun) ctx.out.warn(`deployments/${ctx.network}.json lists the roles granted at deployment only`);
  ctx.out.result({ contract: role.contract, role: role.role, account: to, granted: grant, ...outcomeFields(outcome) });
}

const usage = "--contract <DeviceRegistry|ColdChain> --role <ROLE_NAME> --to <address>";

export const roleCommands: readonly Command[] = [
  {
    name: ["role", "grant"],
    summary: "grant a role (DEFAULT_ADMIN_ROLE of that contract)",
    usage,
    options: { contract: { type: "string" }, role: { type: "string" }, to: { type: "string" } },
    run: (ctx, args) => change(ctx, args, true),
  },
  {
    name: ["role", "revoke"],
    summary: "revoke a role (DEFAULT_ADMIN_ROLE of that contract)",
    usage,
    options: { contract: { type: "string" }, role: { type: "string" }, to: { type: "string" } },
    run: (ctx, args) => change(ctx, args, false),
  },
];
