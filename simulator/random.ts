/**
 * A small seeded PRNG (mulberry32) so a (scenario, seed) pair reproduces the same readings bit for bit.
 * Not for keys or anything secret: device keys are derived with keccak256 (see device.ts).
 */

/** A deterministic stream of pseudo-random numbers. */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [min, max). */
  uniform(min: number, max: number): number;
  /** Integer uniform in [min, max] (inclusive). */
  int(min: number, max: number): number;
  /** Whether an event of probability `p` happens. */
  chance(p: number): boolean;
}

/** 32-bit FNV-1a hash of a string: turns a label into a mulberry32 seed. */
export function hashLabel(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** A mulberry32 stream seeded from a label, e.g. `createRandom("42/model/7")`. */
export function createRandom(label: string): Random {
  let state = hashLabel(label);
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    uniform: (min, max) => min + (max - min) * next(),
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    chance: (p) => next() < p,
  };
}
