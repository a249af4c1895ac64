/**
 * Decoding of the readings events. The oracle and the SDK rebuild a shipment's history from them.
 *
 * `ReadingsRecorded(shipmentId indexed, uint64 deviceId, bytes readings)` is emitted once per READINGS
 * item with at least one accepted reading. `readings` holds one 12-byte record per accepted reading, in
 * item order, big-endian (exactly the first 12 bytes of the reading in the batch):
 *
 * ```
 * bytes 0..3   sequence    uint32
 * bytes 4..8   observedAt  uint40
 * bytes 9..10  tempCentiC  int16, two's complement
 * byte  11     flags       uint8
 * ```
 *
 * Skipped readings are not in it: they get ReadingSkipped events, emitted before the item's
 * ReadingsRecorded. See {@link expandReadings}. A reading's `previousObservedAt` (bytes 12..16 in the batch) is
 * not in the record: the events give {@link RecordedReading}s. In a shipment a device's recorded readings form one
 * chain, so each one's predecessor is the device's previous recorded reading, but for the first (before the start).
 *
 * `WindowRecorded(shipmentId indexed, uint64 deviceId, uint32 firstSequence, uint40 firstObservedAt,
 * uint32 intervalSeconds, bytes samples)` carries a window: see {@link expandWindow}.
 */
import { getBytes, hexlify } from "ethers";
import type { BytesLike } from "ethers";

import { READING_RECORD_BYTES, UINT64_MAX } from "./constants.js";
import { ProtocolError } from "./errors.js";
import { decodeSamples } from "./samples.js";
import type { RecordedReading } from "./types.js";
import { assertRecordedReading } from "./validate.js";

/** The readings events as declared in contracts/interfaces/IReadingsInbox.sol (human-readable ABI). */
export const READINGS_EVENTS_ABI = [
  "event ReadingsRecorded(uint64 indexed shipmentId, uint64 deviceId, bytes readings)",
  "event WindowRecorded(uint64 indexed shipmentId, uint64 deviceId, uint32 firstSequence, uint40 firstObservedAt, uint32 intervalSeconds, bytes samples)",
] as const;

/**
 * The 12-byte record of `reading` in the `readings` of ReadingsRecorded (0x-hex): sequence, observedAt,
 * tempCentiC (two's complement) and flags, big-endian. The deviceId is not part of it (it is an argument of
 * the event), nor is previousObservedAt: a full `Reading` may be given, that field is ignored. Throws
 * READING_INVALID when a field is outside its Solidity type.
 */
export function packReadingRecord(reading: RecordedReading): string {
  assertRecordedReading(reading);
  const out = new Uint8Array(READING_RECORD_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, reading.sequence);
  view.setUint8(4, Math.floor(reading.observedAt / 2 ** 32));
  view.setUint32(5, reading.observedAt % 2 ** 32);
  view.setInt16(9, reading.tempCentiC);
  view.setUint8(11, reading.flags);
  return hexlify(out);
}

/** The non-indexed arguments of ReadingsRecorded, as ethers decodes them (deviceId may be bigint). */
export interface ReadingsRecordedArgs {
  readonly deviceId: bigint | number;
  /** count x 12 bytes: see {@link packReadingRecord}. */
  readonly readings: BytesLike;
}

/**
 * The readings of a ReadingsRecorded event, in the order of the records. Throws READINGS_INVALID when
 * `readings` is not a multiple of 12 bytes or the deviceId is not a nonzero uint64.
 */
export function expandReadings(args: ReadingsRecordedArgs): RecordedReading[] {
  const bytes = getBytes(args.readings);
  if (bytes.length % READING_RECORD_BYTES !== 0) {
    throw new ProtocolError(
      "READINGS_INVALID",
      `ReadingsRecorded readings must be a multiple of ${READING_RECORD_BYTES} bytes, got ${bytes.length}`,
    );
  }
  const deviceId =
    typeof args.deviceId === "bigint"
      ? args.deviceId
      : Number.isSafeInteger(args.deviceId)
        ? BigInt(args.deviceId)
        : -1n;
  if (deviceId < 1n || deviceId > UINT64_MAX) {
    throw new ProtocolError(
      "READINGS_INVALID",
      `ReadingsRecorded deviceId must be a nonzero uint64, got ${String(args.deviceId)}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: RecordedReading[] = [];
  // Every field of a record fits its type by construction (4, 5, 2 and 1 bytes): no range check needed.
  for (let o = 0; o < bytes.length; o += READING_RECORD_BYTES) {
    const reading: RecordedReading = {
      deviceId,
      sequence: view.getUint32(o),
      observedAt: view.getUint8(o + 4) * 2 ** 32 + view.getUint32(o + 5),
      tempCentiC: view.getInt16(o + 9),
      flags: view.getUint8(o + 11),
    };
    out.push(reading);
  }
  return out;
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
 * time firstObservedAt + i * intervalSeconds (the event does not carry the window's previousObservedAt). Throws
 * WINDOW_INVALID on malformed samples or when a reading would overflow uint32 / uint40.
 */
export function expandWindow(args: WindowRecordedArgs): RecordedReading[] {
  const samples = decodeSamples(args.samples);
  const deviceId = BigInt(args.deviceId);
  const firstSequence = Number(args.firstSequence);
  const firstObservedAt = Number(args.firstObservedAt);
  const intervalSeconds = Number(args.intervalSeconds);
  return samples.map((sample, i) => {
    const reading: RecordedReading = {
      deviceId,
      sequence: firstSequence + i,
      observedAt: firstObservedAt + i * intervalSeconds,
      tempCentiC: sample.tempCentiC,
      flags: sample.flags,
    };
    try {
      assertRecordedReading(reading);
    } catch (cause) {
      throw new ProtocolError("WINDOW_INVALID", `reading ${i} of the window is out of range`, { cause });
    }
    return reading;
  });
}
