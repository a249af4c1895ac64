/**
 * The oracle's view of the chain: the few ABI fragments it uses (human-readable, so the relay does not depend
 * on generated bindings while contracts evolve) and an RPC pool that fails over across endpoints.
 */
import { FetchRequest, Interface, JsonRpcProvider, Network, isError } from "ethers";

import { OracleError, isOracleError, messageOf } from "./errors.js";
import type { Logger } from "./log.js";
import { RateLimitedLog } from "./log-limit.js";
import type { OracleMetrics } from "./health/metrics.js";

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
  return [
    "nonce too",
    "already known",
    "known transaction",
    "underpriced",
    "fee cap",
    "fee too low",
    "less than block base fee",
  ].some((m) => message.includes(m));
}

/**
 * What nodes answer when a transaction offers too little (geth, Nethermind, Besu, Erigon, anvil, Hardhat): below
 * the block's base fee, below the pool's minimum tip, or a replacement not enough above the transaction it replaces.
 */
const UNDERPRICED_MESSAGES = [
  "max fee per gas less than block base fee",
  "replacement transaction underpriced",
  "transaction underpriced",
  "fee too low",
  "feetoolow",
  "feecap too low",
  "fee cap less than block base fee",
  "underpriced",
  "gas price too low",
  "maxfeepergas too low",
] as const;

/** Whether a node refused a transaction for its fees (the transaction manager re-prices it). */
export function isUnderpricedError(error: unknown): boolean {
  if (isError(error, "REPLACEMENT_UNDERPRICED")) return true;
  const message = messageOf(error).toLowerCase();
  return UNDERPRICED_MESSAGES.some((m) => message.includes(m));
}

/** Whether a node refused a transaction it already holds ("already known"): the broadcast did what it should. */
export function isAlreadyKnownError(error: unknown): boolean {
  const message = messageOf(error).toLowerCase();
  return ["already known", "known transaction", "already imported"].some((m) => message.includes(m));
}

/** An endpoint refused for serving another chain is asked its chain id again after this long. */
export const CHAIN_RECHECK_MS = 5 * 60_000;

/** An RPC URL as logs may show it: scheme, host and port (a path or user info may hold an API key). */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname.length > 1 || u.search !== "" ? "/…" : ""}`;
  } catch {
    return "(not a URL)";
  }
}

/**
 * JSON-RPC endpoints of one chain, used one at a time: a failing endpoint (connection refused, timeout, 5xx)
 * counts an RPC error and the call moves to the next one. When all fail, RPC_UNAVAILABLE is thrown and the
 * caller backs off.
 *
 * Every endpoint's chain id is checked (`eth_chainId`) before its first use, and at start ({@link checkChains}):
 * an endpoint that serves another chain than `chain.chainId` is refused, never used, with an error naming it
 * (`chain.rpcUrls[i]` and its URL without path or credentials), `coldchain_oracle_rpc_endpoints_refused`, and a
 * check again after {@link CHAIN_RECHECK_MS}; calls go to the others. When every endpoint is refused, calls throw
 * CHAIN_MISMATCH.
 */
export class RpcPool {
  private readonly providers: JsonRpcProvider[];
  private current = 0;
  /** Per endpoint: the chain id check, once it passed (or is under way). */
  private readonly checked: (Promise<void> | undefined)[];
  /** Per endpoint refused: the CHAIN_MISMATCH error and when it was found. */
  private readonly refused = new Map<number, { error: OracleError; at: number }>();
  /** "RPC call failed" once per endpoint and interval, with the count (every call fails while a node is down). */
  private readonly limited: RateLimitedLog;
  /** Rejects every call in flight, and later ones, once {@link abort} is called (a stop that cannot wait). */
  private aborted: OracleError | undefined;
  private readonly abortion: { promise: Promise<never>; reject: (error: OracleError) => void };

  constructor(
    private readonly urls: readonly string[],
    private readonly chainId: number,
    timeoutMs: number,
    private readonly log: Logger,
    private readonly metrics: OracleMetrics,
    private readonly clock: () => number = Date.now,
  ) {
    this.limited = new RateLimitedLog(log);
    this.checked = urls.map(() => undefined);
    let reject: (error: OracleError) => void = () => undefined;
    const promise = new Promise<never>((_, r) => {
      reject = r;
    });
    promise.catch(() => undefined);
    this.abortion = { promise, reject };
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

  /** Endpoints refused now for serving another chain (indexes). */
  get refusedEndpoints(): number[] {
    return [...this.refused.keys()].sort((a, b) => a - b);
  }

  /** Runs `fn` against the current endpoint, failing over to the others in order. */
  async call<T>(what: string, fn: (provider: JsonRpcProvider) => Promise<T>): Promise<T> {
    if (this.aborted !== undefined) throw this.aborted;
    return Promise.race([this.failover(what, fn), this.abortion.promise]);
  }

  /**
   * Ends every call in flight and refuses later ones (RPC_UNAVAILABLE "stopping"): for a stop that cannot wait for a
   * node that does not answer. What the relay was doing is in the store already; the next start resumes it.
   */
  abort(): void {
    if (this.aborted !== undefined) return;
    this.aborted = new OracleError("RPC_UNAVAILABLE", "the oracle is stopping: RPC calls in flight were abandoned");
    this.abortion.reject(this.aborted);
  }

  private async failover<T>(what: string, fn: (provider: JsonRpcProvider) => Promise<T>): Promise<T> {
    let lastError: unknown;
    let mismatches = 0;
    for (let tried = 0; tried < this.providers.length; tried++) {
      const index = (this.current + tried) % this.providers.length;
      const provider = this.providers[index];
      if (provider === undefined) continue;
      try {
        await this.checkChain(index);
        const result = await fn(provider);
        if (index !== this.current) {
          this.log.warn({ from: this.current, to: index }, "RPC failover: now using endpoint %d", index);
          this.current = index;
        }
        return result;
      } catch (error) {
        if (isOracleError(error, "CHAIN_MISMATCH")) {
          mismatches++;
          lastError = error;
          continue;
        }
        if (isLogicalRpcError(error) || error instanceof OracleError) throw error;
        lastError = error;
        this.metrics.rpcErrors.inc({ endpoint: String(index) });
        this.limited.warn(`failed:${index}`, { endpoint: index, call: what, err: messageOf(error) }, "RPC call failed");
      }
    }
    if (mismatches === this.providers.length && lastError instanceof OracleError) throw lastError;
    throw new OracleError(
      "RPC_UNAVAILABLE",
      `every RPC endpoint failed for ${what} (${messageOf(lastError)}); check chain.rpcUrls and the nodes`,
      { cause: lastError },
    );
  }

  /**
   * Checks every endpoint's chain id now (at start), so a misconfigured one is reported before it is ever
   * needed; an endpoint that does not answer is checked before its first use instead. Never throws.
   */
  async checkChains(): Promise<void> {
    await Promise.all(this.providers.map((_, index) => this.checkChain(index).catch(() => undefined)));
  }

  destroy(): void {
    for (const p of this.providers) p.destroy();
    this.limited.flush();
  }

  /**
   * Resolves once endpoint `index` is known to serve `chain.chainId`; throws CHAIN_MISMATCH while it is refused
   * (asked again after CHAIN_RECHECK_MS), or the endpoint's error when it does not answer (asked again next time).
   */
  private async checkChain(index: number): Promise<void> {
    const refused = this.refused.get(index);
    if (refused !== undefined) {
      if (this.clock() - refused.at < CHAIN_RECHECK_MS) throw refused.error;
      this.refused.delete(index);
      this.checked[index] = undefined;
      this.metrics.rpcEndpointsRefused.set(this.refused.size);
    }
    let check = this.checked[index];
    if (check === undefined) {
      check = this.askChainId(index);
      this.checked[index] = check;
      check.catch(() => {
        if (this.checked[index] === check) this.checked[index] = undefined;
      });
    }
    await check;
  }

  private async askChainId(index: number): Promise<void> {
    const provider = this.providers[index];
    if (provider === undefined) return;
    const id = Number(BigInt((await provider.send("eth_chainId", [])) as string));
    if (id === this.chainId) {
      this.log.debug({ endpoint: index, chainId: id }, "RPC endpoint %d serves chain %d", index, id);
      return;
    }
    const url = redactedUrl(this.urls[index] ?? "");
    const error = new OracleError(
      "CHAIN_MISMATCH",
      `the RPC endpoint chain.rpcUrls[${index}] (${url}) serves chain ${id} but chain.chainId is ${this.chainId}: ` +
        `it is refused (no call goes to it); fix chain.rpcUrls or chain.chainId`,
    );
    this.refused.set(index, { error, at: this.clock() });
    this.metrics.rpcEndpointsRefused.set(this.refused.size);
    this.log.error({ endpoint: index, url, chainId: id, expected: this.chainId, err: error.message }, error.message);
    throw error;
  }
}

/** Exponential backoff with full jitter: a delay in [base·2^n / 2, base·2^n], at most `maxMs`. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
