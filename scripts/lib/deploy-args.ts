/**
 * The command line of `npm run deploy` (scripts/deploy.ts): its help text and its parsing, in a module of its own
 * that loads nothing heavy (the help needs no build, and tests parse without deploying).
 */
import { parseArgs } from "node:util";

/** The address book's name for `--rpc-url` without `--network`. */
export const CUSTOM_NETWORK = "custom";

export const USAGE = `Usage: npm run deploy -- --network <name> [--rpc-url <url>] [--migrate] [--reset] [--parameters <file>]
       npm run deploy -- --rpc-url <url> [--network <name>] …

Deploys DeviceRegistry, MktTable, P256Fallback, ColdChain and ColdChainLens with Hardhat Ignition, grants the
roles of ignition/parameters/<network>.json (local networks: everything to the deployer) and writes
deployments/<network>.json. Re-running changes nothing unless the parameters gained a role.

  --network <name>     a network of hardhat.config.ts (localhost, sepolia, hoodi, baseSepolia, opSepolia,
                       arbitrumSepolia, polygonAmoy); with --rpc-url any name (default "${CUSTOM_NETWORK}"), which
                       names the address book deployments/<name>.json
  --rpc-url <url>      deploy through this JSON-RPC node instead of the network's URL; the key is
                       DEPLOYER_PRIVATE_KEY, from the environment or the keystore (npx hardhat keystore set …)
  --migrate            deploy a new suite and record the current one under "previous" (docs/deploying.md, Upgrades)
  --reset              the recorded contracts are gone (chain reset): forget them and deploy afresh
  --parameters <file>  role parameters instead of ignition/parameters/<network>.json
  -h, --help           this help

The deployer: DEPLOYER_PRIVATE_KEY (environment or keystore) on public networks and with --rpc-url; on localhost
DEPLOYER_PRIVATE_KEY from the environment when set, else the node's first unlocked account.`;

/** A wrong command line: exit code 2, one line. */
export class UsageError extends Error {}

/** What the command line asks for. */
export interface DeployOptions {
  help: boolean;
  /** The address book's name: deployments/<network>.json. */
  network: string;
  /** The JSON-RPC URL that replaces the network's own (`--rpc-url`). */
  rpcUrl: string | undefined;
  migrate: boolean;
  reset: boolean;
  parameters: string | undefined;
}

/** Parses `npm run deploy`'s arguments; a {@link UsageError} names what is wrong. */
export function parseDeployArgs(argv: readonly string[]): DeployOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        network: { type: "string" },
        "rpc-url": { type: "string" },
        migrate: { type: "boolean", default: false },
        reset: { type: "boolean", default: false },
        parameters: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    }));
  } catch (error) {
    throw new UsageError(`${((error as Error).message.split("\n")[0] ?? "").replace(/\.$/, "")}; see --help`);
  }
  const rpcUrl = values["rpc-url"];
  if (rpcUrl !== undefined && !/^https?:\/\/[^/]/.test(rpcUrl)) {
    throw new UsageError(`--rpc-url must be an http(s) URL, got "${rpcUrl}"`);
  }
  const network = values.network ?? (rpcUrl === undefined ? undefined : CUSTOM_NETWORK);
  if (network === undefined && !values.help) {
    throw new UsageError("missing --network <name> (e.g. --network localhost) or --rpc-url <url>; see --help");
  }
  if (network !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(network)) {
    throw new UsageError(`--network must be a name (letters, digits, - and _), got "${network}"`);
  }
  return {
    help: values.help,
    network: network ?? "",
    rpcUrl,
    migrate: values.migrate,
    reset: values.reset,
    parameters: values.parameters,
  };
}
