/**
 * Every RPC endpoint's chain id is checked (issue 16, item 8): the pool checked the first endpoint it used only,
 * so a failover could send the relay's calls, and its signed transactions, to a node of another chain.
 *
 * A real node, and a JSON-RPC front that forwards to it but answers `eth_chainId` with chain 1 (an endpoint
 * misconfigured to another network). Asserted: the misconfigured endpoint is refused with CHAIN_MISMATCH naming it
 * (`chain.rpcUrls[i]` and its URL), whether it comes first or is failed over to; no call but `eth_chainId` ever
 * reaches it; the metric counts it; an oracle reports it at start, before it is ever needed; a pool of wrong
 * endpoints only throws CHAIN_MISMATCH.
 */
import { expect } from "chai";

import { RpcPool, redactedUrl } from "../../oracle/chain.js";
import { isOracleError } from "../../oracle/errors.js";
import { createLogger } from "../../oracle/log.js";
import { createMetrics } from "../../oracle/health/metrics.js";
import type { OracleMetrics } from "../../oracle/health/metrics.js";
import { startRpcFront } from "./rpc-front.js";
import type { RpcFront } from "./rpc-front.js";
import { deployWorld, startAedes, startChain, startLoggedOracle } from "./support.js";
import type { AedesHandle, NodeHandle } from "./support.js";

describe("oracle RPC pool: every endpoint's chain id", function () {
  this.timeout(120_000);
  let node: NodeHandle;
  let wrong: RpcFront;
  let chainId: number;

  before(async () => {
    node = await startChain();
    wrong = await startRpcFront(node.url, { chainId: 1 });
    chainId = Number((await node.provider.getNetwork()).chainId);
  });
  after(async () => {
    await wrong?.stop();
    await node?.stop();
  });

  const pool = (urls: string[]): { rpc: RpcPool; metrics: OracleMetrics } => {
    const metrics = createMetrics("test", () => 0);
    return { rpc: new RpcPool(urls, chainId, 2_000, createLogger("silent"), metrics), metrics };
  };
  const refusedGauge = async (metrics: OracleMetrics): Promise<number> =>
    (await metrics.rpcEndpointsRefused.get()).values[0]?.value ?? 0;

  it("refuses an endpoint of another chain that comes first, naming it, and serves the call from the next", async () => {
    const { rpc, metrics } = pool([wrong.url, node.url]);
    wrong.calls.clear();
    try {
      expect(await rpc.call("getBlockNumber", (p) => p.getBlockNumber())).to.be.a("number");
      expect(rpc.endpoint).to.equal(1);
      expect(rpc.refusedEndpoints).to.deep.equal([0]);
      expect(await refusedGauge(metrics)).to.equal(1);
      expect([...wrong.calls.keys()]).to.deep.equal(["eth_chainId"]);
    } finally {
      rpc.destroy();
    }
  });

  it("checks an endpoint failed over to: a failover to another chain is refused, not used", async function () {
    if (node.outage === undefined) this.skip(); // only the in-process chain can be taken down
    const { rpc } = pool([node.url, wrong.url]);
    wrong.calls.clear();
    try {
      expect(await rpc.call("getBlockNumber", (p) => p.getBlockNumber())).to.be.a("number");
      expect(rpc.endpoint).to.equal(0);
      const outage = node.outage();
      let error: unknown;
      try {
        await rpc.call("getBlockNumber", (p) => p.getBlockNumber());
      } catch (e) {
        error = e;
      } finally {
        await outage.restore();
      }
      // Before the fix the call went to endpoint 1 unchecked and answered with the other chain's block number.
      expect(isOracleError(error, "RPC_UNAVAILABLE"), String(error)).to.equal(true);
      expect(String(error)).to.include(`chain.rpcUrls[1] (${redactedUrl(wrong.url)}) serves chain 1`);
      expect(String(error)).to.include(`chain.chainId is ${chainId}`);
      expect([...wrong.calls.keys()]).to.deep.equal(["eth_chainId"]);
      expect(rpc.refusedEndpoints).to.deep.equal([1]);
    } finally {
      rpc.destroy();
    }
  });

  it("with only endpoints of another chain, every call is CHAIN_MISMATCH", async () => {
    const { rpc } = pool([wrong.url]);
    try {
      let error: unknown;
      await rpc.call("getBlockNumber", (p) => p.getBlockNumber()).catch((e: unknown) => (error = e));
      expect(isOracleError(error, "CHAIN_MISMATCH"), String(error)).to.equal(true);
      expect(String(error)).to.include("chain.rpcUrls[0]");
    } finally {
      rpc.destroy();
    }
  });

  it("an oracle reports a misconfigured endpoint at start, before it is ever needed (an error line naming it)", async () => {
    let broker: AedesHandle | undefined;
    try {
      broker = await startAedes();
      const w = await deployWorld(node, 1, 8700n);
      const { oracle, logs } = await startLoggedOracle(w, node, broker.url, {
        chain: { rpcUrls: [node.url, wrong.url] },
      });
      try {
        const deadline = Date.now() + 10_000;
        while (!logs.some((l) => l.msg.startsWith("CHAIN_MISMATCH")) && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const line = logs.find((l) => l.msg.startsWith("CHAIN_MISMATCH"));
        expect(line?.level).to.equal(50);
        expect(line?.msg).to.include(`chain.rpcUrls[1] (${redactedUrl(wrong.url)}) serves chain 1`);
        expect(oracle.rpc.refusedEndpoints).to.deep.equal([1]);
        expect(oracle.rpc.endpoint).to.equal(0);
      } finally {
        await oracle.stop();
      }
    } finally {
      await broker?.stop();
    }
  });

  it("shows an endpoint's scheme, host and port only (a path or user info may hold an API key)", () => {
    expect(redactedUrl("https://user:secret@eth.example.com:8545/v3/0123abcd?k=1")).to.equal(
      "https://eth.example.com:8545/…",
    );
    expect(redactedUrl("http://127.0.0.1:8545")).to.equal("http://127.0.0.1:8545");
  });
});
