/**
 * `getLogsPaged`: `eth_getLogs` over a long block range in chunks, as public RPC endpoints require. Browser-safe.
 *
 * Public endpoints cap a query by block range (Alchemy, QuickNode, publicnode: 500 .. 50,000 blocks) or by result
 * count (Infura: 10,000 logs). The range is split into chunks of at most `maxRange` blocks; a chunk the endpoint
 * refuses as too large is halved and retried (down to one block), and the size doubles again (up to `maxRange`)
 * after four chunks in a row succeed, so one dense region does not slow the rest; a transient failure (timeout,
 * rate limit, 5xx, connection reset) is retried with exponential backoff. The query can be aborted with an AbortSignal.
 */
import type { Filter, Log, Provider } from "ethers";

/** What {@link getLogsPaged} needs of a provider (an ethers Provider, or anything with these two methods). */
export type LogsProvider = Pick<Provider, "getLogs" | "getBlockNumber">;

/** A log filter without a block range (the range is given in the options). */
export type LogsFilter = Omit<Filter, "fromBlock" | "toBlock">;

export interface LogsProgress {
  /** First and last block of the chunk just read. */
  readonly fromBlock: number;
  readonly toBlock: number;
  /** Blocks read so far, and in all. */
  readonly blocksDone: number;
  readonly blocksTotal: number;
  /** Logs found so far. */
  readonly logs: number;
  /** The chunk size used for the next chunk (smaller after the endpoint refused a range). */
  readonly chunkSize: number;
}

export interface GetLogsPagedOptions {
  /** First block (inclusive); default 0 — pass the deployment's start block (`deploymentStartBlock`). */
  readonly fromBlock?: number;
  /** Last block (inclusive); default the latest block when the call starts. */
  readonly toBlock?: number;
  /** Largest block range of one query; default 5,000 (fits most public endpoints). */
  readonly maxRange?: number;
  /** Retries of one chunk after a transient error; default 5. */
  readonly retries?: number;
  /** Delay before the first retry, doubled on each further one (ms); default 250. */
  readonly backoffMs?: number;
  /** Called after every chunk. */
  readonly onProgress?: (progress: LogsProgress) => void;
  /** Aborts the query: the promise rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** Raised when a range cannot be read (refused at one block, or retries used up); `cause` is the last error. */
export class LogsQueryError extends Error {
  override readonly name = "LogsQueryError";
}

const DEFAULT_MAX_RANGE = 5_000;

/** Error texts of endpoints that refuse a query as too large (block range or result count). */
const RANGE_TOO_LARGE =
  /block range|range (is )?too (large|wide|big)|too many (results|logs|blocks)|more than \d+ (results|logs)|exceeds? (the )?(max|maximum|limit)|range (limit|exceeded)|limited to a? ?[\d,]+|response size|result set too large|query timeout exceeded|returned more than/i;

/** Error texts of failures worth retrying unchanged. */
const TRANSIENT =
  /timeout|timed out|ETIMEDOUT|ECONNRESET|ECONNREFUSED|EAI_AGAIN|socket hang up|network error|NETWORK_ERROR|SERVER_ERROR|rate limit|too many requests|\b429\b|\b50[234]\b|temporarily unavailable|header not found|fetch failed/i;

/** Every message in an (ethers) error and its nested causes, joined: what the classifiers look at. */
export function errorText(error: unknown): string {
  const parts: string[] = [];
  const seen = new Set<unknown>();
  const visit = (value: unknown, depth: number): void => {
    if (depth > 6 || value === null || value === undefined || seen.has(value)) return;
    if (typeof value === "string") {
      parts.push(value);
      return;
    }
    if (typeof value !== "object") return;
    seen.add(value);
    const record = value as Record<string, unknown>;
    for (const key of ["message", "shortMessage", "code", "body", "responseBody"]) {
      const field = record[key];
      if (typeof field === "string" || typeof field === "number") parts.push(String(field));
    }
    for (const key of ["error", "info", "cause", "payload"]) visit(record[key], depth + 1);
  };
  visit(error, 0);
  return parts.join(" | ");
}

/** Whether an endpoint refused the query as too large (split the range and retry). */
export function isRangeTooLargeError(error: unknown): boolean {
  return RANGE_TOO_LARGE.test(errorText(error));
}

/** Whether a failure is transient (retry the same query after a delay). */
export function isTransientError(error: unknown): boolean {
  return !isRangeTooLargeError(error) && TRANSIENT.test(errorText(error));
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error(typeof reason === "string" ? reason : "aborted");
}

async function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  signal?.throwIfAborted();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * All logs matching `filter` in `[fromBlock, toBlock]`, in chain order, read in chunks of at most `maxRange`
 * blocks. See the module comment for the retry rules.
 */
export async function getLogsPaged(
  provider: LogsProvider,
  filter: LogsFilter,
  options: GetLogsPagedOptions = {},
): Promise<Log[]> {
  const { signal } = options;
  signal?.throwIfAborted();
  const maxRange = options.maxRange ?? DEFAULT_MAX_RANGE;
  if (!Number.isSafeInteger(maxRange) || maxRange < 1) {
    throw new RangeError(`maxRange must be a positive integer, got ${maxRange}`);
  }
  const retries = options.retries ?? 5;
  const backoffMs = options.backoffMs ?? 250;
  const fromBlock = options.fromBlock ?? 0;
  const toBlock = options.toBlock ?? (await provider.getBlockNumber());
  if (!Number.isSafeInteger(fromBlock) || fromBlock < 0)
    throw new RangeError(`fromBlock must be >= 0, got ${fromBlock}`);
  const logs: Log[] = [];
  if (toBlock < fromBlock) return logs;
  const blocksTotal = toBlock - fromBlock + 1;
  let chunkSize = maxRange;
  let start = fromBlock;
  let attempt = 0;
  let successes = 0;
  while (start <= toBlock) {
    signal?.throwIfAborted();
    const end = Math.min(toBlock, start + chunkSize - 1);
    let chunk: Log[];
    try {
      chunk = await provider.getLogs({ ...filter, fromBlock: start, toBlock: end });
    } catch (error) {
      signal?.throwIfAborted();
      if (isRangeTooLargeError(error)) {
        if (end === start) {
          throw new LogsQueryError(`the endpoint refuses eth_getLogs even for block ${start} alone`, {
            cause: error,
          });
        }
        chunkSize = Math.max(1, Math.floor((end - start + 1) / 2));
        attempt = 0;
        successes = 0;
        continue;
      }
      if (isTransientError(error) && attempt < retries) {
        await sleep(backoffMs * 2 ** attempt, signal);
        attempt++;
        continue;
      }
      throw new LogsQueryError(
        `eth_getLogs failed for blocks ${start}..${end}` + (attempt > 0 ? ` after ${attempt} retries` : ""),
        { cause: error },
      );
    }
    attempt = 0;
    logs.push(...chunk);
    if (++successes >= 4 && chunkSize < maxRange) {
      chunkSize = Math.min(maxRange, chunkSize * 2);
      successes = 0;
    }
    options.onProgress?.({
      fromBlock: start,
      toBlock: end,
      blocksDone: end - fromBlock + 1,
      blocksTotal,
      logs: logs.length,
      chunkSize,
    });
    start = end + 1;
  }
  return logs;
}
