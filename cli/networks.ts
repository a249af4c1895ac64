/**
 * The CLI's JSON-RPC URL for a network: `--rpc-url`, else `COLDCHAIN_RPC_URL`, else the network's `url` in
 * hardhat.config.ts — a literal (localhost, honouring `COLDCHAIN_LOCALHOST_URL`) or a `configVariable()` read
 * here from the environment variable of the same name (e.g. `SEPOLIA_RPC_URL`). The Hardhat keystore is not
 * read by the CLI: export the variable, or pass `--rpc-url`.
 */
import { CliError, EXIT_USAGE, RPC_URL_ENV } from "./command.js";

interface ConfigVariableLike {
  _type: "ConfigurationVariable";
  name: string;
}

function isConfigVariable(value: unknown): value is ConfigVariableLike {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { _type?: unknown })._type === "ConfigurationVariable" &&
    typeof (value as { name?: unknown }).name === "string"
  );
}

/** Resolves the RPC URL (see the module comment); a CliError naming the variable to set when there is none. */
export async function resolveRpcUrl(network: string, override: string | undefined): Promise<string> {
  if (override !== undefined && override !== "") return override;
  const fromEnv = process.env[RPC_URL_ENV];
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  const { default: config } = (await import("../hardhat.config.js")) as {
    default: { networks?: Record<string, { type?: string; url?: unknown }> };
  };
  const networks = config.networks ?? {};
  const entry = networks[network];
  if (entry === undefined || entry.type !== "http") {
    const known = Object.entries(networks)
      .filter(([, n]) => n.type === "http")
      .map(([name]) => name);
    throw new CliError(
      `unknown network "${network}"; configured: ${known.join(", ")} (or pass --rpc-url <url>)`,
      EXIT_USAGE,
    );
  }
  if (typeof entry.url === "string") return entry.url;
  if (isConfigVariable(entry.url)) {
    const value = process.env[entry.url.name];
    if (value !== undefined && value !== "") return value;
    throw new CliError(
      `no RPC URL for ${network}: set ${entry.url.name} (or ${RPC_URL_ENV}), or pass --rpc-url <url>`,
      EXIT_USAGE,
    );
  }
  throw new CliError(`no RPC URL for ${network} in hardhat.config.ts; pass --rpc-url <url>`, EXIT_USAGE);
}
