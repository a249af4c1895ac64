/**
 * Value types of the protocol. Integers that fit a JavaScript number exactly (up to uint40) are
 * `number`; uint64 and wider are `bigint`. Byte strings are 0x-prefixed lowercase hex.
 */

/** A single temperature reading as a device signs it (EIP-712 `Reading`). */
export interface Reading {
  /** uint64, nonzero: the device's registry id. */
  readonly deviceId: bigint;
  /** uint32: the device's counter, +1 per reading (carried and signed; the chain orders readings by time). */
  readonly sequence: number;
  /** uint40: unix seconds at which the sensor was read. */
  readonly observedAt: number;
  /** int16: temperature in hundredths of a degree Celsius (512 = 5.12 °C). */
  readonly tempCentiC: number;
  /** uint8: FLAG_SENSOR_FAULT | FLAG_LOW_BATTERY | FLAG_TAMPER; other bits reserved. */
  readonly flags: number;
  /**
   * uint40: observedAt of the reading this device produced just before this one (a single reading or a window
   * sample, relayed or not); 0 for the device's very first reading (or after it lost its stored state).
   * Always < observedAt. The contract accepts a reading only if it continues the device's recorded chain.
   */
  readonly previousObservedAt: number;
}

/**
 * A reading as the ReadingsRecorded / WindowRecorded events carry it: every signed field but
 * `previousObservedAt`, which the events leave out (in a shipment, a recorded reading's predecessor is the
 * device's previous recorded reading, but for the first one, whose predecessor is before the start).
 */
export type RecordedReading = Omit<Reading, "previousObservedAt">;

/** One sample of a window: 3 bytes on the wire (int16 big-endian, uint8). */
export interface Sample {
  /** int16 °C x 100. */
  readonly tempCentiC: number;
  /** uint8 reading flags. */
  readonly flags: number;
}

/**
 * A run of equally spaced readings signed once (EIP-712 `ReadingWindow`). Reading i has sequence
 * `firstSequence + i`, observation time `firstObservedAt + i * intervalSeconds` and predecessor the reading
 * before it (samples[0]: `previousObservedAt`).
 */
export interface ReadingWindow {
  /** uint64, nonzero. */
  readonly deviceId: bigint;
  /** uint32: sequence of samples[0]. */
  readonly firstSequence: number;
  /** uint40: unix seconds of samples[0]. */
  readonly firstObservedAt: number;
  /** uint32: seconds between consecutive samples. */
  readonly intervalSeconds: number;
  /** 1..256 samples, oldest first. */
  readonly samples: readonly Sample[];
  /**
   * uint40: observedAt of the reading the device produced just before samples[0] (0 for the device's very first
   * reading). Always < firstObservedAt.
   */
  readonly previousObservedAt: number;
}

/** The next custodian's acceptance of custody (EIP-712 `CustodyAcceptance`). */
export interface CustodyAcceptance {
  /** uint256 in the signed struct (the contract's shipment ids are uint64). */
  readonly shipmentId: bigint;
  /** Address that takes custody and signs this acceptance. */
  readonly custodian: string;
  /** The shipment's current `handoverNonce`. */
  readonly nonce: bigint;
  /** Unix seconds after which the acceptance is void. */
  readonly deadline: bigint;
}

/** The variable part of the EIP-712 domain; name "ColdChain" and version "2" are fixed. */
export interface ColdChainDomain {
  readonly chainId: bigint;
  /** Address of the ColdChain core contract. */
  readonly verifyingContract: string;
}

/** A reading with its device signature (64 bytes, hex). */
export interface SignedReading {
  readonly kind: "reading";
  readonly reading: Reading;
  readonly signature: string;
}

/** A window with its device signature (64 bytes, hex). */
export interface SignedWindow {
  readonly kind: "window";
  readonly window: ReadingWindow;
  readonly signature: string;
}

/** What the batch encoder takes. */
export type SignedItem = SignedReading | SignedWindow;

/** Curves a device key may use. */
export type DeviceKeyType = "secp256k1" | "p256";

/** A device's private key (devices, the simulator and tests sign with it). */
export interface DevicePrivateKey {
  readonly keyType: DeviceKeyType;
  /** 32 bytes, hex. */
  readonly privateKey: string;
}

/** What the registry stores to verify a device: an address (secp256k1) or a public key (P-256). */
export type DeviceVerificationKey =
  | { readonly keyType: "secp256k1"; readonly address: string }
  | { readonly keyType: "p256"; readonly x: string; readonly y: string };
