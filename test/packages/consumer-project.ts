/**
 * What the package consumer tests share: `npm pack` of a staged package folder, a fresh project in the
 * temporary directory (outside the repository, so nothing resolves from its node_modules), `npm install` into it
 * with versions pinned to the repository's lockfile, and running commands there under this Node (22).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
export { lockedVersion } from "../../scripts/lib/lockfile.js";

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment of a command in a consumer project: PATH with this Node first (`npm`, `npx` and
 * `#!/usr/bin/env node` bins then run on Node 22, not the system's), and without the HARDHAT_* variables of
 * the `hardhat test` running this (HARDHAT_CONFIG would point the project's Hardhat at this repository's config).
 */
export function node22Env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("HARDHAT_")));
  return {
    ...inherited,
    PATH: [dirname(process.execPath), process.env.PATH ?? ""].join(delimiter),
    FORCE_COLOR: "0",
    NO_COLOR: "1",
    ...extra,
  };
}

/** Runs `command args` in `cwd`; resolves with its exit code and output (never rejects on a non-zero exit). */
export function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? node22Env(),
      stdio: ["ignore", "pipe", "pipe"],
      signal: AbortSignal.timeout(options.timeoutMs ?? 120_000),
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("error", reject);
    child.once("exit", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Throws with the command's output when it did not exit with 0. */
export function expectSuccess(result: Run, what: string): Run {
  if (result.code !== 0) {
    throw new Error(`${what} failed (exit ${result.code ?? result.signal})\n${result.stdout}\n${result.stderr}`);
  }
  return result;
}

export interface Tarball {
  path: string;
  /** Compressed bytes. */
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: string[];
}

/** `npm pack <folder>` into `destination`. */
export async function pack(folder: string, destination: string): Promise<Tarball> {
  const result = expectSuccess(
    await run("npm", ["pack", folder, "--pack-destination", destination, "--json"], { cwd: destination }),
    `npm pack ${folder}`,
  );
  const [info] = JSON.parse(result.stdout) as {
    filename: string;
    size: number;
    unpackedSize: number;
    entryCount: number;
    files: { path: string }[];
  }[];
  if (info === undefined) throw new Error(`npm pack ${folder} printed no tarball`);
  return {
    path: join(destination, info.filename),
    size: info.size,
    unpackedSize: info.unpackedSize,
    entryCount: info.entryCount,
    files: info.files.map((f) => f.path),
  };
}

/** A new folder under the temporary directory with a private ESM package.json. */
export function freshProject(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeFileSync(
    join(dir, "package.json"),
    `${JSON.stringify({ name: "consumer", version: "0.0.0", private: true, type: "module" }, null, 2)}\n`,
  );
  return dir;
}

/** `npm install` of `specs` (names with versions, tarball paths) into `project`, from the cache when it can. */
export async function npmInstall(project: string, specs: readonly string[]): Promise<void> {
  expectSuccess(
    await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", ...specs], {
      cwd: project,
      timeoutMs: 300_000,
    }),
    `npm install ${specs.join(" ")}`,
  );
}

/** "21.2 kB" style sizes for the test's report lines. */
export function kB(bytes: number): string {
  return `${(bytes / 1000).toFixed(1)} kB`;
}
