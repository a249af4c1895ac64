/**
 * The chain of the local stack: Hardhat's EDR chain (hardfork osaka) served over JSON-RPC on 127.0.0.1 — what
 * `hardhat node` runs — or a dev node the user names with `--rpc` (hardhat node, anvil: it must have unlocked,
 * funded accounts and the `evm_setNextBlockTimestamp` / `evm_mine` methods, because the stack plays days of
 * simulated time in minutes and keeps the chain's clock in step).
 */
import { createServer } from "node:net";

import { JsonRpcProvider } from "ethers";
import type { JsonRpcSigner } from "ethers";
import { network } from "hardhat";

import { warpDevChain } from "../../simulator/dev-chain.js";

export interface LocalChain {
  readonly url: string;
  /** True when this process runs the node (false with `--rpc`). */
  readonly embedded: boolean;
  readonly provider: JsonRpcProvider;
  readonly chainId: bigint;
  /** The node's unlocked accounts, in order. */
  readonly accounts: JsonRpcSigner[];
  /** Latest block time (seconds). */
  latestTime(): Promise<number>;
  /** Moves the chain's clock to `seconds` (never backwards) and mines a block there. */
  warpTo(seconds: number): Promise<void>;
  stop(): Promise<void>;
}

/** True when nothing listens on 127.0.0.1:`port`. */
export async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}

/** A port option: the preferred port when free, else any (`exact` false); or exactly this one (0: any). */
export interface PortChoice {
  readonly port: number;
  readonly exact: boolean;
}

/** The port to listen on for `choice`; an exact port that is taken is an error naming `option`. */
export async function choosePort(choice: PortChoice, option: string): Promise<number> {
  if (choice.port === 0 || (await portFree(choice.port))) return choice.port;
  if (choice.exact) throw new Error(`port ${choice.port} on 127.0.0.1 is in use; pick another with ${option} (0: any)`);
  return 0;
}

export async function startLocalChain(options: { rpcUrl?: string; port: PortChoice }): Promise<LocalChain> {
  let url: string;
  let closeServer: (() => Promise<void>) | undefined;
  if (options.rpcUrl === undefined) {
    // The preferred port (8545, where wallets and tools look first) when free, else any free port.
    const port = await choosePort(options.port, "--chain-port");
    const server = await network.createServer("default", "127.0.0.1", port);
    const bound = await server.listen();
    url = `http://127.0.0.1:${bound.port}`;
    closeServer = () => server.close();
  } else {
    url = options.rpcUrl;
  }
  const provider = new JsonRpcProvider(url, undefined, { staticNetwork: true, polling: false, cacheTimeout: -1 });
  let chainId: bigint;
  try {
    chainId = (await provider.getNetwork()).chainId;
  } catch (error) {
    provider.destroy();
    await closeServer?.();
    throw new Error(`no JSON-RPC node answers at ${url} (${(error as Error).message}); start one or drop --rpc`, {
      cause: error,
    });
  }
  const accounts = await provider.listAccounts();
  if (accounts.length < 10) {
    provider.destroy();
    await closeServer?.();
    throw new Error(
      `the node at ${url} has ${accounts.length} unlocked accounts; the local stack needs 10 (a dev node such as ` +
        "`npx hardhat node` or anvil)",
    );
  }
  const latestTime = async (): Promise<number> => {
    const block = await provider.getBlock("latest");
    if (block === null) throw new Error("the node returned no latest block");
    return block.timestamp;
  };
  return {
    url,
    embedded: closeServer !== undefined,
    provider,
    chainId,
    accounts,
    latestTime,
    warpTo: (seconds: number) => warpDevChain(provider, seconds),
    async stop(): Promise<void> {
      provider.destroy();
      await closeServer?.();
    },
  };
}
