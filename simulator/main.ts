/**
 * `npm run simulate -- --broker mqtt://127.0.0.1:1883 --devices 200 --interval 5m --speed 300x --scenario compliant
 * --seed 42 --format json --mode reading --duration 3d --network localhost`: a fleet of virtual temperature
 * loggers publishing signed readings to an MQTT broker. docs/simulator.md describes every option. Bad input ends
 * the process with one line on stderr and exit code 2; Ctrl-C disconnects every device cleanly.
 */
import { warpDevChain } from "./dev-chain.js";
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { JsonRpcProvider, isAddress } from "ethers";

import { exitQuietlyOnClosedPipe } from "../scripts/lib/closed-pipe.js";
import { loadDeployment } from "../sdk/node/deployment.js";
import type { ColdChainDomain, DeviceKeyType } from "../sdk/protocol/index.js";
import { ScaledClock } from "./clock.js";
import { DryRunTransport, createFleet, fleetToJson, ledgerToJson, ledgerTotals, runFleet } from "./fleet.js";
import type { FleetLedger, PublishEvent } from "./fleet.js";
import { SimulatorInputError, formatDuration, parseDuration, parseSpeed } from "./parse.js";
import { SCENARIO_NAMES, SCENARIO_SUMMARIES, buildScenario, isScenarioName } from "./scenarios.js";
import type { ScenarioName } from "./scenarios.js";

const EXIT_USAGE = 2;
const EXIT_FAILURE = 1;

const USAGE = `Usage: npm run simulate -- --broker <url> (--network <name> | --chain-id <n> --cold-chain <0x…>) [options]

A fleet of virtual temperature loggers publishing signed readings (QoS 1) to an MQTT broker.

Connection and domain:
  --broker <url>          MQTT broker, e.g. mqtt://127.0.0.1:1883 (mqtt, mqtts, tcp, ws, wss)
  --network <name>        take chain id and ColdChain address from deployments/<name>.json
  --chain-id <n>          chain id of the EIP-712 domain (with --cold-chain, instead of --network)
  --cold-chain <0x…>      ColdChain contract address (the domain's verifyingContract)
  --warp-rpc <url>        a dev node (hardhat node) whose time follows the simulated clock
                          (evm_setNextBlockTimestamp + evm_mine); the run then starts at the node's time

Fleet:
  --devices <n>           number of devices (default 10)
  --first-device-id <n>   registry id of the first device (default 1000001); device i gets first + i
  --key-types <list>      secp256k1, p256 or both, cycled over the devices (default secp256k1)
  --interval <duration>   recording interval (default 5m)
  --seed <value>          seed: the same seed and options give the same keys, readings and signatures (default 42)

Run:
  --scenario <name>       ${SCENARIO_NAMES.join(" | ")} | mixed (default compliant)
  --duration <duration>   simulated length, e.g. 3d, 1h30m (default 1d)
  --speed <factor>x       simulated seconds per real second (default 300x: 3 days in 14.4 min)
  --start <time>          simulated start: unix seconds or ISO 8601 (default: now − duration, so no reading
                          is ever ahead of the wall clock; with --warp-rpc: the node's latest block time)
  --format <f>            json | binary (default json)
  --mode <m>              reading (one message per reading) | window (device windows) (default reading)
  --window-size <n>       readings per window, 1..256 (default 12)

Output:
  --fleet-out <file>      write the fleet's public identities (ids, keys, interval) for registration
  --fleet-only            write --fleet-out and exit without publishing
  --ledger-out <file>     write the ledger of everything published (valid readings, tampered messages)
  --dry-run               generate and sign everything but publish nothing (no broker needed)
  -h, --help              this help

Scenarios:
${SCENARIO_NAMES.map((n) => `  ${n.padEnd(16)}${SCENARIO_SUMMARIES[n]}`).join("\n")}
  ${"mixed".padEnd(16)}device i plays scenario i mod ${SCENARIO_NAMES.length} in the order above

Durations: a number and a unit (s, m, h, d, w), combinable: 90s, 5m, 1h30m, 3d.`;

interface Settings {
  readonly brokerUrl: string | undefined;
  readonly domain: ColdChainDomain;
  readonly warpRpc: string | undefined;
  readonly devices: number;
  readonly firstDeviceId: bigint;
  readonly keyTypes: DeviceKeyType[];
  readonly intervalSeconds: number;
  readonly seed: string;
  readonly scenario: ScenarioName | "mixed";
  readonly durationSeconds: number;
  readonly speed: number;
  readonly start: number | undefined;
  readonly format: "json" | "binary";
  readonly mode: "reading" | "window";
  readonly windowSize: number;
  readonly fleetOut: string | undefined;
  readonly fleetOnly: boolean;
  readonly ledgerOut: string | undefined;
  readonly dryRun: boolean;
}

/** Runs the simulator CLI; returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let settings: Settings | undefined;
  try {
    settings = parseSettings(argv);
  } catch (error) {
    if (error instanceof SimulatorInputError) {
      process.stderr.write(`simulate: ${error.message}\n`);
      return EXIT_USAGE;
    }
    process.stderr.write(`simulate: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT_FAILURE;
  }
  if (settings === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    return await run(settings);
  } catch (error) {
    process.stderr.write(`simulate: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT_FAILURE;
  }
}

/** Parses argv; undefined means `--help`. Throws SimulatorInputError on bad input. */
export function parseSettings(argv: readonly string[]): Settings | undefined {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        broker: { type: "string" },
        network: { type: "string" },
        "chain-id": { type: "string" },
        "cold-chain": { type: "string" },
        "warp-rpc": { type: "string" },
        devices: { type: "string", default: "10" },
        "first-device-id": { type: "string", default: "1000001" },
        "key-types": { type: "string", default: "secp256k1" },
        interval: { type: "string", default: "5m" },
        seed: { type: "string", default: "42" },
        scenario: { type: "string", default: "compliant" },
        duration: { type: "string", default: "1d" },
        speed: { type: "string", default: "300x" },
        start: { type: "string" },
        format: { type: "string", default: "json" },
        mode: { type: "string", default: "reading" },
        "window-size": { type: "string", default: "12" },
        "fleet-out": { type: "string" },
        "fleet-only": { type: "boolean", default: false },
        "ledger-out": { type: "string" },
        "dry-run": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (error) {
    throw new SimulatorInputError(`${error instanceof Error ? error.message : String(error)}; see --help`);
  }
  if (values.help) return undefined;
  const fleetOnly = values["fleet-only"];
  const dryRun = values["dry-run"];
  if (fleetOnly && values["fleet-out"] === undefined)
    throw new SimulatorInputError("--fleet-only needs --fleet-out <file>");
  const brokerUrl = values.broker;
  if (brokerUrl === undefined && !dryRun && !fleetOnly) {
    throw new SimulatorInputError("--broker <url> is required (e.g. mqtt://127.0.0.1:1883), or use --dry-run");
  }
  if (brokerUrl !== undefined) checkUrl(brokerUrl, "--broker", ["mqtt:", "mqtts:", "tcp:", "ws:", "wss:"]);
  if (values["warp-rpc"] !== undefined) checkUrl(values["warp-rpc"], "--warp-rpc", ["http:", "https:"]);
  const scenario = values.scenario;
  if (scenario !== "mixed" && !isScenarioName(scenario)) {
    throw new SimulatorInputError(`unknown --scenario "${scenario}": use one of ${SCENARIO_NAMES.join(", ")}, mixed`);
  }
  const format = values.format;
  if (format !== "json" && format !== "binary")
    throw new SimulatorInputError(`--format must be json or binary, got "${format}"`);
  const mode = values.mode;
  if (mode !== "reading" && mode !== "window")
    throw new SimulatorInputError(`--mode must be reading or window, got "${mode}"`);
  const keyTypes = values["key-types"].split(",").map((k) => k.trim());
  for (const k of keyTypes) {
    if (k !== "secp256k1" && k !== "p256") {
      throw new SimulatorInputError(`--key-types takes secp256k1 and/or p256 separated by commas, got "${k}"`);
    }
  }
  return {
    brokerUrl,
    domain: fleetOnly ? (tryDomain(values) ?? PLACEHOLDER_DOMAIN) : domainOf(values),
    warpRpc: values["warp-rpc"],
    devices: integer(values.devices, "--devices", 1, 100_000),
    firstDeviceId: BigInt(integer(values["first-device-id"], "--first-device-id", 1, Number.MAX_SAFE_INTEGER)),
    keyTypes: keyTypes as DeviceKeyType[],
    intervalSeconds: parseDuration(values.interval, "--interval"),
    seed: values.seed,
    scenario,
    durationSeconds: parseDuration(values.duration, "--duration"),
    speed: parseSpeed(values.speed),
    start: values.start === undefined ? undefined : parseStart(values.start),
    format,
    mode,
    windowSize: integer(values["window-size"], "--window-size", 1, 256),
    fleetOut: values["fleet-out"],
    fleetOnly,
    ledgerOut: values["ledger-out"],
    dryRun,
  };
}

const PLACEHOLDER_DOMAIN: ColdChainDomain = {
  chainId: 31337n,
  verifyingContract: "0x0000000000000000000000000000000000000000",
};

interface DomainFlags {
  readonly network?: string;
  readonly "chain-id"?: string;
  readonly "cold-chain"?: string;
}

function tryDomain(values: DomainFlags): ColdChainDomain | undefined {
  if (values.network === undefined && values["chain-id"] === undefined && values["cold-chain"] === undefined) {
    return undefined;
  }
  return domainOf(values);
}

function domainOf(values: DomainFlags): ColdChainDomain {
  if (values.network !== undefined) {
    if (values["chain-id"] !== undefined || values["cold-chain"] !== undefined) {
      throw new SimulatorInputError("give either --network or --chain-id with --cold-chain, not both");
    }
    try {
      const d = loadDeployment(values.network);
      return { chainId: BigInt(d.chainId), verifyingContract: d.contracts.ColdChain.address };
    } catch (error) {
      throw new SimulatorInputError(error instanceof Error ? error.message : String(error));
    }
  }
  const chainId = values["chain-id"];
  const coldChain = values["cold-chain"];
  if (chainId === undefined || coldChain === undefined) {
    throw new SimulatorInputError(
      "the signing domain is missing: give --network <name> (deployments/<name>.json) or --chain-id <n> --cold-chain <0x…>",
    );
  }
  if (!isAddress(coldChain))
    throw new SimulatorInputError(`--cold-chain must be a 0x-prefixed address, got "${String(coldChain)}"`);
  return { chainId: BigInt(integer(chainId, "--chain-id", 1, Number.MAX_SAFE_INTEGER)), verifyingContract: coldChain };
}

function integer(text: string, flag: string, min: number, max: number): number {
  const value = /^[0-9]+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new SimulatorInputError(`${flag} must be an integer in [${min}, ${max}], got "${text}"`);
  }
  return value;
}

function checkUrl(text: string, flag: string, protocols: readonly string[]): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new SimulatorInputError(
      `${flag} "${text}" is not a URL; use e.g. ${protocols[0]}//127.0.0.1:${flag === "--broker" ? 1883 : 8545}`,
    );
  }
  if (!protocols.includes(url.protocol) || url.hostname === "") {
    throw new SimulatorInputError(
      `${flag} "${text}" must be a ${protocols.map((p) => p.replace(":", "")).join("/")} URL with a host`,
    );
  }
}

function parseStart(text: string): number {
  if (/^[0-9]+$/.test(text)) return Number(text);
  const ms = Date.parse(text);
  if (Number.isNaN(ms))
    throw new SimulatorInputError(`--start must be unix seconds or an ISO 8601 time, got "${text}"`);
  return Math.floor(ms / 1000);
}

// ---------------------------------------------------------------------------------------------
// Run
// ---------------------------------------------------------------------------------------------

async function run(s: Settings): Promise<number> {
  const fleet = createFleet({
    seed: s.seed,
    devices: s.devices,
    keyTypes: s.keyTypes,
    intervalSeconds: s.intervalSeconds,
    domain: s.domain,
    firstDeviceId: s.firstDeviceId,
  });
  if (s.fleetOut !== undefined) {
    writeFileSync(s.fleetOut, `${JSON.stringify(fleetToJson(fleet), null, 2)}\n`);
    process.stdout.write(`wrote ${fleet.devices.length} device identities to ${s.fleetOut}\n`);
    if (s.fleetOnly) return 0;
  }

  const provider =
    s.warpRpc === undefined ? undefined : new JsonRpcProvider(s.warpRpc, undefined, { staticNetwork: true });
  let start = s.start;
  if (start === undefined) {
    if (provider !== undefined) start = (await chainTime(provider, s.warpRpc ?? "")) + 1;
    else start = Math.floor(Date.now() / 1000) - s.durationSeconds;
  }
  const to = start + s.durationSeconds;
  const scenarioOf = (index: number): ScenarioName =>
    s.scenario === "mixed" ? (SCENARIO_NAMES[index % SCENARIO_NAMES.length] ?? "compliant") : s.scenario;

  const abort = new AbortController();
  const onSignal = (): void => {
    process.stdout.write("\nstopping: disconnecting devices…\n");
    abort.abort();
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  const clock = s.dryRun ? { now: () => to } : new ScaledClock(start, s.speed);
  const counts = { messages: 0, readings: 0, tampered: 0 };
  let lastPrint = 0;
  const progress = (t: number, force = false): void => {
    if (!force && Date.now() - lastPrint < 2000) return;
    lastPrint = Date.now();
    const done = Math.min(100, ((t - start) / s.durationSeconds) * 100);
    process.stdout.write(
      `[${new Date(t * 1000).toISOString()}] ${done.toFixed(0).padStart(3)}%  messages ${counts.messages}  ` +
        `readings ${counts.readings}  tampered ${counts.tampered}\n`,
    );
  };
  let lastWarp = 0;
  process.stdout.write(
    `simulating ${s.devices} device(s), scenario ${s.scenario}, ${formatDuration(s.durationSeconds)} from ` +
      `${new Date(start * 1000).toISOString()} at ${s.speed}x ` +
      `(${formatDuration(s.durationSeconds / s.speed)} real), ${s.format} ${s.mode}s` +
      `${s.dryRun ? " (dry run)" : ` to ${s.brokerUrl ?? ""}`}\n`,
  );
  let ledger: FleetLedger;
  try {
    ledger = await runFleet({
      fleet,
      scenarioByDevice: (device) =>
        buildScenario(scenarioOf(device.index), {
          seed: s.seed,
          deviceIndex: device.index,
          from: start,
          to,
          intervalSeconds: s.intervalSeconds,
        }),
      brokerUrl: s.brokerUrl,
      ...(s.dryRun ? { transport: () => new DryRunTransport() } : {}),
      format: s.format,
      mode: s.mode,
      windowSize: s.windowSize,
      from: start,
      to,
      clock,
      tickMs: s.dryRun ? 0 : 100,
      signal: abort.signal,
      onPublish: (event: PublishEvent) => {
        counts.messages++;
        counts.readings += event.readings;
        if (event.tamper !== undefined) counts.tampered++;
      },
      onTick: async (t) => {
        if (t < to) progress(t);
        if (provider !== undefined && (t - lastWarp >= 30 || t >= to)) {
          lastWarp = t;
          await warpDevChain(provider, Math.floor(t));
        }
      },
    });
  } finally {
    provider?.destroy();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  progress(Math.min(clock.now(), to), true);
  const totals = ledgerTotals(ledger);
  if (s.ledgerOut !== undefined) {
    writeFileSync(s.ledgerOut, `${JSON.stringify(ledgerToJson(ledger), null, 2)}\n`);
  }
  process.stdout.write(
    `${abort.signal.aborted ? "stopped" : "done"}: ${totals.messages} messages, ${totals.readings} valid readings, ` +
      `${totals.tampered} tampered, ${totals.unpublished} unpublished` +
      `${s.ledgerOut === undefined ? "" : `; ledger in ${s.ledgerOut}`}\n`,
  );
  return 0;
}

async function chainTime(provider: JsonRpcProvider, url: string): Promise<number> {
  try {
    const block = await provider.getBlock("latest");
    if (block === null) throw new Error("no latest block");
    return block.timestamp;
  } catch (error) {
    throw new Error(
      `cannot read the time of --warp-rpc ${url} (${error instanceof Error ? error.message : String(error)}); is the node running?`,
      { cause: error },
    );
  }
}

/** Moves a dev node's time to `t` (never backwards) and mines a block there. */
exitQuietlyOnClosedPipe();
process.exitCode = await main(process.argv.slice(2));
