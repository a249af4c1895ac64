/**
 * The MQTT broker and the oracle of the local stack. The broker is aedes embedded on 127.0.0.1 (1883 when free)
 * unless the user names one with `--broker` (e.g. Mosquitto); the oracle is the production `Oracle` class run
 * in this process with its store in the run directory and the simulated clock.
 */
import { once } from "node:events";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

import { Aedes } from "aedes";
import { connectAsync } from "mqtt";
import { pino } from "pino";
import type { LevelWithSilent } from "pino";

import { parseConfig } from "../../oracle/config/index.js";
import { createLogger } from "../../oracle/log.js";
import { Oracle } from "../../oracle/oracle.js";
import type { Deployment } from "../../sdk/deployment.js";
import { deploymentStartBlock } from "../../sdk/deployment.js";
import { choosePort } from "./local-chain.js";
import type { PortChoice } from "./local-chain.js";

export interface Broker {
  readonly url: string;
  readonly embedded: boolean;
  stop(): Promise<void>;
}

export async function startBroker(options: { brokerUrl?: string; port: PortChoice }): Promise<Broker> {
  if (options.brokerUrl !== undefined) {
    const url = options.brokerUrl;
    try {
      const probe = await connectAsync(url, { connectTimeout: 5000, reconnectPeriod: 0 });
      await probe.endAsync();
    } catch (error) {
      throw new Error(`no MQTT broker answers at ${url} (${(error as Error).message}); start it or drop --broker`, {
        cause: error,
      });
    }
    return { url, embedded: false, stop: async () => {} };
  }
  const broker = new Aedes();
  await broker.listen();
  const server = createServer((socket) => broker.handle(socket));
  server.listen(await choosePort(options.port, "--broker-port"), "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    embedded: true,
    async stop() {
      server.close();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
}

export interface StackOracleOptions {
  readonly deployment: Deployment;
  readonly rpcUrl: string;
  readonly brokerUrl: string;
  readonly runDir: string;
  readonly privateKey: string;
  /** Milliseconds of simulated time: readings are checked against it for being in the future. */
  readonly observationClock: () => number;
  /** Unique per run: the oracle's MQTT client id and status topic (a shared broker keeps no stale session). */
  readonly oracleId: string;
  /** The oracle's structured log goes to `<runDir>/oracle.log` at this level. */
  readonly logLevel: LevelWithSilent;
  /** Called with the oracle before it starts, so the caller can stop it whatever happens next. */
  readonly onCreated?: (oracle: Oracle) => void;
  /** How long the start (relay, HTTP, MQTT connection) may take; default 20 s. */
  readonly startTimeoutMs?: number;
}

/** The oracle's alert stream for the dashboard (`serveApp({ alertsUrl })`): `GET /alerts` on its HTTP server. */
export function oracleAlertsUrl(oracle: Oracle): string {
  if (oracle.httpPort === undefined) throw new Error("the oracle's HTTP server is not running: no alert stream");
  return `http://127.0.0.1:${oracle.httpPort}/alerts`;
}

export async function startOracle(o: StackOracleOptions): Promise<Oracle> {
  const config = parseConfig({
    oracleId: o.oracleId,
    // A session that ends with the run: nothing queued for this oracle outlives it on a shared broker.
    mqtt: { url: o.brokerUrl, reconnectPeriodMs: 200, sessionExpirySeconds: 0 },
    chain: {
      rpcUrls: [o.rpcUrl],
      chainId: o.deployment.chainId,
      coldChain: o.deployment.contracts.ColdChain.address,
      confirmations: 1,
      pollIntervalMs: 100,
      registryFromBlock: deploymentStartBlock(o.deployment),
    },
    // A batch leaves after at most 4 s (wall clock; 80 simulated minutes at 1200x): fuller, cheaper batches.
    batch: { maxAgeMs: 4000 },
    store: { path: join(o.runDir, "oracle.db"), synchronous: "NORMAL" },
    // 127.0.0.1 (the default host): /metrics, /health and the dashboard's live alerts (GET /alerts, CORS "*").
    http: { port: 0 },
    // Real-time alerts on MQTT and GET /alerts; advisory, they change nothing the oracle relays.
    alerts: { enabled: true },
    log: { level: o.logLevel },
  });
  const oracle = new Oracle(
    config,
    { privateKey: o.privateKey, mqttPassword: undefined },
    {
      log: createLogger(o.logLevel, pino.destination({ dest: join(o.runDir, "oracle.log"), mkdir: true })),
      observationClock: o.observationClock,
    },
  );
  o.onCreated?.(oracle);
  const timeoutMs = o.startTimeoutMs ?? 20_000;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no connection to ${o.brokerUrl} or ${o.rpcUrl} within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
  });
  try {
    await Promise.race([oracle.start(), timeout]);
  } finally {
    clearTimeout(timer);
  }
  return oracle;
}
