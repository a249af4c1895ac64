// serveApp (app/serve.ts): the built files, the deployment files, the generated config.json and the /rpc proxy.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { expect } from "chai";

import { serveApp } from "../../app/serve.js";
import type { ServedApp } from "../../app/serve.js";

describe("serveApp", function () {
  let dir: string;
  let app: ServedApp;
  let upstream: Server;
  let upstreamBodies: string[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "coldchain-serve-"));
    mkdirSync(join(dir, "dist", "assets"), { recursive: true });
    mkdirSync(join(dir, "deployments"));
    writeFileSync(join(dir, "dist", "index.html"), "<!doctype html><title>t</title>");
    writeFileSync(join(dir, "dist", "assets", "a.js"), "console.log(1)");
    writeFileSync(join(dir, "deployments", "localhost.json"), '{"network":"localhost"}');
    writeFileSync(join(dir, "secret.txt"), "not served");
    upstreamBodies = [];
    // A JSON-RPC stand-in on a free port: echoes the method it got.
    upstream = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        upstreamBodies.push(body);
        const { id, method } = JSON.parse(body) as { id: number; method: string };
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ jsonrpc: "2.0", id, result: method }));
      });
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
    const address = upstream.address();
    const port = typeof address === "object" && address !== null ? address.port : 0;
    app = await serveApp({
      deploymentsDir: join(dir, "deployments"),
      network: "localhost",
      rpcUrl: `http://127.0.0.1:${port}`,
      distDir: join(dir, "dist"),
      labels: { "0xAbC0000000000000000000000000000000000001": "carrier" },
    });
  });

  after(async () => {
    await app.close();
    await new Promise<void>((r) => upstream.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves index.html, assets with their types, and the deployment file", async () => {
    expect(app.url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const index = await fetch(app.url);
    expect(index.status).to.equal(200);
    expect(index.headers.get("content-type")).to.match(/text\/html/);
    const js = await fetch(new URL("assets/a.js", app.url));
    expect(js.headers.get("content-type")).to.match(/text\/javascript/);
    const deployment = await fetch(new URL("deployments/localhost.json", app.url));
    expect(await deployment.json()).to.deep.equal({ network: "localhost" });
    expect((await fetch(new URL("deployments/sepolia.json", app.url))).status).to.equal(404);
    expect((await fetch(new URL("nope.js", app.url))).status).to.equal(404);
  });

  it("generates config.json pointing the app at the /rpc proxy", async () => {
    const config = (await (await fetch(new URL("config.json", app.url))).json()) as Record<string, unknown>;
    expect(config).to.deep.include({ network: "localhost", rpcUrl: "rpc", explorerUrl: "", pollMs: 2000 });
    expect(config.labels).to.deep.equal({ "0xAbC0000000000000000000000000000000000001": "carrier" });
  });

  it("proxies JSON-RPC POSTs to the node and refuses other methods", async () => {
    const response = await fetch(new URL("rpc", app.url), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 7, method: "eth_blockNumber", params: [] }),
    });
    expect(await response.json()).to.deep.equal({ jsonrpc: "2.0", id: 7, result: "eth_blockNumber" });
    expect(upstreamBodies).to.have.length(1);
    expect((await fetch(new URL("rpc", app.url))).status).to.equal(405);
  });

  it("does not serve files outside the build", async () => {
    const response = await fetch(new URL("/..%2Fsecret.txt", app.url));
    expect(response.status).to.be.oneOf([403, 404]);
    expect(await response.text()).to.not.contain("not served");
  });

  it("says to build first when the build is missing", async () => {
    let error: unknown;
    try {
      await serveApp({ deploymentsDir: dir, network: "localhost", distDir: join(dir, "missing") });
    } catch (e) {
      error = e;
    }
    expect(String(error)).to.match(/npm run app:build/);
  });
});
