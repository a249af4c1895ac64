/**
 * The documented QA decision reason codes: what `reject(shipmentId, reasonCode)` stores on chain (a short ASCII
 * code in a bytes32, `encodeBytes32String`), with words for each, and the free-text note a decision may carry
 * (`rejectWithNote` / `releaseWithNote`, event `DecisionNoted`). A code is never hashed: one that does not fit in
 * 31 bytes is an error. Browser-safe.
 */
import { decodeBytes32String, encodeBytes32String, getBytes, toUtf8Bytes } from "ethers";

import type { BreachReasonName } from "./names.js";

/** The documented reason codes and their words, in the order a form lists them. */
export const DECISION_REASONS = {
  TEMPERATURE_BREACH: "Temperature outside the allowed range (excursion or absolute limit)",
  FREEZE: "Exposed to freezing temperature",
  MISSING_DATA: "Temperature record incomplete (readings missing)",
  DEVICE_FAULT: "Temperature logger reported a fault",
  MKT_EXCEEDED: "Mean kinetic temperature above the limit",
  DAMAGED_PACKAGING: "Packaging damaged",
  WRONG_DELIVERY: "Wrong product, quantity or consignee",
  DOCUMENTATION: "Documentation missing or wrong",
  OTHER: "Other reason (see the note)",
} as const satisfies Record<string, string>;

export type DecisionReasonCode = keyof typeof DECISION_REASONS;

/** The codes, in the documented order. */
export const DECISION_REASON_CODES = Object.keys(DECISION_REASONS) as DecisionReasonCode[];

/** Longest note a decision may carry on chain, in UTF-8 bytes (the contract's `MAX_DECISION_NOTE_BYTES`). */
export const MAX_DECISION_NOTE_BYTES = 280;

/** Raised for a reason code or note that cannot be recorded as given. */
export class DecisionReasonError extends Error {
  override readonly name = "DecisionReasonError";
}

export function isDecisionReasonCode(code: string): code is DecisionReasonCode {
  return Object.hasOwn(DECISION_REASONS, code);
}

/**
 * The bytes32 of a documented reason code (`encodeBytes32String`). Throws {@link DecisionReasonError} naming the
 * documented codes for anything else; never hashes.
 */
export function encodeDecisionReason(code: string): string {
  if (!isDecisionReasonCode(code)) {
    throw new DecisionReasonError(`unknown reason code "${code}"; use one of: ${DECISION_REASON_CODES.join(", ")}`);
  }
  return encodeBytes32String(code);
}

/** A reason code read from chain, in words. */
export interface DecisionReason {
  /** The bytes32 as stored. */
  readonly raw: string;
  /** The code as text ("MISSING_DATA"), or the 0x hex when it is not a short string (a hashed legacy reason). */
  readonly code: string;
  /** Whether the code is one of {@link DECISION_REASONS}. */
  readonly documented: boolean;
  /** The words: the documented ones, or a plain statement about an undocumented code. */
  readonly text: string;
}

/** Decodes a stored bytes32 reason code into words; undefined for the zero word (no reason). */
export function decodeDecisionReason(raw: string): DecisionReason | undefined {
  const bytes = getBytes(raw);
  if (bytes.length !== 32) throw new DecisionReasonError(`a reason code is 32 bytes, got ${bytes.length}`);
  if (bytes.every((b) => b === 0)) return undefined;
  let code: string | undefined;
  try {
    const text = decodeBytes32String(raw);
    // Printable ASCII only: anything else is not a code a person chose.
    if (/^[\x20-\x7e]+$/.test(text)) code = text;
  } catch {
    code = undefined;
  }
  if (code === undefined) {
    return { raw, code: raw, documented: false, text: "unreadable reason code (not a short text; perhaps a hash)" };
  }
  if (isDecisionReasonCode(code)) return { raw, code, documented: true, text: DECISION_REASONS[code] };
  return { raw, code, documented: false, text: "not a documented reason code" };
}

/**
 * Checks a free-text note for a decision: trimmed, non-empty, at most {@link MAX_DECISION_NOTE_BYTES} UTF-8 bytes,
 * no control characters. Returns the trimmed note.
 */
export function checkDecisionNote(note: string): string {
  const text = note.trim();
  if (text.length === 0) throw new DecisionReasonError("the note is empty");
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x08\x0b-\x1f\x7f]/.test(text)) throw new DecisionReasonError("the note contains control characters");
  const bytes = toUtf8Bytes(text).length;
  if (bytes > MAX_DECISION_NOTE_BYTES) {
    throw new DecisionReasonError(`the note is ${bytes} bytes of UTF-8; at most ${MAX_DECISION_NOTE_BYTES}`);
  }
  return text;
}

/** The reason code that names a breach kind. */
export function reasonCodeForBreach(kind: BreachReasonName): DecisionReasonCode {
  switch (kind) {
    case "AbsoluteLimit":
    case "SingleExcursion":
    case "CumulativeExcursion":
      return "TEMPERATURE_BREACH";
    case "Freeze":
      return "FREEZE";
    case "MissingData":
      return "MISSING_DATA";
    case "DeviceFault":
      return "DEVICE_FAULT";
    case "MktExceeded":
      return "MKT_EXCEEDED";
    case "None":
      return "OTHER";
  }
}
