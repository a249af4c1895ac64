/**
 * Simulated time. The fleet reads time only through a {@link SimClock}, so the CLI can run it faster than real
 * time (`sim = start + speed × real elapsed`) and tests and the demo orchestrator can step it by hand.
 * Times are unix seconds (fractional allowed); readings use whole seconds.
 */

/** A source of simulated time. */
export interface SimClock {
  /** Simulated unix seconds now. */
  now(): number;
}

/** sim = start + speed × (real elapsed); `realNow` (ms) is injectable for tests. */
export class ScaledClock implements SimClock {
  private readonly realStartMs: number;

  constructor(
    readonly startSeconds: number,
    readonly speed: number,
    private readonly realNow: () => number = Date.now,
  ) {
    if (!(speed > 0)) throw new RangeError(`speed must be positive, got ${speed}`);
    this.realStartMs = realNow();
  }

  now(): number {
    return this.startSeconds + (this.speed * (this.realNow() - this.realStartMs)) / 1000;
  }

  /** Real milliseconds until the simulated time reaches `simSeconds` (0 when already past). */
  realMsUntil(simSeconds: number): number {
    return Math.max(0, ((simSeconds - this.now()) * 1000) / this.speed);
  }
}

/** A clock that moves only when told to (tests, the orchestrator keeping chain time in step). */
export class ManualClock implements SimClock {
  constructor(private seconds: number) {}

  now(): number {
    return this.seconds;
  }

  /** Moves to `seconds`; never backwards. */
  set(seconds: number): void {
    if (seconds < this.seconds) throw new RangeError(`the clock cannot go back from ${this.seconds} to ${seconds}`);
    this.seconds = seconds;
  }

  /** Moves forward by `seconds`. */
  advance(seconds: number): void {
    this.set(this.seconds + seconds);
  }
}
