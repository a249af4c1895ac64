/**
 * `serveApp`: a tiny static server (node:http) for the built dashboard (`app/dist`), the deployment files next to
 * it (`/deployments/<network>.json`), a generated `/config.json`, and `/rpc`, a same-origin proxy to the node's
 * JSON-RPC (so the browser needs no CORS from the node). Used by `npm start -- --serve` and the browser test.
 *
 *   const app = await serveApp({ deploymentsDir, network: "localhost", rpcUrl: "http://127.0.0.1:8545" });
 *   console.log(app.url); … await app.close();
 *
 * `buildApp()` runs the Vite build (what `npm run app:build` does).
 */
import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** Where `npm run app:build` writes the static files. */
export const APP_DIST = fileURLToPath(new URL("./dist", import.meta.url));
const VITE_CONFIG = fileURLToPath(new URL("./vite.config.ts", import.meta.url));

export interface ServeAppOptions {
  /** TCP port; default 0 (a free port). */
  readonly port?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Directory holding `<network>.json` (e.g. `deploymentsDir()` of `@coldchain/sdk/node`). */
  readonly deploymentsDir: string;
  /** Deployment the app opens by default. */
  readonly network: string;
  /** The node's JSON-RPC URL, proxied at `/rpc`; omit to let the app read through the wallet only. */
  readonly rpcUrl?: string;
  /** Display names of known addresses (address → name), shown instead of bare addresses. */
  readonly labels?: Readonly<Record<string, string>>;
  /** Product names by shipment reference (the text on chain, e.g. an SSCC), shown in the list and on the page. */
  readonly products?: Readonly<Record<string, string>>;
  /** Block explorer base URL for transaction links. */
  readonly explorerUrl?: string;
  /** Milliseconds between the app's polls for a new block; default 2000. */
  readonly pollMs?: number;
  /** An oracle's alert stream (`http://<oracle>:<port>/alerts`) for the "Live alerts" panel; omit for none. */
  readonly alertsUrl?: string;
  /** Built files; default `app/dist`. */
  readonly distDir?: string;
}

export interface ServedApp {
  /** `http://<host>:<port>/` */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

/** Builds the dashboard with Vite into `outDir` (default `app/dist`), quiet unless it fails; returns `outDir`. */
export async function buildApp(outDir: string = APP_DIST): Promise<string> {
  const { build } = await import("vite");
  await build({ configFile: VITE_CONFIG, logLevel: "warn", build: { outDir: resolve(outDir), emptyOutDir: true } });
  return resolve(outDir);
}

/** Builds the dashboard into `app/dist` unless it is there already; returns the directory. */
export async function ensureAppBuilt(): Promise<string> {
  if (!existsSync(join(APP_DIST, "index.html"))) await buildApp(APP_DIST);
  return APP_DIST;
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store", "x-content-type-options": "nosniff" });
  res.end(body);
}

async function readBody(req: IncomingMessage, limit = 1_000_000): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new Error("request body too large");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Serves the built dashboard; throws when it is not built yet. */
export async function serveApp(options: ServeAppOptions): Promise<ServedApp> {
  const dist = resolve(options.distDir ?? APP_DIST);
  if (!existsSync(join(dist, "index.html"))) {
    throw new Error(
      `the dashboard is not built (${join(dist, "index.html")} missing): run \`npm run app:build\` first`,
    );
  }
  const deploymentsDir = resolve(options.deploymentsDir);
  const config = JSON.stringify({
    network: options.network,
    rpcUrl: options.rpcUrl === undefined ? "" : "rpc",
    explorerUrl: options.explorerUrl ?? "",
    labels: options.labels ?? {},
    products: options.products ?? {},
    pollMs: options.pollMs ?? 2000,
    alertsUrl: options.alertsUrl ?? "",
  });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    if (path === "/rpc") {
      if (options.rpcUrl === undefined) return send(res, 404, "text/plain", "no RPC URL configured");
      if (req.method !== "POST") return send(res, 405, "text/plain", "POST JSON-RPC here");
      // The node behind may hold unlocked accounts: only this app's own pages may use the proxy. A JSON content
      // type forces a CORS preflight on cross-site pages, and the Host check defeats DNS rebinding.
      const host = (req.headers.host ?? "").replace(/:\d+$/, "");
      if (!["127.0.0.1", "localhost", "[::1]"].includes(host) && host !== (options.host ?? "127.0.0.1")) {
        return send(res, 403, "text/plain", `the RPC proxy answers only on localhost, not ${host}`);
      }
      if (!(req.headers["content-type"] ?? "").startsWith("application/json")) {
        return send(res, 415, "text/plain", "send JSON-RPC with content-type: application/json");
      }
      const upstream = await fetch(options.rpcUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: new Uint8Array(await readBody(req)),
      });
      return send(res, upstream.status, "application/json", Buffer.from(await upstream.arrayBuffer()));
    }
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "text/plain", "GET only");
    if (path === "/config.json") return send(res, 200, TYPES[".json"] as string, config);
    const deployment = /^\/deployments\/([A-Za-z0-9_-]+)\.json$/.exec(path);
    if (deployment !== null) {
      const file = join(deploymentsDir, `${deployment[1]}.json`);
      if (!existsSync(file)) return send(res, 404, "text/plain", `no deployment file ${deployment[1]}.json`);
      return send(res, 200, TYPES[".json"] as string, await readFile(file));
    }
    const rel = normalize(path === "/" ? "/index.html" : path);
    const file = join(dist, rel);
    if (file !== dist && !file.startsWith(dist + sep)) return send(res, 403, "text/plain", "forbidden");
    const info = await stat(file).catch(() => undefined);
    if (info === undefined || !info.isFile()) return send(res, 404, "text/plain", "not found");
    return send(res, 200, TYPES[extname(file)] ?? "application/octet-stream", await readFile(file));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) send(res, 502, "text/plain", `dashboard server: ${(error as Error).message}`);
      else res.end();
    });
  });
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolvePromise, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => resolvePromise());
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}/`,
    port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
