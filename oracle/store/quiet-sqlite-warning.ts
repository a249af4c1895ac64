/**
 * Drops Node's one-time "SQLite is an experimental feature" ExperimentalWarning (node:sqlite, Node 22), which
 * would otherwise print two plain-text lines on stderr beside the JSON log of every oracle process and store
 * writer thread. Every other warning is emitted as before. Node emits this one while it links a module graph
 * that imports node:sqlite, before any of that graph runs: import this module first, then the rest with a
 * dynamic `import()` (oracle/main.ts, oracle/store/writer-worker.ts).
 */
const emitWarning = process.emitWarning.bind(process);

process.emitWarning = (warning: string | Error, ...rest: unknown[]): void => {
  const message = typeof warning === "string" ? warning : warning.message;
  // The type: emitWarning(warning, type, ...) or emitWarning(warning, { type, ... }); else an Error's name.
  const options = rest[0];
  const type =
    typeof options === "string"
      ? options
      : ((options as { type?: string } | null | undefined)?.type ??
        (typeof warning === "string" ? "Warning" : warning.name));
  if (type === "ExperimentalWarning" && message.startsWith("SQLite is an experimental feature")) return;
  (emitWarning as (...args: unknown[]) => void)(warning, ...rest);
};

export {};
