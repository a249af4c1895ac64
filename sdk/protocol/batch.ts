/**
 * The batch envelope: the `bytes batch` argument of `submitReadings(bytes)`. All integers big-endian.
 *
 * ```
 * batch    := version:u8 (=0x02) item*
 * item     := READINGS | WINDOW
 * READINGS := 0x01 deviceId:u64 count:u16 (count >= 1) reading{count}                  (11-byte header)
 *   reading := sequence:u32 observedAt:u40 tempCentiC:i16 flags:u8 previousObservedAt:u40 signature:64
 *                                                                                      (81 bytes)
 * WINDOW   := 0x02 deviceId:u64 firstSequence:u32 firstObservedAt:u40 intervalSeconds:u32 count:u16
 *             previousObservedAt:u40 samples:(3 * count bytes) signature:64            (29-byte header)
 * ```
 *
 * Byte offsets inside a READINGS header: kind 0, deviceId 1..8, count 9..10.
 * Inside a reading: sequence 0..3, observedAt 4..8, tempCentiC 9..10, flags 11, previousObservedAt 12..16,
 * signature 17..80 (the first 12 bytes are the reading's record in ReadingsRecorded).
 * Inside a WINDOW header: kind 0, deviceId 1..8, firstSequence 9..12, firstObservedAt 13..17,
 * intervalSeconds 18..21, count 22..23, previousObservedAt 24..28; samples from 29, signature after the samples.
 */
import { getBytes, hexlify } from "ethers";
import type { BytesLike } from "ethers";

import {
  BATCH_VERSION,
  ITEM_KIND_READINGS,
  ITEM_KIND_WINDOW,
  READING_BYTES,
  READINGS_HEADER_BYTES,
  READINGS_MAX_COUNT,
  SAMPLE_BYTES,
  SIGNATURE_BYTES,
  WINDOW_HEADER_BYTES,
  WINDOW_MAX_SAMPLES,
} from "./constants.js";
import { ProtocolError } from "./errors.js";
import { decodeSamples, encodeSamples } from "./samples.js";
import { signatureBytes } from "./signing.js";
import type { SignedItem, SignedReading, SignedWindow } from "./types.js";
import { assertReading, assertWindow } from "./validate.js";

/** A READINGS item: single readings of one device, each with its own signature. */
export interface ReadingsItem {
  readonly kind: "readings";
  readonly deviceId: bigint;
  /** 1..65535 readings, all of `deviceId`. */
  readonly readings: readonly SignedReading[];
}

/** One item of the envelope: a READINGS group or a signed window. */
export type BatchItem = ReadingsItem | SignedWindow;

/** A decoded item, with the byte offset of its kind byte in the batch. */
export type DecodedBatchItem = BatchItem & { readonly offset: number };

/** Options of {@link encodeBatch} / {@link groupBatchItems}. */
export interface EncodeBatchOptions {
  /**
   * Sort single readings by (deviceId, observedAt) before grouping, so each device's readings form
   * one READINGS item in the order of its chain (the contract accepts a reading only after its
   * predecessor). Windows stay where the caller put them and act as barriers: only runs of
   * consecutive single readings between two windows are reordered, never a reading across a window.
   * Default false: the caller's order is kept and only adjacent readings of one device are grouped.
   */
  readonly sortReadings?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/**
 * Groups signed items into envelope items: consecutive single readings of the same device become
 * one READINGS item (split every 65,535 readings); windows pass through in place. Validates every
 * field and signature length (READING_INVALID, WINDOW_INVALID, SIGNATURE_INVALID).
 */
export function groupBatchItems(items: readonly SignedItem[], options: EncodeBatchOptions = {}): BatchItem[] {
  const out: BatchItem[] = [];
  let run: SignedReading[] = [];
  const flushRun = (): void => {
    const ordered = options.sortReadings === true ? [...run].sort(compareReadings) : run;
    let group: SignedReading[] = [];
    for (const item of ordered) {
      const head = group[0];
      if (
        head !== undefined &&
        (head.reading.deviceId !== item.reading.deviceId || group.length === READINGS_MAX_COUNT)
      ) {
        out.push({ kind: "readings", deviceId: head.reading.deviceId, readings: group });
        group = [];
      }
      group.push(item);
    }
    const head = group[0];
    if (head !== undefined) out.push({ kind: "readings", deviceId: head.reading.deviceId, readings: group });
    run = [];
  };
  for (const item of items) {
    switch (item.kind) {
      case "reading":
        assertReading(item.reading);
        signatureBytes(item.signature);
        run.push(item);
        break;
      case "window":
        assertWindow(item.window);
        signatureBytes(item.signature);
        flushRun();
        out.push(item);
        break;
    }
  }
  flushRun();
  return out;
}

/** Encodes signed readings and windows into one batch (grouping as {@link groupBatchItems}). */
export function encodeBatch(items: readonly SignedItem[], options: EncodeBatchOptions = {}): Uint8Array {
  return encodeBatchItems(groupBatchItems(items, options));
}

/** Encodes already grouped items, in the given order. */
export function encodeBatchItems(items: readonly BatchItem[]): Uint8Array {
  const out = new Uint8Array(encodedBatchSize(items));
  const view = new DataView(out.buffer);
  out[0] = BATCH_VERSION;
  let o = 1;
  for (const item of items) {
    switch (item.kind) {
      case "readings": {
        const count = item.readings.length;
        if (count < 1 || count > READINGS_MAX_COUNT) {
          throw new ProtocolError(
            "READING_INVALID",
            `a READINGS item holds 1..${READINGS_MAX_COUNT} readings, got ${count}`,
          );
        }
        out[o] = ITEM_KIND_READINGS;
        view.setBigUint64(o + 1, item.deviceId);
        view.setUint16(o + 9, count);
        o += READINGS_HEADER_BYTES;
        for (const { reading, signature } of item.readings) {
          assertReading(reading);
          if (reading.deviceId !== item.deviceId) {
            throw new ProtocolError(
              "READING_INVALID",
              `a READINGS item of device ${item.deviceId} holds a reading of device ${reading.deviceId}`,
            );
          }
          view.setUint32(o, reading.sequence);
          setUint40(view, o + 4, reading.observedAt);
          view.setInt16(o + 9, reading.tempCentiC);
          out[o + 11] = reading.flags;
          setUint40(view, o + 12, reading.previousObservedAt);
          out.set(signatureBytes(signature), o + 17);
          o += READING_BYTES;
        }
        break;
      }
      case "window": {
        const { window, signature } = item;
        assertWindow(window);
        out[o] = ITEM_KIND_WINDOW;
        view.setBigUint64(o + 1, window.deviceId);
        view.setUint32(o + 9, window.firstSequence);
        setUint40(view, o + 13, window.firstObservedAt);
        view.setUint32(o + 18, window.intervalSeconds);
        view.setUint16(o + 22, window.samples.length);
        setUint40(view, o + 24, window.previousObservedAt);
        o += WINDOW_HEADER_BYTES;
        const samples = encodeSamples(window.samples);
        out.set(samples, o);
        o += samples.length;
        out.set(signatureBytes(signature), o);
        o += SIGNATURE_BYTES;
        break;
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Sizes and calldata cost
// ---------------------------------------------------------------------------------------------

/** Encoded size of a READINGS item of `count` readings: 11 + 81 * count bytes. */
export function readingsItemSize(count: number): number {
  return READINGS_HEADER_BYTES + READING_BYTES * count;
}

/** Encoded size of a WINDOW item of `count` samples: 29 + 3 * count + 64 bytes. */
export function windowItemSize(count: number): number {
  return WINDOW_HEADER_BYTES + SAMPLE_BYTES * count + SIGNATURE_BYTES;
}

/** Encoded size of one envelope item. */
export function batchItemSize(item: BatchItem): number {
  return item.kind === "readings" ? readingsItemSize(item.readings.length) : windowItemSize(item.window.samples.length);
}

/** Encoded size of a batch of grouped items, version byte included. */
export function encodedBatchSize(items: readonly BatchItem[]): number {
  return items.reduce((total, item) => total + batchItemSize(item), 1);
}

/** Calldata gas of a byte string: 16 per nonzero byte, 4 per zero byte (EIP-2028). */
export function calldataGas(bytes: BytesLike): number {
  let gas = 0;
  for (const b of getBytes(bytes)) gas += b === 0 ? 4 : 16;
  return gas;
}

/** EIP-7623 calldata tokens: zero bytes + 4 x nonzero bytes (the floor charges 10 gas per token). */
export function calldataTokens(bytes: BytesLike): number {
  let tokens = 0;
  for (const b of getBytes(bytes)) tokens += b === 0 ? 1 : 4;
  return tokens;
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/** Options of {@link decodeBatch}. */
export interface DecodeBatchOptions {
  /**
   * Return WINDOW items with 0 or more than 256 samples instead of throwing BATCH_COUNT_ZERO /
   * BATCH_WINDOW_TOO_LARGE. The contract does not revert on those: it skips them with
   * `ReadingSkipped(..., MalformedItem)` and goes on, so a reader of submitted batches (the oracle
   * reading its own transactions) can ask for the same leniency. Default false.
   */
  readonly allowMalformedWindows?: boolean;
}

/**
 * Decodes a batch into its items. Checks the envelope only: field values are returned as found and
 * signatures are not verified. Throws a {@link ProtocolError} whose `offset` is the start of the
 * offending item (0 for the version byte), as the contract's `BatchMalformed(offset)`:
 * - BATCH_TRUNCATED: empty batch, or an item runs past the end (the contract reverts);
 * - BATCH_VERSION_UNSUPPORTED: first byte is not 0x02 (the contract reverts; 0x01 is protocol v1's envelope);
 * - BATCH_ITEM_KIND_UNKNOWN: kind byte other than 0x01 / 0x02 (the contract reverts);
 * - BATCH_COUNT_ZERO: a READINGS item (the contract reverts) or a WINDOW item (the contract skips it) with count 0;
 * - BATCH_WINDOW_TOO_LARGE: a WINDOW item of more than 256 samples (the contract skips it).
 */
export function decodeBatch(batch: BytesLike, options: DecodeBatchOptions = {}): DecodedBatchItem[] {
  const bytes = getBytes(batch);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length === 0) {
    throw new ProtocolError(
      "BATCH_TRUNCATED",
      `the batch is empty; it must start with the version byte 0x${hexByte(BATCH_VERSION)}`,
      { offset: 0 },
    );
  }
  if (bytes[0] !== BATCH_VERSION) {
    throw new ProtocolError(
      "BATCH_VERSION_UNSUPPORTED",
      `batch version 0x${hexByte(bytes[0] ?? 0)} is not supported; this SDK reads version 0x${hexByte(BATCH_VERSION)}` +
        (bytes[0] === 0x01 ? " (0x01 is protocol v1, whose readings do not name their predecessor)" : ""),
      { offset: 0 },
    );
  }
  const items: DecodedBatchItem[] = [];
  let o = 1;
  /** Throws BATCH_TRUNCATED (at the item's start) unless bytes [from, from + length) exist. */
  const need = (start: number, from: number, length: number, what: string): void => {
    if (from + length > bytes.length) {
      throw new ProtocolError(
        "BATCH_TRUNCATED",
        `${what} of the item at byte ${start} needs bytes ${from}..${from + length - 1} but the batch ends at ` +
          `${bytes.length - 1}; the batch was cut short`,
        { offset: start },
      );
    }
  };
  while (o < bytes.length) {
    const start = o;
    const kind = bytes[o] ?? 0; // o < bytes.length: always defined
    switch (kind) {
      case ITEM_KIND_READINGS: {
        need(start, o, READINGS_HEADER_BYTES, "the READINGS header");
        const deviceId = view.getBigUint64(o + 1);
        const count = view.getUint16(o + 9);
        if (count === 0) {
          throw new ProtocolError("BATCH_COUNT_ZERO", `the READINGS item at byte ${start} has count 0`, {
            offset: start,
          });
        }
        o += READINGS_HEADER_BYTES;
        need(start, o, READING_BYTES * count, `${count} readings`);
        const readings: SignedReading[] = [];
        for (let i = 0; i < count; i++, o += READING_BYTES) {
          readings.push({
            kind: "reading",
            reading: {
              deviceId,
              sequence: view.getUint32(o),
              observedAt: getUint40(view, o + 4),
              tempCentiC: view.getInt16(o + 9),
              flags: bytes[o + 11] ?? 0,
              previousObservedAt: getUint40(view, o + 12),
            },
            signature: hexlify(bytes.subarray(o + 17, o + READING_BYTES)),
          });
        }
        items.push({ kind: "readings", deviceId, readings, offset: start });
        break;
      }
      case ITEM_KIND_WINDOW: {
        need(start, o, WINDOW_HEADER_BYTES, "the WINDOW header");
        const count = view.getUint16(o + 22);
        const lenient = options.allowMalformedWindows === true;
        if (count === 0 && !lenient) {
          throw new ProtocolError("BATCH_COUNT_ZERO", `the WINDOW item at byte ${start} has count 0`, {
            offset: start,
          });
        }
        if (count > WINDOW_MAX_SAMPLES && !lenient) {
          throw new ProtocolError(
            "BATCH_WINDOW_TOO_LARGE",
            `the WINDOW item at byte ${start} has ${count} samples; at most ${WINDOW_MAX_SAMPLES} are allowed`,
            { offset: start },
          );
        }
        need(
          start,
          o + WINDOW_HEADER_BYTES,
          SAMPLE_BYTES * count + SIGNATURE_BYTES,
          `${count} samples and the signature`,
        );
        const samplesEnd = o + WINDOW_HEADER_BYTES + SAMPLE_BYTES * count;
        const window = {
          deviceId: view.getBigUint64(o + 1),
          firstSequence: view.getUint32(o + 9),
          firstObservedAt: getUint40(view, o + 13),
          intervalSeconds: view.getUint32(o + 18),
          samples: decodeSamples(bytes.subarray(o + WINDOW_HEADER_BYTES, samplesEnd)),
          previousObservedAt: getUint40(view, o + 24),
        };
        const signature = hexlify(bytes.subarray(samplesEnd, samplesEnd + SIGNATURE_BYTES));
        items.push({ kind: "window", window, signature, offset: start });
        o = samplesEnd + SIGNATURE_BYTES;
        break;
      }
      default:
        throw new ProtocolError(
          "BATCH_ITEM_KIND_UNKNOWN",
          `the item at byte ${start} has kind 0x${hexByte(kind)}; expected 0x01 (READINGS) or 0x02 (WINDOW)`,
          { offset: start },
        );
    }
  }
  return items;
}

/** The signed readings and windows of decoded (or grouped) items, in batch order. */
export function flattenBatchItems(items: readonly BatchItem[]): SignedItem[] {
  return items.flatMap((item): SignedItem[] =>
    item.kind === "readings"
      ? [...item.readings]
      : [{ kind: "window", window: item.window, signature: item.signature }],
  );
}

// ---------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------

function compareReadings(a: SignedReading, b: SignedReading): number {
  if (a.reading.deviceId !== b.reading.deviceId) return a.reading.deviceId < b.reading.deviceId ? -1 : 1;
  return a.reading.observedAt - b.reading.observedAt || a.reading.sequence - b.reading.sequence;
}

/** uint40 = 5 bytes: the high byte, then the low 32 bits (value < 2^40, so both parts are exact). */
function setUint40(view: DataView, offset: number, value: number): void {
  view.setUint8(offset, Math.floor(value / 2 ** 32));
  view.setUint32(offset + 1, value >>> 0);
}

function getUint40(view: DataView, offset: number): number {
  return view.getUint8(offset) * 2 ** 32 + view.getUint32(offset + 1);
}

function hexByte(b: number): string {
  return b.toString(16).padStart(2, "0");
}
