// Vite config of the dashboard: `npm run app:build` → app/dist (static files), `npm run app:dev` (dev server that
// also serves deployments/<network>.json from COLDCHAIN_DEPLOYMENTS_DIR or ./deployments; open it with ?rpc=<url>).
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { defineConfig } from "vite";
import type { Plugin } from "vite";

const root = fileURLToPath(new URL(".", import.meta.url));
const repo = fileURLToPath(new URL("..", import.meta.url));

/** Dev server only: `/deployments/<network>.json` from the address book directory. */
function devDeployments(): Plugin {
  const dir = resolve(process.env.COLDCHAIN_DEPLOYMENTS_DIR ?? join(repo, "deployments"));
  return {
    name: "coldchain-dev-deployments",
    apply: "serve",
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const m = /^\/deployments\/([A-Za-z0-9_-]+)\.json$/.exec(req.url ?? "");
        const file = m === null ? undefined : join(dir, `${m[1]}.json`);
        if (file === undefined || !existsSync(file)) return next();
        res.setHeader("content-type", "application/json");
        res.end(readFileSync(file));
      });
    },
  };
}

export default defineConfig({
  root,
  base: "./",
  publicDir: false,
  plugins: [devDeployments()],
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: { outDir: "dist", emptyOutDir: true, target: "es2022", sourcemap: true, chunkSizeWarningLimit: 1200 },
  server: { host: "127.0.0.1", fs: { allow: [repo] } },
});
