/**
 * `npm start`: the whole system on one machine, on embedded defaults. Starts a local chain (Hardhat's EDR node
 * on 127.0.0.1:8545) and an MQTT broker (aedes on 127.0.0.1:1883) — or uses `--rpc` / `--broker` —, deploys the
 * suite with Ignition, registers the loggers, creates four shipments for five parties, runs the oracle and the
 * device simulator while custody moves carrier → hub → carrier → receiver on schedule, plays two attempts to bend
 * a verdict (the shipper cancels under a carrier; a rogue relayer submits a logger's backlog newest first), and
 * ends with a report read back from the chain and cross-checked against the simulator and the oracle.
 *
 *   npm start                         # about 1–2 minutes, then exits 0 (1 when the cross-check fails)
 *   npm start -- --quick --report r.json
 *   npm start -- --serve              # keep everything running (dashboard, other clients); Ctrl-C stops it
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

import { parseSpeed } from "../simulator/parse.js";
import { exitQuietlyOnClosedPipe } from "./lib/closed-pipe.js";
import { BuildError, ensureContractsBuilt } from "./lib/ensure-build.js";
import type { PortChoice, StackOptions } from "./stack/run.js";

const USAGE = `usage: npm start -- [options]

  --quick              a short run (about 20 s of wall time; what CI runs)
  --serve              keep the stack running after the scenario (Ctrl-C stops it)
  --report <file>      also write the report as JSON
  --rpc <url>          use this dev node (hardhat node, anvil) instead of the embedded chain
  --broker <url>       use this MQTT broker (e.g. mqtt://127.0.0.1:1883 for Mosquitto) instead of aedes
  --chain-port <n>     port of the embedded chain (default 8545 when free, else any free port; 0: any)
  --broker-port <n>    port of the embedded broker (default 1883 when free, else any free port; 0: any)
  --dashboard-port <n> port of the dashboard with --serve (default 5173 when free, else any free port; 0: any)
                       a port given is used exactly: the run stops when it is taken
  --speed <N>x         simulated seconds per real second, up to 1000000x (default 1200x; --quick 5000x)
  --seed <n>           seed of the simulated fleet (default 1): the same seed replays the same readings
  --format json|binary MQTT payload form the loggers publish (default: both, per logger)
  --l1-gwei <n>        gas price for the L1 cost line (default 1)
  --l2-gwei <n>        gas price for the L2 cost line (default 0.01)
  --eth-usd <n>        ETH price for the cost lines (default 3000)
  --verbose            oracle log at debug level (the log file is named at start)
  --keep-run-dir       keep the run folder (address book, oracle store and log) in the temporary directory;
                       by default it is removed on exit, Ctrl-C included, and kept only when the run fails
  --help

The first run compiles the contracts (about 30 s) and says so.`;

class UsageError extends Error {}

const OPTIONS = {
  quick: { type: "boolean" },
  serve: { type: "boolean" },
  report: { type: "string" },
  rpc: { type: "string" },
  broker: { type: "string" },
  "chain-port": { type: "string" },
  "broker-port": { type: "string" },
  "dashboard-port": { type: "string" },
  speed: { type: "string" },
  seed: { type: "string" },
  format: { type: "string" },
  "l1-gwei": { type: "string" },
  "l2-gwei": { type: "string" },
  "eth-usd": { type: "string" },
  verbose: { type: "boolean" },
  "keep-run-dir": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function numberOption(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value.replace(/x$/, ""));
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} must be a positive number, got "${value}"`);
  return n;
}

function portOption(value: string | undefined, name: string, preferred: number): PortChoice {
  if (value === undefined) return { port: preferred, exact: false };
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65_535)
    throw new UsageError(`--${name} must be a port (0..65535), got "${value}"`);
  return { port, exact: true };
}

function parseOptions(argv: string[]): StackOptions | undefined {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, strict: true }));
  } catch (error) {
    throw new UsageError(((error as Error).message.split("\n")[0] ?? "").replace(/\. To specify.*$/, ""));
  }
  if (values.help === true) return undefined;
  const quick = values.quick === true;
  const format = values.format;
  if (format !== undefined && format !== "json" && format !== "binary") {
    throw new UsageError(`--format must be json or binary, got "${format}"`);
  }
  const seed = values.seed === undefined ? 1 : Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new UsageError(`--seed must be a non-negative integer, got "${values.seed}"`);
  }
  return {
    quick,
    serve: values.serve === true,
    report: values.report === undefined ? undefined : resolve(values.report),
    rpc: values.rpc,
    broker: values.broker,
    ports: {
      chain: portOption(values["chain-port"], "chain-port", 8545),
      broker: portOption(values["broker-port"], "broker-port", 1883),
      dashboard: portOption(values["dashboard-port"], "dashboard-port", 5173),
    },
    speed: values.speed === undefined ? (quick ? 5000 : 1200) : parseSpeed(values.speed),
    seed,
    format,
    prices: {
      l1Gwei: numberOption(values["l1-gwei"], "l1-gwei", 1),
      l2Gwei: numberOption(values["l2-gwei"], "l2-gwei", 0.01),
      ethUsd: numberOption(values["eth-usd"], "eth-usd", 3000),
    },
    verbose: values.verbose === true,
    keepRunDir: values["keep-run-dir"] === true,
  };
}

async function main(): Promise<number> {
  let options: StackOptions | undefined;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`npm start: ${(error as Error).message}; see npm start -- --help`);
    return 2;
  }
  if (options === undefined) {
    console.log(USAGE);
    return 0;
  }
  // The run's modules need the contracts' build: made now when missing or older than a source (~30 s, said).
  try {
    await ensureContractsBuilt();
  } catch (error) {
    console.error(`npm start: ${error instanceof BuildError ? error.message : String(error)}`);
    return 1;
  }
  const { run, StepError } = await import("./stack/run.js");
  // The run folder (address book, oracle store and log) goes when the process ends, however it ends (a forced
  // Ctrl-C included), unless asked to keep it or the run failed (its log says why).
  const runDir = mkdtempSync(join(tmpdir(), "coldchain-stack-"));
  let keepRunDir = options.keepRunDir;
  process.once("exit", () => {
    if (!keepRunDir) rmSync(runDir, { recursive: true, force: true });
  });
  const stops: (() => Promise<void>)[] = [];
  let stopping: Promise<void> | undefined;
  const stopAll = (): Promise<void> =>
    (stopping ??= (async () => {
      for (const stop of stops.reverse()) {
        try {
          await stop();
        } catch (error) {
          console.error(`while stopping: ${(error as Error).message}`);
        }
      }
    })());
  // Ctrl-C: the run stops at its next step and shuts everything down (no decision, no report); twice forces it.
  const signal = { interrupted: false };
  const onSignal = (): void => {
    if (signal.interrupted) process.exit(130);
    signal.interrupted = true;
    console.log("\nstopping (Ctrl-C again to force)…");
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let code = 1;
  try {
    code = await run(options, runDir, stops, signal);
  } catch (error) {
    console.error(`\nnpm start: ${error instanceof StepError ? error.message : String(error)}`);
  } finally {
    await stopAll();
  }
  if (code === 1) keepRunDir = true;
  if (keepRunDir) console.error(`run folder kept: ${runDir}`);
  return code;
}

exitQuietlyOnClosedPipe();
process.exitCode = await main();
