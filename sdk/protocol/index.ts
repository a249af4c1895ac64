/**
 * ColdChain protocol: EIP-712 hashing, device signatures, the batch envelope, event decoding and
 * mean kinetic temperature. Browser-safe (no Node built-ins). Specification: docs/protocol.md.
 */
export * from "./batch.js";
export * from "./constants.js";
export * from "./eip712.js";
export * from "./errors.js";
export * from "./events.js";
export * from "./handover.js";
export * from "./mkt.js";
export * from "./mqtt.js";
export * from "./samples.js";
export * from "./signing.js";
export * from "./test-vectors.js";
export * from "./types.js";
export * from "./validate.js";
