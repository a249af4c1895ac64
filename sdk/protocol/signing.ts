/**
 * Device signatures over EIP-712 digests.
 *
 * - secp256k1: ECDSA over the digest, low-s, serialised as the 64-byte EIP-2098 compact form
 *   `r || yParityAndS` (yParityAndS = yParity << 255 | s). The contract recovers the signer address.
 * - P-256 (secp256r1): ECDSA with the 32-byte digest used directly as the message hash (no extra
 *   SHA-256), serialised as `r || s` (32 + 32 bytes, big-endian) with s <= n/2. The contract
 *   verifies against the registered public key (x, y) with the P256VERIFY precompile.
 *
 * Both signers are RFC 6979 deterministic (noble-curves: HMAC-DRBG with HMAC-SHA256 on both curves, the 32-byte
 * digest itself as the message hash h1, no extra entropy): the same key and digest give the same signature.
 * Verification does not depend on how the nonce was chosen: random or hedged nonces verify as well.
 */
import { p256 } from "@noble/curves/nist.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { computeAddress, getAddress, getBytes, hexlify, recoverAddress, toBeHex, zeroPadValue } from "ethers";
import type { BytesLike } from "ethers";

import { SIGNATURE_BYTES } from "./constants.js";
import { readingDigest, readingWindowDigest } from "./eip712.js";
import { ProtocolError } from "./errors.js";
import type {
  ColdChainDomain,
  DevicePrivateKey,
  DeviceVerificationKey,
  Reading,
  ReadingWindow,
  SignedItem,
  SignedReading,
  SignedWindow,
} from "./types.js";

/** Order of the secp256k1 group. */
export const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
/** Order of the P-256 group. */
export const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
/** Largest low-s value on P-256 (floor(n / 2)). */
export const P256_HALF_N = P256_N >> 1n;
const SECP256K1_HALF_N = SECP256K1_N >> 1n;
const S_MASK = (1n << 255n) - 1n;

/** A P-256 public key as two 32-byte big-endian coordinates (hex), as the registry stores it. */
export interface P256PublicKey {
  readonly x: string;
  readonly y: string;
}

// ---------------------------------------------------------------------------------------------
// secp256k1
// ---------------------------------------------------------------------------------------------

/** The Ethereum address of a secp256k1 private key (what `registerSecp256k1Device` takes). */
export function secp256k1Address(privateKey: BytesLike): string {
  const key = privateKeyBytes(privateKey, "secp256k1");
  return computeAddress(hexlify(secp256k1.getPublicKey(key, false)));
}

/** Signs a 32-byte digest: low-s, 64-byte EIP-2098 compact `r || yParityAndS` (hex). */
export function signDigestSecp256k1(digest: BytesLike, privateKey: BytesLike): string {
  const sig = secp256k1.sign(digestBytes(digest), privateKeyBytes(privateKey, "secp256k1"), {
    prehash: false,
    lowS: true,
  });
  // recovery 2 or 3 (R.x >= n) has probability ~2^-128 and has no EIP-2098 / ecrecover encoding.
  if (sig.recovery !== 0 && sig.recovery !== 1) {
    throw new ProtocolError("SIGNATURE_INVALID", "secp256k1 signature has an unencodable recovery id; sign again");
  }
  const yParityAndS = (BigInt(sig.recovery) << 255n) | sig.s;
  return hexlify(new Uint8Array([...getBytes(toBeHex(sig.r, 32)), ...getBytes(toBeHex(yParityAndS, 32))]));
}

/**
 * The EIP-2098 compact signature from a bare (r, s) pair, as a secure element returns it (no recovery id): s is
 * normalised to the lower half (n - s when s > n/2, which flips the parity), then yParity is the one of 0 and 1
 * under which ecrecover gives `address` (the device's own). Firmware does the same with its public key.
 * Throws SIGNATURE_INVALID when r or s is out of range or neither parity recovers `address`.
 */
export function secp256k1CompactFromRS(digest: BytesLike, r: bigint, s: bigint, address: string): string {
  if (r <= 0n || r >= SECP256K1_N || s <= 0n || s >= SECP256K1_N) {
    throw new ProtocolError("SIGNATURE_INVALID", "secp256k1 r and s must be in [1, n - 1]");
  }
  const low = s > SECP256K1_HALF_N ? SECP256K1_N - s : s;
  for (const yParity of [0n, 1n]) {
    const compact = hexlify(
      new Uint8Array([...getBytes(toBeHex(r, 32)), ...getBytes(toBeHex((yParity << 255n) | low, 32))]),
    );
    if (verifySecp256k1(digest, compact, address)) return compact;
  }
  throw new ProtocolError("SIGNATURE_INVALID", `(r, s) is not a signature of the digest by ${address}`);
}

/** Splits a 64-byte EIP-2098 signature. Throws SIGNATURE_INVALID on a wrong length. */
export function splitCompactSignature(signature: BytesLike): { r: bigint; s: bigint; yParity: 0 | 1 } {
  const bytes = signatureBytes(signature);
  const r = BigInt(hexlify(bytes.subarray(0, 32)));
  const vs = BigInt(hexlify(bytes.subarray(32, 64)));
  return { r, s: vs & S_MASK, yParity: vs >> 255n === 1n ? 1 : 0 };
}

/**
 * Recovers the signer address of a compact secp256k1 signature over `digest`, or returns
 * undefined when the signature is not canonical (r or s out of range, s > n/2) or recovers nothing.
 */
export function recoverSecp256k1Signer(digest: BytesLike, signature: BytesLike): string | undefined {
  const hash = digestBytes(digest);
  const { r, s, yParity } = splitCompactSignature(signature);
  if (r === 0n || r >= SECP256K1_N || s === 0n || s > SECP256K1_HALF_N) return undefined;
  try {
    return recoverAddress(hash, { r: toBeHex(r, 32), s: toBeHex(s, 32), v: 27 + yParity });
  } catch {
    return undefined;
  }
}

/** Whether `signature` is a canonical compact secp256k1 signature of `digest` by `address`. */
export function verifySecp256k1(digest: BytesLike, signature: BytesLike, address: string): boolean {
  let expected: string;
  try {
    expected = getAddress(address);
  } catch (cause) {
    throw new ProtocolError("KEY_INVALID", `the device address must be a valid address, got ${address}`, { cause });
  }
  const signer = recoverSecp256k1Signer(digest, signature);
  return signer !== undefined && signer === expected;
}

// ---------------------------------------------------------------------------------------------
// P-256
// ---------------------------------------------------------------------------------------------

/** The public key (x, y) of a P-256 private key, as `registerP256Device` takes it. */
export function p256PublicKey(privateKey: BytesLike): P256PublicKey {
  const pub = p256.getPublicKey(privateKeyBytes(privateKey, "p256"), false); // 0x04 || x || y
  return { x: hexlify(pub.subarray(1, 33)), y: hexlify(pub.subarray(33, 65)) };
}

/** Signs a 32-byte digest as the message hash (no SHA-256 on top): `r || s`, s <= n/2 (hex). */
export function signDigestP256(digest: BytesLike, privateKey: BytesLike): string {
  const sig = p256.sign(digestBytes(digest), privateKeyBytes(privateKey, "p256"), { prehash: false, lowS: true });
  return hexlify(sig.toBytes("compact"));
}

/**
 * Returns the low-s form of a P-256 `r || s` signature: s is replaced by n - s when s > n/2. Both
 * forms verify under plain ECDSA; the protocol (and the contract) accepts only the low-s one.
 * Secure elements usually emit either form, so firmware or the oracle normalises before submitting.
 * Throws SIGNATURE_INVALID when r or s is outside [1, n - 1].
 */
export function normaliseP256S(signature: BytesLike): string {
  const { r, s } = splitP256Signature(signature);
  const low = s > P256_HALF_N ? P256_N - s : s;
  return hexlify(new Uint8Array([...getBytes(toBeHex(r, 32)), ...getBytes(toBeHex(low, 32))]));
}

/** Whether a P-256 `r || s` signature has s > n/2 (the malleable twin the protocol rejects). */
export function isP256HighS(signature: BytesLike): boolean {
  return splitP256Signature(signature).s > P256_HALF_N;
}

/** Splits a P-256 `r || s` signature. Throws SIGNATURE_INVALID on a wrong length or r, s outside [1, n - 1]. */
export function splitP256Signature(signature: BytesLike): { r: bigint; s: bigint } {
  const bytes = signatureBytes(signature);
  const r = BigInt(hexlify(bytes.subarray(0, 32)));
  const s = BigInt(hexlify(bytes.subarray(32, 64)));
  if (r === 0n || r >= P256_N || s === 0n || s >= P256_N) {
    throw new ProtocolError("SIGNATURE_INVALID", "P-256 signature r and s must be in [1, n - 1]");
  }
  return { r, s };
}

/**
 * Whether `signature` (`r || s`, low-s) is a valid P-256 signature of `digest` (used as the
 * message hash) under the public key (x, y). High-s signatures return false, as on-chain.
 */
export function verifyP256(digest: BytesLike, signature: BytesLike, publicKey: P256PublicKey): boolean {
  const hash = digestBytes(digest);
  const sig = signatureBytes(signature);
  const pub = new Uint8Array([0x04, ...coordinateBytes(publicKey.x, "x"), ...coordinateBytes(publicKey.y, "y")]);
  return p256.verify(sig, hash, pub, { prehash: false, lowS: true, format: "compact" });
}

// ---------------------------------------------------------------------------------------------
// Curve-agnostic helpers
// ---------------------------------------------------------------------------------------------

/** What the registry stores to verify signatures of `key`. */
export function verificationKeyOf(key: DevicePrivateKey): DeviceVerificationKey {
  switch (key.keyType) {
    case "secp256k1":
      return { keyType: "secp256k1", address: secp256k1Address(key.privateKey) };
    case "p256": {
      const { x, y } = p256PublicKey(key.privateKey);
      return { keyType: "p256", x, y };
    }
  }
}

/** Signs a digest with a device key, in the key's wire format (64 bytes hex). */
export function signDigest(key: DevicePrivateKey, digest: BytesLike): string {
  switch (key.keyType) {
    case "secp256k1":
      return signDigestSecp256k1(digest, key.privateKey);
    case "p256":
      return signDigestP256(digest, key.privateKey);
  }
}

/** Verifies a device signature over a digest against the registry's verification key. */
export function verifyDigest(key: DeviceVerificationKey, digest: BytesLike, signature: BytesLike): boolean {
  switch (key.keyType) {
    case "secp256k1":
      return verifySecp256k1(digest, signature, key.address);
    case "p256":
      return verifyP256(digest, signature, key);
  }
}

/** Signs one reading under the domain. Throws READING_INVALID on an out-of-range field. */
export function signReading(domain: ColdChainDomain, reading: Reading, key: DevicePrivateKey): SignedReading {
  return { kind: "reading", reading, signature: signDigest(key, readingDigest(domain, reading)) };
}

/** Signs a window under the domain. Throws WINDOW_INVALID on an out-of-range field. */
export function signWindow(domain: ColdChainDomain, window: ReadingWindow, key: DevicePrivateKey): SignedWindow {
  return { kind: "window", window, signature: signDigest(key, readingWindowDigest(domain, window)) };
}

/** Whether a signed reading or window verifies under the device's verification key. */
export function verifySignedItem(domain: ColdChainDomain, item: SignedItem, key: DeviceVerificationKey): boolean {
  const digest =
    item.kind === "reading" ? readingDigest(domain, item.reading) : readingWindowDigest(domain, item.window);
  return verifyDigest(key, digest, item.signature);
}

// ---------------------------------------------------------------------------------------------
// Byte checks
// ---------------------------------------------------------------------------------------------

function digestBytes(digest: BytesLike): Uint8Array {
  const bytes = getBytes(digest);
  if (bytes.length !== 32) {
    throw new ProtocolError("SIGNATURE_INVALID", `a digest is 32 bytes, got ${bytes.length}`);
  }
  return bytes;
}

/** The 64 bytes of a device signature; throws SIGNATURE_INVALID on anything else. */
export function signatureBytes(signature: BytesLike): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = getBytes(signature);
  } catch (cause) {
    throw new ProtocolError("SIGNATURE_INVALID", "a signature must be hex or bytes", { cause });
  }
  if (bytes.length !== SIGNATURE_BYTES) {
    throw new ProtocolError(
      "SIGNATURE_INVALID",
      `a device signature is ${SIGNATURE_BYTES} bytes (EIP-2098 compact or P-256 r || s), got ${bytes.length}`,
    );
  }
  return bytes;
}

function privateKeyBytes(privateKey: BytesLike, curve: "secp256k1" | "p256"): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = getBytes(privateKey);
  } catch (cause) {
    throw new ProtocolError("KEY_INVALID", `the ${curve} private key must be 32 bytes of hex`, { cause });
  }
  const valid =
    bytes.length === 32 &&
    (curve === "secp256k1" ? secp256k1.utils.isValidSecretKey(bytes) : p256.utils.isValidSecretKey(bytes));
  if (!valid) {
    throw new ProtocolError("KEY_INVALID", `the ${curve} private key must be 32 bytes in [1, n - 1]`);
  }
  return bytes;
}

function coordinateBytes(value: string, name: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = getBytes(zeroPadValue(value, 32));
  } catch (cause) {
    throw new ProtocolError("KEY_INVALID", `P-256 public key ${name} must be at most 32 bytes of hex`, { cause });
  }
  return bytes;
}
