/**
 * The oracle CLI, started by oracle/main.ts (`npm run oracle -- --config <file>`, the `coldchain-oracle` bin).
 * Reads the config and the secrets (environment or Hardhat keystore; a keystore password not in the environment
 * is asked for on the terminal), runs one instance, and stops cleanly on SIGINT / SIGTERM (a second signal exits
 * at once; the store makes that safe too).
 */
import { parseArgs } from "node:util";

import { describeSecretSources, loadConfig, promptKeystorePasswords, readSecrets } from "./config.js";
import { isOracleError, messageOf } from "./errors.js";
import { createLogger } from "./log.js";
import { Oracle } from "./oracle.js";

const USAGE =
  "usage: coldchain-oracle --config <file.json>   (secrets: ORACLE_PRIVATE_KEY, ORACLE_MQTT_PASSWORD, or a Hardhat keystore: docs/operations.md)";

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: "string", short: "c" }, help: { type: "boolean" } } });
  if (values.help === true || values.config === undefined) {
    console.error(USAGE);
    process.exit(values.help === true ? 0 : 2);
  }
  const bootLog = createLogger("info");
  let oracle: Oracle;
  try {
    const config = loadConfig(values.config);
    const log = createLogger(config.log.level);
    const secrets = readSecrets(config, process.env, await promptKeystorePasswords(config));
    log.info(describeSecretSources(config), "secrets read");
    oracle = new Oracle(config, secrets, { log, processMetrics: true });
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      signals++;
      if (signals > 1) {
        log.warn({ signal }, "second signal: exiting now");
        process.exit(1);
      }
      log.info({ signal }, "shutting down");
      oracle.stop().then(
        () => process.exit(0),
        (error: unknown) => {
          log.error({ err: messageOf(error) }, "shutdown failed");
          process.exit(1);
        },
      );
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    await oracle.start();
  } catch (error) {
    bootLog.fatal({ code: isOracleError(error) ? error.code : undefined }, messageOf(error));
    process.exit(1);
  }
}

await main();
