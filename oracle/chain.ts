/**
 * The oracle's view of the chain: the few ABI fragments it uses (human-readable, so the relay does not depend
 * on generated bindings while contracts evolve) and an RPC pool that fails over across endpoints.
 */
import { FetchRequest, Interface, JsonRpcProvider, Network, isError } from "ethers";

import { OracleError, messageOf } from "./errors.js";
import type { Logger } from "./log.js";
import type { OracleMetrics } from "./metrics.js";

/** ColdChain (ReadingsInbox + ShipmentLedger) fragments the oracle calls or reads. */
export const COLD_CHAIN_ABI = new Interface([
  "function submitReadings(bytes batch) returns (uint256 accepted, uint256 skipped)",
  "function isRecorded(uint64 deviceId, uint40 observedAt) view returns (bool)",
  "function deviceTrack(uint64 deviceId) view returns (tuple(uint64 shipmentId, uint32 lastSequence, uint40 lastObservedAt, uint40 excursionStartedAt, uint40 freezeStartedAt))",
  "function custodyOffer(uint64 shipmentId) view returns (tuple(address to, uint40 deadline, uint40 handoverAt))",
  "function shipment(uint64 shipmentId) view returns (tuple(uint8 status, address shipper, address receiver, address owner, address custodian, uint32 profileId, uint40 createdAt, uint40 plannedStartAt, uint40 startedAt, uint40 deliveredAt, uint40 decidedAt, uint32 custodyPeriods, bytes32 externalRef, bytes32 rejectionCode, uint64[] deviceIds))",
  "function maxFutureSkewSeconds() view returns (uint32)",
  "function DEVICE_REGISTRY() view returns (address)",
  "event ReadingSkipped(uint64 indexed deviceId, uint32 sequence, uint16 count, uint8 reason)",
  "error BatchMalformed(uint256 offset)",
]);

/** DeviceRegistry fragments the oracle's device cache uses. */
export const DEVICE_REGISTRY_ABI = new Interface([
  "function verificationKey(uint64 deviceId) view returns (tuple(uint8 keyType, uint32 intervalSeconds, uint40 revokedAtBlock, address signer, bytes32 qx, bytes32 qy, uint40 keyValidFrom, uint40 keyValidUntil, uint40 revokedFrom))",
  "function verificationKeyAt(uint64 deviceId, uint40 observedAt) view returns (tuple(uint8 keyType, uint32 intervalSeconds, uint40 revokedAtBlock, address signer, bytes32 qx, bytes32 qy, uint40 keyValidFrom, uint40 keyValidUntil, uint40 revokedFrom))",
  "event DeviceRegistered(uint64 indexed deviceId, address indexed owner, uint32 intervalSeconds)",
  "event DeviceKeySet(uint64 indexed deviceId, uint8 keyType, address signer, bytes32 qx, bytes32 qy)",
  "event DeviceKeyValidFrom(uint64 indexed deviceId, uint256 keyIndex, uint40 validFrom)",
  "event DeviceRevoked(uint64 indexed deviceId, uint40 revokedAtBlock)",
  "event DeviceDistrusted(uint64 indexed deviceId, uint40 distrustedFrom, address indexed by)",
]);

/** IReadingsInbox.SkipReason names by code (one list, in the SDK). */
export { SKIP_REASONS } from "../sdk/names.js";

/** Errors that are the request's fault, not the endpoint's: no failover, the caller handles them. */
const LOGICAL_ERRORS = [
  "CALL_EXCEPTION",
  "NONCE_EXPIRED",
  "REPLACEMENT_UNDERPRICED",
  "INSUFFICIENT_FUNDS",
  "TRANSACTION_REPLACED",
  "INVALID_ARGUMENT",
] as const;

/** Whether an error from a provider is about the request (revert, nonce, fees) rather than the endpoint. */
export function isLogicalRpcError(error: unknown): boolean {
  if (LOGICAL_ERRORS.some((code) => isError(error, code))) return true;
  // The node answered with a JSON-RPC error object: it is alive, the request was refused.
  const reply = (error as { error?: { code?: unknown } } | undefined)?.error;
  if (typeof reply?.code === "number") return true;
  const message = messageOf(error).toLowerCase();
  return ["nonce too", "already known", "known transaction", "underpriced", "fee cap"].some((m) => message.includes(m));
}

/**
 * JSON-RPC endpoints of one chain, used one at a time: a failing endpoint (connection refused, timeout, 5xx)
 * counts an RPC error and the call moves to the next one. When all fail, RPC_UNAVAILABLE is thrown and the
 * caller backs off.
 */
export class RpcPool {
  private readonly providers: JsonRpcProvider[];
  private current = 0;
  private verified = false;

  constructor(
    urls: readonly string[],
    private readonly chainId: number,
    timeoutMs: number,
    private readonly log: Logger,
    private readonly metrics: OracleMetrics,
  ) {
    const network = Network.from(chainId);
    this.providers = urls.map((url) => {
      const request = new FetchRequest(url);
      request.timeout = timeoutMs;
      // cacheTimeout -1: no 250 ms response cache; the relay must see a block or a nonce as it is now.
      return new JsonRpcProvider(request, network, {
        staticNetwork: network,
        batchMaxCount: 1,
        polling: false,
        cacheTimeout: -1,
      });
    });
  }

  /** Index of the endpoint in use. */
  get endpoint(): number {
    return this.current;
  }

  /** Runs `fn` against the current endpoint, failing over to the others in order. */
  async call<T>(what: string, fn: (provider: JsonRpcProvider) => Promise<T>): Promise<T> {
    let lastError: unknown;
    for (let tried = 0; tried < this.providers.length; tried++) {
      const index = (this.current + tried) % this.providers.length;
      const provider = this.providers[index];
      if (provider === undefined) continue;
      try {
        if (!this.verified) await this.verifyChain(provider);
        const result = await fn(provider);
        if (index !== this.current) {
          this.log.warn({ from: this.current, to: index }, "RPC failover: now using endpoint %d", index);
          this.current = index;
        }
        return result;
      } catch (error) {
        if (isLogicalRpcError(error) || error instanceof OracleError) throw error;
        lastError = error;
        this.metrics.rpcErrors.inc({ endpoint: String(index) });
        this.log.warn({ endpoint: index, call: what, err: messageOf(error) }, "RPC call failed");
      }
    }
    throw new OracleError(
      "RPC_UNAVAILABLE",
      `every RPC endpoint failed for ${what} (${messageOf(lastError)}); check chain.rpcUrls and the nodes`,
      { cause: lastError },
    );
  }

  destroy(): void {
    for (const p of this.providers) p.destroy();
  }

  private async verifyChain(provider: JsonRpcProvider): Promise<void> {
    const id = Number(BigInt((await provider.send("eth_chainId", [])) as string));
    if (id !== this.chainId) {
      throw new OracleError(
        "CHAIN_MISMATCH",
        `the RPC node serves chain ${id} but chain.chainId is ${this.chainId}; fix chain.rpcUrls or chain.chainId`,
      );
    }
    this.verified = true;
  }
}

/** Exponential backoff with full jitter: a delay in [base·2^n / 2, base·2^n], at most `maxMs`. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
