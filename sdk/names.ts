/**
 * Names of the contracts' enums and bit flags (contracts/interfaces/IShipments.sol, IReadingsInbox.sol), for
 * display, JSON and EPCIS. Browser-safe.
 */

/** `IShipments.ShipmentStatus`, by value. */
export const SHIPMENT_STATUSES = [
  "None",
  "Created",
  "InTransit",
  "Delivered",
  "Released",
  "Rejected",
  "Cancelled",
] as const;
export type ShipmentStatusName = (typeof SHIPMENT_STATUSES)[number];

/** `IReadingsInbox.BreachReason`, by value. A breach flag word has bit `1 << reason` set per reason. */
export const BREACH_REASONS = [
  "None",
  "AbsoluteLimit",
  "SingleExcursion",
  "CumulativeExcursion",
  "Freeze",
  "MissingData",
  "DeviceFault",
  "MktExceeded",
] as const;
export type BreachReasonName = (typeof BREACH_REASONS)[number];

/** `IReadingsInbox.SkipReason`, by value. */
export const SKIP_REASONS = [
  "BadSignature",
  "UnknownDevice",
  "RevokedDevice",
  "UnboundDevice",
  "ShipmentNotActive",
  "StaleSequence",
  "DuplicateSequence",
  "FutureTimestamp",
  "OutsideShipmentWindow",
  "MalformedItem",
] as const;
export type SkipReasonName = (typeof SKIP_REASONS)[number];

/** `IDeviceRegistry.KeyType`, by value. */
export const DEVICE_KEY_TYPES = ["None", "Secp256k1", "P256"] as const;
export type DeviceKeyTypeName = (typeof DEVICE_KEY_TYPES)[number];

/** `Condition.statusFlags` bits. */
export const CONDITION_HAS_TEMPERATURE = 1;
export const CONDITION_EXCURSION_ACTIVE = 2;
export const CONDITION_FREEZE_ACTIVE = 4;
export const CONDITION_MKT_ABOVE_LIMIT = 8;

function nameOf<T extends string>(names: readonly T[], value: bigint | number, what: string): T {
  const name = names[Number(value)];
  if (name === undefined) throw new RangeError(`unknown ${what} ${String(value)}`);
  return name;
}

export function shipmentStatusName(value: bigint | number): ShipmentStatusName {
  return nameOf(SHIPMENT_STATUSES, value, "shipment status");
}

export function breachReasonName(value: bigint | number): BreachReasonName {
  return nameOf(BREACH_REASONS, value, "breach reason");
}

export function skipReasonName(value: bigint | number): SkipReasonName {
  return nameOf(SKIP_REASONS, value, "skip reason");
}

export function deviceKeyTypeName(value: bigint | number): DeviceKeyTypeName {
  return nameOf(DEVICE_KEY_TYPES, value, "device key type");
}

/** The breach reasons whose bit is set in a `breachFlags` word, in enum order (`None` never appears). */
export function breachReasonsOf(flags: bigint | number): BreachReasonName[] {
  const word = Number(flags);
  return BREACH_REASONS.filter((_, reason) => reason > 0 && (word & (1 << reason)) !== 0);
}
