/**
 * Foundry's anvil (`@foundry-rs/anvil`, a devDependency) as the chain of a fault drill: a real JSON-RPC node with the
 * controls production faults need (`anvil_reorg`, `anvil_rollback`, `anvil_setNextBlockBaseFeePerGas`,
 * `anvil_dropTransaction`, `evm_setIntervalMining`, `evm_setAutomine`). Spawned on a free port with the Osaka
 * hardfork (P256VERIFY, as the contracts expect); the real binary is spawned directly (the package's `bin/anvil`
 * wrapper forks it, and killing the wrapper would leave the node running).
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { once } from "node:events";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

import { JsonRpcProvider } from "ethers";

import { freePort, waitFor } from "./support.js";
import type { NodeHandle } from "./support.js";

/** The anvil binary of this platform's package, or undefined when it is not installed. */
export function anvilBinary(): string | undefined {
  const require = createRequire(import.meta.url);
  const arch = process.arch === "x64" ? "amd64" : process.arch;
  const platform = process.platform === "win32" ? "win32" : process.platform;
  try {
    const pkg = require.resolve(`@foundry-rs/anvil-${platform}-${arch}/package.json`);
    const bin = join(dirname(pkg), "bin", process.platform === "win32" ? "anvil.exe" : "anvil");
    return existsSync(bin) ? bin : undefined;
  } catch {
    return undefined;
  }
}

export interface AnvilOptions {
  /** Seconds between blocks (interval mining); automine (a block per transaction) when absent. */
  readonly blockTime?: number;
  /** The first block's base fee, wei (anvil's default 1 gwei). */
  readonly baseFee?: bigint;
  /** Extra command-line arguments. */
  readonly args?: readonly string[];
}

export interface AnvilHandle extends NodeHandle {
  readonly process: ChildProcess;
  /** A raw JSON-RPC call (the fault controls). */
  rpc<T = unknown>(method: string, params?: unknown[]): Promise<T>;
}

/** Starts anvil on a free port and waits until it answers. */
export async function startAnvil(options: AnvilOptions = {}): Promise<AnvilHandle> {
  const bin = anvilBinary();
  if (bin === undefined) throw new Error("anvil is not installed (npm install: @foundry-rs/anvil is a devDependency)");
  const port = await freePort();
  // 20 accounts: the test suite deploys with 13 named parties (the Hardhat network has 20).
  const args = ["--port", String(port), "--host", "127.0.0.1", "--hardfork", "osaka", "--silent", "--accounts", "20"];
  if (options.blockTime !== undefined) args.push("--block-time", String(options.blockTime));
  if (options.baseFee !== undefined) args.push("--base-fee", options.baseFee.toString());
  args.push(...(options.args ?? []));
  const child = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const url = `http://127.0.0.1:${port}`;
  const provider = new JsonRpcProvider(url, undefined, { staticNetwork: true, polling: false, cacheTimeout: -1 });
  const rpc = async <T>(method: string, params: unknown[] = []): Promise<T> =>
    (await provider.send(method, params)) as T;
  try {
    await waitFor(
      "anvil to answer",
      async () => {
        if (child.exitCode !== null) throw new Error(`anvil exited (${child.exitCode}): ${stderr.trim()}`);
        try {
          await rpc("eth_chainId");
          return true;
        } catch {
          return false;
        }
      },
      15_000,
    );
  } catch (error) {
    child.kill("SIGKILL");
    provider.destroy();
    throw error;
  }
  return {
    url,
    port,
    provider,
    process: child,
    rpc,
    async stop() {
      provider.destroy();
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
    },
  };
}
