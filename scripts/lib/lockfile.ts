/** The repository's package-lock.json, read by the package builds and the consumer tests. Node built-ins only. */
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** The repository root (this file is scripts/lib/lockfile.ts). */
const ROOT = join(import.meta.dirname, "..", "..");

/** The version of `name` the repository's package-lock.json installs. */
export function lockedVersion(name: string): string {
  const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as {
    packages: Record<string, { version?: string }>;
  };
  const version = lock.packages[`node_modules/${name}`]?.version;
  if (version === undefined) throw new Error(`${name} is not in package-lock.json`);
  return version;
}
