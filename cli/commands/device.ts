/**
 * `device register | rotate | revoke | approve-shipper`: the DeviceRegistry's write side. Keys are secp256k1
 * (`--signer <address>`) or P-256 (`--p256-x <hex> --p256-y <hex>`, or `--p256-public-key <04‖x‖y hex>`).
 * A shipper may bind a device to a shipment only if it owns the device or the owner approved it
 * (`device approve-shipper`, signed by the owner). Keys are bound to time: `rotate` prints the time from which the
 * new key verifies readings, `revoke` the time from which the device's readings are refused (`--from`: an earlier
 * time, device managers only).
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
import type { Command, CommandArgs, CommandContext, TransactionOutcome } from "../command.js";
import { parseTime } from "./shipment.js";

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
  summary: "replace a device's verification key from now on; earlier readings keep the old one (owner or manager)",
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
    // Keys are bound to time: the new key verifies readings observed from the rotation's block time on.
    const event = eventOf(ctx, outcome.receipt, "DeviceKeyValidFrom");
    const keyValidFrom = event === undefined ? undefined : Number(event.validFrom);
    ctx.out.line(
      keyValidFrom === undefined
        ? `the new key of device ${id} would verify readings observed from the rotation's block time on`
        : `the new key of device ${id} verifies readings observed from ${timeText(keyValidFrom)} on; earlier ` +
            "readings still verify under the previous key",
    );
    ctx.out.result({
      deviceId: id,
      ...key,
      ...(keyValidFrom === undefined ? {} : { keyValidFrom }),
      ...outcomeFields(outcome),
    });
  },
};

const revoke: Command = {
  name: ["device", "revoke"],
  summary: "revoke a device for good: its readings observed from now (or --from, device managers only) on are refused",
  usage: `--id <deviceId> [--from <ISO 8601 time | unix seconds>]

Keys are bound to time: readings the device observed before the distrust time still count (the oracle still relays
them), those observed from it on are refused. Without --from the device is distrusted from the revocation's block
time (owner or device manager). --from names an earlier time, e.g. when its key was found compromised
(revokeDeviceFrom): device managers only, so that a party to a shipment cannot void another's unrecorded evidence.`,
  options: { id: { type: "string" }, from: { type: "string" } },
  async run(ctx, args) {
    const id = deviceId(args);
    const fromText = optionalString(args, "from");
    const from = fromText === undefined ? undefined : parseTime(fromText, "from");
    const signer = await ctx.signer();
    await requireOwnerOrManager(ctx, id, signer.address);
    const registry = ctx.contracts.registry.connect(signer);
    let outcome;
    if (from === undefined) {
      outcome = await sendTransaction(ctx, {
        label: `revokeDevice(${id})`,
        staticCall: () => registry.revokeDevice.staticCall(id),
        estimateGas: () => registry.revokeDevice.estimateGas(id),
        send: () => registry.revokeDevice(id),
      });
    } else {
      await requireRole(ctx, { contract: "DeviceRegistry", role: "DEVICE_MANAGER_ROLE" }, signer.address).catch(() => {
        throw new CliError(
          `--from (revokeDeviceFrom) is for device managers only and ${signer.address} lacks DEVICE_MANAGER_ROLE: ` +
            "an owner revokes from now (omit --from), or a device manager names the earlier time; nothing was sent",
        );
      });
      const latest = await ctx.provider.getBlock("latest");
      if (latest !== null && from > BigInt(latest.timestamp)) {
        usageError(
          `--from ${fromText} (${timeText(Number(from))}) is after the chain's latest block time ` +
            `${timeText(latest.timestamp)}: a device can be distrusted from now or earlier, not from the future`,
        );
      }
      outcome = await sendTransaction(ctx, {
        label: `revokeDeviceFrom(${id}, ${from})`,
        staticCall: () => registry.revokeDeviceFrom.staticCall(id, from),
        estimateGas: () => registry.revokeDeviceFrom.estimateGas(id, from),
        send: () => registry.revokeDeviceFrom(id, from),
      });
    }
    // The distrust time the registry recorded (the revocation's block time without --from).
    const event = eventOf(ctx, outcome.receipt, "DeviceDistrusted");
    const distrustedFrom =
      event === undefined ? (from === undefined ? undefined : Number(from)) : Number(event.distrustedFrom);
    if (distrustedFrom === undefined) {
      ctx.out.line(`device ${id} would be distrusted from the revocation's block time`);
    } else {
      ctx.out.line(
        `device ${id} ${outcome.dryRun ? "would be" : "is"} distrusted from ${timeText(distrustedFrom)}: readings ` +
          "observed from then on are refused, earlier ones still count",
      );
    }
    ctx.out.result({
      deviceId: id,
      revoked: !outcome.dryRun,
      ...(distrustedFrom === undefined ? {} : { distrustedFrom }),
      ...outcomeFields(outcome),
    });
  },
};

/** Unix seconds as ISO 8601 with the number: `2026-12-06T18:00:00Z (1796580000)`. */
function timeText(seconds: number): string {
  return `${new Date(Math.max(1, seconds) * 1000).toISOString().replace(".000Z", "Z")} (${seconds})`;
}

/** The arguments of the registry event `name` in a mined receipt (undefined on a dry run). */
function eventOf(
  ctx: CommandContext,
  receipt: TransactionOutcome["receipt"],
  name: "DeviceDistrusted" | "DeviceKeyValidFrom",
): Record<string, unknown> | undefined {
  const registry = ctx.contracts.registry;
  for (const log of receipt?.logs ?? []) {
    try {
      const parsed = registry.interface.parseLog(log);
      if (parsed?.name === name) return parsed.args.toObject() as Record<string, unknown>;
    } catch {
      // another contract's log
    }
  }
  return undefined;
}

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
