/**
 * The alert payload every sink carries (MQTT `coldchain/v1/alerts/<shipmentId>`, webhooks, `GET /alerts`), documented
 * in docs/operations.md ("Real-time alerts") and docs/protocol.md. Ids (uint64) are decimal strings.
 */
import type { AlertKind, AlertLimits, GapInfo, RaisedAlert } from "./rules.js";

/** The payload's `type`: bumped if a field changes meaning. */
export const ALERT_TYPE = "coldchain.alert/1";

/** The MQTT topic of a shipment's alerts. */
export function alertTopic(shipmentId: string): string {
  return `coldchain/v1/alerts/${shipmentId}`;
}

export interface AlertPayload {
  readonly type: typeof ALERT_TYPE;
  /** Stable id (`<shipmentId>-<deviceId>-<observedAt>-<kind>`): receivers de-duplicate on it. */
  readonly id: string;
  readonly kind: AlertKind;
  readonly oracleId: string;
  readonly chainId: number;
  readonly shipmentId: string;
  readonly deviceId: string;
  /** The shipment's custodian when the alert was raised (the party that can act). */
  readonly custodian: string;
  readonly tempCentiC: number;
  readonly tempC: number;
  readonly flags: number;
  /** Observation time of the reading (ISO 8601, UTC) and as unix seconds. */
  readonly observedAt: string;
  readonly observedAtUnix: number;
  /** The shipment profile's limits (centi-°C and °C). */
  readonly limits: {
    readonly minCentiC: number;
    readonly maxCentiC: number;
    readonly freezeCentiC: number;
    readonly minC: number;
    readonly maxC: number;
    readonly freezeC: number;
    readonly maxGapIntervals: number;
    readonly faultFlagMask: number;
  };
  /** For kind `gap`: the silence (`toObservedAt` null while the device is still silent). */
  readonly gap?: {
    readonly fromObservedAt: string;
    readonly fromObservedAtUnix: number;
    readonly toObservedAtUnix: number | null;
    readonly silentSeconds: number;
    readonly maxGapSeconds: number;
  };
  /** When the oracle raised it (ISO 8601). */
  readonly raisedAt: string;
}

/** The stable id of an alert. */
export function alertId(shipmentId: string, deviceId: bigint | string, keyObservedAt: number, kind: AlertKind): string {
  return `${shipmentId}-${deviceId}-${keyObservedAt}-${kind}`;
}

const celsius = (centiC: number): number => centiC / 100;
const iso = (unixSeconds: number): string => new Date(unixSeconds * 1000).toISOString();

/** The full payload of a raised alert. */
export function alertPayload(
  raised: RaisedAlert,
  context: {
    oracleId: string;
    chainId: number;
    shipmentId: string;
    deviceId: bigint;
    custodian: string;
    limits: AlertLimits;
  },
  raisedAt: number,
): AlertPayload {
  const { limits } = context;
  const gap: GapInfo | undefined = raised.gap;
  return {
    type: ALERT_TYPE,
    id: alertId(context.shipmentId, context.deviceId, raised.keyObservedAt, raised.kind),
    kind: raised.kind,
    oracleId: context.oracleId,
    chainId: context.chainId,
    shipmentId: context.shipmentId,
    deviceId: context.deviceId.toString(),
    custodian: context.custodian,
    tempCentiC: raised.tempCentiC,
    tempC: celsius(raised.tempCentiC),
    flags: raised.flags,
    observedAt: iso(raised.observedAt),
    observedAtUnix: raised.observedAt,
    limits: {
      minCentiC: limits.minCentiC,
      maxCentiC: limits.maxCentiC,
      freezeCentiC: limits.freezeCentiC,
      minC: celsius(limits.minCentiC),
      maxC: celsius(limits.maxCentiC),
      freezeC: celsius(limits.freezeCentiC),
      maxGapIntervals: limits.maxGapIntervals,
      faultFlagMask: limits.faultFlagMask,
    },
    ...(gap === undefined
      ? {}
      : {
          gap: {
            fromObservedAt: iso(gap.fromObservedAt),
            fromObservedAtUnix: gap.fromObservedAt,
            toObservedAtUnix: gap.toObservedAt ?? null,
            silentSeconds: gap.silentSeconds,
            maxGapSeconds: gap.maxGapSeconds,
          },
        }),
    raisedAt: new Date(raisedAt).toISOString(),
  };
}
