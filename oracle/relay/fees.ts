/**
 * Fee policy: what an EIP-1559 transaction of the relay offers, and whether the configured ceiling lets it be mined.
 *
 * Owns: reading the market (`eth_feeHistory`), the fees of a first attempt, the fees of a replacement (at least
 * `fees.bumpPercent` above the attempt it replaces, which nodes require before they swap a pooled transaction), and
 * the one judgement operators need when fees are the problem: "the ceiling is below what the chain charges".
 *
 * From `eth_feeHistory(fees.historyBlocks, "latest", [fees.rewardPercentile])`:
 * - the tip is the median over those blocks of the `rewardPercentile`-th percentile of the tips paid in each, at least
 *   `fees.minPriorityFeePerGasGwei` and at most `fees.maxPriorityFeePerGasGwei`;
 * - the next block's base fee is the response's last `baseFeePerGas` entry (the node computes it from the head);
 * - `maxFeePerGas = fees.baseFeeHeadroom × next base fee + tip`, at most `fees.maxFeePerGasGwei`: the headroom lets the
 *   transaction survive a run of full blocks (each raises the base fee by at most 12.5 %) without a replacement.
 * A node without `eth_feeHistory` (it answers an error) falls back to the latest block's base fee and the configured
 * tip (`maxPriorityFeePerGasGwei`); the fallback is logged once.
 *
 * Never above the ceiling: when the next base fee alone is above `fees.maxFeePerGasGwei`, {@link FeeQuote.belowBaseFee}
 * is set; the transaction manager then sends and re-prices nothing (it would be refused or never mined), and the relay
 * reports it once, naming the key, and in /healthz until the base fee falls.
 */
import type { JsonRpcProvider } from "ethers";

import type { RpcPool } from "../chain.js";
import { isLogicalRpcError } from "../chain.js";
import { gweiToWei } from "../config/index.js";
import type { OracleConfig } from "../config/index.js";
import { messageOf } from "../errors.js";
import type { Logger } from "../log.js";

/** The config key of the fee ceiling (log lines and /healthz name it). */
export const FEE_CEILING_KEY = "fees.maxFeePerGasGwei";

/** What the fee policy offers now. */
export interface FeeQuote {
  readonly maxFeePerGas: bigint;
  readonly maxPriorityFeePerGas: bigint;
  /** The base fee of the next block (feeHistory), or of the latest block (fallback). */
  readonly baseFee: bigint;
  /** The configured ceiling, wei. */
  readonly ceiling: bigint;
  /** Whether the ceiling is below the base fee: nothing the relay may offer can be mined now. */
  readonly belowBaseFee: boolean;
  /** Where the quote came from. */
  readonly source: "feeHistory" | "latestBlock";
}

/** Fees of an attempt (what a replacement must outbid). */
export interface Fees {
  readonly maxFeePerGas: bigint;
  readonly maxPriorityFeePerGas: bigint;
}

/** The part of a JSON-RPC provider the policy reads (a fake in unit tests). */
export type FeeSource = Pick<JsonRpcProvider, "send" | "getBlock">;

/** The fee keys of the config. */
export type FeeConfig = OracleConfig["fees"];

/** `v` raised by `percent` %, rounded up (nodes compare the raised value exactly). */
export function bump(v: bigint, percent: number): bigint {
  return (v * BigInt(100 + percent) + 99n) / 100n;
}

/** The median of a non-empty list (the upper one of an even list). */
function median(values: readonly bigint[]): bigint {
  const sorted = [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return sorted[Math.floor(sorted.length / 2)] ?? 0n;
}

export class FeePolicy {
  private feeHistoryMissing = false;

  constructor(
    private readonly fees: FeeConfig,
    private readonly rpc: Pick<RpcPool, "call">,
    private readonly log: Logger,
  ) {}

  /** The ceiling, wei. */
  get ceiling(): bigint {
    return gweiToWei(this.fees.maxFeePerGasGwei);
  }

  /** Fees of a new transaction now. */
  async quote(): Promise<FeeQuote> {
    const market = await this.market();
    const { ceiling } = this;
    const minTip = gweiToWei(this.fees.minPriorityFeePerGasGwei);
    const maxTip = gweiToWei(this.fees.maxPriorityFeePerGasGwei);
    let tip = market.tip ?? maxTip;
    if (tip < minTip) tip = minTip;
    if (tip > maxTip) tip = maxTip;
    // Headroom in per-mille so fractional multipliers (1.5) stay exact in bigint.
    const headroom = BigInt(Math.round(this.fees.baseFeeHeadroom * 1000));
    let maxFee = (market.baseFee * headroom + 999n) / 1000n + tip;
    if (maxFee > ceiling) maxFee = ceiling;
    if (tip > maxFee) tip = maxFee;
    return {
      maxFeePerGas: maxFee,
      maxPriorityFeePerGas: tip,
      baseFee: market.baseFee,
      ceiling,
      belowBaseFee: ceiling < market.baseFee,
      source: market.tip === undefined ? "latestBlock" : "feeHistory",
    };
  }

  /**
   * Fees of a replacement of `previous` (same nonce): the policy's fees now, but at least `bumpPercent` above both of
   * `previous`'s (nodes refuse a replacement below that: "replacement transaction underpriced"), at most the ceiling.
   * `undefined` when the ceiling leaves no room for a valid replacement (the previous attempt is already at it).
   */
  replacement(previous: Fees, quote: FeeQuote): Fees | undefined {
    const { bumpPercent } = this.fees;
    let maxFee = quote.maxFeePerGas;
    let tip = quote.maxPriorityFeePerGas;
    const minTip = bump(previous.maxPriorityFeePerGas, bumpPercent);
    if (tip < minTip) tip = minTip;
    const minFee = bump(previous.maxFeePerGas, bumpPercent);
    if (maxFee < minFee) maxFee = minFee;
    if (maxFee < quote.baseFee + tip) maxFee = quote.baseFee + tip;
    if (maxFee > quote.ceiling) maxFee = quote.ceiling;
    if (tip > maxFee) tip = maxFee;
    if (maxFee < minFee || tip < minTip) return undefined;
    return { maxFeePerGas: maxFee, maxPriorityFeePerGas: tip };
  }

  /** The next block's base fee and the market tip (feeHistory), or the latest base fee alone (fallback). */
  private async market(): Promise<{ baseFee: bigint; tip: bigint | undefined }> {
    if (!this.feeHistoryMissing) {
      try {
        const history: unknown = await this.rpc.call(
          "eth_feeHistory",
          async (p: FeeSource): Promise<unknown> =>
            (await p.send("eth_feeHistory", [
              `0x${this.fees.historyBlocks.toString(16)}`,
              "latest",
              [this.fees.rewardPercentile],
            ])) as unknown,
        );
        const parsed = parseFeeHistory(history);
        if (parsed !== undefined) return parsed;
        throw new Error(`unexpected eth_feeHistory answer ${JSON.stringify(history).slice(0, 200)}`);
      } catch (error) {
        // Only a node that answered (it lacks the method, or the answer is unusable) switches to the fallback; an
        // endpoint that is down is the caller's fault to handle (RPC_UNAVAILABLE: the tick backs off).
        if (!isLogicalRpcError(error) && !(error instanceof Error && error.message.startsWith("unexpected"))) {
          throw error;
        }
        this.feeHistoryMissing = true;
        this.log.warn(
          { err: messageOf(error) },
          "the node does not serve eth_feeHistory: fees from the latest block's base fee and " +
            "fees.maxPriorityFeePerGasGwei instead",
        );
      }
    }
    const block = await this.rpc.call("getBlock", (p: FeeSource) => p.getBlock("latest"));
    return { baseFee: block?.baseFeePerGas ?? 0n, tip: undefined };
  }
}

/** The next base fee and the median reward of an `eth_feeHistory` answer, or undefined when it is not one. */
export function parseFeeHistory(answer: unknown): { baseFee: bigint; tip: bigint } | undefined {
  const h = answer as { baseFeePerGas?: unknown; reward?: unknown } | null;
  if (h === null || typeof h !== "object" || !Array.isArray(h.baseFeePerGas) || h.baseFeePerGas.length === 0) {
    return undefined;
  }
  const next: unknown = h.baseFeePerGas.at(-1);
  if (typeof next !== "string") return undefined;
  const rewards = Array.isArray(h.reward)
    ? h.reward.flatMap((r: unknown) => (Array.isArray(r) && typeof r[0] === "string" ? [BigInt(r[0])] : []))
    : [];
  return { baseFee: BigInt(next), tip: rewards.length === 0 ? 0n : median(rewards) };
}
