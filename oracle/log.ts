/**
 * Structured logs (pino), one child logger per module. Secrets never reach a log line: the config holds
 * none (they come from the environment or the Hardhat keystore), and the redaction list below catches them if a caller logs one.
 */
import { pino } from "pino";
import type { DestinationStream, Logger, LevelWithSilent } from "pino";

export type { Logger } from "pino";

/** Keys whose values are replaced by "[redacted]" wherever they appear (two levels deep). */
export const REDACTED_KEYS = ["privateKey", "password", "secret", "authorization", "rawTx"] as const;

/** The root logger of one oracle process. */
export function createLogger(level: LevelWithSilent, destination?: DestinationStream): Logger {
  const paths = REDACTED_KEYS.flatMap((key) => [key, `*.${key}`]);
  return pino(
    {
      level,
      base: { service: "coldchain-oracle" },
      redact: { paths, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
