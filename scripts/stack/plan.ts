/**
 * The story `npm start` plays: five parties, four shipments, six loggers, custody handovers on schedule and a
 * scenario per logger. Times are hours after the scenario starts; every expectation here is checked against
 * what the chain says at the end (scripts/stack/report.ts), so the plan doubles as the demo's test oracle.
 */
import type { DeviceKeyType } from "../../sdk/protocol/index.js";

/** The parties of the story and the node account each uses (accounts 0–2 administer the suite). */
export const PARTY_ACCOUNTS = {
  admin: 0,
  deviceManager: 1,
  qa: 2,
  shipper: 3,
  carrierA: 4,
  hub: 5,
  carrierB: 6,
  receiver: 7,
  owner: 8,
} as const;
export type PartyRole = keyof typeof PARTY_ACCOUNTS;
export type Custodian = "shipper" | "carrierA" | "hub" | "carrierB" | "receiver";

export const PARTY_NAMES: Record<PartyRole, string> = {
  admin: "Suite admin",
  deviceManager: "Device manager",
  qa: "QA",
  shipper: "Northwind Pharma (shipper)",
  carrierA: "Polar Freight (carrier)",
  hub: "Schiphol Cool Hub (hub)",
  carrierB: "Fjord Logistics (carrier)",
  receiver: "St. Mary's Hospital (receiver)",
  owner: "Northwind Pharma (owner)",
};

/** What happens to a logger's temperature or its uplink, over a span of hours. */
export type Condition =
  /** Compressor failure: the load warms above the band, then recovers in the span's last hour. */
  | { readonly kind: "heat"; readonly fromHour: number; readonly toHour: number }
  /** Thermostat stuck on: the load drops below the band (and freezes), then recovers in the last hour. */
  | { readonly kind: "freeze"; readonly fromHour: number; readonly toHour: number }
  /** Silent, and the readings of the span are lost (the logger's buffer overflowed): missing data. */
  | { readonly kind: "offline-gap"; readonly fromHour: number; readonly toHour: number }
  /** Offline, buffering; the backlog is uploaded when the span ends (after a handover, for instance). */
  | { readonly kind: "late-upload"; readonly fromHour: number; readonly toHour: number }
  /** Bad messages mixed into the stream: forged and altered signatures, replays, an unknown device. */
  | { readonly kind: "tamper"; readonly fromHour: number; readonly toHour: number };

export interface DevicePlan {
  readonly deviceId: bigint;
  readonly keyType: DeviceKeyType;
  /** How the logger uploads: one signature per reading, or one per window of readings. */
  readonly mode: "reading" | "window";
  readonly conditions: readonly Condition[];
}

export interface HandoverPlan {
  readonly atHour: number;
  readonly to: Custodian;
  /** Two transactions (offer, accept) or one carrying the next custodian's EIP-712 signature. */
  readonly method: "offer-accept" | "signed";
}

export interface ShipmentPlan {
  readonly title: string;
  /** A profile preset of the operator CLI (cli/profiles.ts). */
  readonly preset: "vaccine-2-8" | "crt-15-25" | "frozen-below-minus-15";
  readonly devices: readonly DevicePlan[];
  readonly handovers: readonly HandoverPlan[];
  /** Breaches the chain must report, each with the custodian liable for it. */
  readonly expectedBreaches: readonly { readonly reason: string; readonly custodian: Custodian }[];
}

/** Handover schedule shared by all shipments: shipper → carrier → hub → carrier → receiver. */
const ROUTE: readonly HandoverPlan[] = [
  { atHour: 2, to: "carrierA", method: "offer-accept" },
  { atHour: 12, to: "hub", method: "signed" },
  { atHour: 16, to: "carrierB", method: "offer-accept" },
  { atHour: 26, to: "receiver", method: "signed" },
];

/**
 * Hours of simulated time the scenario covers: up to the delivery (the last handover), when the receiver stops
 * the loggers. Readings observed later would fall outside the shipment's window; backlogs still arrive after it.
 */
export const SCENARIO_HOURS = 26;

export const SHIPMENTS: readonly ShipmentPlan[] = [
  {
    title: "COVID-19 vaccines, 2–8 °C",
    preset: "vaccine-2-8",
    devices: [
      {
        deviceId: 101n,
        keyType: "secp256k1",
        mode: "window",
        conditions: [{ kind: "heat", fromHour: 5, toHour: 7.5 }],
      },
      {
        deviceId: 102n,
        keyType: "p256",
        mode: "reading",
        conditions: [{ kind: "heat", fromHour: 5, toHour: 7.5 }],
      },
    ],
    handovers: ROUTE,
    expectedBreaches: [{ reason: "SingleExcursion", custodian: "carrierA" }],
  },
  {
    title: "Tablets at controlled room temperature, 15–25 °C",
    preset: "crt-15-25",
    devices: [
      {
        deviceId: 201n,
        keyType: "secp256k1",
        mode: "reading",
        conditions: [{ kind: "late-upload", fromHour: 10, toHour: 14 }],
      },
      { deviceId: 202n, keyType: "p256", mode: "window", conditions: [{ kind: "tamper", fromHour: 6, toHour: 10 }] },
    ],
    handovers: ROUTE,
    expectedBreaches: [],
  },
  {
    title: "Frozen seafood, below −15 °C",
    preset: "frozen-below-minus-15",
    devices: [
      {
        deviceId: 301n,
        keyType: "secp256k1",
        mode: "window",
        conditions: [{ kind: "offline-gap", fromHour: 18, toHour: 21 }],
      },
    ],
    handovers: ROUTE,
    expectedBreaches: [{ reason: "MissingData", custodian: "carrierB" }],
  },
  {
    title: "Insulin, 2–8 °C",
    preset: "vaccine-2-8",
    devices: [
      {
        deviceId: 401n,
        keyType: "secp256k1",
        mode: "reading",
        conditions: [{ kind: "freeze", fromHour: 13, toHour: 16 }],
      },
    ],
    handovers: ROUTE,
    // The stuck thermostat takes the load to about −6 °C: below the −5 °C absolute limit too.
    expectedBreaches: [
      { reason: "SingleExcursion", custodian: "hub" },
      { reason: "AbsoluteLimit", custodian: "hub" },
      { reason: "Freeze", custodian: "hub" },
    ],
  },
];

/** A logger the plan has upload a backlog late (a `late-upload` condition). */
export interface LateUpload {
  readonly shipmentIndex: number;
  readonly deviceId: bigint;
  /** The span it is offline for, in hours; it uploads the backlog at `toHour`. */
  readonly fromHour: number;
  readonly toHour: number;
}

/** The first logger of `plan` that uploads a backlog late, if any: the rogue relayer's source of readings. */
export function firstLateUpload(plan: readonly ShipmentPlan[]): LateUpload | undefined {
  for (const [shipmentIndex, shipment] of plan.entries()) {
    for (const device of shipment.devices) {
      const c = device.conditions.find((x) => x.kind === "late-upload");
      if (c !== undefined) return { shipmentIndex, deviceId: device.deviceId, fromHour: c.fromHour, toHour: c.toHour };
    }
  }
  return undefined;
}
