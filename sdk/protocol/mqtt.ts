/**
 * MQTT payloads and topics (docs/protocol.md §7). One message carries exactly one signed item: a single
 * reading or a device window, in either of two forms that the oracle tells apart by the first byte:
 *
 * - JSON (first byte `{`): human-debuggable, e.g.
 *   `{"v":2,"kind":"reading","deviceId":"12648430","sequence":42,"observedAt":1767225600,"tempCentiC":512,
 *   "flags":0,"previousObservedAt":1767225300,"signature":"0x…"}`. deviceId is a decimal string (uint64 does not
 *   fit a JSON number). Every field is required, no other is allowed.
 * - binary (first byte 0x02, the batch version): a batch envelope holding exactly one item, byte for byte what the
 *   contract reads: a READINGS item of count 1 (93 bytes) or a WINDOW item (94 + 3·N bytes).
 *
 * Protocol v1 payloads (JSON `"v":1`, binary first byte 0x01) carry no previousObservedAt and are refused with an
 * error that says so.
 *
 * Browser-safe: no Node built-ins.
 */
import { getBytes, hexlify, isHexString, toUtf8Bytes, toUtf8String } from "ethers";
import type { BytesLike } from "ethers";

import { decodeBatch, encodeBatch } from "./batch.js";
import { BATCH_VERSION, UINT64_MAX } from "./constants.js";
import { isProtocolError } from "./errors.js";
import type { SignedItem } from "./types.js";
import { assertReading, assertWindow } from "./validate.js";

/** Topic prefix of protocol version 1. */
export const MQTT_TOPIC_PREFIX = "coldchain/v1";
/** Subscription filter matching every device's readings topic. */
export const MQTT_READINGS_FILTER = `${MQTT_TOPIC_PREFIX}/devices/+/readings`;
/** Version field of the JSON form: the protocol version (2: readings name their predecessor). */
export const MQTT_JSON_VERSION = 2;
/** First byte of a protocol v1 binary payload (its batch version), refused with a clear error. */
const V1_BATCH_VERSION = 0x01;
/** First byte of the JSON form (`{`). */
const JSON_FIRST_BYTE = 0x7b;

/** An MQTT payload or topic that does not follow docs/protocol.md §7. */
export class MqttPayloadError extends Error {
  /** Stable machine-readable code. */
  readonly code = "MQTT_PAYLOAD_INVALID";

  constructor(message: string, cause?: unknown) {
    super(`MQTT_PAYLOAD_INVALID: ${message}`, cause === undefined ? undefined : { cause });
    this.name = "MqttPayloadError";
  }
}

/** Form of an MQTT payload. */
export type MqttPayloadFormat = "json" | "binary";

/** Topic a device publishes its readings and windows to. deviceId in decimal, no leading zeros. */
export function mqttReadingsTopic(deviceId: bigint): string {
  return `${MQTT_TOPIC_PREFIX}/devices/${deviceId.toString(10)}/readings`;
}

/** Topic an oracle instance publishes its retained status (and last will) to. */
export function mqttStatusTopic(oracleId: string): string {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(oracleId)) {
    throw new MqttPayloadError(`oracle id must be 1..64 characters of [A-Za-z0-9_.-], got ${oracleId}`);
  }
  return `${MQTT_TOPIC_PREFIX}/oracles/${oracleId}/status`;
}

/** The device id of a readings topic, or undefined when the topic is not one. */
export function parseMqttReadingsTopic(topic: string): bigint | undefined {
  const match = /^coldchain\/v1\/devices\/([1-9][0-9]{0,19})\/readings$/.exec(topic);
  if (match?.[1] === undefined) return undefined;
  const id = BigInt(match[1]);
  return id <= UINT64_MAX ? id : undefined;
}

/** Status payload published retained by an oracle (online on connect, offline as will and on shutdown). */
export interface OracleStatus {
  readonly state: "online" | "offline";
  readonly oracleId: string;
  /** Unix milliseconds when the status was set (absent in the last will, which the broker sends later). */
  readonly at?: number;
}

/** Encodes an oracle status message (UTF-8 JSON). */
export function encodeOracleStatus(status: OracleStatus): Uint8Array {
  return toUtf8Bytes(JSON.stringify(status));
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/** Encodes one signed item as an MQTT payload in the given form. Validates like the batch encoder. */
export function encodeMqttPayload(item: SignedItem, format: MqttPayloadFormat): Uint8Array {
  switch (format) {
    case "binary":
      return encodeBatch([item]);
    case "json":
      return toUtf8Bytes(JSON.stringify(mqttJsonOf(item)));
  }
}

/** The JSON object of an item (what {@link encodeMqttPayload} serialises). */
export function mqttJsonOf(item: SignedItem): Record<string, unknown> {
  switch (item.kind) {
    case "reading": {
      assertReading(item.reading);
      const { deviceId, sequence, observedAt, tempCentiC, flags, previousObservedAt } = item.reading;
      return {
        v: MQTT_JSON_VERSION,
        kind: "reading",
        deviceId: deviceId.toString(10),
        sequence,
        observedAt,
        tempCentiC,
        flags,
        previousObservedAt,
        signature: hexlify(item.signature),
      };
    }
    case "window": {
      assertWindow(item.window);
      const { deviceId, firstSequence, firstObservedAt, intervalSeconds, samples, previousObservedAt } = item.window;
      return {
        v: MQTT_JSON_VERSION,
        kind: "window",
        deviceId: deviceId.toString(10),
        firstSequence,
        firstObservedAt,
        intervalSeconds,
        samples: samples.map((s) => [s.tempCentiC, s.flags]),
        previousObservedAt,
        signature: hexlify(item.signature),
      };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/** A decoded payload and the form it came in. */
export interface DecodedMqttPayload {
  readonly format: MqttPayloadFormat;
  readonly item: SignedItem;
}

/**
 * Decodes an MQTT payload (either form) into one signed item, checking every field's range and the
 * signature length (not the signature itself). Throws an {@link MqttPayloadError} naming what is wrong.
 */
export function decodeMqttPayload(payload: BytesLike): DecodedMqttPayload {
  let bytes: Uint8Array;
  try {
    bytes = getBytes(payload);
  } catch (cause) {
    throw invalid("the payload must be bytes", cause);
  }
  if (bytes.length === 0) throw invalid("the payload is empty");
  const first = bytes[0];
  if (first === JSON_FIRST_BYTE) return { format: "json", item: decodeJson(bytes) };
  if (first === BATCH_VERSION) return { format: "binary", item: decodeBinary(bytes) };
  if (first === V1_BATCH_VERSION) {
    throw invalid(
      `binary form of protocol v1 (first byte 0x01): readings must name their predecessor (previousObservedAt); ` +
        `update the device to protocol v2 (first byte 0x${hex(BATCH_VERSION)})`,
    );
  }
  throw invalid(
    `the first byte 0x${hex(first ?? 0)} is neither '{' (JSON form) nor 0x${hex(BATCH_VERSION)} (binary form)`,
  );
}

function decodeBinary(bytes: Uint8Array): SignedItem {
  let items;
  try {
    items = decodeBatch(bytes);
  } catch (cause) {
    throw invalid(`binary form: ${cause instanceof Error ? cause.message : String(cause)}`, cause);
  }
  if (items.length !== 1) throw invalid(`binary form: exactly one item per message, got ${items.length}`);
  const only = items[0];
  if (only === undefined) throw invalid("binary form: no item");
  if (only.kind === "readings") {
    const reading = only.readings[0];
    if (only.readings.length !== 1 || reading === undefined) {
      throw invalid(`binary form: a READINGS item carries exactly one reading, got ${only.readings.length}`);
    }
    return checked(reading);
  }
  return checked({ kind: "window", window: only.window, signature: only.signature });
}

function decodeJson(bytes: Uint8Array): SignedItem {
  let value: unknown;
  try {
    value = JSON.parse(toUtf8String(bytes));
  } catch (cause) {
    throw invalid("JSON form: not valid UTF-8 JSON", cause);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalid("JSON form: not an object");
  const o = value as Record<string, unknown>;
  if (o.v !== MQTT_JSON_VERSION) {
    throw invalid(
      `JSON form: "v" must be ${MQTT_JSON_VERSION}` +
        (o.v === 1 ? " (protocol v1 readings do not name their predecessor: update the device)" : ""),
    );
  }
  const deviceId = decimalUint64(o.deviceId);
  const signature = o.signature;
  if (typeof signature !== "string" || !isHexString(signature, 64)) {
    throw invalid('JSON form: "signature" must be 0x-prefixed hex of 64 bytes');
  }
  switch (o.kind) {
    case "reading":
      exactKeys(o, READING_JSON_KEYS);
      return checked({
        kind: "reading",
        reading: {
          deviceId,
          sequence: o.sequence as number,
          observedAt: o.observedAt as number,
          tempCentiC: o.tempCentiC as number,
          flags: o.flags as number,
          previousObservedAt: o.previousObservedAt as number,
        },
        signature: signature.toLowerCase(),
      });
    case "window": {
      exactKeys(o, WINDOW_JSON_KEYS);
      if (!Array.isArray(o.samples)) throw invalid('JSON form: "samples" must be an array of [tempCentiC, flags]');
      const samples = (o.samples as unknown[]).map((s, i) => {
        if (!Array.isArray(s) || s.length !== 2) throw invalid(`JSON form: samples[${i}] must be [tempCentiC, flags]`);
        return { tempCentiC: s[0] as number, flags: s[1] as number };
      });
      return checked({
        kind: "window",
        window: {
          deviceId,
          firstSequence: o.firstSequence as number,
          firstObservedAt: o.firstObservedAt as number,
          intervalSeconds: o.intervalSeconds as number,
          samples,
          previousObservedAt: o.previousObservedAt as number,
        },
        signature: signature.toLowerCase(),
      });
    }
    default:
      throw invalid('JSON form: "kind" must be "reading" or "window"');
  }
}

function checked(item: SignedItem): SignedItem {
  try {
    if (item.kind === "reading") assertReading(item.reading);
    else assertWindow(item.window);
  } catch (cause) {
    if (isProtocolError(cause)) throw invalid(cause.message, cause);
    throw cause;
  }
  return item;
}

function decimalUint64(value: unknown): bigint {
  if (typeof value !== "string" || !/^[1-9][0-9]{0,19}$/.test(value)) {
    throw invalid('JSON form: "deviceId" must be a decimal string of a nonzero uint64');
  }
  const id = BigInt(value);
  if (id > UINT64_MAX) throw invalid('JSON form: "deviceId" exceeds uint64');
  return id;
}

/** The fields of a JSON reading, every one required. */
const READING_JSON_KEYS = [
  "v",
  "kind",
  "deviceId",
  "sequence",
  "observedAt",
  "tempCentiC",
  "flags",
  "previousObservedAt",
  "signature",
] as const;
/** The fields of a JSON window, every one required. */
const WINDOW_JSON_KEYS = [
  "v",
  "kind",
  "deviceId",
  "firstSequence",
  "firstObservedAt",
  "intervalSeconds",
  "samples",
  "previousObservedAt",
  "signature",
] as const;

/** Refuses a field not in `keys` and a missing one (each named). */
function exactKeys(o: Record<string, unknown>, keys: readonly string[]): void {
  for (const key of Object.keys(o)) {
    if (!keys.includes(key)) throw invalid(`JSON form: unknown field "${key}"`);
  }
  for (const key of keys) {
    if (!Object.hasOwn(o, key)) throw invalid(`JSON form: the field "${key}" is missing`);
  }
}

function hex(b: number): string {
  return b.toString(16).padStart(2, "0");
}

function invalid(message: string, cause?: unknown): MqttPayloadError {
  return new MqttPayloadError(message, cause);
}
