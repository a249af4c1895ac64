/**
 * Node-only access to address books on disk: `<dir>/<network>.json`, where `<dir>` is the `deployments/` folder of
 * the current working directory (your app's, not this package's) or `$COLDCHAIN_DEPLOYMENTS_DIR`.
 *
 *   loadDeployment("localhost")                           // ./deployments/localhost.json, else a bundled network
 *   loadDeployment({ path: "/srv/app/sepolia.json" })     // exactly this file
 *   loadDeployment({ name: "local", dir: runDir })        // <runDir>/local.json
 *   await loadDeployment({ url: "https://…/sepolia.json" }) // fetched, as in the browser
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

import { DeploymentError, parseDeployment } from "../deployment.js";
import type { Deployment } from "../deployment.js";
import { bundledDeployment, bundledNetworksText, loadDeployment as loadDeploymentFrom } from "../load-deployment.js";
import type { DeploymentJson, DeploymentUrlSource } from "../load-deployment.js";

/** Reads exactly this file. */
export interface DeploymentPathSource {
  readonly path: string;
}

/** Reads `<dir>/<name>.json` (dir default: {@link deploymentsDir}); no fallback to the bundled networks. */
export interface DeploymentDirSource {
  readonly name: string;
  readonly dir: string;
}

/** What the Node `loadDeployment` takes: the browser's sources plus files. */
export type NodeDeploymentSource =
  string | DeploymentPathSource | DeploymentDirSource | DeploymentUrlSource | DeploymentJson;

/** `$COLDCHAIN_DEPLOYMENTS_DIR`, else `deployments/` in the current working directory (resolved now). */
export function deploymentsDir(): string {
  return resolve(process.env.COLDCHAIN_DEPLOYMENTS_DIR ?? join(process.cwd(), "deployments"));
}

export function deploymentPath(network: string, dir: string = deploymentsDir()): string {
  if (!/^[A-Za-z0-9_-]+$/.test(network)) {
    throw new DeploymentError(`invalid network name "${network}" (letters, digits, "-" and "_" only)`);
  }
  return join(dir, `${network}.json`);
}

/**
 * The `Deployment` of an address book:
 *
 * - a name: `<dir>/<name>.json` with `dir` = {@link deploymentsDir} (or the second argument); when that file does
 *   not exist, the public network of that name bundled with the package;
 * - `{ path }`: that file; `{ name, dir }`: `<dir>/<name>.json` (no bundled fallback);
 * - `{ url }` or a parsed address book: as the browser-safe `loadDeployment` (a URL gives a Promise).
 *
 * A missing file, bad JSON or a file that is not an address book throws a {@link DeploymentError} naming the path.
 */
export function loadDeployment(
  source: string | DeploymentPathSource | DeploymentDirSource | DeploymentJson,
  dir?: string,
): Deployment;
export function loadDeployment(source: DeploymentUrlSource): Promise<Deployment>;
export function loadDeployment(source: NodeDeploymentSource, dir?: string): Deployment | Promise<Deployment>;
export function loadDeployment(source: NodeDeploymentSource, dir?: string): Deployment | Promise<Deployment> {
  if (typeof source === "string") {
    const path = deploymentPath(source, dir ?? deploymentsDir());
    if (existsSync(path)) return readDeploymentFile(path);
    const bundled = dir === undefined ? bundledDeployment(source) : undefined;
    if (bundled !== undefined) return bundled;
    const bundledText = dir === undefined ? `; bundled with @coldchain/sdk: ${bundledNetworksText()}` : "";
    throw new DeploymentError(
      `no deployment for network "${source}" (looked for ${path}: not found${bundledText}); set ` +
        "COLDCHAIN_DEPLOYMENTS_DIR or pass { path } or { name, dir } to read another file, or run " +
        `\`npm run deploy -- --network ${source}\` first`,
    );
  }
  if ("path" in source && typeof source.path === "string") {
    const path = resolve(source.path);
    if (!existsSync(path)) throw new DeploymentError(`no address book at ${path} (file not found)`);
    return readDeploymentFile(path);
  }
  if ("dir" in source && "name" in source && typeof source.dir === "string" && typeof source.name === "string") {
    const path = deploymentPath(source.name, resolve(source.dir));
    if (!existsSync(path)) {
      throw new DeploymentError(`no deployment for network "${source.name}" (looked for ${path}: not found)`);
    }
    return readDeploymentFile(path);
  }
  return loadDeploymentFrom(source as DeploymentUrlSource | DeploymentJson);
}

function readDeploymentFile(path: string): Deployment {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new DeploymentError(`the address book ${path} could not be read (${(error as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new DeploymentError(`${path} is not valid JSON (${(error as Error).message})`);
  }
  return parseDeployment(json, path);
}

/** Writes the file atomically (temp file + rename), validated first; returns its path. */
export function saveDeployment(deployment: Deployment, dir: string = deploymentsDir()): string {
  const checked = parseDeployment(deployment, `deployment for ${deployment.network}`);
  const path = deploymentPath(checked.network, dir);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(checked, null, 2)}\n`);
  renameSync(tmp, path);
  return path;
}
