/**
 * `shipment create | start | deliver | release | reject`. Each checks the caller's role or party on chain first
 * and says what is wrong before anything is sent. A rejection names a documented reason code (sdk/reasons.ts) and
 * a decision may carry a free-text note (`decideWithNote`, event `DecisionNoted`).
 */
import { encodeBytes32String, isHexString, keccak256, toUtf8Bytes } from "ethers";

import {
  createdId,
  CliError,
  UINT32_MAX,
  UINT40_MAX,
  UINT64_MAX,
  optionalString,
  outcomeFields,
  parseAddress,
  parseUint,
  requireRole,
  requireString,
  sendTransaction,
  usageError,
} from "../command.js";
import type { Command, CommandArgs, CommandContext } from "../command.js";
import {
  DECISION_REASONS,
  DECISION_REASON_CODES,
  DecisionReasonError,
  checkDecisionNote,
  encodeDecisionReason,
} from "../../sdk/reasons.js";
import { PRESET_NAMES, resolveProfile } from "../profiles.js";
import { approveShipperCommand } from "./device.js";
import { createProfile, findProfileId } from "./profile.js";

/** `IShipments.ShipmentStatus` names by value. */
export const SHIPMENT_STATUS = ["None", "Created", "InTransit", "Delivered", "Released", "Rejected", "Cancelled"];

/** A bytes32 from `0x` + 64 hex digits, a short text (≤ 31 bytes, readable on chain) or, longer, its keccak256. */
export function toBytes32(text: string): string {
  if (isHexString(text, 32)) return text;
  return toUtf8Bytes(text).length <= 31 ? encodeBytes32String(text) : keccak256(toUtf8Bytes(text));
}

/** Unix seconds from `now`, a number, or an ISO 8601 date. */
export function parseTime(text: string, name: string): bigint {
  if (text === "now") return BigInt(Math.floor(Date.now() / 1000));
  if (/^\d+$/.test(text)) return parseUint(text, name, UINT40_MAX);
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) usageError(`--${name} must be unix seconds or an ISO 8601 date, got "${text}"`);
  return BigInt(Math.floor(ms / 1000));
}

export function shipmentId(args: CommandArgs): bigint {
  const id = parseUint(requireString(args, "id"), "id", UINT64_MAX);
  if (id === 0n) usageError("--id must be at least 1");
  return id;
}

/** The shipment, or a CliError when it does not exist. */
export async function loadShipment(ctx: CommandContext, id: bigint) {
  const info = await ctx.contracts.coldChain.shipment(id).catch(() => undefined);
  if (info === undefined || Number(info.status) === 0) {
    throw new CliError(`shipment ${id} does not exist on ${ctx.network}; check --id`);
  }
  return info;
}

export function statusName(status: bigint | number): string {
  return SHIPMENT_STATUS[Number(status)] ?? `status ${status}`;
}

/** Throws unless `account` is the shipment's current custodian. */
export async function requireCustodian(ctx: CommandContext, id: bigint, account: string): Promise<void> {
  const info = await loadShipment(ctx, id);
  if (info.custodian.toLowerCase() !== account.toLowerCase()) {
    throw new CliError(
      `${account} is not the custodian of shipment ${id} (${info.custodian} is); use the custodian's key; nothing was sent`,
    );
  }
}

const create: Command = {
  name: ["shipment", "create"],
  summary: "create a shipment (SHIPPER_ROLE) for a profile, receiver, owner and devices; prints its id",
  usage: `--profile <profileId|${PRESET_NAMES.join("|")}|file> --receiver <address> --devices <id,id,…>
        [--owner <address>] [--planned-start <unix|ISO date>] [--ref <text or 0x bytes32>]

A preset or file is matched against existing profiles (ProfileCreated events); without a match it is created,
which needs QA_ROLE. --owner defaults to the signer; --ref (e.g. a GS1 SSCC) is stored as bytes32.
Each device must be owned by the signer or its owner must have approved the signer (\`device approve-shipper\`).`,
  options: {
    profile: { type: "string" },
    receiver: { type: "string" },
    owner: { type: "string" },
    devices: { type: "string" },
    "planned-start": { type: "string" },
    ref: { type: "string" },
  },
  async run(ctx, args) {
    const profileArg = requireString(args, "profile");
    const receiver = parseAddress(requireString(args, "receiver"), "receiver");
    const deviceIds = requireString(args, "devices")
      .split(",")
      .map((d) => parseUint(d.trim(), "devices", UINT64_MAX));
    if (deviceIds.length === 0 || deviceIds.length > 8) usageError("--devices takes 1 to 8 device ids");
    const plannedText = optionalString(args, "planned-start");
    const plannedStartAt = plannedText === undefined ? 0n : parseTime(plannedText, "planned-start");
    const refText = optionalString(args, "ref");
    const externalRef = refText === undefined ? `0x${"00".repeat(32)}` : toBytes32(refText);
    if (refText !== undefined && !isHexString(refText, 32) && toUtf8Bytes(refText).length > 31) {
      // Never silently: the chain then holds a hash that only who knows the text can match.
      ctx.out.warn(
        `--ref is ${toUtf8Bytes(refText).length} bytes, more than the 31 a bytes32 holds as text: stored as its ` +
          `keccak256 ${externalRef}, which the dashboard and reports show as a hashed reference; keep the text to ` +
          "match it, or give a reference of at most 31 bytes (an SSCC's 18 digits fit)",
      );
    }
    const signer = await ctx.signer();
    const owner = parseAddress(optionalString(args, "owner") ?? signer.address, "owner");
    await requireRole(ctx, { contract: "ColdChain", role: "SHIPPER_ROLE" }, signer.address);
    for (const deviceId of deviceIds) {
      if (!(await ctx.contracts.registry.isActive(deviceId))) {
        throw new CliError(`device ${deviceId} is not registered or revoked; run \`device register\` first`);
      }
      if (!(await ctx.contracts.registry.mayBind(deviceId, signer.address))) {
        const { owner: deviceOwner } = await ctx.contracts.registry.device(deviceId);
        throw new CliError(
          `device ${deviceId} is owned by ${deviceOwner}, who has not approved shipper ${signer.address} to bind ` +
            `its devices; have the owner run \`${approveShipperCommand(ctx.network, signer.address)}\`; ` +
            "nothing was sent",
        );
      }
    }

    let profileId: bigint;
    let createdProfile: Record<string, unknown> = {};
    if (/^\d+$/.test(profileArg)) {
      profileId = parseUint(profileArg, "profile", UINT32_MAX);
      const exists = await ctx.contracts.coldChain.profile(profileId).then(
        () => true,
        () => false,
      );
      if (!exists) throw new CliError(`profile ${profileId} does not exist; create it with \`profile create\``);
    } else {
      const profile = resolveProfile(profileArg);
      const found = await findProfileId(ctx, profile);
      if (found !== undefined) {
        profileId = found;
      } else {
        await requireRole(ctx, { contract: "ColdChain", role: "QA_ROLE" }, signer.address).catch(() => {
          throw new CliError(
            `no profile on chain matches "${profileArg}" and ${signer.address} lacks QA_ROLE to create it; ` +
              `have QA run \`npm run cli -- profile create --network ${ctx.network} --profile ${profileArg}\``,
          );
        });
        const created = await createProfile(ctx, signer, profile);
        const { outcome } = created;
        profileId = created.profileId;
        createdProfile = { profileCreated: true };
        if (ctx.dryRun) {
          ctx.out.line("dry run: the shipment itself can only be simulated once the profile exists");
          ctx.out.result({ profileId, ...createdProfile, ...outcomeFields(outcome) });
          return;
        }
      }
    }

    const params = { receiver, owner, profileId, deviceIds, plannedStartAt, externalRef };
    const coldChain = ctx.contracts.coldChain.connect(signer);
    const outcome = await sendTransaction(ctx, {
      label: "createShipment",
      staticCall: () => coldChain.createShipment.staticCall(params),
      estimateGas: () => coldChain.createShipment.estimateGas(params),
      send: () => coldChain.createShipment(params),
    });
    ctx.out.result({
      shipmentId: await createdId(outcome, coldChain, "ShipmentCreated", "shipmentId"),
      profileId,
      ...createdProfile,
      receiver,
      owner,
      deviceIds,
      plannedStartAt,
      externalRef,
      ...outcomeFields(outcome),
    });
  },
};

const start: Command = {
  name: ["shipment", "start"],
  summary: "start a created shipment (its custodian, i.e. the shipper until the first handover)",
  usage: "--id <shipmentId>",
  options: { id: { type: "string" } },
  async run(ctx, args) {
    const id = shipmentId(args);
    const signer = await ctx.signer();
    const info = await loadShipment(ctx, id);
    if (Number(info.status) !== 1) {
      throw new CliError(`shipment ${id} is ${statusName(info.status)}, not Created; nothing to start`);
    }
    await requireCustodian(ctx, id, signer.address);
    const coldChain = ctx.contracts.coldChain.connect(signer);
    const outcome = await sendTransaction(ctx, {
      label: `startShipment(${id})`,
      staticCall: () => coldChain.startShipment.staticCall(id),
      estimateGas: () => coldChain.startShipment.estimateGas(id),
      send: () => coldChain.startShipment(id),
    });
    ctx.out.result({ shipmentId: id, ...outcomeFields(outcome) });
  },
};

const deliver: Command = {
  name: ["shipment", "deliver"],
  summary: "offer custody to the receiver (the current custodian); delivered once the receiver runs `custody accept`",
  usage: "--id <shipmentId> [--deadline <seconds from now, default 86400>]",
  options: { id: { type: "string" }, deadline: { type: "string" } },
  async run(ctx, args) {
    const id = shipmentId(args);
    const signer = await ctx.signer();
    const info = await loadShipment(ctx, id);
    await requireCustodian(ctx, id, signer.address);
    const deadline = await deadlineFromNow(ctx, optionalString(args, "deadline"));
    const coldChain = ctx.contracts.coldChain.connect(signer);
    const outcome = await sendTransaction(ctx, {
      label: `offerCustody(${id}, receiver ${info.receiver})`,
      staticCall: () => coldChain.offerCustody.staticCall(id, info.receiver, deadline),
      estimateGas: () => coldChain.offerCustody.estimateGas(id, info.receiver, deadline),
      send: () => coldChain.offerCustody(id, info.receiver, deadline),
    });
    ctx.out.line(
      `the receiver completes delivery with \`npm run cli -- custody accept --network ${ctx.network} --id ${id}\``,
    );
    ctx.out.result({ shipmentId: id, to: info.receiver, deadline, ...outcomeFields(outcome) });
  },
};

/** Latest block time + `secondsText` (default 24 h). */
export async function deadlineFromNow(ctx: CommandContext, secondsText: string | undefined): Promise<bigint> {
  const seconds = secondsText === undefined ? 86_400n : parseUint(secondsText, "deadline", UINT32_MAX);
  const block = await ctx.provider.getBlock("latest");
  const now = BigInt(block?.timestamp ?? Math.floor(Date.now() / 1000));
  return now + seconds;
}

async function requireDecider(ctx: CommandContext, id: bigint, account: string): Promise<void> {
  const info = await loadShipment(ctx, id);
  if (Number(info.status) !== 3) {
    throw new CliError(`shipment ${id} is ${statusName(info.status)}, not Delivered; nothing was sent`);
  }
  if (info.receiver.toLowerCase() === account.toLowerCase()) return;
  await requireRole(ctx, { contract: "ColdChain", role: "QA_ROLE" }, account).catch(() => {
    throw new CliError(
      `${account} is neither the receiver of shipment ${id} (${info.receiver}) nor holds QA_ROLE; ` +
        "use the receiver's or a QA key; nothing was sent",
    );
  });
}

/** The checked `--note`, or undefined without one; a usage error for a note the contract would refuse. */
function noteOf(args: CommandArgs): string | undefined {
  const text = optionalString(args, "note");
  if (text === undefined) return undefined;
  try {
    return checkDecisionNote(text);
  } catch (error) {
    if (error instanceof DecisionReasonError) usageError(`--note: ${error.message}`);
    throw error;
  }
}

/** The bytes32 of `--reason <CODE>`: a documented code only, never a hash. */
function reasonOf(args: CommandArgs): { code: string; raw: string } {
  const code = requireString(args, "reason").trim();
  const bytes = toUtf8Bytes(code).length;
  if (bytes > 31) {
    usageError(
      `--reason: "${code}" is ${bytes} bytes; a reason code is at most 31 bytes and is never hashed; ` +
        `use one of ${DECISION_REASON_CODES.join(", ")} and put free text in --note`,
    );
  }
  try {
    return { code, raw: encodeDecisionReason(code) };
  } catch (error) {
    if (error instanceof DecisionReasonError) {
      usageError(`--reason: unknown reason code "${code}"; use one of ${DECISION_REASON_CODES.join(", ")}`);
    }
    throw error;
  }
}

const REASON_LIST = DECISION_REASON_CODES.map((code) => `  ${code.padEnd(18)} ${DECISION_REASONS[code]}`).join("\n");

const release: Command = {
  name: ["shipment", "release"],
  summary: "release a delivered shipment (receiver or QA_ROLE), optionally with a note",
  usage: `--id <shipmentId> [--note "<text, at most 280 bytes>"]

The note is recorded on chain with the decision (event DecisionNoted) and shown by \`show\`.`,
  options: { id: { type: "string" }, note: { type: "string" } },
  async run(ctx, args) {
    const id = shipmentId(args);
    const note = noteOf(args);
    const signer = await ctx.signer();
    await requireDecider(ctx, id, signer.address);
    const coldChain = ctx.contracts.coldChain.connect(signer);
    const zero = `0x${"00".repeat(32)}`;
    const outcome =
      note === undefined
        ? await sendTransaction(ctx, {
            label: `release(${id})`,
            staticCall: () => coldChain.release.staticCall(id),
            estimateGas: () => coldChain.release.estimateGas(id),
            send: () => coldChain.release(id),
          })
        : await sendTransaction(ctx, {
            label: `decideWithNote(${id}, release)`,
            staticCall: () => coldChain.decideWithNote.staticCall(id, true, zero, note),
            estimateGas: () => coldChain.decideWithNote.estimateGas(id, true, zero, note),
            send: () => coldChain.decideWithNote(id, true, zero, note),
          });
    ctx.out.result({
      shipmentId: id,
      decision: "Released",
      ...(note === undefined ? {} : { note }),
      ...outcomeFields(outcome),
    });
  },
};

const reject: Command = {
  name: ["shipment", "reject"],
  summary: "reject a delivered shipment with a documented reason code (receiver or QA_ROLE), optionally with a note",
  usage: `--id <shipmentId> --reason <CODE> [--note "<text, at most 280 bytes>"]

Reason codes (stored on chain as short text, shown in words by \`show\`):
${REASON_LIST}
The note is recorded on chain with the decision (event DecisionNoted).`,
  options: { id: { type: "string" }, reason: { type: "string" }, note: { type: "string" } },
  async run(ctx, args) {
    const id = shipmentId(args);
    const reason = reasonOf(args);
    const note = noteOf(args);
    const signer = await ctx.signer();
    await requireDecider(ctx, id, signer.address);
    const coldChain = ctx.contracts.coldChain.connect(signer);
    const outcome =
      note === undefined
        ? await sendTransaction(ctx, {
            label: `reject(${id}, ${reason.code})`,
            staticCall: () => coldChain.reject.staticCall(id, reason.raw),
            estimateGas: () => coldChain.reject.estimateGas(id, reason.raw),
            send: () => coldChain.reject(id, reason.raw),
          })
        : await sendTransaction(ctx, {
            label: `decideWithNote(${id}, reject ${reason.code})`,
            staticCall: () => coldChain.decideWithNote.staticCall(id, false, reason.raw, note),
            estimateGas: () => coldChain.decideWithNote.estimateGas(id, false, reason.raw, note),
            send: () => coldChain.decideWithNote(id, false, reason.raw, note),
          });
    ctx.out.result({
      shipmentId: id,
      decision: "Rejected",
      reasonCode: reason.raw,
      reason: reason.code,
      reasonText: DECISION_REASONS[reason.code as keyof typeof DECISION_REASONS],
      ...(note === undefined ? {} : { note }),
      ...outcomeFields(outcome),
    });
  },
};

export const shipmentCommands: readonly Command[] = [create, start, deliver, release, reject];
