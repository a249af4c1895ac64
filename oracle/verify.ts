/**
 * Signature verification for intake, with the same verdict as `verifySignedItem` for every input, several
 * times faster:
 * - digest: EIP-712 by hand into one reused buffer (type hashes and the domain separator computed once, then
 *   two keccaks per reading, three per window) instead of ABI-encoding per message;
 * - secp256k1: public-key recovery in WebAssembly (tiny-secp256k1, libsecp256k1) with the signature's yParity,
 *   then the address of the recovered key compared with the device's: exactly the contract's ecrecover check
 *   (a flipped yParity recovers another key and fails). Plain ECDSA verify would be ~1.5x faster but ignores
 *   yParity, and a flipped-parity copy of a valid message accepted here would be skipped on-chain and take
 *   the genuine message's (device, sequence): not the same verdict.
 * - P-256: ECDSA verify (low s; the intake normalises high s before) as R = u1·G + u2·Q, x(R) mod n = r, with
 *   the scalar multiplications in OpenSSL (node:crypto ECDH, constant-time assembly for P-256): u1·G in full,
 *   x(u2·Q) and x((u2 + 1)·Q) — the second fixes the sign of u2·Q's y — then the addition in a few field
 *   multiplications here. Rare corner cases (u1 = 0, u2·Q = ±Q or ±u1·G) go to @noble/curves.
 * Measured on one thread of this machine (checks per second, one device's readings, load average ~1; the
 * figure `npm run bench:oracle` writes as signatureChecksPerSecond): secp256k1 ~2,700 (WebAssembly verify
 * alone ~4,400 but parity-blind, see above; @noble/curves with precomputed per-device tables ~1,500, uncached
 * ~650; node:crypto's generic secp256k1 ECDH ~1,000), P-256 ~3,800 (@noble/curves with tables ~1,060,
 * uncached ~240–450). Under load average 5 from other work: ~1,500 and ~2,100. No per-device tables: the only
 * per-device state is the parsed key (a small LRU of `cacheSize` entries), so a fleet larger than the cache
 * costs the same.
 */
import { createECDH } from "node:crypto";
import type { ECDH } from "node:crypto";

import { p256 } from "@noble/curves/nist.js";
import { getAddress, keccak256 } from "ethers";
import * as secp from "tiny-secp256k1";

import {
  P256_HALF_N,
  P256_N,
  READING_TYPEHASH,
  READING_WINDOW_TYPEHASH,
  SECP256K1_N,
  assertReading,
  assertWindow,
  domainSeparator,
  encodeSamples,
  signatureBytes,
} from "../sdk/protocol/index.js";
import type { ColdChainDomain, DeviceVerificationKey, SignedItem } from "../sdk/protocol/index.js";

const SECP256K1_HALF_N = SECP256K1_N >> 1n;
/** P-256 field prime and curve constant b (a = -3). */
const P = p256.Point.Fp.ORDER;
const B = p256.Point.CURVE().b;

/** Default number of device keys kept parsed. */
export const DEFAULT_KEY_CACHE_SIZE = 128;

/** A P-256 device key, parsed once: the SEC1 bytes for OpenSSL and the affine coordinates. */
interface P256Key {
  readonly sec1: Buffer;
  readonly x: bigint;
  readonly y: bigint;
  /** 1 / (2y) mod p, for deriving the y of u2·Q. */
  readonly invTwoY: bigint;
}

export class FastVerifier {
  private readonly addresses = new Map<string, Uint8Array>();
  private readonly p256Keys = new Map<string, P256Key>();
  private readonly digests: ItemDigests;
  private readonly ecdh: ECDH = createECDH("prime256v1");

  constructor(
    domain: ColdChainDomain,
    private readonly cacheSize: number = DEFAULT_KEY_CACHE_SIZE,
  ) {
    this.digests = new ItemDigests(domain);
  }

  /** Whether the item's signature is valid under the device key (same verdict as `verifySignedItem`). */
  verify(item: SignedItem, key: DeviceVerificationKey): boolean {
    // Throws on out-of-range fields, as verifySignedItem does (decoded MQTT payloads are in range).
    return this.verifyDigest(this.digests.of(item), item.signature, key);
  }

  /** Whether `signature` over the 32-byte `digest` is valid under the key (the sdk's `verifyDigest` verdict). */
  verifyDigest(digest: Uint8Array, signatureHex: string, key: DeviceVerificationKey): boolean {
    if (digest.length !== 32) return false;
    let signature: Uint8Array;
    try {
      signature = signatureBytes(signatureHex);
    } catch {
      return false; // not 64 bytes of hex (verifySignedItem throws): not valid
    }
    try {
      return key.keyType === "secp256k1"
        ? this.verifyK1(digest, signature, key.address)
        : this.verifyP256(digest, signature, key.x, key.y);
    } catch {
      return false; // malformed signature or key: not valid
    }
  }

  /** Devices whose parsed key is kept (for tests and metrics). */
  get cachedKeys(): number {
    return this.addresses.size + this.p256Keys.size;
  }

  private verifyK1(digest: Uint8Array, signature: Uint8Array, address: string): boolean {
    const r = bigOf(signature, 0);
    const vs = bigOf(signature, 32);
    const s = vs & ((1n << 255n) - 1n);
    if (r === 0n || r >= SECP256K1_N || s === 0n || s > SECP256K1_HALF_N) return false;
    const expected = this.addressOf(address);
    const rs = new Uint8Array(64);
    rs.set(signature.subarray(0, 32), 0);
    rs.set(signature.subarray(32, 64), 32);
    rs[32] = (rs[32] ?? 0) & 0x7f; // s without the yParity bit
    const Q = secp.recover(digest, rs, vs >> 255n === 1n ? 1 : 0, false);
    if (Q === null) return false;
    const hash = hexBytes(keccak256(Q.subarray(1)));
    for (let i = 0; i < 20; i++) if (hash[12 + i] !== expected[i]) return false;
    return true;
  }

  private verifyP256(digest: Uint8Array, signature: Uint8Array, x: string, y: string): boolean {
    const r = bigOf(signature, 0);
    const s = bigOf(signature, 32);
    if (r === 0n || r >= P256_N || s === 0n || s > P256_HALF_N) return false;
    const Q = this.p256Key(x, y);
    const e = bigOf(digest, 0) % P256_N;
    const w = p256.Point.Fn.inv(s);
    const u1 = (e * w) % P256_N;
    const u2 = (r * w) % P256_N;
    const slow = (): boolean => slowP256(digest, signature, Q);
    if (u1 === 0n || u2 + 1n === P256_N) return slow();
    // A = u1·G in full; x of B = u2·Q and of B + Q = (u2 + 1)·Q.
    this.ecdh.setPrivateKey(scalarBytes(u1));
    const A = this.ecdh.getPublicKey();
    const xA = bigOf(A, 1);
    const yA = bigOf(A, 33);
    this.ecdh.setPrivateKey(scalarBytes(u2));
    const xB = bigOf(this.ecdh.computeSecret(Q.sec1), 0);
    this.ecdh.setPrivateKey(scalarBytes(u2 + 1n));
    const xBQ = bigOf(this.ecdh.computeSecret(Q.sec1), 0);
    if (xB === Q.x || xB === xA) return slow(); // B = ±Q or B = ±A: the addition formulas below do not apply
    // x(B + Q) = λ² - xB - xQ with λ = (yB - yQ) / (xB - xQ), so (yB - yQ)² = K, and yB² = xB³ - 3·xB + b:
    // yB = (yB² + yQ² - K) / (2·yQ). Checked on the curve (it is, unless OpenSSL and this disagree).
    const dQ = mod(xB - Q.x);
    const K = mod(mod(xBQ + xB + Q.x) * mod(dQ * dQ));
    const yB2 = mod(mod(mod(xB * xB) * xB) - 3n * xB + B);
    const yB = mod(mod(yB2 + mod(Q.y * Q.y) - K) * Q.invTwoY);
    if (mod(yB * yB) !== yB2) return slow();
    // R = A + B: x(R) = λ² - xA - xB with λ = (yB - yA) / D, D = xB - xA. Valid iff x(R) mod n = r, i.e. x(R) is
    // r or r + n (< p); compared without an inversion: (x(R) + xA + xB)·D² = (yB - yA)².
    const D2 = mod(mod(xB - xA) ** 2n);
    const lhs = mod(yB - yA) ** 2n % P;
    if (mod((r + xA + xB) * D2) === lhs) return true;
    return r + P256_N < P && mod((r + P256_N + xA + xB) * D2) === lhs;
  }

  private addressOf(address: string): Uint8Array {
    const cached = touch(this.addresses, address);
    if (cached !== undefined) return cached;
    const bytes = hexBytes(getAddress(address)); // throws on a bad checksum, as verifySignedItem does
    this.keep(this.addresses, address, bytes);
    return bytes;
  }

  private p256Key(x: string, y: string): P256Key {
    const id = `${x}:${y}`;
    const cached = touch(this.p256Keys, id);
    if (cached !== undefined) return cached;
    const point = p256.Point.fromAffine({ x: BigInt(x), y: BigInt(y) });
    point.assertValidity();
    const key: P256Key = {
      sec1: Buffer.from(point.toBytes(false)),
      x: point.x,
      y: point.y,
      invTwoY: p256.Point.Fp.inv(mod(2n * point.y)),
    };
    this.keep(this.p256Keys, id, key);
    return key;
  }

  private keep<V>(map: Map<string, V>, id: string, value: V): void {
    if (this.cacheSize === 0) return;
    map.set(id, value);
    while (this.addresses.size + this.p256Keys.size > this.cacheSize) {
      // Evict the least recently used of either curve (Map iteration order is insertion order).
      const victim: Map<string, unknown> = this.addresses.size >= this.p256Keys.size ? this.addresses : this.p256Keys;
      const oldest = victim.keys().next().value;
      if (oldest === undefined) break;
      victim.delete(oldest);
    }
  }
}

/**
 * EIP-712 digests of readings and windows for one domain, byte for byte `readingDigest` / `readingWindowDigest`
 * (test/oracle/verify.test.ts checks them against each other): the struct words written into a reused buffer.
 */
export class ItemDigests {
  private readonly struct = new Uint8Array(192);
  private readonly view = new DataView(this.struct.buffer);
  private readonly outer = new Uint8Array(66);
  private readonly readingTypehash = hexBytes(READING_TYPEHASH);
  private readonly windowTypehash = hexBytes(READING_WINDOW_TYPEHASH);

  constructor(domain: ColdChainDomain) {
    this.outer[0] = 0x19;
    this.outer[1] = 0x01;
    this.outer.set(hexBytes(domainSeparator(domain)), 2);
  }

  /** The digest the device signed. Throws READING_INVALID / WINDOW_INVALID on out-of-range fields. */
  of(item: SignedItem): Uint8Array {
    const v = this.view;
    this.struct.fill(0);
    if (item.kind === "reading") {
      const r = item.reading;
      assertReading(r);
      this.struct.set(this.readingTypehash, 0);
      v.setBigUint64(56, r.deviceId);
      v.setUint32(92, r.sequence);
      writeUint40(v, 123, r.observedAt);
      if (r.tempCentiC < 0) this.struct.fill(0xff, 128, 158); // int16 sign-extended to 256 bits
      v.setInt16(158, r.tempCentiC);
      v.setUint8(191, r.flags);
    } else {
      const w = item.window;
      assertWindow(w);
      this.struct.set(this.windowTypehash, 0);
      v.setBigUint64(56, w.deviceId);
      v.setUint32(92, w.firstSequence);
      writeUint40(v, 123, w.firstObservedAt);
      v.setUint32(156, w.intervalSeconds);
      this.struct.set(hexBytes(keccak256(encodeSamples(w.samples))), 160);
    }
    this.outer.set(hexBytes(keccak256(this.struct)), 34);
    return hexBytes(keccak256(this.outer));
  }
}

function writeUint40(v: DataView, offset: number, value: number): void {
  v.setUint8(offset, Math.floor(value / 2 ** 32));
  v.setUint32(offset + 1, value % 2 ** 32);
}

/** @noble/curves' ECDSA verify, for the corner cases of the OpenSSL path. */
function slowP256(digest: Uint8Array, signature: Uint8Array, Q: P256Key): boolean {
  return p256.verify(signature, digest, Q.sec1, { prehash: false, lowS: true, format: "compact" });
}

function mod(a: bigint): bigint {
  const m = a % P;
  return m < 0n ? m + P : m;
}

/** The unsigned big-endian integer of 32 bytes at `offset`. */
function bigOf(bytes: Uint8Array, offset: number): bigint {
  return BigInt(`0x${Buffer.from(bytes.buffer, bytes.byteOffset + offset, 32).toString("hex")}`);
}

/** A scalar in [1, n - 1] as the 32 bytes OpenSSL takes. */
function scalarBytes(k: bigint): Buffer {
  return Buffer.from(k.toString(16).padStart(64, "0"), "hex");
}

/** The bytes of a 0x-prefixed hex string. */
function hexBytes(hex: string): Uint8Array {
  return Buffer.from(hex.slice(2), "hex");
}

/** The entry, moved to the most recently used end. */
function touch<V>(map: Map<string, V>, id: string): V | undefined {
  const hit = map.get(id);
  if (hit !== undefined) {
    map.delete(id);
    map.set(id, hit);
  }
  return hit;
}
