/**
 * The fee policy (oracle/relay/fees.ts): unit tests with a fake provider (the market is a list of numbers; a fake is
 * honest here), then against real nodes: anvil's `eth_feeHistory` follows a base-fee jump set with
 * `anvil_setNextBlockBaseFeePerGas`, and what anvil and Hardhat's EDR answer for the `finalized` block (the
 * transaction manager's finality rule).
 */
import { expect } from "chai";
import { Wallet } from "ethers";
import type { JsonRpcProvider } from "ethers";

import { isUnderpricedError } from "../../oracle/chain.js";
import type { RpcPool } from "../../oracle/chain.js";
import { parseConfig } from "../../oracle/config/index.js";
import { createLogger } from "../../oracle/log.js";
import { createMetrics } from "../../oracle/health/metrics.js";
import { FeePolicy, bump, parseFeeHistory } from "../../oracle/relay/fees.js";
import type { FeeConfig } from "../../oracle/relay/fees.js";
import { TxManager } from "../../oracle/relay/tx-manager.js";
import { Store } from "../../oracle/store/store.js";
import { EventEmitter } from "node:events";
import { join } from "node:path";
import { anvilBinary, startAnvil } from "./anvil.js";
import { startChain, tempDir } from "./support.js";

const GWEI = 10n ** 9n;
const hex = (v: bigint): string => `0x${v.toString(16)}`;

function feeConfig(over: Partial<FeeConfig> = {}): FeeConfig {
  return parseConfig({
    chain: { rpcUrls: ["http://127.0.0.1:1"], chainId: 31337, coldChain: Wallet.createRandom().address },
    fees: over,
  }).fees;
}

/** A pool over one fake provider: `send` answers from `answers`, `getBlock` with `latestBaseFee`. */
function fakePool(answers: Record<string, unknown>, latestBaseFee = 0n): Pick<RpcPool, "call"> & { calls: string[] } {
  const calls: string[] = [];
  const provider = {
    send: (method: string): Promise<unknown> => {
      calls.push(method);
      const a = answers[method];
      if (a instanceof Error) return Promise.reject(a);
      return Promise.resolve(a);
    },
    getBlock: () => {
      calls.push("getBlock");
      return Promise.resolve({ baseFeePerGas: latestBaseFee });
    },
  } as unknown as JsonRpcProvider;
  return { calls, call: <T>(_what: string, fn: (p: JsonRpcProvider) => Promise<T>) => fn(provider) };
}

/** A node's "method not found" (an answered JSON-RPC error: logical, not an outage). */
function methodNotFound(): Error {
  return Object.assign(new Error("the method eth_feeHistory does not exist/is not available"), {
    error: { code: -32601, message: "the method eth_feeHistory does not exist/is not available" },
  });
}

describe("fee policy", function () {
  this.timeout(60_000);
  const log = createLogger("silent");

  it("reads the next base fee and the median reward percentile from eth_feeHistory", async () => {
    const pool = fakePool({
      eth_feeHistory: {
        baseFeePerGas: [hex(8n * GWEI), hex(9n * GWEI), hex(10n * GWEI), hex(12n * GWEI)],
        reward: [[hex(GWEI / 10n)], [hex(GWEI / 2n)], [hex(3n * GWEI)]],
      },
    });
    const q = await new FeePolicy(feeConfig(), pool, log).quote();
    expect(q.source).to.equal("feeHistory");
    expect(q.baseFee).to.equal(12n * GWEI); // the next block's, the answer's last entry
    expect(q.maxPriorityFeePerGas).to.equal(GWEI / 2n); // median of 0.1, 0.5, 3 gwei
    expect(q.maxFeePerGas).to.equal(2n * 12n * GWEI + GWEI / 2n); // headroom 2 x next base fee + tip
    expect(q.belowBaseFee).to.equal(false);
  });

  it("keeps the tip within [minPriorityFeePerGasGwei, maxPriorityFeePerGasGwei] and the max fee under the ceiling", async () => {
    const quiet = fakePool({ eth_feeHistory: { baseFeePerGas: ["0x1", "0x1"], reward: [["0x0"]] } });
    const q1 = await new FeePolicy(feeConfig({ minPriorityFeePerGasGwei: 0.02 }), quiet, log).quote();
    expect(q1.maxPriorityFeePerGas).to.equal((2n * GWEI) / 100n);
    const greedy = fakePool({
      eth_feeHistory: { baseFeePerGas: [hex(GWEI), hex(90n * GWEI)], reward: [[hex(9n * GWEI)]] },
    });
    const q2 = await new FeePolicy(
      feeConfig({ maxFeePerGasGwei: 100, maxPriorityFeePerGasGwei: 2 }),
      greedy,
      log,
    ).quote();
    expect(q2.maxPriorityFeePerGas).to.equal(2n * GWEI);
    expect(q2.maxFeePerGas).to.equal(100n * GWEI); // 2 x 90 + 2 capped at the ceiling
    expect(q2.belowBaseFee).to.equal(false);
  });

  it("says when the ceiling is below the next base fee", async () => {
    const pool = fakePool({ eth_feeHistory: { baseFeePerGas: [hex(GWEI), hex(60n * GWEI)], reward: [["0x0"]] } });
    const q = await new FeePolicy(feeConfig({ maxFeePerGasGwei: 30 }), pool, log).quote();
    expect(q.belowBaseFee).to.equal(true);
    expect(q.maxFeePerGas).to.equal(30n * GWEI);
  });

  it("falls back to the latest block's base fee and the configured tip when the node lacks eth_feeHistory", async () => {
    const pool = fakePool({ eth_feeHistory: methodNotFound() }, 5n * GWEI);
    const policy = new FeePolicy(feeConfig({ maxPriorityFeePerGasGwei: 1.5 }), pool, log);
    const q = await policy.quote();
    expect(q.source).to.equal("latestBlock");
    expect(q.baseFee).to.equal(5n * GWEI);
    expect(q.maxPriorityFeePerGas).to.equal(1_500_000_000n);
    expect(q.maxFeePerGas).to.equal(10n * GWEI + 1_500_000_000n);
    await policy.quote(); // not asked again
    expect(pool.calls.filter((c) => c === "eth_feeHistory")).to.have.length(1);
  });

  it("does not take an endpoint outage for a missing eth_feeHistory", async () => {
    const pool = fakePool({ eth_feeHistory: new Error("connect ECONNREFUSED 127.0.0.1:8545") });
    let thrown: unknown;
    await new FeePolicy(feeConfig(), pool, log).quote().catch((e: unknown) => (thrown = e));
    expect(String(thrown)).to.include("ECONNREFUSED");
  });

  it("prices a replacement at least bumpPercent above both fees of the attempt it replaces, never above the ceiling", async () => {
    const pool = fakePool({ eth_feeHistory: { baseFeePerGas: [hex(GWEI), hex(GWEI)], reward: [[hex(GWEI / 10n)]] } });
    const policy = new FeePolicy(feeConfig({ bumpPercent: 25, maxFeePerGasGwei: 10 }), pool, log);
    const q = await policy.quote();
    const previous = { maxFeePerGas: 4n * GWEI, maxPriorityFeePerGas: GWEI };
    const r = policy.replacement(previous, q);
    expect(r?.maxFeePerGas).to.equal(5n * GWEI); // the quote (2.1 gwei) is below 4 x 1.25
    expect(r?.maxPriorityFeePerGas).to.equal(1_250_000_000n);
    expect(bump(3n, 10)).to.equal(4n); // rounded up: nodes compare exactly
    // At the ceiling no valid replacement exists.
    expect(policy.replacement({ maxFeePerGas: 10n * GWEI, maxPriorityFeePerGas: GWEI }, q)).to.equal(undefined);
  });

  it("knows the nodes' words for an underpriced transaction", () => {
    for (const message of [
      "max fee per gas less than block base fee: address 0x…, maxFeePerGas: 1000000000, baseFee: 60000000000",
      "replacement transaction underpriced",
      "transaction underpriced: tip needed 1, tip permitted 0",
      "FeeTooLow, EffectivePriorityFeePerGas too low 0 < 1",
      "fee too low",
    ]) {
      expect(isUnderpricedError(new Error(message)), message).to.equal(true);
    }
    expect(isUnderpricedError(new Error("nonce too low"))).to.equal(false);
    expect(isUnderpricedError(new Error("insufficient funds for gas * price + value"))).to.equal(false);
  });

  it("parses only a real feeHistory answer", () => {
    expect(parseFeeHistory(null)).to.equal(undefined);
    expect(parseFeeHistory({ baseFeePerGas: [] })).to.equal(undefined);
    expect(parseFeeHistory({ baseFeePerGas: ["0x10"] })).to.deep.equal({ baseFee: 16n, tip: 0n });
  });

  describe("against anvil", function () {
    before(function () {
      if (anvilBinary() === undefined) this.skip();
    });

    it("follows a base-fee jump to 60 gwei in the next block's base fee, and anvil's finalized block is 64 below the head", async () => {
      const anvil = await startAnvil();
      try {
        const pool = { call: <T>(_w: string, fn: (p: JsonRpcProvider) => Promise<T>) => fn(anvil.provider) };
        const policy = new FeePolicy(feeConfig(), pool, log);
        const before = await policy.quote();
        await anvil.rpc("anvil_setNextBlockBaseFeePerGas", [hex(60n * GWEI)]);
        const after = await policy.quote();
        console.log(
          `      anvil: base fee ${before.baseFee} wei -> next ${after.baseFee / GWEI} gwei; offered ` +
            `${Number(after.maxFeePerGas) / 1e9} gwei (tip ${Number(after.maxPriorityFeePerGas) / 1e9})`,
        );
        expect(after.source).to.equal("feeHistory");
        expect(after.baseFee).to.equal(60n * GWEI);
        expect(after.maxFeePerGas).to.equal(120n * GWEI + after.maxPriorityFeePerGas);

        // Finality: anvil answers the block 64 below the head (2 epochs of 32), 0 while the chain is younger.
        const manager = txManagerOn(anvil.provider);
        await anvil.rpc("anvil_mine", ["0x20"]);
        const young = await anvil.provider.getBlock("latest");
        expect(await manager.finalizedBlock({ number: young?.number ?? 0, hash: young?.hash ?? "" })).to.equal(0);
        await anvil.rpc("anvil_mine", ["0x50"]);
        const head = await anvil.provider.getBlock("latest");
        const final = await manager.finalizedBlock({ number: head?.number ?? 0, hash: head?.hash ?? "" });
        console.log(`      anvil: head ${head?.number}, finalized ${final}`);
        expect(final).to.equal((head?.number ?? 0) - 64);
      } finally {
        await anvil.stop();
      }
    });
  });

  it("Hardhat's EDR answers its head as finalized: the reorgWatchBlocks window is used", async () => {
    const node = await startChain();
    try {
      await node.provider.send("hardhat_mine", ["0x10"]);
      const head = await node.provider.getBlock("latest");
      const raw = (await node.provider.send("eth_getBlockByNumber", ["finalized", false])) as { number: string };
      console.log(`      EDR: head ${head?.number}, finalized ${Number(raw.number)}`);
      const manager = txManagerOn(node.provider, 4);
      const final = await manager.finalizedBlock({ number: head?.number ?? 0, hash: head?.hash ?? "" });
      expect(final).to.equal((head?.number ?? 0) - 4);
    } finally {
      await node.stop();
    }
  });
});

/** A transaction manager on `provider` (for its finality rule only). */
function txManagerOn(provider: JsonRpcProvider, reorgWatchBlocks = 64): TxManager {
  const config = parseConfig({
    chain: {
      rpcUrls: ["http://127.0.0.1:1"],
      chainId: 31337,
      coldChain: Wallet.createRandom().address,
      reorgWatchBlocks,
    },
  });
  const store = new Store(join(tempDir(), "oracle.db"), "NORMAL");
  return new TxManager({
    config,
    rpc: { call: <T>(_w: string, fn: (p: JsonRpcProvider) => Promise<T>) => fn(provider) } as unknown as RpcPool,
    store,
    wallet: new Wallet(Wallet.createRandom().privateKey),
    metrics: createMetrics("fees-test", () => 0),
    log: createLogger("silent"),
    clock: Date.now,
    events: new EventEmitter(),
    confirm: () => Promise.resolve(),
  });
}
