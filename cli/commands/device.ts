/**
 * `device register | rotate | revoke | approve-shipper`: the DeviceRegistry's write side. Keys are secp256k1
 * (`--signer <address>`) or P-256 (`--p256-x <hex> --p256-y <hex>`, or `--p256-public-key <04‖x‖y hex>`).
 * A shipper may bind a device to a shipment only if it owns the device or the owner approved it
 * (`device approve-shipper`, signed by the owner).
 */
import { id as keccakId, zeroPadValue, isHexString } from "ethers";

import {
  CliError,
  UINT32_MAX,
  UINT64_MAX,
  optionalString,
  parseAddress,
  parseUint,
  requireRole,
  requireString,
  outcomeFields,
  sendTransaction,
  usageError,
} from "../command.js";
import type { Command, CommandArgs, CommandContext } from "../command.js";

const KEY_OPTIONS = {
  signer: { type: "string" },
  "p256-x": { type: "string" },
  "p256-y": { type: "string" },
  "p256-public-key": { type: "string" },
} as const;

const KEY_USAGE = `(--signer <address> | --p256-x <hex32> --p256-y <hex32> | --p256-public-key <04xy hex>)`;

type DeviceKey = { keyType: "secp256k1"; signer: string } | { keyType: "p256"; qx: string; qy: string };

function parseKey(args: CommandArgs): DeviceKey {
  const signer = optionalString(args, "signer");
  const x = optionalString(args, "p256-x");
  const y = optionalString(args, "p256-y");
  const pub = optionalString(args, "p256-public-key");
  const given = [signer !== undefined, x !== undefined || y !== undefined, pub !== undefined].filter(Boolean).length;
  if (given !== 1) usageError(`give exactly one key: ${KEY_USAGE}`);
  if (signer !== undefined) return { keyType: "secp256k1", signer: parseAddress(signer, "signer") };
  if (pub !== undefined) {
    const hex = pub.startsWith("0x") ? pub.slice(2) : pub;
    if (!/^04[0-9a-fA-F]{128}$/.test(hex)) usageError("--p256-public-key must be 65 bytes hex: 04 ‖ x ‖ y");
    return { keyType: "p256", qx: `0x${hex.slice(2, 66)}`, qy: `0x${hex.slice(66)}` };
  }
  if (x === undefined || y === undefined) usageError("a P-256 key needs both --p256-x and --p256-y");
  return { keyType: "p256", qx: coordinate(x, "p256-x"), qy: coordinate(y, "p256-y") };
}

function coordinate(text: string, name: string): string {
  const hex = text.startsWith("0x") ? text : `0x${text}`;
  if (!isHexString(hex) || hex.length > 66 || hex.length < 4) usageError(`--${name} must be up to 32 bytes of hex`);
  return zeroPadValue(hex, 32);
}

function deviceId(args: CommandArgs): bigint {
  const id = parseUint(requireString(args, "id"), "id", UINT64_MAX);
  if (id === 0n) usageError("--id must be at least 1");
  return id;
}

/** The caller must own the device or hold DEVICE_MANAGER_ROLE; checked before sending. */
async function requireOwnerOrManager(ctx: CommandContext, id: bigint, account: string): Promise<void> {
  const info = await ctx.contracts.registry.device(id);
  if (Number(info.keyType) === 0) throw new CliError(`device ${id} is not registered; register it first`);
  if (info.revokedAtBlock !== 0n) throw new CliError(`device ${id} was revoked in block ${info.revokedAtBlock}`);
  if (info.owner.toLowerCase() === account.toLowerCase()) return;
  await requireRole(ctx, { contract: "DeviceRegistry", role: "DEVICE_MANAGER_ROLE" }, account).catch(() => {
    throw new CliError(
      `${account} is neither the owner of device ${id} (${info.owner}) nor holds DEVICE_MANAGER_ROLE; ` +
        "use the owner's key or a device manager's; nothing was sent",
    );
  });
}

const register: Command = {
  name: ["device", "register"],
  summary: "register a device (secp256k1 address or P-256 public key) with its owner and recording interval",
  usage: `--id <deviceId> --owner <address> --interval <seconds> ${KEY_USAGE}`,
  options: { id: { type: "string" }, owner: { type: "string" }, interval: { type: "string" }, ...KEY_OPTIONS },
  async run(ctx, args) {
    const id = deviceId(args);
    const owner = parseAddress(requireString(args, "owner"), "owner");
    const interval = parseUint(requireString(args, "interval"), "interval", UINT32_MAX);
    if (interval === 0n) usageError("--interval must be at least 1 second");
    const key = parseKey(args);
    const signer = await ctx.signer();
    await requireRole(ctx, { contract: "DeviceRegistry", role: "DEVICE_MANAGER_ROLE" }, signer.address);
    const registry = ctx.contracts.registry.connect(signer);
    const outcome =
      key.keyType === "secp256k1"
        ? await sendTransaction(ctx, {
            label: `registerSecp256k1Device(${id})`,
            staticCall: () => registry.registerSecp256k1Device.staticCall(id, owner, interval, key.signer),
            estimateGas: () => registry.registerSecp256k1Device.estimateGas(id, owner, interval, key.signer),
            send: () => registry.registerSecp256k1Device(id, owner, interval, key.signer),
          })
        : await sendTransaction(ctx, {
            label: `registerP256Device(${id})`,
            staticCall: () => registry.registerP256Device.staticCall(id, owner, interval, key.qx, key.qy),
            estimateGas: () => registry.registerP256Device.estimateGas(id, owner, interval, key.qx, key.qy),
            send: () => registry.registerP256Device(id, owner, interval, key.qx, key.qy),
          });
    ctx.out.result({ deviceId: id, owner, intervalSeconds: interval, ...key, ...outcomeFields(outcome) });
  },
};

const rotate: Command = {
  name: ["device", "rotate"],
  summary: "replace a device's verification key (owner or device manager)",
  usage: `--id <deviceId> ${KEY_USAGE}`,
  options: { id: { type: "string" }, ...KEY_OPTIONS },
  async run(ctx, args) {
    const id = deviceId(args);
    const key = parseKey(args);
    const signer = await ctx.signer();
    await requireOwnerOrManager(ctx, id, signer.address);
    const registry = ctx.contracts.registry.connect(signer);
    const outcome =
      key.keyType === "secp256k1"
        ? await sendTransaction(ctx, {
            label: `rotateSecp256k1Key(${id})`,
            staticCall: () => registry.rotateSecp256k1Key.staticCall(id, key.signer),
            estimateGas: () => registry.rotateSecp256k1Key.estimateGas(id, key.signer),
            send: () => registry.rotateSecp256k1Key(id, key.signer),
          })
        : await sendTransaction(ctx, {
            label: `rotateP256Key(${id})`,
            staticCall: () => registry.rotateP256Key.staticCall(id, key.qx, key.qy),
            estimateGas: () => registry.rotateP256Key.estimateGas(id, key.qx, key.qy),
            send: () => registry.rotateP256Key(id, key.qx, key.qy),
          });
    ctx.out.result({ deviceId: id, ...key, ...outcomeFields(outcome) });
  },
};

const revoke: Command = {
  name: ["device", "revoke"],
  summary: "revoke a device for good: its readings are refused from the next block (owner or device manager)",
  usage: "--id <deviceId>",
  options: { id: { type: "string" } },
  async run(ctx, args) {
    const id = deviceId(args);
    const signer = await ctx.signer();
    await requireOwnerOrManager(ctx, id, signer.address);
    const registry = ctx.contracts.registry.connect(signer);
    const outcome = await sendTransaction(ctx, {
      label: `revokeDevice(${id})`,
      staticCall: () => registry.revokeDevice.staticCall(id),
      estimateGas: () => registry.revokeDevice.estimateGas(id),
      send: () => registry.revokeDevice(id),
    });
    ctx.out.result({ deviceId: id, revoked: !outcome.dryRun, ...outcomeFields(outcome) });
  },
};

/** The command a device owner runs to let `shipper` bind its devices (quoted in error messages). */
export function approveShipperCommand(network: string, shipper: string): string {
  return `npm run cli -- device approve-shipper --network ${network} --shipper ${shipper}`;
}

const approveShipper: Command = {
  name: ["device", "approve-shipper"],
  summary: "as a device owner, allow a shipper to bind all your devices to its shipments (--revoke withdraws it)",
  usage: `--shipper <address> [--revoke]

Signed by the owner's key. The consent covers every device the signer owns, now or later; --revoke stops new
bindings (a device already bound to a shipment stays bound).`,
  options: { shipper: { type: "string" }, revoke: { type: "boolean", default: false } },
  async run(ctx, args) {
    const shipper = parseAddress(requireString(args, "shipper"), "shipper");
    const approved = args.values.revoke !== true;
    const signer = await ctx.signer();
    const owner = signer.address;
    if (shipper.toLowerCase() === owner.toLowerCase()) {
      usageError("--shipper is the signer itself: an owner may always bind its own devices; nothing was sent");
    }
    const registry = ctx.contracts.registry.connect(signer);
    const outcome = await sendTransaction(ctx, {
      label: `setShipperApproval(${shipper}, ${approved})`,
      staticCall: () => registry.setShipperApproval.staticCall(shipper, approved),
      estimateGas: () => registry.setShipperApproval.estimateGas(shipper, approved),
      send: () => registry.setShipperApproval(shipper, approved),
    });
    if (approved && !(await ctx.contracts.coldChain.hasRole(keccakId("SHIPPER_ROLE"), shipper))) {
      ctx.out.warn(`${shipper} does not hold SHIPPER_ROLE on ColdChain yet; it cannot create shipments until granted`);
    }
    const what = approved
      ? `shipper ${shipper} to bind its devices to shipments`
      : `shipper ${shipper} to bind its devices to new shipments (devices already bound stay bound)`;
    ctx.out.line(
      outcome.dryRun
        ? `dry run: owner ${owner} would ${approved ? "allow" : "no longer allow"} ${what}`
        : `owner ${owner} ${approved ? "now allows" : "no longer allows"} ${what}`,
    );
    ctx.out.result({ owner, shipper, approved, ...outcomeFields(outcome) });
  },
};

export const deviceCommands: readonly Command[] = [register, rotate, revoke, approveShipper];
