/**
 * Typed errors of the oracle. Every error has a stable `code` (alerting and tests switch on it) and a
 * message that tells the operator what to do.
 */

/** Stable error codes raised by the oracle. */
export type OracleErrorCode =
  /** The config file is missing, not JSON, or fails the schema; the message names the key. */
  | "CONFIG_INVALID"
  /** A secret (signing key, MQTT password) is missing from the environment or the Hardhat keystore, or malformed. */
  | "SECRET_MISSING"
  /** Every RPC endpoint failed for one call; the oracle backs off and retries. */
  | "RPC_UNAVAILABLE"
  /** The RPC node serves another chain than `chain.chainId`. */
  | "CHAIN_MISMATCH"
  /** The store (SQLite) could not be opened or written; the message gives SQLite's reason and code. */
  | "STORE_FAILED"
  /** The store cannot write: its disk is full, or it reached `store.maxSizeMb` (SQLITE_FULL). */
  | "STORE_FULL"
  /** The MQTT broker refused the connection (credentials, client id, protocol). */
  | "MQTT_REFUSED";

/** An error raised by the oracle. */
export class OracleError extends Error {
  /** Stable machine-readable code. */
  readonly code: OracleErrorCode;

  constructor(code: OracleErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "OracleError";
    this.code = code;
  }
}

/** Whether `error` is an {@link OracleError}, optionally of one code. */
export function isOracleError(error: unknown, code?: OracleErrorCode): error is OracleError {
  return error instanceof OracleError && (code === undefined || error.code === code);
}

/** A short message of any thrown value, for log lines. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * What kind of store failure: `full` (SQLITE_FULL, or an I/O error on a disk with no space left), `io` (another
 * I/O error), `busy` (locked beyond the busy timeout), `readonly`, `corrupt`, or `other`.
 */
export type StoreFault = "full" | "io" | "busy" | "readonly" | "corrupt" | "other";

/** Every {@link StoreFault}, for metrics. */
export const STORE_FAULTS: readonly StoreFault[] = ["full", "io", "busy", "readonly", "corrupt", "other"];

/**
 * A failure of SQLite itself (not of the oracle's logic), reported as itself: the store's path, SQLite's message
 * and result code, and the kind of fault. Code `STORE_FULL` when the store cannot write for lack of space, else
 * `STORE_FAILED`.
 */
export class StoreError extends OracleError {
  readonly fault: StoreFault;
  /** SQLite's result code name (`SQLITE_FULL`, `SQLITE_IOERR_SHMSIZE`, …) or its number. */
  readonly sqliteCode: string;
  readonly path: string;

  constructor(
    fault: StoreFault,
    message: string,
    details: { readonly sqliteCode: string; readonly path: string },
    options?: { cause?: unknown },
  ) {
    super(fault === "full" ? "STORE_FULL" : "STORE_FAILED", message, options);
    this.name = "StoreError";
    this.fault = fault;
    this.sqliteCode = details.sqliteCode;
    this.path = details.path;
  }

  /** The message without the `CODE: ` prefix (to carry the error across a thread and build it again). */
  get detail(): string {
    return this.message.slice(this.code.length + 2);
  }
}
