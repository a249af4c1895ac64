/**
 * Protocol constants shared by devices, the oracle, dApps and the contracts (docs/protocol.md).
 * Changing any of these is a protocol change: the Solidity side hard-codes the same values.
 */

// ---------------------------------------------------------------------------------------------
// EIP-712
// ---------------------------------------------------------------------------------------------

/** EIP-712 domain name. */
export const DOMAIN_NAME = "ColdChain";
/** EIP-712 domain version: "2" since readings name their predecessor (`previousObservedAt`). */
export const DOMAIN_VERSION = "2";

/** The standard EIP-712 domain type used by ColdChain (all four fields, no salt). */
export const EIP712_DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)";
/**
 * A single device reading. `previousObservedAt` is the observation time of the reading the device produced just
 * before this one (0 for its first): it chains the device's readings (docs/protocol.md §1).
 */
export const READING_TYPE =
  "Reading(uint64 deviceId,uint32 sequence,uint40 observedAt,int16 tempCentiC,uint8 flags,uint40 previousObservedAt)";
/**
 * A run of equally spaced readings signed once; `samples` is count x 3 bytes (int16 BE temperature, uint8 flags);
 * `previousObservedAt` names the reading the device produced just before samples[0].
 */
export const READING_WINDOW_TYPE =
  "ReadingWindow(uint64 deviceId,uint32 firstSequence,uint40 firstObservedAt,uint32 intervalSeconds,bytes samples,uint40 previousObservedAt)";
/** Signed by the next custodian's Ethereum account to accept custody in one transaction. */
export const CUSTODY_ACCEPTANCE_TYPE =
  "CustodyAcceptance(uint256 shipmentId,address custodian,uint256 nonce,uint256 deadline)";

// ---------------------------------------------------------------------------------------------
// Reading flags
// ---------------------------------------------------------------------------------------------

/** The sensor reported a fault: `tempCentiC` is not a valid temperature. */
export const FLAG_SENSOR_FAULT = 0x01;
/** The device battery is low. */
export const FLAG_LOW_BATTERY = 0x02;
/** The device detected tampering (case opened, probe removed, ...). */
export const FLAG_TAMPER = 0x04;
/** All flag bits with a meaning; the other bits are reserved and should be zero. */
export const FLAGS_KNOWN_MASK = FLAG_SENSOR_FAULT | FLAG_LOW_BATTERY | FLAG_TAMPER;

// ---------------------------------------------------------------------------------------------
// Batch envelope (`submitReadings(bytes batch)`), all integers big-endian
// ---------------------------------------------------------------------------------------------

/** The envelope version: first byte of every batch (2 since readings carry `previousObservedAt`; 1 is refused). */
export const BATCH_VERSION = 0x02;
/** Item kind: `count` single readings of one device, each with its own signature. */
export const ITEM_KIND_READINGS = 0x01;
/** Item kind: one signed window of equally spaced readings. */
export const ITEM_KIND_WINDOW = 0x02;

/** Bytes of a signature in the batch: EIP-2098 compact (secp256k1) or r || s (P-256). */
export const SIGNATURE_BYTES = 64;
/** kind:u8 deviceId:u64 count:u16. */
export const READINGS_HEADER_BYTES = 11;
/**
 * sequence:u32 observedAt:u40 tempCentiC:i16 flags:u8 previousObservedAt:u40 signature:64
 * = 4 + 5 + 2 + 1 + 5 + 64 = 81 bytes (sequence 0..3, observedAt 4..8, tempCentiC 9..10, flags 11,
 * previousObservedAt 12..16, signature 17..80).
 */
export const READING_BYTES = 81;
/**
 * kind:u8 deviceId:u64 firstSequence:u32 firstObservedAt:u40 intervalSeconds:u32 count:u16 previousObservedAt:u40
 * = 1 + 8 + 4 + 5 + 4 + 2 + 5 = 29 bytes (kind 0, deviceId 1..8, firstSequence 9..12, firstObservedAt 13..17,
 * intervalSeconds 18..21, count 22..23, previousObservedAt 24..28).
 */
export const WINDOW_HEADER_BYTES = 29;
/** tempCentiC:i16 flags:u8. */
export const SAMPLE_BYTES = 3;
/**
 * A reading in ReadingsRecorded: sequence:u32 observedAt:u40 tempCentiC:i16 flags:u8 (its first 12 bytes in the
 * batch; previousObservedAt is not in the event).
 */
export const READING_RECORD_BYTES = 12;
/** Most readings in one READINGS item (count is a u16); the encoder splits longer runs. */
export const READINGS_MAX_COUNT = 0xffff;
/** Fewest samples in a window. */
export const WINDOW_MIN_SAMPLES = 1;
/** Most samples in a window. */
export const WINDOW_MAX_SAMPLES = 256;

// ---------------------------------------------------------------------------------------------
// Integer bounds of the Solidity types
// ---------------------------------------------------------------------------------------------

export const UINT8_MAX = 0xff;
export const UINT16_MAX = 0xffff;
export const UINT32_MAX = 0xffff_ffff;
/** 2^40 - 1; still a safe JavaScript integer. */
export const UINT40_MAX = 0xff_ffff_ffff;
export const UINT64_MAX = (1n << 64n) - 1n;
export const UINT256_MAX = (1n << 256n) - 1n;
export const INT16_MIN = -0x8000;
export const INT16_MAX = 0x7fff;
