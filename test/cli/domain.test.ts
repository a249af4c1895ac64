/**
 * `npm run cli -- domain`: the EIP-712 domain and separator a deployment's devices are provisioned with. Fast: the
 * suite is deployed in process (EDR, scripts/lib/suite), served over HTTP by a small JSON-RPC bridge, and only the
 * CLI runs as a child process. The bridge can also tamper with the contract's eip712Domain() answer, to show the
 * command refuses to print a separator the contract does not use.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { expect } from "chai";
import hre from "hardhat";
import { Interface, TypedDataEncoder } from "ethers";
import type { NetworkConnection } from "hardhat/types/network";

import { buildDeployment, deploySuite, localRoles } from "../../scripts/lib/suite.js";
import type { Deployment } from "../../sdk/deployment.js";
import { saveDeployment } from "../../sdk/node/deployment.js";
import { domainSeparator, READING_TYPEHASH, READING_WINDOW_TYPEHASH } from "../../sdk/protocol/index.js";
import { ColdChain__factory } from "../../types/ethers-contracts/index.js";
import { runScript } from "../support/node.js";
import type { ScriptResult } from "../support/node.js";

interface RpcRequest {
  id: unknown;
  method: string;
  params?: unknown[];
}

const COLD_CHAIN = new Interface(ColdChain__factory.abi);
const EIP712_DOMAIN_SELECTOR = COLD_CHAIN.getFunction("eip712Domain")?.selector ?? "";

describe("npm run cli -- domain (in-process chain)", function () {
  this.timeout(60_000);
  let connection: NetworkConnection;
  let server: Server;
  let url: string;
  let dir: string;
  let deployment: Deployment;
  /** Rewrites the result of a request before the bridge answers (undefined: pass through). */
  let tamper: ((request: RpcRequest, result: unknown) => unknown) | undefined;

  const cli = (...args: string[]): Promise<ScriptResult> =>
    runScript("cli/main.ts", ["domain", "--network", "localhost", ...args], {
      COLDCHAIN_RPC_URL: url,
      COLDCHAIN_DEPLOYMENTS_DIR: dir,
      COLDCHAIN_PRIVATE_KEY: "",
    });

  before(async () => {
    connection = await hre.network.create();
    const [deployer] = await connection.ethers.getSigners();
    if (deployer === undefined) throw new Error("no account");
    const suite = await deploySuite(hre, connection, { network: "localhost", roles: localRoles(deployer.address) });
    deployment = await buildDeployment(connection.ethers.provider, { network: "localhost", suite });
    dir = mkdtempSync(join(tmpdir(), "coldchain-domain-"));
    saveDeployment(deployment, dir);

    // JSON-RPC over HTTP for the in-process chain (ethers batches requests: arrays are answered in order).
    const answer = async (request: RpcRequest): Promise<unknown> => {
      try {
        const result: unknown = await connection.provider.request({ method: request.method, params: request.params });
        return { jsonrpc: "2.0", id: request.id, result: tamper === undefined ? result : tamper(request, result) };
      } catch (error) {
        const { code, message, data } = error as { code?: number; message?: string; data?: unknown };
        return { jsonrpc: "2.0", id: request.id, error: { code: code ?? -32000, message: message ?? "error", data } };
      }
    };
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        const parsed = JSON.parse(body) as RpcRequest | RpcRequest[];
        const reply = Array.isArray(parsed) ? Promise.all(parsed.map(answer)) : answer(parsed);
        void reply.then((value) => {
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify(value));
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no port");
    url = `http://127.0.0.1:${address.port}`;
  });

  afterEach(() => {
    tamper = undefined;
  });

  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await connection.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("prints the domain, the separator and the type hashes, checked against eip712Domain()", async () => {
    const coldChain = deployment.contracts.ColdChain.address;
    const expected = domainSeparator({ chainId: 31337n, verifyingContract: coldChain });
    expect(expected).to.equal(
      TypedDataEncoder.hashDomain({ name: "ColdChain", version: "2", chainId: 31337, verifyingContract: coldChain }),
    );

    const json = await cli("--json");
    expect(json.code, json.stderr).to.equal(0);
    expect(JSON.parse(json.stdout)).to.deep.equal({
      name: "ColdChain",
      version: "2",
      chainId: "31337",
      verifyingContract: coldChain,
      domainSeparator: expected,
      readingTypehash: READING_TYPEHASH,
      readingWindowTypehash: READING_WINDOW_TYPEHASH,
      checkedOnChain: true,
    });

    const text = await cli();
    expect(text.code, text.stderr).to.equal(0);
    expect(text.stdout).to.include(`verifyingContract: ${coldChain}\n`);
    expect(text.stdout).to.include(`domainSeparator: ${expected}\n`);
    expect(text.stdout).to.include("chainId: 31337\n");
  });

  it("refuses to print a separator when the contract reports another domain", async () => {
    tamper = (request, result) => {
      const call = request.params?.[0] as { data?: string; input?: string } | undefined;
      const data = call?.data ?? call?.input;
      if (request.method !== "eth_call" || data?.startsWith(EIP712_DOMAIN_SELECTOR) !== true) return result;
      const d = COLD_CHAIN.decodeFunctionResult("eip712Domain", result as string);
      // A protocol v1 contract: its devices' signatures would never verify here.
      return COLD_CHAIN.encodeFunctionResult("eip712Domain", [d[0], d[1], "1", d[3], d[4], d[5], d[6]]);
    };
    const result = await cli("--json");
    expect(result.code, result.stdout).to.equal(1);
    const lines = result.stderr.trim().split("\n");
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(
      /^error: the ColdChain at 0x[0-9a-fA-F]{40} reports another EIP-712 domain: version 1 \(expected 2\); do not provision/,
    );
    expect(JSON.parse(result.stdout)).to.deep.equal({ error: lines[0]?.replace(/^error: /, ""), exitCode: 1 });
  });
});
