/**
 * GS1 EPCIS 2.0 JSON-LD export of a shipment's history. Browser-safe.
 *
 * One `EPCISDocument` with ObjectEvents for the shipment (its EPC, by default a URN naming the chain, the ColdChain
 * contract and the shipment id; pass `epcList` for an SSCC, e.g. `urn:epc:id:sscc:0614141.1234567890`):
 *
 * | on chain                         | EPCIS event                                                              |
 * | -------------------------------- | ------------------------------------------------------------------------ |
 * | ShipmentCreated                  | ADD, bizStep `commissioning`, disposition `active`                        |
 * | ShipmentStarted                  | OBSERVE, `shipping`, `in_transit`; source/destination owning + possessing |
 * | CustodyTransferred (to a carrier)| OBSERVE, `transporting`, `in_transit`; sourceList/destinationList        |
 * |                                  | `possessing_party` = from / to; sensor reports of the leg that ended     |
 * | ShipmentDelivered                | OBSERVE, `receiving`, `in_progress`; the last leg's sensor reports       |
 * | ShipmentReleased / Rejected      | OBSERVE, `inspecting`, `conformant` / `non_conformant`                   |
 * | ShipmentCancelled                | OBSERVE, `void_shipping`, `unknown`                                      |
 *
 * Parties are Ethereum accounts, named by their CAIP-10 DID: `did:pkh:eip155:<chainId>:<address>` (GLN-based
 * `urn:epc:id:pgln:` URIs need a GS1 company prefix the chain does not know; map addresses with `partyUri`).
 * Every leg carries one `sensorElement` per device: `sensorMetadata` (device, leg start and end, the rule profile
 * as `bizRules`) and a `sensorReport` of type `gs1:Temperature` in `CEL` with `minValue`, `maxValue`, `meanValue`
 * and `sDev` over the leg's readings, then one report per breach recorded in the leg: `exception`
 * `ALARM_CONDITION` (temperature rules) or `ERROR_CONDITION` (device fault, missing data), with the breach
 * reason in `coldchain:breachReason` and the liable custodian in `coldchain:liableParty`.
 */
import { isEvaluatedReading } from "./history.js";
import type { HistoryReading, ShipmentHistory } from "./history.js";
import type { BreachReasonName } from "./names.js";
import type { ShipmentState } from "./state.js";

/** The EPCIS 2.0 JSON-LD context (GS1). */
export const EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld";
/** Default namespace of this project's extension terms (`coldchain:` prefix). */
export const COLDCHAIN_VOCAB = "urn:coldchain:vocab:";

export interface EpcisOptions {
  /** `creationDate` of the document; default now. */
  readonly creationDate?: Date;
  /** The shipment's EPCs; default one URN (see the module comment). */
  readonly epcList?: readonly string[];
  /** URI of a party; default `did:pkh:eip155:<chainId>:<address>`. */
  readonly partyUri?: (address: string) => string;
  /** URI of a device; default `urn:coldchain:eip155:<chainId>:<registry or coldChain>:device:<id>`. */
  readonly deviceUri?: (deviceId: bigint) => string;
  /** Namespace of the `coldchain:` extension terms; default {@link COLDCHAIN_VOCAB}. */
  readonly vocabulary?: string;
}

/** Extension fields of this project (`coldchain:` prefix, see {@link COLDCHAIN_VOCAB}). */
export type ColdChainExtensions = { readonly [K in `coldchain:${string}`]?: unknown };

export interface EpcisSource {
  readonly type: "possessing_party" | "owning_party" | "location";
  readonly source: string;
}

export interface EpcisDestination {
  readonly type: "possessing_party" | "owning_party" | "location";
  readonly destination: string;
}

export interface EpcisSensorReport extends ColdChainExtensions {
  readonly type: string;
  readonly exception?: "ALARM_CONDITION" | "ERROR_CONDITION";
  readonly deviceID?: string;
  readonly time?: string;
  readonly value?: number;
  readonly minValue?: number;
  readonly maxValue?: number;
  readonly meanValue?: number;
  readonly sDev?: number;
  readonly uom?: string;
}

export interface EpcisSensorElement {
  readonly sensorMetadata?: {
    readonly deviceID?: string;
    readonly startTime?: string;
    readonly endTime?: string;
    readonly bizRules?: string;
  };
  readonly sensorReport: readonly EpcisSensorReport[];
}

/** An EPCIS 2.0 ObjectEvent as this export writes it. */
export interface EpcisEvent extends ColdChainExtensions {
  readonly type: "ObjectEvent";
  readonly eventTime: string;
  readonly eventTimeZoneOffset: string;
  readonly eventID: string;
  readonly epcList: readonly string[];
  readonly action: "ADD" | "OBSERVE" | "DELETE";
  readonly bizStep: string;
  readonly disposition: string;
  readonly sourceList?: readonly EpcisSource[];
  readonly destinationList?: readonly EpcisDestination[];
  readonly sensorElementList?: readonly EpcisSensorElement[];
}

export interface EpcisDocument {
  readonly "@context": readonly (string | Record<string, string>)[];
  readonly type: "EPCISDocument";
  readonly schemaVersion: "2.0";
  readonly creationDate: string;
  readonly epcisBody: { readonly eventList: readonly EpcisEvent[] };
}

/** Breaches the device (not the temperature) caused: reported as ERROR_CONDITION. */
const ERROR_BREACHES: readonly BreachReasonName[] = ["DeviceFault", "MissingData"];

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** `did:pkh:eip155:<chainId>:<address>` (CAIP-10 account id as a DID). */
export function ethereumPartyUri(chainId: number, address: string): string {
  return `did:pkh:eip155:${chainId}:${address}`;
}

/** The default EPC of a shipment: `urn:coldchain:eip155:<chainId>:<coldChain>:shipment:<id>`. */
export function shipmentUri(chainId: number, coldChain: string, shipmentId: bigint): string {
  return `urn:coldchain:eip155:${chainId}:${coldChain.toLowerCase()}:shipment:${shipmentId}`;
}

/**
 * The EPCIS 2.0 document of a shipment from its history (events) and state (condition, MKT). Deterministic for
 * a given history, state and `creationDate`.
 */
export function toEpcisDocument(
  history: ShipmentHistory,
  state: ShipmentState,
  options: EpcisOptions = {},
): EpcisDocument {
  const chainId = history.chainId;
  const party = options.partyUri ?? ((address: string) => ethereumPartyUri(chainId, address));
  const device =
    options.deviceUri ??
    ((deviceId: bigint) => `urn:coldchain:eip155:${chainId}:${history.coldChain.toLowerCase()}:device:${deviceId}`);
  const epcList = [...(options.epcList ?? [shipmentUri(chainId, history.coldChain, history.shipmentId)])];
  const profileUri = `urn:coldchain:eip155:${chainId}:${history.coldChain.toLowerCase()}:profile:${history.profileId}`;
  const eventId = (ref: { transactionHash: string; logIndex: number }, suffix = ""): string =>
    `urn:coldchain:eip155:${chainId}:tx:${ref.transactionHash}:log:${ref.logIndex}${suffix}`;

  const base = (time: number, ref: { transactionHash: string; logIndex: number }) => ({
    type: "ObjectEvent" as const,
    eventTime: iso(time),
    eventTimeZoneOffset: "+00:00",
    eventID: eventId(ref),
    epcList,
  });

  /** Sensor elements of the readings observed in [from, to) (to undefined: open end). */
  const sensorElements = (from: number, to: number | undefined, periodIndex: number): EpcisSensorElement[] => {
    const elements: EpcisSensorElement[] = [];
    for (const d of history.devices) {
      const leg = history.readings.filter(
        (r) => r.deviceId === d.deviceId && r.observedAt >= from && (to === undefined || r.observedAt < to),
      );
      const breaches = history.breaches.filter((b) => b.periodIndex === periodIndex && b.deviceId === d.deviceId);
      if (leg.length === 0 && breaches.length === 0) continue;
      const reports: EpcisSensorReport[] = [];
      // Summarise what the contract evaluated: no adaptation-period or sensor-fault readings (TemperatureRules).
      const evaluated = leg.filter((r) => isEvaluatedReading(r, history.startedAt, history.profile.adaptationSeconds));
      if (evaluated.length > 0) reports.push(summaryReport(evaluated, device(d.deviceId)));
      for (const b of breaches) {
        const reading = history.readings.find((r) => r.deviceId === b.deviceId && r.sequence === b.sequence);
        reports.push({
          type: "gs1:Temperature",
          exception: ERROR_BREACHES.includes(b.reason) ? "ERROR_CONDITION" : "ALARM_CONDITION",
          deviceID: device(b.deviceId),
          time: iso(b.observedAt),
          ...(reading === undefined ? {} : { value: reading.tempC }),
          uom: "CEL",
          "coldchain:breachReason": b.reason,
          "coldchain:liableParty": party(b.custodian),
        });
      }
      const last = leg.at(-1)?.observedAt ?? from;
      elements.push({
        sensorMetadata: {
          deviceID: device(d.deviceId),
          startTime: iso(leg[0]?.observedAt ?? from),
          endTime: iso(last),
          bizRules: profileUri,
        },
        sensorReport: reports,
      });
    }
    return elements;
  };

  // Chain order: (time, block, log index) — several blocks can share a timestamp on some L2s.
  const order = new Map<EpcisEvent, [number, number, number]>();
  const events: EpcisEvent[] = [];
  const push = (event: EpcisEvent, at: number, ref: { blockNumber: number; logIndex: number }): void => {
    order.set(event, [at, ref.blockNumber, ref.logIndex]);
    events.push(event);
  };
  const handovers = [...history.custody].sort((a, b) => a.periodIndex - b.periodIndex);
  for (const e of history.lifecycle) {
    switch (e.kind) {
      case "created":
        push(
          {
            ...base(e.at, e),
            action: "ADD",
            bizStep: "commissioning",
            disposition: "active",
            sourceList: [{ type: "owning_party", source: party(history.owner) }],
          },
          e.at,
          e,
        );
        break;
      case "started":
        push(
          {
            ...base(e.at, e),
            action: "OBSERVE",
            bizStep: "shipping",
            disposition: "in_transit",
            sourceList: [
              { type: "possessing_party", source: party(history.shipper) },
              { type: "owning_party", source: party(history.owner) },
            ],
            destinationList: [
              { type: "possessing_party", destination: party(history.receiver) },
              { type: "owning_party", destination: party(history.owner) },
            ],
          },
          e.at,
          e,
        );
        break;
      case "released":
      case "rejected":
        push(
          {
            ...base(e.at, e),
            action: "OBSERVE",
            bizStep: "inspecting",
            disposition: e.kind === "released" ? "conformant" : "non_conformant",
            ...(e.kind === "rejected" && e.reasonCode !== undefined ? { "coldchain:reasonCode": e.reasonCode } : {}),
          },
          e.at,
          e,
        );
        break;
      case "cancelled":
        push({ ...base(e.at, e), action: "OBSERVE", bizStep: "void_shipping", disposition: "unknown" }, e.at, e);
        break;
      case "delivered":
      case "custodyOffered":
      case "custodyOfferCancelled":
        // Delivery is exported with its custody transfer below; offers change no custody.
        break;
    }
  }
  for (const h of handovers) {
    if (h.periodIndex === 0) continue;
    const previous = handovers.find((p) => p.periodIndex === h.periodIndex - 1);
    const legStart = previous?.since ?? history.createdAt;
    const delivery = h.to === history.receiver;
    const sensors = sensorElements(legStart, h.since, h.periodIndex - 1);
    push(
      {
        ...base(h.since, h),
        action: "OBSERVE",
        bizStep: delivery ? "receiving" : "transporting",
        disposition: delivery ? "in_progress" : "in_transit",
        sourceList: [{ type: "possessing_party", source: party(h.from) }],
        destinationList: [{ type: "possessing_party", destination: party(h.to) }],
        ...(sensors.length > 0 ? { sensorElementList: sensors } : {}),
        ...(delivery ? deliverySummary(state, device) : {}),
      },
      h.since,
      h,
    );
  }
  // Readings of the open leg (no transfer yet ended it): reported as of the latest reading.
  const lastHandover = handovers.at(-1);
  if (lastHandover !== undefined && lastHandover.to !== history.receiver) {
    const sensors = sensorElements(lastHandover.since, undefined, lastHandover.periodIndex);
    const lastReading = history.readings.at(-1);
    if (sensors.length > 0 && lastReading !== undefined) {
      push(
        {
          ...base(lastReading.observedAt, lastReading),
          eventID: eventId(lastReading, ":sensor_reporting"),
          action: "OBSERVE",
          bizStep: "sensor_reporting",
          disposition: "in_transit",
          sensorElementList: sensors,
        },
        lastReading.observedAt,
        lastReading,
      );
    }
  }
  const key = (e: EpcisEvent): [number, number, number] => order.get(e) ?? [0, 0, 0];
  events.sort((a, b) => {
    const [ta, ba, la] = key(a);
    const [tb, bb, lb] = key(b);
    return ta - tb || ba - bb || la - lb;
  });

  return {
    "@context": [EPCIS_CONTEXT, { coldchain: options.vocabulary ?? COLDCHAIN_VOCAB }],
    type: "EPCISDocument",
    schemaVersion: "2.0",
    creationDate: (options.creationDate ?? new Date()).toISOString(),
    epcisBody: { eventList: events },
  };
}

function summaryReport(leg: readonly HistoryReading[], deviceId: string): EpcisSensorReport {
  const temps = leg.map((r) => r.tempC);
  const mean = temps.reduce((a, b) => a + b, 0) / temps.length;
  const variance = temps.reduce((a, b) => a + (b - mean) ** 2, 0) / temps.length;
  return {
    type: "gs1:Temperature",
    deviceID: deviceId,
    minValue: Math.min(...temps),
    maxValue: Math.max(...temps),
    meanValue: round(mean),
    sDev: round(Math.sqrt(variance)),
    uom: "CEL",
  };
}

/**
 * The shipment's condition at delivery, as extension fields of the receiving event: the breaches, and each
 * logger's own MKT and cumulative excursion (`coldchain:loggers`), as the contract judges them. The pooled figures
 * (`coldchain:meanKineticTemperatureCelsius`, `coldchain:cumulativeExcursionSeconds`) are over all loggers'
 * readings: logger-time when several travel together.
 */
function deliverySummary(state: ShipmentState, device: (deviceId: bigint) => string): ColdChainExtensions {
  const c = state.condition;
  return {
    "coldchain:cumulativeExcursionSeconds": c.cumulativeExcursionSeconds,
    "coldchain:longestExcursionSeconds": c.longestExcursionSeconds,
    "coldchain:breaches": [...c.breaches],
    ...(c.firstBreach === undefined
      ? {}
      : { "coldchain:firstBreach": c.firstBreach, "coldchain:firstBreachTime": iso(c.firstBreachAt) }),
    ...(c.mktCentiC === undefined ? {} : { "coldchain:meanKineticTemperatureCelsius": c.mktCentiC / 100 }),
    "coldchain:loggers": state.devices.map((d) => ({
      deviceID: device(d.deviceId),
      cumulativeExcursionSeconds: d.evidence.cumulativeExcursionSeconds,
      ...(d.evidence.mktCentiC === undefined
        ? {}
        : { meanKineticTemperatureCelsius: d.evidence.mktCentiC / 100, mktSeconds: d.evidence.mktSeconds }),
    })),
  };
}
