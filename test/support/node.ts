/**
 * A real `hardhat node` (JSON-RPC over HTTP on 127.0.0.1, a free port) as a child process, for tests that need
 * an out-of-process chain: the deploy script, the operator CLI, the oracle. Start one per test file (in
 * `before`) and stop it in `after`.
 *
 *   const node = await startHardhatNode();
 *   // node.url → "http://127.0.0.1:<port>", chain id 31337, hardhat's 20 funded dev accounts
 *   await node.stop();
 */
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root (where hardhat.config.ts is). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** The hardhat CLI entry point, run with the current Node binary (Node 22). */
export const HARDHAT_CLI = join(REPO_ROOT, "node_modules", "hardhat", "dist", "src", "cli.js");

export interface HardhatNode {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Everything the node printed so far (for diagnosing a failing test). */
  output(): string;
  /** Terminates the node and waits for it to exit. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartHardhatNodeOptions {
  /** How long to wait for the node to answer (ms); default 60 s (the first start may compile). */
  timeoutMs?: number;
  /** Extra environment for the node process. */
  env?: NodeJS.ProcessEnv;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        server.close();
        reject(new Error("no port"));
        return;
      }
      server.close(() => {
        resolve(address.port);
      });
    });
  });
}

/** Starts `hardhat node --hostname 127.0.0.1 --port <free>` and resolves once it answers `eth_chainId`. */
export async function startHardhatNode(options: StartHardhatNodeOptions = {}): Promise<HardhatNode> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    try {
      return await spawnNode(port, timeoutMs, options.env);
    } catch (error) {
      // Another process may have taken the port between freePort() and the bind: try another one.
      if (attempt < 2 && /EADDRINUSE|address already in use/i.test((error as Error).message)) continue;
      throw error;
    }
  }
}

async function spawnNode(port: number, timeoutMs: number, env: NodeJS.ProcessEnv | undefined): Promise<HardhatNode> {
  const child = spawn(process.execPath, [HARDHAT_CLI, "node", "--hostname", "127.0.0.1", "--port", String(port)], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, FORCE_COLOR: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let alive = true;
  void exited.then(() => (alive = false));
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (alive) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
  };

  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive) throw new Error(`hardhat node exited before answering on ${url}:\n${output}`);
    if (await answers(url)) {
      return { url, port, output: () => output, stop };
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  await stop();
  throw new Error(`hardhat node did not answer on ${url} within ${timeoutMs} ms:\n${output}`);
}

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      signal: AbortSignal.timeout(1000),
    });
    return response.ok;
  } catch {
    return false;
  }
}

export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a TypeScript entry point of this repository (`scripts/deploy.ts`, `cli/main.ts`, …) as
 * `node --import tsx <script> <args>` in the repository root and collects its output — what `npm run deploy --`
 * and `npm run cli --` do, without npm.
 */
export async function runScript(
  script: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 60_000,
): Promise<ScriptResult> {
  return await new Promise<ScriptResult>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(REPO_ROOT, script), ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, FORCE_COLOR: "0", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${script} ${args.join(" ")} timed out after ${timeoutMs} ms:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once("error", reject);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}
