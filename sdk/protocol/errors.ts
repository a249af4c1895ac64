/**
 * Typed errors of the protocol module. Every error carries a stable `code` that callers switch on,
 * and a message that says what is wrong and what to do about it.
 */

/** Stable error codes raised by `sdk/protocol`. */
export type ProtocolErrorCode =
  /** The batch ends in the middle of its version byte, an item header, a reading, the samples or a signature. */
  | "BATCH_TRUNCATED"
  /** The first byte of the batch is not a supported envelope version. */
  | "BATCH_VERSION_UNSUPPORTED"
  /** An item starts with a kind byte other than READINGS (0x01) or WINDOW (0x02). */
  | "BATCH_ITEM_KIND_UNKNOWN"
  /** A READINGS or WINDOW item declares `count = 0`. */
  | "BATCH_COUNT_ZERO"
  /** A WINDOW item declares more than 256 samples. */
  | "BATCH_WINDOW_TOO_LARGE"
  /** The EIP-712 domain has an invalid chainId or verifyingContract. */
  | "DOMAIN_INVALID"
  /** A reading field is outside its Solidity type (or deviceId is zero). */
  | "READING_INVALID"
  /** A ReadingsRecorded event's `readings` is not a whole number of 12-byte records, or its deviceId is not a nonzero uint64. */
  | "READINGS_INVALID"
  /** A window field is outside its Solidity type, or its readings would overflow sequence / observedAt. */
  | "WINDOW_INVALID"
  /** A custody acceptance field is outside its Solidity type. */
  | "CUSTODY_ACCEPTANCE_INVALID"
  /** A signature has the wrong length or is not in canonical (low-s) form. */
  | "SIGNATURE_INVALID"
  /** A private or public key is malformed or not on the curve. */
  | "KEY_INVALID"
  /** A mean kinetic temperature was asked for with no time covered (sum of seconds is zero). */
  | "MKT_NO_DATA"
  /** A value given to the MKT helpers is out of range (negative seconds, non-integer temperature, ...). */
  | "MKT_INPUT_INVALID";

/** An error raised by the protocol codec, hashing, signing or MKT helpers. */
export class ProtocolError extends Error {
  /** Stable machine-readable code. */
  readonly code: ProtocolErrorCode;
  /** Byte offset into the batch where decoding stopped (batch errors only). */
  readonly offset: number | undefined;

  constructor(code: ProtocolErrorCode, message: string, options?: { offset?: number; cause?: unknown }) {
    super(`${code}: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ProtocolError";
    this.code = code;
    this.offset = options?.offset;
  }
}

/** Whether `error` is a {@link ProtocolError}, optionally of a given code. */
export function isProtocolError(error: unknown, code?: ProtocolErrorCode): error is ProtocolError {
  return error instanceof ProtocolError && (code === undefined || error.code === code);
}
