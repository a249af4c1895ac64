/**
 * Which chain and deployment the dashboard reads: `config.json` next to the app (written by `serveApp`, or by
 * whoever hosts the static files), overridden by the `?network=` and `?rpc=` query parameters; the addresses come
 * from `deployments/<network>.json` next to the app.
 */
import { parseDeployment } from "../../../sdk/index.js";
import type { Deployment } from "../../../sdk/index.js";

export interface AppConfig {
  /** Deployment name: `deployments/<network>.json`. */
  readonly network: string;
  /** JSON-RPC URL for reads (absolute, or relative to the page, e.g. `rpc` for the serveApp proxy); empty = the wallet. */
  readonly rpcUrl: string;
  /** Block explorer base for transaction links (`<explorer>/tx/<hash>`); empty = none. */
  readonly explorerUrl: string;
  /** Display names of known addresses (lower-case address → name). */
  readonly labels: Readonly<Record<string, string>>;
  /** Milliseconds between polls for a new block. */
  readonly pollMs: number;
  /**
   * Product names by shipment reference (the text stored on chain, e.g. an SSCC), for the list and the page: the
   * chain holds the reference, not what is in the box.
   */
  readonly products: Readonly<Record<string, string>>;
  /** An oracle's alert stream (`http://<oracle>:<port>/alerts`, Server-Sent Events); empty = no live alerts. */
  readonly alertsUrl: string;
}

export const DEFAULT_CONFIG: AppConfig = {
  network: "localhost",
  rpcUrl: "",
  explorerUrl: "",
  labels: {},
  pollMs: 2000,
  products: {},
  alertsUrl: "",
};

/** Merges a `config.json` value and the query string over the defaults; throws on a malformed config. */
export function resolveConfig(json: unknown, search: string): AppConfig {
  const base: Record<string, unknown> =
    typeof json === "object" && json !== null ? (json as Record<string, unknown>) : {};
  const str = (key: string, fallback: string): string => {
    const v = base[key];
    if (v === undefined) return fallback;
    if (typeof v !== "string") throw new Error(`config.json: "${key}" must be a string`);
    return v;
  };
  const labelsRaw = base.labels ?? {};
  if (typeof labelsRaw !== "object" || labelsRaw === null) throw new Error('config.json: "labels" must be an object');
  const labels = Object.fromEntries(
    Object.entries(labelsRaw as Record<string, unknown>).map(([k, v]) => [k.toLowerCase(), String(v)]),
  );
  const productsRaw = base.products ?? {};
  if (typeof productsRaw !== "object" || productsRaw === null) {
    throw new Error('config.json: "products" must be an object (reference → product name)');
  }
  const products = Object.fromEntries(
    Object.entries(productsRaw as Record<string, unknown>).map(([k, v]) => [k, String(v)]),
  );
  const pollMs = typeof base.pollMs === "number" && base.pollMs >= 250 ? base.pollMs : DEFAULT_CONFIG.pollMs;
  const params = new URLSearchParams(search);
  return {
    network: params.get("network") ?? str("network", DEFAULT_CONFIG.network),
    rpcUrl: params.get("rpc") ?? str("rpcUrl", DEFAULT_CONFIG.rpcUrl),
    explorerUrl: str("explorerUrl", ""),
    labels,
    pollMs,
    products,
    alertsUrl: params.get("alerts") ?? str("alertsUrl", DEFAULT_CONFIG.alertsUrl),
  };
}

async function fetchJson(url: string, what: string): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new Error(`could not fetch ${what} (${url}): ${(error as Error).message}`, { cause: error });
  }
  if (!response.ok) throw new Error(`${what} not found at ${url} (HTTP ${response.status})`);
  return (await response.json()) as unknown;
}

/** Loads config.json (optional) and the deployment file, relative to `base` (the app's URL). */
export async function loadConfig(base: string, search: string): Promise<{ config: AppConfig; deployment: Deployment }> {
  let json: unknown = {};
  try {
    const response = await fetch(new URL("config.json", base));
    if (response.ok) json = (await response.json()) as unknown;
  } catch {
    // no config.json: defaults and the query string
  }
  const config = resolveConfig(json, search);
  if (!/^[A-Za-z0-9_-]+$/.test(config.network)) {
    throw new Error(`network "${config.network}" is not a valid deployment name (letters, digits, - and _)`);
  }
  const url = new URL(`deployments/${config.network}.json`, base).toString();
  const deployment = parseDeployment(
    await fetchJson(
      url,
      `the deployment file of "${config.network}" (run \`npm run deploy -- --network ${config.network}\` and serve deployments/ next to the app)`,
    ),
    url,
  );
  return { config, deployment };
}
