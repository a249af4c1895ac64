/**
 * The contracts' build (artifacts/ and the TypeChain bindings in types/ethers-contracts/, both gitignored) made on
 * demand: on a fresh clone, or after a Solidity source changed, the commands that need it (`npm start`,
 * `npm run deploy`, `npm run cli`) run `hardhat build --no-tests --quiet` first and say so. `--help` never gets
 * here. Node built-ins only: this module is loaded before anything that needs the build.
 *
 *   await ensureContractsBuilt();   // returns at once when the build is there and newer than every source
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/** The repository root (this file is scripts/lib/ensure-build.ts). */
export const REPO_ROOT = join(import.meta.dirname, "..", "..");

/** The Solidity source folders of hardhat.config.ts (`paths.sources.solidity`). */
const SOURCE_DIRS = ["contracts", "bench/contracts"];

/** Written after a build this module ran: a build that compiled nothing leaves the types' time unchanged. */
const STAMP = join("cache", "coldchain-build.stamp");

/** What the build needs: `missing` (fresh clone), `stale` (a source is newer than the build) or `fresh`. */
export type BuildState = "missing" | "stale" | "fresh";

/** The build's state under `root`; `fresh` where there are no sources to build (an installed package). */
export function contractsBuildState(root: string = REPO_ROOT): BuildState {
  const sources = SOURCE_DIRS.map((dir) => join(root, dir)).filter((dir) => existsSync(dir));
  if (sources.length === 0) return "fresh";
  const types = join(root, "types", "ethers-contracts", "index.ts");
  if (!existsSync(types) || !existsSync(join(root, "artifacts"))) return "missing";
  const stamp = join(root, STAMP);
  const builtAt = Math.max(statSync(types).mtimeMs, existsSync(stamp) ? statSync(stamp).mtimeMs : 0);
  return sources.some((dir) => newestSolidity(dir) > builtAt) ? "stale" : "fresh";
}

function newestSolidity(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSolidity(path));
    else if (entry.name.endsWith(".sol")) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** A failed build: its message says what ran and what to do. */
export class BuildError extends Error {}

export interface EnsureBuildOptions {
  root?: string;
  /** Where the "compiling…" line goes (default stderr, so `--json` output on stdout stays clean). */
  say?: (line: string) => void;
  /** Runs the build in `root`; resolves with its exit code (default: `hardhat build --no-tests --quiet`). */
  build?: (root: string) => Promise<number>;
}

/**
 * Builds the contracts when {@link contractsBuildState} says so, printing one line first (the first compile takes
 * about 30 s). Resolves with the state found; rejects with a {@link BuildError} when the build fails.
 */
export async function ensureContractsBuilt(options: EnsureBuildOptions = {}): Promise<BuildState> {
  const root = options.root ?? REPO_ROOT;
  const state = contractsBuildState(root);
  if (state === "fresh") return state;
  const say = options.say ?? ((line: string) => process.stderr.write(`${line}\n`));
  say(
    state === "missing"
      ? "compiling contracts (first run, ~30 s)…"
      : "compiling contracts (a Solidity source changed, up to ~30 s)…",
  );
  const code = await (options.build ?? hardhatBuild)(root);
  if (code !== 0) {
    throw new BuildError(`compiling the contracts failed (exit code ${code}); run \`npx hardhat build\` to see why`);
  }
  mkdirSync(join(root, "cache"), { recursive: true });
  writeFileSync(join(root, STAMP), `${new Date().toISOString()}\n`);
  return state;
}

/** `hardhat build --no-tests --quiet` in `root` with this Node, its output on stderr. */
function hardhatBuild(root: string): Promise<number> {
  const require = createRequire(join(root, "package.json"));
  const cli = join(dirname(require.resolve("hardhat/package.json")), "dist", "src", "cli.js");
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, "build", "--no-tests", "--quiet"], {
      cwd: root,
      stdio: ["ignore", 2, 2],
    });
    child.once("error", reject);
    child.once("exit", (code, signal) => resolve(code ?? (signal === null ? 1 : 128)));
  });
}

// `node --import tsx scripts/lib/ensure-build.ts`: the step before commands that need the build but are not ours
// (vite for the dashboard, `hardhat run --no-compile`).
if (import.meta.main) {
  try {
    await ensureContractsBuilt();
  } catch (error) {
    process.stderr.write(`error: ${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}
