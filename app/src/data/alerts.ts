/**
 * Live alerts from an oracle's `GET /alerts` (Server-Sent Events, payload `coldchain.alert/1`, docs/operations.md
 * section 13): parsing one event's data, the kinds in words, and a bounded newest-first list without duplicates
 * (delivery is at least once: the same alert id may come twice, e.g. after a reconnect).
 */

/** The alert kinds the oracle raises. */
export type AlertKind = "excursion_started" | "excursion_ended" | "freeze_started" | "gap" | "device_fault";

export const ALERT_KIND_WORDS: Readonly<Record<AlertKind, string>> = {
  excursion_started: "Excursion started",
  excursion_ended: "Excursion ended",
  freeze_started: "Freezing",
  gap: "Logger silent (gap)",
  device_fault: "Device fault",
};

/** The fields of an alert the dashboard shows. */
export interface LiveAlert {
  readonly id: string;
  readonly kind: AlertKind;
  readonly shipmentId: string;
  readonly deviceId: string;
  readonly custodian: string;
  readonly tempCentiC: number;
  readonly observedAtUnix: number;
  readonly oracleId: string;
}

/** Alerts kept on screen at most (newest first). */
export const MAX_ALERTS = 50;

const DECIMAL = /^\d+$/;

/** Parses the `data` of one `alert` event; throws with the field at fault on anything that is not an alert. */
export function parseAlert(data: string): LiveAlert {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    throw new Error("alert: not JSON");
  }
  if (typeof value !== "object" || value === null) throw new Error("alert: not an object");
  const v = value as Record<string, unknown>;
  if (v.type !== "coldchain.alert/1") throw new Error(`alert: unknown type ${JSON.stringify(v.type)}`);
  const str = (key: string, pattern?: RegExp): string => {
    const x = v[key];
    if (typeof x !== "string" || (pattern !== undefined && !pattern.test(x))) {
      throw new Error(`alert: "${key}" is missing or malformed`);
    }
    return x;
  };
  const int = (key: string): number => {
    const x = v[key];
    if (typeof x !== "number" || !Number.isSafeInteger(x)) throw new Error(`alert: "${key}" is not an integer`);
    return x;
  };
  const kind = str("kind");
  if (!Object.hasOwn(ALERT_KIND_WORDS, kind)) throw new Error(`alert: unknown kind "${kind}"`);
  return {
    id: str("id"),
    kind: kind as AlertKind,
    shipmentId: str("shipmentId", DECIMAL),
    deviceId: str("deviceId", DECIMAL),
    custodian: str("custodian"),
    tempCentiC: int("tempCentiC"),
    observedAtUnix: int("observedAtUnix"),
    oracleId: str("oracleId"),
  };
}

/** `alert` added to `list` (newest first by observation time, then arrival), without a second copy of its id, at most `max`. */
export function addAlert(list: readonly LiveAlert[], alert: LiveAlert, max = MAX_ALERTS): LiveAlert[] {
  if (list.some((a) => a.id === alert.id)) return list as LiveAlert[];
  const at = list.findIndex((a) => a.observedAtUnix <= alert.observedAtUnix);
  const next = at < 0 ? [...list, alert] : [...list.slice(0, at), alert, ...list.slice(at)];
  return next.slice(0, max);
}

/** The stream's URL with `lastEventId=0` on a first connection (the oracle then replays its newest alerts). */
export function streamUrl(alertsUrl: string, base: string): string {
  const url = new URL(alertsUrl, base);
  if (!url.searchParams.has("lastEventId")) url.searchParams.set("lastEventId", "0");
  return url.toString();
}
