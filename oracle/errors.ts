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
  /** The store (SQLite) could not be opened or written. */
  | "STORE_FAILED"
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
