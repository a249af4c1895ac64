/**
 * The operator CLI's building blocks: the {@link Command} interface every `cli/commands/*.ts` implements, the
 * {@link CommandContext} a command runs with (network, deployment, provider, signer, contracts, output), the
 * {@link CliError} that ends the process with a one-line message and a non-zero exit code, and
 * {@link sendTransaction}, the one way a command changes chain state (honours `--dry-run`).
 *
 * Secrets: the signer's key comes from the environment only — `COLDCHAIN_PRIVATE_KEY` (0x-prefixed 32-byte hex).
 * On `localhost` `--account <n>` picks the n-th development account of `hardhat node` instead.
 */
import type { parseArgs } from "node:util";

import { ZeroHash, getAddress, id, isAddress } from "ethers";
import type { ContractTransactionReceipt, ContractTransactionResponse, JsonRpcProvider, Wallet } from "ethers";

import type { Deployment } from "../sdk/deployment.js";
import type { ColdChain, ColdChainLens, DeviceRegistry } from "../types/ethers-contracts/index.js";

/** Environment variable holding the operator's private key. */
export const PRIVATE_KEY_ENV = "COLDCHAIN_PRIVATE_KEY";
/** Environment variable overriding the JSON-RPC URL of any network (else the network's own variable, see docs). */
export const RPC_URL_ENV = "COLDCHAIN_RPC_URL";

/** Option descriptors as `node:util` `parseArgs` takes them. */
export type OptionSpecs = NonNullable<Parameters<typeof parseArgs>[0]>["options"] & {};

/** What `parseArgs` returns for a command's options (global options included). */
export interface CommandArgs {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

/** Where a command writes: human lines, or one JSON document with `--json`. */
export interface Printer {
  /** A human-readable line (suppressed with `--json`). */
  line(text: string): void;
  /** The command's result: printed as JSON with `--json`, else as `key: value` lines (or `text` when given). */
  result(value: unknown, text?: string): void;
  /** A warning on stderr (always shown). */
  warn(text: string): void;
}

/** The suite's contracts, bound to the provider (read) — `connect(signer)` them to send. */
export interface SuiteContracts {
  registry: DeviceRegistry;
  coldChain: ColdChain;
  lens: ColdChainLens;
}

export interface CommandContext {
  /** Network name given with `--network` (the `deployments/<network>.json` file). */
  network: string;
  deployment: Deployment;
  provider: JsonRpcProvider;
  contracts: SuiteContracts;
  /** The operator's wallet (connected to the provider); throws a CliError when no key is configured. */
  signer(): Promise<Wallet>;
  /** `--dry-run`: simulate (staticCall + gas estimate), send nothing. */
  dryRun: boolean;
  /** `--json`: machine-readable output. */
  json: boolean;
  out: Printer;
}

export interface Command {
  /** Words that select the command, e.g. `["device", "register"]`. */
  name: readonly string[];
  /** One line for the command list. */
  summary: string;
  /** Usage text for `--help` (the options line and examples), without the global options. */
  usage: string;
  /** The command's own options; the global ones (`--network`, `--dry-run`, `--json`, `--help`, …) are added. */
  options: OptionSpecs;
  run(ctx: CommandContext, args: CommandArgs): Promise<void>;
}

/** Exit codes: 1 a failed command (revert, chain error), 2 bad usage or input. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Ends the CLI with `message` on one line (it should say what to do) and `exitCode`. */
export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
  ) {
    super(message);
  }
}

/** Throws a usage error (exit 2). */
export function usageError(message: string): never {
  throw new CliError(message, EXIT_USAGE);
}

/** A required string option; a usage error naming it when missing. */
export function requireString(args: CommandArgs, name: string): string {
  const value = args.values[name];
  if (typeof value !== "string" || value === "") usageError(`missing --${name}; see --help`);
  return value;
}

/** An optional string option. */
export function optionalString(args: CommandArgs, name: string): string | undefined {
  const value = args.values[name];
  return typeof value === "string" ? value : undefined;
}

/** A non-negative integer option (decimal or 0x hex) as bigint, with bounds. */
export function parseUint(text: string, name: string, max: bigint = (1n << 256n) - 1n): bigint {
  if (!/^(0x[0-9a-fA-F]+|\d+)$/.test(text)) usageError(`--${name} must be a non-negative integer, got "${text}"`);
  const value = BigInt(text);
  if (value > max) usageError(`--${name} must be at most ${max}, got ${text}`);
  return value;
}

/** A state-changing call, sent (or simulated) by {@link sendTransaction}. */
export interface TransactionRequest {
  /** Names the action in output, e.g. `registerSecp256k1Device(7)`. */
  label: string;
  /** The bound contract method's dry run. */
  staticCall(): Promise<unknown>;
  estimateGas(): Promise<bigint>;
  send(): Promise<ContractTransactionResponse>;
}

export interface TransactionOutcome {
  label: string;
  dryRun: boolean;
  /** The staticCall's return value (e.g. a new shipment id). */
  returned: unknown;
  gasEstimate: bigint;
  transactionHash?: string;
  blockNumber?: number;
  gasUsed?: bigint;
  /** The mined receipt (absent on a dry run): read new ids from its logs, not from `returned`. */
  receipt?: ContractTransactionReceipt;
}

/**
 * Simulates the call (a revert becomes a CliError with the decoded reason), then — unless `--dry-run` — sends it
 * and waits for the receipt. Returns what happened; prints one line per step.
 */
export async function sendTransaction(ctx: CommandContext, request: TransactionRequest): Promise<TransactionOutcome> {
  let returned: unknown;
  let gasEstimate: bigint;
  try {
    returned = await request.staticCall();
    gasEstimate = await request.estimateGas();
  } catch (error) {
    throw new CliError(`${request.label} would revert: ${describeRevert(ctx, error)}; nothing was sent`);
  }
  if (ctx.dryRun) {
    ctx.out.line(`dry run: ${request.label} would succeed (gas estimate ${gasEstimate}); nothing sent`);
    return { label: request.label, dryRun: true, returned, gasEstimate };
  }
  const tx = await request.send();
  const receipt = await tx.wait();
  if (receipt === null || receipt.status !== 1) {
    throw new CliError(`${request.label} reverted on chain (tx ${tx.hash})`);
  }
  ctx.out.line(`${request.label}: tx ${tx.hash} in block ${receipt.blockNumber} (gas ${receipt.gasUsed})`);
  return {
    label: request.label,
    dryRun: false,
    returned,
    gasEstimate,
    transactionHash: tx.hash,
    blockNumber: receipt.blockNumber,
    gasUsed: receipt.gasUsed,
    receipt,
  };
}

/** A revert as `ErrorName(arg, …)` decoded against the suite's ABIs, else the provider's message. */
export function describeRevert(ctx: CommandContext, error: unknown): string {
  const data = findRevertData(error);
  if (data !== undefined && data !== "0x") {
    for (const contract of [ctx.contracts.coldChain, ctx.contracts.registry]) {
      try {
        const parsed = contract.interface.parseError(data);
        if (parsed !== null) return `${parsed.name}(${parsed.args.map((a: unknown) => String(a)).join(", ")})`;
      } catch {
        // not this contract's error
      }
    }
  }
  const message = (error as { shortMessage?: string; message?: string }).shortMessage ?? String(error);
  return message.split("\n")[0] ?? message;
}

function findRevertData(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    const data = (current as { data?: unknown }).data;
    if (typeof data === "string" && data.startsWith("0x")) return data;
    current = (current as { error?: unknown; info?: unknown }).error ?? (current as { info?: unknown }).info;
  }
  return undefined;
}

/** Roles the CLI checks before sending, per contract. */
export type SuiteRole =
  | { contract: "DeviceRegistry"; role: "DEVICE_MANAGER_ROLE" | "GUARDIAN_ROLE" | "DEFAULT_ADMIN_ROLE" }
  | { contract: "ColdChain"; role: "SHIPPER_ROLE" | "QA_ROLE" | "GUARDIAN_ROLE" | "DEFAULT_ADMIN_ROLE" };

/** Throws a CliError (nothing sent) unless `account` holds the role; the message says how to grant it. */
export async function requireRole(ctx: CommandContext, required: SuiteRole, account: string): Promise<void> {
  const contract = required.contract === "DeviceRegistry" ? ctx.contracts.registry : ctx.contracts.coldChain;
  const role = required.role === "DEFAULT_ADMIN_ROLE" ? ZeroHash : id(required.role);
  if (await contract.hasRole(role, account)) return;
  throw new CliError(
    `${account} lacks ${required.role} on ${required.contract} (${await contract.getAddress()}); ` +
      `use a key that holds it, or have an admin grant it: ` +
      `\`npm run cli -- role grant --network ${ctx.network} --contract ${required.contract} --role ${required.role} --to ` +
      `${account}\`; nothing was sent`,
  );
}

/** A checksummed address option; a usage error naming it when malformed. */
export function parseAddress(text: string, name: string): string {
  if (!isAddress(text)) usageError(`--${name} must be a 0x-prefixed 20-byte address, got "${String(text)}"`);
  return getAddress(text);
}

/** Largest uint64 / uint32 / uint40, for option bounds. */
export const UINT64_MAX = (1n << 64n) - 1n;
export const UINT32_MAX = (1n << 32n) - 1n;
export const UINT40_MAX = (1n << 40n) - 1n;

/** The parts of a TransactionOutcome worth printing. */
export function outcomeFields(outcome: TransactionOutcome): Record<string, unknown> {
  return outcome.dryRun
    ? { dryRun: true, gasEstimate: outcome.gasEstimate }
    : { transactionHash: outcome.transactionHash, blockNumber: outcome.blockNumber };
}

/**
 * The id a create call assigned, from its receipt's `event` log (`arg` names the id): the staticCall's return
 * value can differ from the mined one when others create concurrently. On a dry run, the simulated id.
 */
export async function createdId(
  outcome: TransactionOutcome,
  contract: ColdChain,
  event: "ShipmentCreated" | "ProfileCreated",
  arg: "shipmentId" | "profileId",
): Promise<bigint> {
  if (outcome.receipt === undefined) return BigInt(outcome.returned as bigint);
  const target = (await contract.getAddress()).toLowerCase();
  for (const log of outcome.receipt.logs) {
    if (log.address.toLowerCase() !== target) continue;
    const parsed = contract.interface.parseLog(log);
    if (parsed?.name === event) return BigInt(parsed.args.getValue(arg) as bigint);
  }
  throw new CliError(`${outcome.label}: no ${event} log in tx ${outcome.transactionHash}; check the deployment`);
}
