/**
 * `npm run cli -- <command> --network <name> [options]`: the operator CLI. Finds the command in
 * {@link COMMANDS}, parses its options (plus the global ones), builds the {@link CommandContext} from
 * `deployments/<network>.json` and runs it. Any error ends the process with one line on stderr and a non-zero
 * exit code.
 */
import { parseArgs } from "node:util";

import { HDNodeWallet, JsonRpcProvider, Network, Wallet, isHexString } from "ethers";

import { DeploymentError, SUITE_CONTRACTS } from "../sdk/deployment.js";
import type { Deployment } from "../sdk/deployment.js";
import { formatCelsius, formatDateTime } from "../sdk/format.js";
import { loadDeployment } from "../sdk/node/deployment.js";
import { exitQuietlyOnClosedPipe } from "../scripts/lib/closed-pipe.js";
import { BuildError, ensureContractsBuilt } from "../scripts/lib/ensure-build.js";
import { CliError, EXIT_USAGE, PRIVATE_KEY_ENV, RPC_URL_ENV, usageError } from "./command.js";
import type { Command, CommandArgs, CommandContext, OptionSpecs, Printer } from "./command.js";
import { COMMANDS } from "./commands/index.js";
import { resolveRpcUrl } from "./networks.js";

/** The mnemonic of `hardhat node`'s development accounts (public; localhost only). */
const HARDHAT_DEV_MNEMONIC = "test test test test test test test test test test test junk";

export const GLOBAL_OPTIONS: OptionSpecs = {
  network: { type: "string" },
  "rpc-url": { type: "string" },
  account: { type: "string" },
  "dry-run": { type: "boolean", default: false },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
};

const GLOBAL_USAGE = `Global options:
  --network <name>   network whose deployments/<name>.json to use (required)
  --rpc-url <url>    JSON-RPC endpoint (default: $${RPC_URL_ENV}, else the network's variable, see docs/deploying.md)
  --account <n>      localhost only: use hardhat node's n-th development account instead of $${PRIVATE_KEY_ENV}
  --dry-run          simulate (staticCall + gas estimate); send nothing
  --json             machine-readable output on stdout
  -h, --help         this help
Environment: ${PRIVATE_KEY_ENV}=0x… (the signing key), ${RPC_URL_ENV}, COLDCHAIN_DEPLOYMENTS_DIR.`;

/** Runs the CLI with `argv` (without `node script`); returns the exit code. */
export async function runCli(argv: readonly string[], commands: readonly Command[] = COMMANDS): Promise<number> {
  let json = argv.includes("--json");
  try {
    const { command, rest } = findCommand(argv, commands);
    if (command === undefined) {
      process.stdout.write(`${overview(commands)}\n`);
      if (rest.some((a) => a === "--help" || a === "-h") || argv.length === 0) return 0;
      return usageError("no command given; pick one of the commands above");
    }
    const args = parseCommandArgs(command, rest);
    json = args.values.json === true;
    if (args.values.help === true) {
      process.stdout.write(`${commandHelp(command)}\n`);
      return 0;
    }
    const ctx = await createContext(args);
    try {
      await command.run(ctx, args);
    } finally {
      ctx.provider.destroy();
    }
    return 0;
  } catch (error) {
    const { message, exitCode } = asCliError(error);
    if (json) process.stdout.write(`${JSON.stringify({ error: message, exitCode })}\n`);
    process.stderr.write(`error: ${message}\n`);
    return exitCode;
  }
}

function asCliError(error: unknown): CliError {
  if (error instanceof CliError) return error;
  if (error instanceof DeploymentError) return new CliError(error.message, EXIT_USAGE);
  if (error instanceof BuildError) return new CliError(error.message);
  const message = (error as { shortMessage?: string; message?: string }).shortMessage ?? String(error);
  return new CliError(message.split("\n")[0] ?? message);
}

/**
 * The longest command whose name matches the first words of `argv` (its non-option arguments, so options may
 * come first: `--network localhost shipment start`); `rest` is `argv` without those words.
 */
function findCommand(
  argv: readonly string[],
  commands: readonly Command[],
): { command: Command | undefined; rest: string[] } {
  const wordIndexes = argv.flatMap((a, i) => (!a.startsWith("-") && !takesValue(argv[i - 1]) ? [i] : []));
  const words = wordIndexes.map((i) => argv[i]);
  let best: Command | undefined;
  for (const command of commands) {
    const matches = command.name.every((word, i) => words[i] === word);
    if (matches && (best === undefined || command.name.length > best.name.length)) best = command;
  }
  if (best !== undefined) {
    const used = new Set(wordIndexes.slice(0, best.name.length));
    return { command: best, rest: argv.filter((_, i) => !used.has(i)) };
  }
  if (words.length > 0 && !argv.includes("--help") && !argv.includes("-h")) {
    const group = commands.filter((c) => c.name[0] === words[0]);
    const hint =
      group.length > 0
        ? `; try one of: ${group.map((c) => c.name.join(" ")).join(", ")}`
        : "; run `npm run cli -- --help` for the list";
    usageError(`unknown command "${words.slice(0, 2).join(" ")}"${hint}`);
  }
  return { command: undefined, rest: [...argv] };
}

/** Whether `token` is an option that consumes the next argument (so that argument is no command word). */
function takesValue(token: string | undefined): boolean {
  if (token?.startsWith("-") !== true || token.includes("=")) return false;
  return !["--dry-run", "--json", "--help", "-h"].includes(token);
}

function parseCommandArgs(command: Command, rest: string[]): CommandArgs {
  try {
    const parsed = parseArgs({
      args: rest,
      options: { ...GLOBAL_OPTIONS, ...command.options },
      allowPositionals: true,
      strict: true,
    });
    if (parsed.positionals.length > 0) {
      usageError(`unexpected argument "${parsed.positionals[0]}" for \`${command.name.join(" ")}\`; see --help`);
    }
    return { values: parsed.values, positionals: parsed.positionals };
  } catch (error) {
    if (error instanceof CliError) throw error;
    const message = ((error as Error).message.split("\n")[0] ?? "invalid arguments").replace(/\. To specify.*$/, "");
    return usageError(`${message.replace(/\.$/, "")}; see \`npm run cli -- ${command.name.join(" ")} --help\``);
  }
}

function overview(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.join(" ").length));
  const lines = commands.map((c) => `  ${c.name.join(" ").padEnd(width)}  ${c.summary}`);
  return `Usage: npm run cli -- <command> --network <name> [options]\n\nCommands:\n${lines.join("\n")}\n\n${GLOBAL_USAGE}\n\nRun \`npm run cli -- <command> --help\` for a command's options.`;
}

function commandHelp(command: Command): string {
  return `Usage: npm run cli -- ${command.name.join(" ")} --network <name> ${command.usage.trim()}\n\n${command.summary}\n\n${GLOBAL_USAGE}`;
}

async function createContext(args: CommandArgs): Promise<CommandContext> {
  const network = typeof args.values.network === "string" ? args.values.network : undefined;
  if (network === undefined) usageError("missing --network <name> (e.g. --network localhost); see --help");
  const json = args.values.json === true;
  const out = createPrinter(json);
  const deployment = loadDeployment(network);
  const url = await resolveRpcUrl(
    network,
    typeof args.values["rpc-url"] === "string" ? args.values["rpc-url"] : undefined,
  );
  const provider = new JsonRpcProvider(url, Network.from(deployment.chainId), {
    staticNetwork: true,
    pollingInterval: 250,
    cacheTimeout: -1, // two transactions in one command must not reuse a cached nonce
  });
  await checkChain(provider, url, network, deployment);
  // The bindings are generated by the build (a fresh clone has none yet): loaded once a command needs them, so
  // `--help` neither needs nor makes the build.
  await ensureContractsBuilt();
  const { ColdChain__factory, ColdChainLens__factory, DeviceRegistry__factory } =
    await import("../types/ethers-contracts/index.js");
  const contracts = {
    registry: DeviceRegistry__factory.connect(deployment.contracts.DeviceRegistry.address, provider),
    coldChain: ColdChain__factory.connect(deployment.contracts.ColdChain.address, provider),
    lens: ColdChainLens__factory.connect(deployment.contracts.ColdChainLens.address, provider),
  };
  const account = typeof args.values.account === "string" ? args.values.account : undefined;
  let wallet: Wallet | undefined;
  return {
    network,
    deployment,
    provider,
    contracts,
    dryRun: args.values["dry-run"] === true,
    json,
    out,
    signer: () => {
      wallet ??= createWallet(network, account, provider);
      return Promise.resolve(wallet);
    },
  };
}

async function checkChain(provider: JsonRpcProvider, url: string, network: string, deployment: Deployment) {
  let chainId: bigint;
  try {
    chainId = BigInt((await provider.send("eth_chainId", [])) as string);
  } catch (error) {
    throw new CliError(
      `cannot reach the ${network} node at ${redact(url)} (${(error as Error).message.split("\n")[0]}); ` +
        `start it or pass --rpc-url / set ${RPC_URL_ENV}`,
    );
  }
  if (chainId !== BigInt(deployment.chainId)) {
    throw new CliError(
      `wrong network: ${redact(url)} is chain ${chainId} but deployments/${network}.json is for chain ` +
        `${deployment.chainId}; check --network and --rpc-url`,
      EXIT_USAGE,
    );
  }
  // Code at each address, created by the recorded transaction: a reset local chain redeployed at the same
  // deterministic addresses has code there, but not the recorded creation transactions.
  const checks = await Promise.all(
    SUITE_CONTRACTS.map(async (name) => {
      const c = deployment.contracts[name];
      const [code, receipt] = await Promise.all([
        provider.getCode(c.address),
        provider.getTransactionReceipt(c.transactionHash),
      ]);
      return { name, address: c.address, ok: code !== "0x" && receipt?.contractAddress === c.address };
    }),
  );
  const stale = checks.find((c) => !c.ok);
  if (stale !== undefined) {
    throw new CliError(
      `deployments/${network}.json does not match the chain: no ${stale.name} created at ${stale.address} by the ` +
        `recorded transaction (was the node restarted?); run \`npm run deploy -- --network ${network}\``,
    );
  }
}

function createWallet(network: string, account: string | undefined, provider: JsonRpcProvider): Wallet {
  if (account !== undefined) {
    if (network !== "localhost") usageError("--account only works on localhost; set COLDCHAIN_PRIVATE_KEY instead");
    if (!/^\d+$/.test(account) || Number(account) > 1000) usageError(`--account must be 0..1000, got "${account}"`);
    const hd = HDNodeWallet.fromPhrase(HARDHAT_DEV_MNEMONIC, undefined, `m/44'/60'/0'/0/${account}`);
    return new Wallet(hd.privateKey, provider);
  }
  const key = process.env[PRIVATE_KEY_ENV];
  if (key === undefined || key === "") {
    throw new CliError(
      `no signing key: set ${PRIVATE_KEY_ENV}=0x<64 hex digits>` +
        (network === "localhost" ? " or pass --account <n>" : ""),
      EXIT_USAGE,
    );
  }
  const normalised = key.startsWith("0x") ? key : `0x${key}`;
  if (!isHexString(normalised, 32)) usageError(`${PRIVATE_KEY_ENV} is not a 32-byte hex private key`);
  return new Wallet(normalised, provider);
}

/** Hides API keys embedded in RPC URLs (path segments or query strings longer than 20 characters). */
function redact(url: string): string {
  return url.replace(/\/[A-Za-z0-9_-]{20,}/g, "/***").replace(/\?.*$/, "?***");
}

/** Fields that hold unix seconds: printed with the date beside them ("deadline: 1796612400 (2026-12-07 03:00:00 UTC)"). */
const TIME_FIELDS = /^(deadline|.*At)$/;
/** Fields that hold centi-°C: printed with °C beside them ("minCentiC: 200 (2 °C)"). */
const CENTI_FIELDS = /CentiC$/;

function humanValue(key: string, v: unknown): string {
  if (typeof v === "bigint" || typeof v === "number") {
    if (TIME_FIELDS.test(key) && Number(v) > 0) return `${v} (${formatDateTime(Number(v))})`;
    if (CENTI_FIELDS.test(key)) return `${v} (${formatCelsius(Number(v))})`;
    return String(v);
  }
  if (typeof v === "string" || typeof v === "boolean") return String(v);
  return String(JSON.stringify(v, jsonReplacer));
}

function createPrinter(json: boolean): Printer {
  return {
    line: (text) => {
      (json ? process.stderr : process.stdout).write(`${text}\n`);
    },
    result: (value, text) => {
      if (json) {
        process.stdout.write(`${JSON.stringify(value, jsonReplacer, 2)}\n`);
      } else if (text !== undefined) {
        process.stdout.write(`${text}\n`);
      } else if (typeof value === "object" && value !== null) {
        for (const [key, v] of Object.entries(value)) {
          process.stdout.write(`${key}: ${humanValue(key, v)}\n`);
        }
      } else {
        process.stdout.write(`${String(value)}\n`);
      }
    },
    warn: (text) => {
      process.stderr.write(`warning: ${text}\n`);
    },
  };
}

/** JSON.stringify replacer: bigints as decimal strings. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

if (import.meta.main) {
  exitQuietlyOnClosedPipe();
  const code = await runCli(process.argv.slice(2));
  process.exitCode = code;
}
