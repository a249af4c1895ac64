/**
 * Range checks for protocol values before they are hashed, signed or encoded. Each throws a
 * {@link ProtocolError} naming the field, so a caller learns which input to fix.
 */
import { isAddress } from "ethers";

import {
  INT16_MAX,
  INT16_MIN,
  UINT256_MAX,
  UINT32_MAX,
  UINT40_MAX,
  UINT64_MAX,
  UINT8_MAX,
  WINDOW_MAX_SAMPLES,
  WINDOW_MIN_SAMPLES,
} from "./constants.js";
import { ProtocolError } from "./errors.js";
import type { ProtocolErrorCode } from "./errors.js";
import type { CustodyAcceptance, Reading, ReadingWindow, RecordedReading, Sample } from "./types.js";

/** Whether `value` is an integer number in [min, max]. */
export function isIntInRange(value: unknown, min: number, max: number): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= min && value <= max;
}

function checkInt(code: ProtocolErrorCode, field: string, value: unknown, min: number, max: number): void {
  if (!isIntInRange(value, min, max)) {
    throw new ProtocolError(code, `${field} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
}

function checkBig(code: ProtocolErrorCode, field: string, value: unknown, min: bigint, max: bigint): void {
  if (typeof value !== "bigint" || value < min || value > max) {
    throw new ProtocolError(code, `${field} must be a bigint in [${min}, ${max}], got ${String(value)}`);
  }
}

/**
 * Throws READING_INVALID unless every field fits its Solidity type, deviceId is nonzero, and previousObservedAt
 * (0 for a device's first reading) is before observedAt.
 */
export function assertReading(reading: Reading): void {
  assertRecordedReading(reading);
  checkPrevious("READING_INVALID", "observedAt", reading.observedAt, reading.previousObservedAt);
}

/**
 * The fields an event record carries (all but previousObservedAt): throws READING_INVALID unless each fits its
 * Solidity type and deviceId is nonzero.
 */
export function assertRecordedReading(reading: RecordedReading): void {
  const code = "READING_INVALID";
  checkBig(code, "deviceId", reading.deviceId, 1n, UINT64_MAX);
  checkInt(code, "sequence", reading.sequence, 0, UINT32_MAX);
  checkInt(code, "observedAt", reading.observedAt, 0, UINT40_MAX);
  checkInt(code, "tempCentiC", reading.tempCentiC, INT16_MIN, INT16_MAX);
  checkInt(code, "flags", reading.flags, 0, UINT8_MAX);
}

/** previousObservedAt is a uint40 strictly before the (first) observation time; 0 (no predecessor) is allowed. */
function checkPrevious(code: ProtocolErrorCode, timeField: string, observedAt: number, previous: unknown): void {
  checkInt(code, "previousObservedAt", previous, 0, UINT40_MAX);
  if ((previous as number) >= observedAt) {
    throw new ProtocolError(
      code,
      `previousObservedAt (${String(previous)}) must be before ${timeField} (${observedAt}): it is the observation ` +
        `time of the device's reading before this one, or 0 for its first reading`,
    );
  }
}

/** Throws WINDOW_INVALID unless the sample fits int16 / uint8. */
export function assertSample(sample: Sample, index = 0): void {
  checkInt("WINDOW_INVALID", `samples[${index}].tempCentiC`, sample.tempCentiC, INT16_MIN, INT16_MAX);
  checkInt("WINDOW_INVALID", `samples[${index}].flags`, sample.flags, 0, UINT8_MAX);
}

/**
 * Throws WINDOW_INVALID unless every field fits its Solidity type, deviceId is nonzero, there are
 * 1..256 samples, the last reading's sequence and observedAt still fit uint32 / uint40, and
 * previousObservedAt (0 for a device's first reading) is before firstObservedAt.
 */
export function assertWindow(window: ReadingWindow): void {
  const code = "WINDOW_INVALID";
  checkBig(code, "deviceId", window.deviceId, 1n, UINT64_MAX);
  checkInt(code, "firstSequence", window.firstSequence, 0, UINT32_MAX);
  checkInt(code, "firstObservedAt", window.firstObservedAt, 0, UINT40_MAX);
  checkInt(code, "intervalSeconds", window.intervalSeconds, 0, UINT32_MAX);
  checkPrevious(code, "firstObservedAt", window.firstObservedAt, window.previousObservedAt);
  const count = window.samples.length;
  if (count < WINDOW_MIN_SAMPLES || count > WINDOW_MAX_SAMPLES) {
    throw new ProtocolError(
      code,
      `a window holds ${WINDOW_MIN_SAMPLES}..${WINDOW_MAX_SAMPLES} samples, got ${count}; split it into several windows`,
    );
  }
  window.samples.forEach((sample, i) => assertSample(sample, i));
  if (window.firstSequence + count - 1 > UINT32_MAX) {
    throw new ProtocolError(code, `the last sequence (firstSequence + ${count - 1}) exceeds uint32`);
  }
  if (window.firstObservedAt + (count - 1) * window.intervalSeconds > UINT40_MAX) {
    throw new ProtocolError(
      code,
      `the last observedAt (firstObservedAt + ${count - 1} * intervalSeconds) exceeds uint40`,
    );
  }
}

/** Throws CUSTODY_ACCEPTANCE_INVALID unless the numbers fit uint256 and the custodian is a 20-byte address. */
export function assertCustodyAcceptance(acceptance: CustodyAcceptance): void {
  const code = "CUSTODY_ACCEPTANCE_INVALID";
  checkBig(code, "shipmentId", acceptance.shipmentId, 0n, UINT256_MAX);
  checkBig(code, "nonce", acceptance.nonce, 0n, UINT256_MAX);
  checkBig(code, "deadline", acceptance.deadline, 0n, UINT256_MAX);
  if (
    typeof acceptance.custodian !== "string" ||
    !/^0x[0-9a-fA-F]{40}$/.test(acceptance.custodian) ||
    !isAddress(acceptance.custodian)
  ) {
    throw new ProtocolError(
      code,
      `custodian must be a 0x-prefixed 20-byte address with a valid checksum (or all lowercase), got ${String(acceptance.custodian)}`,
    );
  }
}
