/**
 * Node-only access to `deployments/<network>.json` (the browser fetches the file and calls
 * {@link parseDeployment}).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

import { DeploymentError, parseDeployment } from "../deployment.js";
import type { Deployment } from "../deployment.js";

/** `deployments/` at the repository root, or `COLDCHAIN_DEPLOYMENTS_DIR`. */
export function deploymentsDir(): string {
  return resolve(process.env.COLDCHAIN_DEPLOYMENTS_DIR ?? join(import.meta.dirname, "..", "..", "deployments"));
}

export function deploymentPath(network: string, dir: string = deploymentsDir()): string {
  if (!/^[A-Za-z0-9_-]+$/.test(network)) throw new DeploymentError(`invalid network name "${network}"`);
  return join(dir, `${network}.json`);
}

/** Reads and validates `deployments/<network>.json`; a clear error (with the fix) when it is missing. */
export function loadDeployment(network: string, dir: string = deploymentsDir()): Deployment {
  const path = deploymentPath(network, dir);
  if (!existsSync(path)) {
    throw new DeploymentError(
      `no deployment for network "${network}" (${path} not found); run \`npm run deploy -- --network ${network}\` first`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
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
