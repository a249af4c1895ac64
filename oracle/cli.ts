/**
 * The oracle CLI, started by oracle/main.ts (`npm run oracle -- --config <file>`, the `coldchain-oracle` bin).
 * Reads the config and the secrets (environment or Hardhat keystore; a keystore password not in the environment
 * is asked for on the terminal), runs one instance, and stops cleanly on SIGINT / SIGTERM: the process exits within
 * {@link SHUTDOWN_DEADLINE_MS} whatever the broker, the RPC nodes and the disk do (each part of the oracle stops on
 * its own, with its own limit; past the deadline the process exits anyway, which the store makes as safe as a
 * crash). Exit code 0 when every part stopped cleanly, 1 otherwise; a second signal exits at once.
 *
 * A store that cannot be opened because its disk is full (or it is locked, or an I/O error) is waited for: the
 * oracle says why (an error line every few seconds, with the count) and tries again until it opens or a signal
 * comes. A store that is read-only or corrupt stops the process (exit code 1) with what to do.
 */
import { parseArgs } from "node:util";

import { describeSecretSources, loadConfig, promptKeystorePasswords, readSecrets } from "./config/index.js";
import type { OracleConfig, OracleSecrets } from "./config/index.js";
import { StoreError, isOracleError, messageOf } from "./errors.js";
import { createLogger } from "./log.js";
import type { Logger } from "./log.js";
import { RateLimitedLog } from "./log-limit.js";
import { Oracle, SHUTDOWN_DEADLINE_MS } from "./oracle.js";

const USAGE =
  "usage: coldchain-oracle --config <file.json>   (secrets: ORACLE_PRIVATE_KEY, ORACLE_MQTT_PASSWORD, or a Hardhat keystore: docs/operations.md)";

/** Between attempts to open a store that could not be opened for a reason that can pass (disk full, locked, I/O). */
const STORE_OPEN_RETRY_MS = 5_000;

async function main(): Promise<void> {
  let values: { config?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      options: { config: { type: "string", short: "c" }, help: { type: "boolean", short: "h" } },
      strict: true,
    }));
  } catch (error) {
    const message = ((error as Error).message.split("\n")[0] ?? "").replace(/\. To specify.*$/, "");
    console.error(`coldchain-oracle: ${message}; see --help\n${USAGE}`);
    process.exit(2);
  }
  if (values.help === true || values.config === undefined) {
    console.error(USAGE);
    process.exit(values.help === true ? 0 : 2);
  }
  const bootLog = createLogger("info");
  let log: Logger = bootLog;
  let oracle: Oracle | undefined;
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    log.info({ signal }, "shutting down");
    const running = oracle;
    if (running === undefined) process.exit(0); // not started (waiting for the store): nothing to stop
    setTimeout(() => {
      log.error(
        { deadlineMs: SHUTDOWN_DEADLINE_MS },
        "shutdown took longer than %d s: exiting now (the store resumes from its last commit)",
        SHUTDOWN_DEADLINE_MS / 1000,
      );
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    running.stop().then(
      () => process.exit(running.stopFailures.length === 0 ? 0 : 1),
      (error: unknown) => {
        log.error({ err: messageOf(error) }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const config = loadConfig(values.config);
    log = createLogger(config.log.level);
    const secrets = readSecrets(config, process.env, await promptKeystorePasswords(config));
    log.info(describeSecretSources(config), "secrets read");
    oracle = await open(config, secrets, log);
    await oracle.start();
  } catch (error) {
    bootLog.fatal({ code: isOracleError(error) ? error.code : undefined }, messageOf(error));
    process.exit(1);
  }
}

/**
 * The oracle, once its store opens: a store that cannot be opened for a reason that can pass (its disk full, locked
 * by another process, an I/O error) is tried again every {@link STORE_OPEN_RETRY_MS}, saying why; a signal ends the
 * wait (the process exits). Other errors are thrown.
 */
async function open(config: OracleConfig, secrets: OracleSecrets, log: Logger): Promise<Oracle> {
  const limited = new RateLimitedLog(log.child({ module: "store" }));
  for (;;) {
    try {
      return new Oracle(config, secrets, { log, processMetrics: true });
    } catch (error) {
      if (!(error instanceof StoreError) || !["full", "io", "busy"].includes(error.fault)) throw error;
      limited.error(
        `open:${error.fault}`,
        { err: error.message, code: error.code, fault: error.fault, retryInMs: STORE_OPEN_RETRY_MS },
        "cannot open the store: waiting for it (nothing is taken from the broker meanwhile)",
      );
      await new Promise((resolve) => setTimeout(resolve, STORE_OPEN_RETRY_MS));
    }
  }
}

await main();
