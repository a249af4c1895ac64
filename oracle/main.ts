/**
 * The oracle's entry point (`npm run oracle -- --config <file>`, the `coldchain-oracle` bin): leaves out
 * node:sqlite's experimental-feature warning (oracle/store/quiet-sqlite-warning.ts), then runs oracle/cli.ts.
 */
import "./store/quiet-sqlite-warning.js";

await import("./cli.js");
