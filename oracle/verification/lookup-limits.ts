/**
 * Bounds on what registry look-ups may cost the intake: token buckets (the rate of look-ups of devices not cached
 * yet; the intake time spent waiting for registry answers), and a bounded, expiring LRU map for the devices the
 * registry said it does not know. Both take the oracle's clock, so tests can give them a fake one.
 */
import type { Clock } from "./registry.js";

/**
 * A token bucket: `burst` tokens at most, refilled at `perSecond`. `tryTake` never waits (the intake's path);
 * `waitForToken` waits for the next one (the set-aside retrier's path).
 */
export class TokenBucket {
  private tokens: number;
  private refilledAt: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly clock: Clock,
  ) {
    this.tokens = burst;
    this.refilledAt = clock();
  }

  /** Takes a token if one is there. */
  tryTake(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Whether any of a token is left (a bucket of time spent with {@link spend} may run into debt). */
  hasAny(): boolean {
    this.refill();
    return this.tokens > 0;
  }

  /** Takes `amount` tokens, into debt if need be (a bucket of milliseconds: the time something took). */
  spend(amount: number): void {
    this.refill();
    this.tokens -= amount;
  }

  /** Milliseconds until a token is there (0 when one is). */
  msUntilToken(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) * 1000) / this.perSecond);
  }

  /** Waits until a token is there (without taking it); resolves false if `cancelled()` turns true meanwhile. */
  async waitForToken(cancelled: () => boolean = () => false): Promise<boolean> {
    for (;;) {
      if (cancelled()) return false;
      const ms = this.msUntilToken();
      if (ms === 0) return true;
      await new Promise((resolve) => setTimeout(resolve, Math.min(ms, 1000)));
    }
  }

  private refill(): void {
    const now = this.clock();
    if (now > this.refilledAt) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) * this.perSecond) / 1000);
    }
    this.refilledAt = now;
  }
}

/**
 * A map of at most `maxEntries` entries, each kept for `ttlMs` after it was set: the least recently used entry
 * goes first when the map is full, an expired one when it is read (or when a set finds it oldest).
 */
export class ExpiringLru<K, V> {
  private readonly entries = new Map<K, { value: V; setAt: number }>();

  constructor(
    private readonly maxEntries: number,
    private readonly ttlMs: number,
    private readonly clock: Clock,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The live entry (moved to the most recently used end), or undefined. */
  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    if (this.clock() - entry.setAt >= this.ttlMs) return undefined;
    this.entries.set(key, entry);
    return entry.value;
  }

  set(key: K, value: V): void {
    if (this.maxEntries <= 0) return;
    const now = this.clock();
    this.entries.delete(key);
    this.entries.set(key, { value, setAt: now });
    // Expired entries at the old end first, then the least recently used while over the bound.
    for (const [oldest, entry] of this.entries) {
      if (this.entries.size <= this.maxEntries && now - entry.setAt < this.ttlMs) break;
      this.entries.delete(oldest);
    }
  }

  delete(key: K): boolean {
    return this.entries.delete(key);
  }

  has(key: K): boolean {
    return this.get(key) !== undefined;
  }
}
