/**
 * getLogsPaged: chunking, halving on "range too large", retry with backoff on transient errors, abort — against
 * a real `hardhat node` over JSON-RPC (a free port on 127.0.0.1), directly and through a wrapper that behaves like
 * a rate- and range-limited public endpoint.
 */
import { expect } from "chai";
import { JsonRpcProvider, Wallet } from "ethers";
import type { Filter, Log } from "ethers";

import { LogsQueryError, getLogsPaged, isRangeTooLargeError, isTransientError } from "../../sdk/index.js";
import type { LogsProvider } from "../../sdk/index.js";
import { DeviceRegistry__factory } from "../../types/ethers-contracts/index.js";
import { startHardhatNode } from "../support/node.js";
import type { HardhatNode } from "../support/node.js";

/** A provider that refuses ranges wider than `maxBlocks` (Alchemy's wording) and fails transiently on demand. */
class LimitedProvider implements LogsProvider {
  readonly ranges: [number, number][] = [];
  refused = 0;
  transientFailures = 0;
  constructor(
    private readonly inner: JsonRpcProvider,
    private readonly maxBlocks: number,
    /** Blocks from here on are sparse: any range is accepted there. */
    private readonly denseBelow = Infinity,
  ) {}
  getBlockNumber(): Promise<number> {
    return this.inner.getBlockNumber();
  }
  async getLogs(filter: Filter): Promise<Log[]> {
    const from = Number(filter.fromBlock);
    const to = Number(filter.toBlock);
    if (to - from + 1 > this.maxBlocks && from < this.denseBelow) {
      this.refused++;
      throw Object.assign(new Error("could not coalesce error"), {
        error: {
          code: -32600,
          message: `Log response size exceeded. You can make eth_getLogs requests with up to a ${this.maxBlocks} block range.`,
        },
      });
    }
    if (this.transientFailures > 0) {
      this.transientFailures--;
      throw Object.assign(new Error("server response 429 Too Many Requests"), { code: "SERVER_ERROR" });
    }
    this.ranges.push([from, to]);
    return this.inner.getLogs(filter);
  }
}

describe("getLogsPaged over a hardhat node", function () {
  this.timeout(90_000);
  let node: HardhatNode;
  let provider: JsonRpcProvider;
  let filter: { address: string; topics: string[] };
  let expected: Log[];

  before(async () => {
    node = await startHardhatNode();
    provider = new JsonRpcProvider(node.url, undefined, { staticNetwork: true, cacheTimeout: -1 });
    const signer = await provider.getSigner(0);
    const registry = await new DeviceRegistry__factory(signer).deploy(signer.address);
    await registry.waitForDeployment();
    await (await registry.grantRole(await registry.DEVICE_MANAGER_ROLE(), signer.address)).wait();
    // One block per registration (automine): 12 DeviceRegistered logs over 12 blocks.
    for (let id = 1n; id <= 12n; id++) {
      const tx = await registry.registerSecp256k1Device(id, signer.address, 300, Wallet.createRandom().address);
      await tx.wait();
    }
    filter = {
      address: await registry.getAddress(),
      topics: [registry.interface.getEvent("DeviceRegistered").topicHash],
    };
    expected = await provider.getLogs({ ...filter, fromBlock: 0, toBlock: "latest" });
    expect(expected).to.have.length(12);
  });

  after(async () => {
    provider?.destroy();
    await node?.stop();
  });

  it("reads the same logs in chunks of maxRange blocks, in order, with progress", async () => {
    const progress: number[] = [];
    const logs = await getLogsPaged(provider, filter, {
      maxRange: 2,
      onProgress: (p) => progress.push(p.blocksDone),
    });
    expect(logs.map((l) => [l.blockNumber, l.index, l.transactionHash])).to.deep.equal(
      expected.map((l) => [l.blockNumber, l.index, l.transactionHash]),
    );
    const latest = await provider.getBlockNumber();
    expect(progress).to.have.length(Math.ceil((latest + 1) / 2));
    expect(progress.at(-1)).to.equal(latest + 1);
  });

  it("halves the range when the endpoint refuses it, down to what it accepts", async () => {
    const limited = new LimitedProvider(provider, 3);
    const logs = await getLogsPaged(limited, filter, { maxRange: 16, backoffMs: 1 });
    expect(logs.map((l) => l.transactionHash)).to.deep.equal(expected.map((l) => l.transactionHash));
    expect(limited.refused).to.be.greaterThan(0);
    for (const [from, to] of limited.ranges) expect(to - from + 1).to.be.at.most(3);
    // Contiguous, no block read twice.
    for (let i = 1; i < limited.ranges.length; i++) {
      expect(limited.ranges[i]?.[0]).to.equal((limited.ranges[i - 1]?.[1] ?? -2) + 1);
    }
  });

  it("grows the chunk again after a dense region", async () => {
    const limited = new LimitedProvider(provider, 2, 4);
    const logs = await getLogsPaged(limited, filter, { maxRange: 8, backoffMs: 1 });
    expect(logs.map((l) => l.transactionHash)).to.deep.equal(expected.map((l) => l.transactionHash));
    expect(limited.ranges.slice(0, 4)).to.deep.equal([
      [0, 1],
      [2, 3],
      [4, 5],
      [6, 7],
    ]);
    // 8 and 4 were refused at block 0; after four chunks of 2 the size doubles to 4.
    expect(limited.ranges[4]).to.deep.equal([8, 11]);
  });

  it("retries transient errors with backoff, and gives up after `retries`", async () => {
    const flaky = new LimitedProvider(provider, 1000);
    flaky.transientFailures = 2;
    const logs = await getLogsPaged(flaky, filter, { backoffMs: 1, retries: 2 });
    expect(logs).to.have.length(12);

    const down = new LimitedProvider(provider, 1000);
    down.transientFailures = 10;
    let error: unknown;
    try {
      await getLogsPaged(down, filter, { backoffMs: 1, retries: 2 });
    } catch (e) {
      error = e;
    }
    expect(error).to.be.instanceOf(LogsQueryError);
    expect((error as Error).message).to.match(/eth_getLogs failed for blocks 0\.\.\d+ after 2 retries/);
  });

  it("stops when aborted", async () => {
    const controller = new AbortController();
    let chunks = 0;
    let error: unknown;
    try {
      await getLogsPaged(provider, filter, {
        maxRange: 1,
        signal: controller.signal,
        onProgress: () => {
          if (++chunks === 3) controller.abort(new Error("user cancelled"));
        },
      });
    } catch (e) {
      error = e;
    }
    expect((error as Error).message).to.equal("user cancelled");
    expect(chunks).to.equal(3);
  });

  it("classifies public endpoints' errors", () => {
    const tooLarge = [
      "query returned more than 10000 results",
      "eth_getLogs is limited to a 10,000 range",
      "block range is too wide",
      "exceed maximum block range: 50000",
      "Log response size exceeded.",
    ];
    for (const message of tooLarge) {
      expect(isRangeTooLargeError(new Error(message)), message).to.equal(true);
      expect(isTransientError(new Error(message)), message).to.equal(false);
    }
    for (const message of ["request timeout", "socket hang up", "429 Too Many Requests", "fetch failed"]) {
      expect(isTransientError(new Error(message)), message).to.equal(true);
    }
    expect(isTransientError(new Error("execution reverted"))).to.equal(false);
  });
});
