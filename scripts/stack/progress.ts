/**
 * The live progress line of `npm start`: on a terminal one line rewritten in place; otherwise (CI, a pipe) a
 * full line at most every `everyMs`, so logs stay readable.
 */
export interface ProgressFigures {
  /** Simulated seconds since the scenario began. */
  readonly simSeconds: number;
  readonly totalSimSeconds: number;
  readonly published: number;
  readonly onChain: number;
  /** Messages the oracle dropped ({@link totalDropped} of its drops by reason; the report's total is the same). */
  readonly dropped: number;
  readonly batches: number;
  readonly gasUsed: bigint;
}

/** Messages dropped, over all reasons: the one count the progress line and the report's totals both show. */
export function totalDropped(droppedByReason: Readonly<Record<string, number>>): number {
  return Object.values(droppedByReason).reduce((a, b) => a + b, 0);
}

export function formatSimTime(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const days = Math.floor(s / 86_400);
  const hours = Math.floor((s % 86_400) / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  return `${days}d ${String(hours).padStart(2, "0")}:${String(minutes).padStart(2, "0")}`;
}

export function formatProgress(f: ProgressFigures): string {
  const pct = f.totalSimSeconds > 0 ? Math.min(100, Math.round((100 * f.simSeconds) / f.totalSimSeconds)) : 100;
  const perReading = f.onChain > 0 ? Number(f.gasUsed / BigInt(f.onChain)).toLocaleString("en-US") : "-";
  return (
    `sim ${formatSimTime(f.simSeconds)} (${String(pct).padStart(3)}%)  published ${f.published}  ` +
    `on-chain ${f.onChain}  dropped ${f.dropped} messages  batches ${f.batches}  gas/reading ${perReading}`
  );
}

export class ProgressLine {
  private lastPrintAt = 0;
  private lastText = "";
  private open = false;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stdout,
    private readonly everyMs = 5000,
  ) {}

  update(figures: ProgressFigures): void {
    const text = formatProgress(figures);
    if (this.stream.isTTY) {
      this.stream.write(`\r${text.padEnd(this.lastText.length)}`);
      this.open = true;
    } else if (Date.now() - this.lastPrintAt >= this.everyMs && text !== this.lastText) {
      this.stream.write(`${text}\n`);
      this.lastPrintAt = Date.now();
    }
    this.lastText = text;
  }

  /** Ends the in-place line (call before printing anything else). */
  done(figures?: ProgressFigures): void {
    if (figures !== undefined) {
      const text = formatProgress(figures);
      this.stream.write(this.stream.isTTY ? `\r${text.padEnd(this.lastText.length)}\n` : `${text}\n`);
    } else if (this.open) {
      this.stream.write("\n");
    }
    this.open = false;
  }

  /** Prints a message line without breaking the progress line. */
  say(message: string): void {
    if (this.open) this.stream.write(`\r${" ".repeat(this.lastText.length)}\r`);
    this.stream.write(`${message}\n`);
    if (this.open && this.lastText !== "") this.stream.write(this.lastText);
  }
}
