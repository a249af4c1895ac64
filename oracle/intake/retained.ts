/**
 * Retained messages on the readings topics. A device (or a gateway) may publish its readings with the retain flag;
 * the broker then keeps the last one per topic and sends it to every new subscription, with the retain flag set:
 * after a restart with a new session, or to a new member of the share group (MQTT 5 brokers do not send them to
 * an existing subscription again: the oracle subscribes with retain handling 1, oracle/intake/mqtt.ts). Such a message
 * is handled as any other, and the store keeps one reading per (device, observation time): a retained reading
 * delivered again is not stored twice. It is counted as a replay (`coldchain_oracle_retained_replays_total`),
 * not as a dropped duplicate, and acknowledged.
 *
 * A zero-length message is how a retained message is cleared (the broker forwards it to the subscribers too): it
 * carries no reading, so it is counted as a clear (`coldchain_oracle_retained_clears_total`), not as `malformed`,
 * and acknowledged.
 */
import { decodeMqttPayload } from "../../sdk/protocol/index.js";
import type { Store } from "../store/store.js";

/** Whether `payload` is the clearing of a retained message (zero length): nothing to store. */
export function isRetainedClear(payload: Uint8Array): boolean {
  return payload.length === 0;
}

/**
 * Whether a retained message's reading (a window: any of its samples) is stored already, as the intake's
 * duplicate check judges it: a replay of a retained message. False for a payload that does not decode (the
 * intake drops it with its reason).
 */
export function isStoredReplay(store: Store, payload: Uint8Array): boolean {
  let item;
  try {
    item = decodeMqttPayload(payload).item;
  } catch {
    return false;
  }
  return item.kind === "reading"
    ? store.hasAnyObservation(item.reading.deviceId, item.reading.observedAt, 1, 0)
    : store.hasAnyObservation(
        item.window.deviceId,
        item.window.firstObservedAt,
        item.window.samples.length,
        item.window.intervalSeconds,
      );
}
