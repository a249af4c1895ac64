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

/**
 * `IReadingsInbox.SkipReason`, by value (append only). Every reason is final for the skipped readings but three
 * (see {@link RETRYABLE_SKIP_REASONS}):
 * - `CustodyPending`: a custody offer of the shipment is pending and the readings were observed at or after its
 *   agreed boundary (`custodyOffer(shipmentId).handoverAt`); the same signed item is accepted once the offer is
 *   accepted, withdrawn or expires;
 * - `SequenceGap` (protocol v2): the reading's predecessor (`previousObservedAt`) is not recorded yet; the same
 *   signed item is accepted once it is (the device's `deviceTrack.lastObservedAt` reaches `previousObservedAt`);
 * - `FutureTimestamp`: the reading's observation time leads the block time by more than the tolerated skew (the
 *   logger's clock runs ahead); the same signed item is accepted once the block time catches up.
 *
 * Protocol v2 chains a device's readings by time: `DuplicateSequence` means the reading is recorded already (it is
 * at or before the device's latest recorded observation, `isRecorded`), `StaleSequence` that it does not continue
 * the recorded chain (its predecessor is older than the device's latest recorded reading: the device signed two
 * histories, or lost its state mid-shipment) and never will: lost evidence.
 */
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
  "CustodyPending",
  "SequenceGap",
] as const;
export type SkipReasonName = (typeof SKIP_REASONS)[number];

/**
 * The skip reasons that are evidence: `submitReadings` emits `ReadingSkipped` with one of these only after the
 * device's signature over exactly the skipped readings verified (ReadingsInbox `_admit`), so the device did sign
 * them. They say the device's signed readings were refused — not who relayed them: anyone holding a signed reading
 * can submit it again, which is how a genuine reading becomes a `DuplicateSequence` or `StaleSequence`.
 * `CustodyPending`, `SequenceGap` and `FutureTimestamp` are among them (decided after the signature check), and the
 * only ones that are not final ({@link RETRYABLE_SKIP_REASONS}).
 *
 * Every other reason is decided before, or without, any signature check, so anyone can make the contract emit it
 * for any device, with any sequence and count, by calling `submitReadings` with made-up items:
 * - `BadSignature`: the signature is what failed; a stranger's garbage signature gets it.
 * - `UnknownDevice`, `RevokedDevice`, `UnboundDevice`, `ShipmentNotActive`: decided from the item's device id
 *   (registry and device track, `_selectDevice` / `_deviceKey`) before its signature is looked at.
 * - `MalformedItem`: a window whose count, interval or sequence range is wrong is refused before its signature is
 *   checked.
 * Those are relay noise and never a shipment's evidence; `shipmentHistory` (sdk/history.ts) keeps them apart
 * (`ShipmentHistory.unauthenticatedSkips`).
 */
export const AUTHENTICATED_SKIP_REASONS: ReadonlySet<SkipReasonName> = new Set<SkipReasonName>([
  "StaleSequence",
  "DuplicateSequence",
  "FutureTimestamp",
  "OutsideShipmentWindow",
  "CustodyPending",
  "SequenceGap",
]);

/**
 * The skip reasons that are not final: the same signed item is accepted later.
 * - `CustodyPending`: the readings wait while a custody offer of the shipment is pending (ReadingsInbox
 *   `heldFrom`), and a relayer submits them again once the offer is accepted (they are then charged to the new
 *   custodian), withdrawn or expired.
 * - `SequenceGap`: the reading's predecessor is not recorded yet (another relayer holds it, or it is still on its
 *   way); a relayer submits it again once the device's chain reached its `previousObservedAt`.
 * - `FutureTimestamp`: observed further ahead of the block time than the tolerated skew; accepted once the block
 *   time catches up. Under protocol v2 a reading given up would block every later reading of its device (each
 *   names its predecessor), so it is never final.
 * A history lists such a skip as evidence that the reading existed and waited, not that it is missing: the reading
 * itself appears in `readings` once relayed again.
 */
export const RETRYABLE_SKIP_REASONS: ReadonlySet<SkipReasonName> = new Set<SkipReasonName>([
  "FutureTimestamp",
  "CustodyPending",
  "SequenceGap",
]);

/**
 * Whether a `ReadingSkipped` with this reason (name or enum value) may be accepted later, on a retry. A name this
 * SDK does not know (a newer contract's) is not retryable.
 */
export function isRetryableSkip(reason: string | bigint | number): boolean {
  const name = typeof reason === "string" ? reason : skipReasonName(reason);
  return (RETRYABLE_SKIP_REASONS as ReadonlySet<string>).has(name);
}

/**
 * Whether a `ReadingSkipped` with this reason (name or enum value) is backed by the device's signature; see
 * {@link AUTHENTICATED_SKIP_REASONS}. False for the reasons anyone can cause.
 */
export function isAuthenticatedSkip(reason: SkipReasonName | bigint | number): boolean {
  return AUTHENTICATED_SKIP_REASONS.has(typeof reason === "string" ? reason : skipReasonName(reason));
}

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
