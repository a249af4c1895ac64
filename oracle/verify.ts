/**
 * Signature verification for intake, faster than `verifySignedItem` for devices seen before and with the same
 * verdict for every input:
 * - secp256k1: the first signature of a device is checked by public-key recovery (as the contract does); when
 *   the recovered address is the device's, its public key is kept. Later signatures are checked against the
 *   kept key as R = u1·G + u2·Q with R.x = r exactly and R.y's parity = the signature's yParity — the same
 *   condition as "ecrecover(digest, r, s, v) = Q", without the square root and with Q's precomputed table.
 * - P-256: ECDSA verify (low s; the intake normalises high s before) against the device point with its table.
 * Tables (wNAF windows of 4 bits: 264 points for secp256k1, 520 for P-256, tens of KB; built in 5–7 ms here)
 * make a multiplication by the device key 2–4x cheaper (measured: double multiplications per second, secp256k1
 * 650 → 1,500, P-256 240 → 1,060; 8-bit windows are no faster for secp256k1 and cost 20–50 ms to build, which a
 * device sending a few messages never pays back). At most `cacheSize` devices keep one (least recently
 * used first out), built when a device is seen the second time. A fleet whose active devices outnumber the
 * cache is verified at about the uncached speed (secp256k1 a little faster: no square root).
 */
import { p256 } from "@noble/curves/nist.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { computeAddress, getAddress, getBytes, hexlify } from "ethers";

import {
  P256_HALF_N,
  SECP256K1_N,
  readingDigest,
  readingWindowDigest,
  splitCompactSignature,
  splitP256Signature,
} from "../sdk/protocol/index.js";
import type { ColdChainDomain, DeviceVerificationKey, SignedItem } from "../sdk/protocol/index.js";

type EcPoint = ReturnType<typeof secp256k1.Point.fromAffine>;

const SECP256K1_HALF_N = SECP256K1_N >> 1n;
const WINDOW_BITS = 4;

/** Default number of device keys kept with a precomputed table. */
export const DEFAULT_KEY_CACHE_SIZE = 128;

export class FastVerifier {
  private readonly k1 = new Map<string, Entry>();
  private readonly p2 = new Map<string, Entry>();

  constructor(
    private readonly domain: ColdChainDomain,
    private readonly cacheSize: number = DEFAULT_KEY_CACHE_SIZE,
  ) {}

  /** Whether the item's signature is valid under the device key (same verdict as `verifySignedItem`). */
  verify(item: SignedItem, key: DeviceVerificationKey): boolean {
    const digest = getBytes(
      item.kind === "reading"
        ? readingDigest(this.domain, item.reading)
        : readingWindowDigest(this.domain, item.window),
    );
    try {
      return key.keyType === "secp256k1"
        ? this.verifyK1(digest, item.signature, key.address)
        : this.verifyP256(digest, item.signature, key.x, key.y);
    } catch {
      return false; // malformed signature or key: not valid
    }
  }

  /** Devices with a cached table (for tests and metrics). */
  get cachedKeys(): number {
    return this.k1.size + this.p2.size;
  }

  private verifyK1(digest: Uint8Array, signature: string, address: string): boolean {
    const { r, s, yParity } = splitCompactSignature(signature);
    if (r === 0n || r >= SECP256K1_N || s === 0n || s > SECP256K1_HALF_N) return false;
    const expected = getAddress(address);
    const cached = touch(this.k1, expected);
    if (cached !== undefined) {
      const R = combine(secp256k1.Point, tabled(cached), digest, r, s);
      if (R === undefined) return false;
      const a = R.toAffine();
      return a.x === r && Number(a.y & 1n) === yParity;
    }
    const Q = new secp256k1.Signature(r, s, yParity).recoverPublicKey(digest);
    if (computeAddress(hexlify(Q.toBytes(false))) !== expected) return false;
    this.keep(this.k1, expected, { point: Q, tabled: false });
    return true;
  }

  private verifyP256(digest: Uint8Array, signature: string, x: string, y: string): boolean {
    const { r, s } = splitP256Signature(signature);
    if (s > P256_HALF_N) return false;
    const id = `${x}:${y}`;
    const cached = touch(this.p2, id);
    let Q: EcPoint;
    if (cached === undefined) {
      Q = p256.Point.fromAffine({ x: BigInt(x), y: BigInt(y) });
      Q.assertValidity();
      this.keep(this.p2, id, { point: Q, tabled: false });
    } else {
      Q = tabled(cached);
    }
    const R = combine(p256.Point, Q, digest, r, s);
    return R !== undefined && R.toAffine().x % p256.Point.Fn.ORDER === r;
  }

  private keep(map: Map<string, Entry>, id: string, entry: Entry): void {
    if (this.cacheSize === 0) return;
    map.set(id, entry);
    while (this.k1.size + this.p2.size > this.cacheSize) {
      // Evict the least recently used of either curve (Map iteration order is insertion order).
      const victim = this.k1.size >= this.p2.size ? this.k1 : this.p2;
      const oldest = victim.keys().next().value;
      if (oldest === undefined) break;
      victim.delete(oldest);
    }
  }
}

/** u1·G + u2·Q for the digest and (r, s); undefined for the point at infinity. */
function combine(
  Point: { BASE: EcPoint; Fn: { ORDER: bigint; inv(a: bigint): bigint; mul(a: bigint, b: bigint): bigint } },
  Q: EcPoint,
  digest: Uint8Array,
  r: bigint,
  s: bigint,
): EcPoint | undefined {
  const Fn = Point.Fn;
  const e = BigInt(hexlify(digest)) % Fn.ORDER;
  const w = Fn.inv(s);
  const R = Point.BASE.multiplyUnsafe(Fn.mul(e, w)).add(Q.multiplyUnsafe(Fn.mul(r, w)));
  return R.is0() ? undefined : R;
}

/** A device key; its table is built when the device is seen a second time (one-off devices cost no table). */
interface Entry {
  readonly point: EcPoint;
  tabled: boolean;
}

function tabled(entry: Entry): EcPoint {
  if (!entry.tabled) {
    entry.point.precompute(WINDOW_BITS, false);
    entry.tabled = true;
  }
  return entry.point;
}

/** The entry, moved to the most recently used end. */
function touch<P>(map: Map<string, P>, id: string): P | undefined {
  const hit = map.get(id);
  if (hit !== undefined) {
    map.delete(id);
    map.set(id, hit);
  }
  return hit;
}
