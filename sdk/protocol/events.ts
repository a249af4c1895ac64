/**
 * Decoding of the readings events. The oracle and the SDK rebuild a shipment's history from them.
 *
 * `ReadingRecorded(shipmentId indexed, bytes32 reading)` packs one reading in one word:
 *
 * ```
 * bits 255..192  deviceId    uint64
 * bits 191..160  sequence    uint32
 * bits 159..120  observedAt  uint40
 * bits 119..104  tempCentiC  int16, two's complement in 16 bits
 * bits 103..96   flags       uint8
 * bits  95..0    zero
 * ```
 *
 * `WindowRecorded(shipmentId indexed, uint64 deviceId, uint32 firstSequence, uint40 firstObservedAt,
 * uint32 intervalSeconds, bytes samples)` carries a window: see {@link expandWindow}.
 */
import { getBytes, toBeHex, toBigInt } from "ethers";
import type { BytesLike } from "ethers";

import { ProtocolError } from "./errors.js";
import { decodeSamples } from "./samples.js";
import type { Reading } from "./types.js";
import { assertReading } from "./validate.js";

/** The readings events as declared in contracts/interfaces/IReadingsInbox.sol (human-readable ABI). */
export const READINGS_EVENTS_ABI = [
  "event ReadingRecorded(uint64 indexed shipmentId, bytes32 reading)",
  "event WindowRecorded(uint64 indexed shipmentId, uint64 deviceId, uint32 firstSequence, uint40 firstObservedAt, uint32 intervalSeconds, bytes samples)",
] as const;

/** Packs a reading into the `bytes32 reading` word of ReadingRecorded. Throws READING_INVALID. */
export function packReadingWord(reading: Reading): string {
  assertReading(reading);
  const word =
    (reading.deviceId << 192n) |
    (BigInt(reading.sequence) << 160n) |
    (BigInt(reading.observedAt) << 120n) |
    (BigInt(reading.tempCentiC & 0xffff) << 104n) |
    (BigInt(reading.flags) << 96n);
  return toBeHex(word, 32);
}

/**
 * Unpacks the `bytes32 reading` word of ReadingRecorded (hex, bytes or the word as a bigint).
 * Throws READING_INVALID when the value is not 32 bytes or its low 96 bits are not zero.
 */
export function unpackReadingWord(word: BytesLike | bigint): Reading {
  let value: bigint;
  if (typeof word === "bigint") {
    value = word;
  } else {
    const bytes = getBytes(word);
    if (bytes.length !== 32) {
      throw new ProtocolError("READING_INVALID", `a packed reading is one 32-byte word, got ${bytes.length} bytes`);
    }
    value = toBigInt(bytes);
  }
  if (value < 0n || value >= 1n << 256n || (value & ((1n << 96n) - 1n)) !== 0n) {
    throw new ProtocolError("READING_INVALID", "a packed reading word must be 256 bits with its low 96 bits zero");
  }
  const temp = Number((value >> 104n) & 0xffffn);
  return {
    deviceId: value >> 192n,
    sequence: Number((value >> 160n) & 0xffff_ffffn),
    observedAt: Number((value >> 120n) & 0xff_ffff_ffffn),
    tempCentiC: temp >= 0x8000 ? temp - 0x10000 : temp,
    flags: Number((value >> 96n) & 0xffn),
  };
}

/** The non-indexed arguments of WindowRecorded, as ethers decodes them (integers may be bigint). */
export interface WindowRecordedArgs {
  readonly deviceId: bigint | number;
  readonly firstSequence: bigint | number;
  readonly firstObservedAt: bigint | number;
  readonly intervalSeconds: bigint | number;
  /** count x 3 bytes: int16 big-endian tempCentiC, uint8 flags. */
  readonly samples: BytesLike;
}

/**
 * The readings of a WindowRecorded event: reading i has sequence firstSequence + i and observation
 * time firstObservedAt + i * intervalSeconds. Throws WINDOW_INVALID on malformed samples or when a
 * reading would overflow uint32 / uint40.
 */
export function expandWindow(args: WindowRecordedArgs): Reading[] {
  const samples = decodeSamples(args.samples);
  const deviceId = BigInt(args.deviceId);
  const firstSequence = Number(args.firstSequence);
  const firstObservedAt = Number(args.firstObservedAt);
  const intervalSeconds = Number(args.intervalSeconds);
  return samples.map((sample, i) => {
    const reading: Reading = {
      deviceId,
      sequence: firstSequence + i,
      observedAt: firstObservedAt + i * intervalSeconds,
      tempCentiC: sample.tempCentiC,
      flags: sample.flags,
    };
    try {
      assertReading(reading);
    } catch (cause) {
      throw new ProtocolError("WINDOW_INVALID", `reading ${i} of the window is out of range`, { cause });
    }
    return reading;
  });
}
