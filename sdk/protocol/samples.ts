/**
 * The `samples` byte string of a window: count x 3 bytes, each tempCentiC as int16 big-endian
 * two's complement followed by flags as uint8.
 */
import { getBytes } from "ethers";
import type { BytesLike } from "ethers";

import { SAMPLE_BYTES } from "./constants.js";
import { ProtocolError } from "./errors.js";
import type { Reading, ReadingWindow, Sample } from "./types.js";
import { assertSample, assertWindow } from "./validate.js";

/** Packs samples into count x 3 bytes. Throws WINDOW_INVALID on an out-of-range sample. */
export function encodeSamples(samples: readonly Sample[]): Uint8Array {
  const out = new Uint8Array(samples.length * SAMPLE_BYTES);
  samples.forEach((sample, i) => {
    assertSample(sample, i);
    const t = sample.tempCentiC & 0xffff; // two's complement of an int16
    out[i * SAMPLE_BYTES] = t >> 8;
    out[i * SAMPLE_BYTES + 1] = t & 0xff;
    out[i * SAMPLE_BYTES + 2] = sample.flags;
  });
  return out;
}

/** Unpacks count x 3 bytes into samples. Throws WINDOW_INVALID when the length is not a multiple of 3. */
export function decodeSamples(samples: BytesLike): Sample[] {
  const bytes = getBytes(samples);
  if (bytes.length % SAMPLE_BYTES !== 0) {
    throw new ProtocolError(
      "WINDOW_INVALID",
      `samples must be a multiple of ${SAMPLE_BYTES} bytes, got ${bytes.length}`,
    );
  }
  const out: Sample[] = [];
  for (let o = 0; o < bytes.length; o += SAMPLE_BYTES) {
    const raw = ((bytes[o] ?? 0) << 8) | (bytes[o + 1] ?? 0);
    out.push({ tempCentiC: (raw << 16) >> 16, flags: bytes[o + 2] ?? 0 });
  }
  return out;
}

/**
 * The readings a window stands for: sequence firstSequence + i, observedAt firstObservedAt + i * interval, and
 * previousObservedAt the window's own for reading 0, the reading before it for the others.
 */
export function windowReadings(window: ReadingWindow): Reading[] {
  assertWindow(window);
  return window.samples.map((sample, i) => ({
    deviceId: window.deviceId,
    sequence: window.firstSequence + i,
    observedAt: window.firstObservedAt + i * window.intervalSeconds,
    tempCentiC: sample.tempCentiC,
    flags: sample.flags,
    previousObservedAt: i === 0 ? window.previousObservedAt : window.firstObservedAt + (i - 1) * window.intervalSeconds,
  }));
}
