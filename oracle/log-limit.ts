/**
 * Log lines that can come once per message, rate-limited with counts: the first line of a kind (a key, e.g. a
 * drop reason) is written at once; the others within `intervalMs` are counted, and when the interval ends one
 * line says how many there were (`repeated`, `inLastMs`) with the fields of the last of them. A flood of bad
 * messages then costs a line per kind and interval instead of a line each, and no occurrence goes uncounted.
 */
import type { Logger } from "./log.js";
import type { Clock } from "./verification/registry.js";

/** Default interval of one line per kind. */
export const LOG_LIMIT_INTERVAL_MS = 10_000;

type Level = "info" | "warn" | "error";

interface Kind {
  /** When the last line of this kind was written. */
  loggedAt: number;
  /** Occurrences since, not written, and the last of them. */
  repeated: number;
  last: { level: Level; fields: Record<string, unknown>; message: string } | undefined;
  timer: NodeJS.Timeout | undefined;
}

export class RateLimitedLog {
  private readonly kinds = new Map<string, Kind>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs: number = LOG_LIMIT_INTERVAL_MS,
    private readonly clock: Clock = Date.now,
  ) {}

  info(key: string, fields: Record<string, unknown>, message: string): void {
    this.write("info", key, fields, message);
  }

  warn(key: string, fields: Record<string, unknown>, message: string): void {
    this.write("warn", key, fields, message);
  }

  error(key: string, fields: Record<string, unknown>, message: string): void {
    this.write("error", key, fields, message);
  }

  /** Writes the counts still held (at stop). */
  flush(): void {
    for (const kind of this.kinds.values()) this.summarise(kind);
  }

  private write(level: Level, key: string, fields: Record<string, unknown>, message: string): void {
    const now = this.clock();
    let kind = this.kinds.get(key);
    if (kind === undefined || (now - kind.loggedAt >= this.intervalMs && kind.repeated === 0)) {
      kind ??= { loggedAt: now, repeated: 0, last: undefined, timer: undefined };
      kind.loggedAt = now;
      this.kinds.set(key, kind);
      this.log[level](fields, message);
      return;
    }
    kind.repeated++;
    kind.last = { level, fields, message };
    if (kind.timer === undefined) {
      const entry = kind;
      entry.timer = setTimeout(() => this.summarise(entry), Math.max(0, entry.loggedAt + this.intervalMs - now));
      entry.timer.unref();
    }
  }

  private summarise(kind: Kind): void {
    clearTimeout(kind.timer);
    kind.timer = undefined;
    const last = kind.last;
    if (kind.repeated === 0 || last === undefined) return;
    const now = this.clock();
    const ms = now - kind.loggedAt;
    const seconds = (ms / 1000).toFixed(ms < 10_000 ? 1 : 0);
    this.log[last.level](
      { ...last.fields, repeated: kind.repeated, inLastMs: ms },
      `${last.message} (${kind.repeated} like it in the last ${seconds} s, the last shown)`,
    );
    kind.loggedAt = now;
    kind.repeated = 0;
    kind.last = undefined;
  }
}
