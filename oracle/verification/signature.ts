/**
 * Signature verification for intake, with the same verdict as `verifySignedItem` for every input, several
 * times faster:
 * - digest: EIP-712 by hand into one reused buffer (type hashes and the domain separator computed once, then
 *   two keccaks per reading, three per window) instead of ABI-encoding per message;
 * - secp256k1: public-key recovery with the signature's yParity, then the recovered key compared with the
 *   device's: exactly the contract's ecrecover check (a flipped yParity recovers another key and fails). Plain
 *   ECDSA verify ignores yParity, and a flipped-parity copy of a valid message accepted here would be skipped
 *   on-chain and take the genuine message's (device, sequence): not the same verdict. The recovery runs in
 *   libsecp256k1, natively through the `secp256k1` package's prebuilt N-API binding where the platform has one
 *   (linux-x64 glibc/musl, darwin-arm64, win32-x64), else compiled to WebAssembly (tiny-secp256k1): see
 *   `SECP256K1_BACKEND`. The first recovery for a device hashes the key to its address; the key is then kept
 *   and later recoveries are compared with it byte for byte (one keccak fewer per reading).
 * - P-256: ECDSA verify (low s; the intake normalises high s before) as R = u1·G + u2·Q = u2·(Q + t·G) with
 *   t = e/r, x(R) mod n = r, with the scalar multiplications in OpenSSL (node:crypto ECDH, constant-time assembly
 *   for P-256): t·G in full (getPublicKey), the addition Q + t·G here (one field inversion), then x(u2·(Q + t·G))
 *   as ECDH's shared secret. The corner case t·G = ±Q goes to @noble/curves.
 * Measured on one thread of this machine (checks per second, one device's readings; the figure
 * `npm run bench:oracle` writes as signatureChecksPerSecond): secp256k1 native ~10,000–16,000 (the recovery
 * alone ~60 µs under load), WebAssembly ~2,700 at load average ~1 (WebAssembly verify alone ~4,400 but
 * parity-blind, see above; @noble/curves with precomputed per-device tables ~1,500, uncached ~650; node:crypto's
 * generic secp256k1 ECDH ~1,000), P-256 ~3,800 (@noble/curves with tables ~1,060, uncached ~240–450). No
 * per-device tables: the only per-device state is the parsed key (a small LRU of `cacheSize` entries), so a fleet
 * larger than the cache costs the same.
 */
import { createECDH } from "node:crypto";
import type { ECDH } from "node:crypto";
import { createRequire } from "node:module";

import { p256 } from "@noble/curves/nist.js";
import { getAddress, keccak256 } from "ethers";
import * as tinySecp from "tiny-secp256k1";

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
} from "../../sdk/protocol/index.js";
import type { ColdChainDomain, DeviceVerificationKey, SignedItem } from "../../sdk/protocol/index.js";

const SECP256K1_HALF_N = SECP256K1_N >> 1n;

/** Uncompressed (65-byte) public key recovered from a 64-byte (r, s) signature, or null when none is. */
type Recover = (digest: Uint8Array, rs: Uint8Array, recid: 0 | 1) => Uint8Array | null;

/** The part of the `secp256k1` package's native binding used here (its `bindings.js` entry). */
interface NativeSecp256k1 {
  ecdsaRecover(sig: Uint8Array, recid: number, msg32: Uint8Array, compressed: boolean): Uint8Array;
}

/**
 * The native binding, loaded through `secp256k1/bindings` rather than the package's main entry: the main entry
 * silently falls back to elliptic (pure JS, ~10x slower than WebAssembly) where the binding is missing, and
 * here the fallback is tiny-secp256k1. ORACLE_SECP256K1=wasm forces the WebAssembly backend (tests, bench).
 */
function loadNative(): Recover | undefined {
  if (process.env.ORACLE_SECP256K1 === "wasm") return undefined;
  try {
    const native = createRequire(import.meta.url)("secp256k1/bindings") as NativeSecp256k1;
    return (digest, rs, recid) => {
      try {
        return native.ecdsaRecover(rs, recid, digest, false);
      } catch {
        return null; // r or s out of range, or no point with that x: no key
      }
    };
  } catch {
    return undefined;
  }
}

const nativeRecover = loadNative();
const wasmRecover: Recover = (digest, rs, recid) => tinySecp.recover(digest, rs, recid, false);

/** A build of libsecp256k1: "native" (N-API binding of the `secp256k1` package) or "wasm" (tiny-secp256k1). */
export type Secp256k1Backend = "native" | "wasm";

/** The backend FastVerifier uses by default in this process: native where the binding loads. */
export const SECP256K1_BACKEND: Secp256k1Backend = nativeRecover === undefined ? "wasm" : "native";

/** A secp256k1 device: its address and, once a signature recovered it, its public key (64 bytes, x ‖ y). */
interface K1Key {
  readonly address: Uint8Array;
  publicKey?: Uint8Array;
}
/** P-256 field prime. */
const P = p256.Point.Fp.ORDER;
/** The SEC1 prefix of an uncompressed point (x ‖ y follow). */
const SEC1_UNCOMPRESSED = Buffer.from([4]);

/** Default number of device keys kept parsed. */
export const DEFAULT_KEY_CACHE_SIZE = 128;

/** A P-256 device key, parsed once: the SEC1 bytes for OpenSSL and the affine coordinates. */
interface P256Key {
  readonly sec1: Buffer;
  readonly x: bigint;
  readonly y: bigint;
}

export class FastVerifier {
  private readonly addresses = new Map<string, K1Key>();
  private readonly p256Keys = new Map<string, P256Key>();
  private readonly digests: ItemDigests;
  private readonly ecdh: ECDH = createECDH("prime256v1");
  private readonly recoverKey: Recover;

  constructor(
    domain: ColdChainDomain,
    private readonly cacheSize: number = DEFAULT_KEY_CACHE_SIZE,
    secp256k1: Secp256k1Backend = SECP256K1_BACKEND,
  ) {
    this.digests = new ItemDigests(domain);
    const recover = secp256k1 === "native" ? nativeRecover : wasmRecover;
    if (recover === undefined) {
      throw new Error('the secp256k1 package\'s native binding did not load on this platform: use "wasm"');
    }
    this.recoverKey = recover;
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
    const device = this.k1Key(address);
    const rs = new Uint8Array(64);
    rs.set(signature);
    rs[32] = (rs[32] ?? 0) & 0x7f; // s without the yParity bit
    const Q = this.recoverKey(digest, rs, vs >> 255n === 1n ? 1 : 0);
    if (Q === null) return false;
    const xy = Q.subarray(1);
    // A key seen before: equal bytes, or another key (whose address differs, short of a keccak collision).
    if (device.publicKey !== undefined) return Buffer.compare(xy, device.publicKey) === 0;
    const hash = hexBytes(keccak256(xy));
    for (let i = 0; i < 20; i++) if (hash[12 + i] !== device.address[i]) return false;
    device.publicKey = Uint8Array.from(xy);
    return true;
  }

  private verifyP256(digest: Uint8Array, signature: Uint8Array, x: string, y: string): boolean {
    const r = bigOf(signature, 0);
    const s = bigOf(signature, 32);
    if (r === 0n || r >= P256_N || s === 0n || s > P256_HALF_N) return false;
    const Q = this.p256Key(x, y);
    const e = bigOf(digest, 0) % P256_N;
    // R = u1·G + u2·Q with u1 = e/s, u2 = r/s, written as R = u2·(Q + t·G) with t = u1/u2 = e/r: one full
    // fixed-base multiplication (t·G), one point addition here, and one variable-base multiplication of which
    // only x(R) is needed (ECDH's shared secret). 1/s and 1/r come from one inversion of r·s.
    const inv = p256.Point.Fn.inv((r * s) % P256_N);
    const u2 = (((r * r) % P256_N) * inv) % P256_N; // r / s, in [1, n - 1]
    const t = (((e * s) % P256_N) * inv) % P256_N; // e / r
    let M: Buffer = Q.sec1;
    if (t !== 0n) {
      this.ecdh.setPrivateKey(wordBytes(t));
      const T = this.ecdh.getPublicKey();
      const xT = bigOf(T, 1);
      const yT = bigOf(T, 33);
      if (xT === Q.x) return slowP256(digest, signature, Q); // T = ±Q: doubling or the point at infinity
      // M = Q + T (affine): λ = (yT - yQ) / (xT - xQ), xM = λ² - xQ - xT, yM = λ·(xQ - xM) - yQ.
      const lambda = mod(mod(yT - Q.y) * p256.Point.Fp.inv(mod(xT - Q.x)));
      const xM = mod(lambda * lambda - Q.x - xT);
      const yM = mod(lambda * (Q.x - xM) - Q.y);
      M = Buffer.concat([SEC1_UNCOMPRESSED, wordBytes(xM), wordBytes(yM)]);
    }
    // u2 ≠ 0 and M ≠ O (n is prime), so R ≠ O. Valid iff x(R) mod n = r.
    this.ecdh.setPrivateKey(wordBytes(u2));
    const xR = bigOf(this.ecdh.computeSecret(M), 0);
    return xR % P256_N === r;
  }

  private k1Key(address: string): K1Key {
    const cached = touch(this.addresses, address);
    if (cached !== undefined) return cached;
    const key: K1Key = { address: hexBytes(getAddress(address)) }; // throws on a bad checksum, as verifySignedItem does
    this.keep(this.addresses, address, key);
    return key;
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
 * Protocol v2: seven words each, `previousObservedAt` last (a reading: typehash, deviceId, sequence, observedAt,
 * tempCentiC, flags, previousObservedAt; a window: typehash, deviceId, firstSequence, firstObservedAt,
 * intervalSeconds, keccak256(samples), previousObservedAt).
 */
export class ItemDigests {
  private readonly struct = new Uint8Array(224);
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
      writeUint40(v, 219, r.previousObservedAt);
    } else {
      const w = item.window;
      assertWindow(w);
      this.struct.set(this.windowTypehash, 0);
      v.setBigUint64(56, w.deviceId);
      v.setUint32(92, w.firstSequence);
      writeUint40(v, 123, w.firstObservedAt);
      v.setUint32(156, w.intervalSeconds);
      this.struct.set(hexBytes(keccak256(encodeSamples(w.samples))), 160);
      writeUint40(v, 219, w.previousObservedAt);
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

/** A scalar or field element (< 2^256) as 32 big-endian bytes, as OpenSSL takes them. */
function wordBytes(value: bigint): Buffer {
  return Buffer.from(value.toString(16).padStart(64, "0"), "hex");
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
