/**
 * The pause of a worker loop (the relay's ticks, the alert evaluator, alert delivery) that its owner can end early:
 * new work calls {@link Sleeper.wake}, the stop {@link Sleeper.stop}. One pause at a time (the loop's own).
 */
export class Sleeper {
  private end: ((why: "wake" | "stop") => void) | undefined;
  private stopped = false;

  /**
   * Resolves after `ms`, or earlier at a {@link wake} (unless `wakeable` is false: a back-off that new work must not
   * cut short) or a {@link stop}; at once after a stop.
   */
  sleep(ms: number, wakeable = true): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.end = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.end = (why) => {
        if (wakeable || why === "stop") done();
      };
    });
  }

  /** Ends the present pause (a wakeable one), if any. */
  wake(): void {
    this.end?.("wake");
  }

  /** Ends the present pause, and every later one at once. */
  stop(): void {
    this.stopped = true;
    this.end?.("stop");
  }
}
