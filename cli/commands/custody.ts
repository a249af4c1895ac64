/**
 * Custody: the two-step `offer` / `accept`, and the one-transaction signed handover — the next custodian runs
 * `custody sign-handover` and passes the printed `coldchain:handover:v1:…` string (or its QR code) to the
 * current custodian, who submits it with `custody handover --signed <string>`.
 */
import { signCustodyAcceptance } from "../../sdk/protocol/eip712.js";
import {
  CliError,
  EXIT_USAGE,
  optionalString,
  outcomeFields,
  parseAddress,
  requireString,
  sendTransaction,
} from "../command.js";
import type { Command } from "../command.js";
import { HandoverError, assertHandoverSigner, decodeHandover, encodeHandover } from "../handover.js";
import { deadlineFromNow, loadShipment, requireCustodian, shipmentId, statusName } from "./shipment.js";

const offer: Command = {
  name: ["custody", "offer"],
  summary: "offer custody of a shipment to the next custodian (the current custodian)",
  usage: "--id <shipmentId> --to <address> [--deadline <seconds from now, default 86400>]",
  options: { id: { type: "string" }, to: { type: "string" }, deadline: { type: "string" } },
  async run(ctx, args) {
    const id = shipmentId(args);
    const to = parseAddress(requireString(args, "to"), "to");
    const signer = await ctx.signer();
    await requireCustodian(ctx, id, signer.address);
    const deadline = await deadlineFromNow(ctx, optionalString(args, "deadline"));
    const coldChain = ctx.contracts.coldChain.connect(signer);
    const outcome = await sendTransaction(ctx, {
      label: `offerCustody(${id}, ${to})`,
      staticCall: () => coldChain.offerCustody.staticCall(id, to, deadline),
      estimateGas: () => coldChain.offerCustody.estimateGas(id, to, deadline),
      send: () => coldChain.offerCustody(id, to, deadline),
    });
    ctx.out.result({ shipmentId: id, to, deadline, ...outcomeFields(outcome) });
  },
};

const accept: Command = {
  name: ["custody", "accept"],
  summary: "accept a pending custody offer (the offered party; the receiver's acceptance delivers the shipment)",
  usage: "--id <shipmentId>",
  options: { id: { type: "string" } },
  async run(ctx, args) {
    const id = shipmentId(args);
    const signer = await ctx.signer();
    await loadShipment(ctx, id);
    const pending = await ctx.contracts.coldChain.custodyOffer(id);
    if (pending.to.toLowerCase() !== signer.address.toLowerCase()) {
      throw new CliError(
        pending.to === "0x0000000000000000000000000000000000000000"
          ? `shipment ${id} has no pending custody offer; the custodian must run \`custody offer\` first`
          : `the pending offer of shipment ${id} is to ${pending.to}, not ${signer.address}; use that key`,
      );
    }
    const coldChain = ctx.contracts.coldChain.connect(signer);
    const outcome = await sendTransaction(ctx, {
      label: `acceptCustody(${id})`,
      staticCall: () => coldChain.acceptCustody.staticCall(id),
      estimateGas: () => coldChain.acceptCustody.estimateGas(id),
      send: () => coldChain.acceptCustody(id),
    });
    const status = ctx.dryRun ? undefined : statusName((await ctx.contracts.coldChain.shipment(id)).status);
    ctx.out.result({ shipmentId: id, custodian: signer.address, status, ...outcomeFields(outcome) });
  },
};

const signHandover: Command = {
  name: ["custody", "sign-handover"],
  summary: "as the next custodian, sign the EIP-712 acceptance and print it as a coldchain:handover:v1 string",
  usage: `--id <shipmentId> [--deadline <seconds from now, default 3600>]

Sends nothing. Hand the printed string (or a QR code of it) to the current custodian, who runs
\`custody handover --signed <string>\`. It is valid until the deadline and only for the next handover.`,
  options: { id: { type: "string" }, deadline: { type: "string" } },
  async run(ctx, args) {
    const id = shipmentId(args);
    const signer = await ctx.signer();
    const info = await loadShipment(ctx, id);
    const status = Number(info.status);
    if (status !== 1 && status !== 2) {
      throw new CliError(`shipment ${id} is ${statusName(info.status)}; custody can no longer change hands`);
    }
    if (info.custodian.toLowerCase() === signer.address.toLowerCase()) {
      throw new CliError(`${signer.address} already holds shipment ${id}; sign with the next custodian's key`);
    }
    const nonce = await ctx.contracts.coldChain.handoverNonce(id);
    const deadline = await deadlineFromNow(ctx, optionalString(args, "deadline") ?? "3600");
    const domain = {
      chainId: BigInt(ctx.deployment.chainId),
      verifyingContract: ctx.deployment.contracts.ColdChain.address,
    };
    const acceptance = { shipmentId: id, custodian: signer.address, nonce, deadline };
    const signature = await signCustodyAcceptance(signer, domain, acceptance);
    const handover = encodeHandover({ domain, acceptance, signature });
    ctx.out.result({ shipmentId: id, custodian: signer.address, nonce, deadline, handover }, handover);
  },
};

const handover: Command = {
  name: ["custody", "handover"],
  summary: "as the current custodian, transfer custody in one transaction with the next custodian's signed string",
  usage: "--signed <coldchain:handover:v1:…>",
  options: { signed: { type: "string" } },
  async run(ctx, args) {
    const domain = {
      chainId: BigInt(ctx.deployment.chainId),
      verifyingContract: ctx.deployment.contracts.ColdChain.address,
    };
    let signed;
    try {
      // Refuses a handover signed for another chain or ColdChain deployment (the domain is inside the text).
      signed = decodeHandover(requireString(args, "signed"), domain);
    } catch (error) {
      if (error instanceof HandoverError && error.code === "HANDOVER_WRONG_DOMAIN") {
        throw new CliError(`${error.message} (--network ${ctx.network})`, EXIT_USAGE);
      }
      if (error instanceof HandoverError) {
        throw new CliError(`--signed is not a valid handover string: ${error.message}`, EXIT_USAGE);
      }
      throw error;
    }
    const { acceptance, signature } = signed;
    // A contract-wallet custodian (ERC-1271) signs through its own code: the contract checks it with
    // SignatureChecker, so only the staticCall below can tell. An EOA's signature is checked here first.
    if ((await ctx.provider.getCode(acceptance.custodian)) === "0x") {
      try {
        assertHandoverSigner(signed);
      } catch (error) {
        if (error instanceof HandoverError) throw new CliError(error.message, EXIT_USAGE);
        throw error;
      }
    }
    const id = acceptance.shipmentId;
    const signer = await ctx.signer();
    await requireCustodian(ctx, id, signer.address);
    const nonce = await ctx.contracts.coldChain.handoverNonce(id);
    if (nonce !== acceptance.nonce) {
      throw new CliError(
        `the handover was signed for custody step ${acceptance.nonce} but shipment ${id} is at ${nonce} ` +
          "(custody changed since); ask the next custodian to sign again",
      );
    }
    const coldChain = ctx.contracts.coldChain.connect(signer);
    const to = acceptance.custodian;
    const outcome = await sendTransaction(ctx, {
      label: `transferCustodyWithSignature(${id}, ${to})`,
      staticCall: () => coldChain.transferCustodyWithSignature.staticCall(id, to, acceptance.deadline, signature),
      estimateGas: () => coldChain.transferCustodyWithSignature.estimateGas(id, to, acceptance.deadline, signature),
      send: () => coldChain.transferCustodyWithSignature(id, to, acceptance.deadline, signature),
    });
    const status = ctx.dryRun ? undefined : statusName((await ctx.contracts.coldChain.shipment(id)).status);
    ctx.out.result({ shipmentId: id, from: signer.address, to, status, ...outcomeFields(outcome) });
  },
};

export const custodyCommands: readonly Command[] = [offer, accept, signHandover, handover];
