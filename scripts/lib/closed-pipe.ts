/**
 * `npm run cli -- show … | head`: the reader closes its end and the next write fails with EPIPE. That is not an
 * error of the command: the process stops at once, quietly, with exit code 0 (no stack trace). Other stream
 * errors are thrown as before.
 */
export function exitQuietlyOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EPIPE") process.exit(0);
      throw error;
    });
  }
}
