/**
 * Loading an address book in any JavaScript runtime (browser-safe: no Node built-ins). A dApp gets its
 * `Deployment` from one of
 *
 *   loadDeployment("sepolia")                                    // a public network bundled with the package
 *   await loadDeployment({ url: "/deployments/local.json" })     // a file the app serves (fetch)
 *   loadDeployment(addressBookJson)                              // an address book it already parsed
 *
 * `@coldchain/sdk/node` adds files: `loadDeployment("localhost")` reads `./deployments/localhost.json` of the
 * current directory, `loadDeployment({ path })` and `loadDeployment({ name, dir })` read where they are told.
 */
import { BUNDLED_DEPLOYMENTS } from "./bundled-deployments.js";
import { DeploymentError, parseDeployment } from "./deployment.js";
import type { Deployment } from "./deployment.js";

/** Fetches an address book over HTTP(S) (or any URL the runtime's `fetch` supports). */
export interface DeploymentUrlSource {
  readonly url: string | URL;
  /** Aborts the request (e.g. when the user navigates away). */
  readonly signal?: AbortSignal;
  /** The fetch to use; default: the global `fetch`. */
  readonly fetch?: DeploymentFetch;
}

/** The part of `fetch` the loader uses (the global one fits). */
export type DeploymentFetch = (
  url: string,
  init: { signal?: AbortSignal; headers: Record<string, string> },
) => Promise<{ ok: boolean; status: number; statusText: string; text(): Promise<string> }>;

/** An address book already parsed from JSON (`JSON.parse` of a `deployments/<network>.json`). */
export interface DeploymentJson {
  readonly format: string;
  readonly [key: string]: unknown;
}

/** What the browser-safe `loadDeployment` takes: a bundled network's name, a URL, or a parsed address book. */
export type DeploymentSource = string | DeploymentUrlSource | DeploymentJson;

/** Names of the public networks whose address books ship with the package, sorted. */
export function bundledNetworks(): string[] {
  return Object.keys(BUNDLED_DEPLOYMENTS).sort();
}

/** The address book of a bundled public network, or undefined when the package has none by that name. */
export function bundledDeployment(name: string): Deployment | undefined {
  if (!Object.hasOwn(BUNDLED_DEPLOYMENTS, name)) return undefined;
  return parseDeployment(BUNDLED_DEPLOYMENTS[name], `the bundled address book "${name}"`);
}

/** The list of bundled networks for an error message. */
export function bundledNetworksText(): string {
  const names = bundledNetworks();
  return names.length === 0 ? "none in this build" : names.join(", ");
}

/**
 * The `Deployment` of a bundled public network (by name), of a parsed address book, or — asynchronously — of the
 * JSON at a URL. Every failure is a {@link DeploymentError} naming what was looked for and where.
 */
export function loadDeployment(source: string | DeploymentJson): Deployment;
export function loadDeployment(source: DeploymentUrlSource): Promise<Deployment>;
export function loadDeployment(source: DeploymentSource): Deployment | Promise<Deployment>;
export function loadDeployment(source: DeploymentSource): Deployment | Promise<Deployment> {
  if (typeof source === "string") {
    const deployment = bundledDeployment(source);
    if (deployment === undefined) {
      throw new DeploymentError(
        `no address book "${source}" bundled with @coldchain/sdk (bundled networks: ${bundledNetworksText()}); ` +
          "pass the address book itself or `{ url }` where your app serves it, or in Node read a file with " +
          "`loadDeployment` of @coldchain/sdk/node",
      );
    }
    return deployment;
  }
  if (isUrlSource(source)) return fetchDeployment(source);
  return parseDeployment(source, "the address book given to loadDeployment");
}

function isUrlSource(source: DeploymentUrlSource | DeploymentJson): source is DeploymentUrlSource {
  return typeof source === "object" && source !== null && "url" in source && !("format" in source);
}

async function fetchDeployment(source: DeploymentUrlSource): Promise<Deployment> {
  const url = String(source.url);
  const doFetch: DeploymentFetch | undefined = source.fetch ?? (typeof fetch === "function" ? fetch : undefined);
  if (doFetch === undefined)
    throw new DeploymentError(`cannot fetch the address book ${url}: this runtime has no fetch`);
  let body: string;
  try {
    const response = await doFetch(url, {
      headers: { accept: "application/json" },
      ...(source.signal === undefined ? {} : { signal: source.signal }),
    });
    if (!response.ok) {
      throw new DeploymentError(
        `the address book ${url} could not be loaded (HTTP ${response.status} ${response.statusText}); ` +
          "check that the app serves the deployments/<network>.json written by `npm run deploy` there",
      );
    }
    body = await response.text();
  } catch (error) {
    if (error instanceof DeploymentError || source.signal?.aborted === true) throw error;
    const cause = (error as { cause?: { message?: unknown } }).cause?.message;
    const detail = `${(error as Error).message}${typeof cause === "string" ? `: ${cause}` : ""}`;
    throw new DeploymentError(`the address book ${url} could not be fetched (${detail})`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (error) {
    throw new DeploymentError(`the address book ${url} is not valid JSON (${(error as Error).message})`);
  }
  return parseDeployment(json, `the address book ${url}`);
}
