/**
 * The oracle's secrets: the signing key and the MQTT password are never in the config file. They come from
 * environment variables (their names are configurable) or from a Hardhat keystore (`npx hardhat keystore set
 * ORACLE_PRIVATE_KEY`, see ./keystore.ts), and are never logged.
 */
import { OracleError } from "../errors.js";
import {
  KeystoreError,
  KeystoreFile,
  defaultKeystorePath,
  devPasswordPath,
  promptHidden,
  readDevPassword,
} from "./keystore.js";
import type { UnlockedKeystore } from "./keystore.js";
import type { OracleConfig, SecretSource } from "./schema.js";

/** Secrets read from the environment or a Hardhat keystore; never logged, never stored. */
export interface OracleSecrets {
  readonly privateKey: string;
  readonly mqttPassword: string | undefined;
  /** The HMAC secrets of `alerts.webhooks`, in order (absent: no webhooks). */
  readonly webhookSecrets?: readonly string[];
}

/** The source of each webhook's HMAC secret (`alerts.webhooks[i].secret`, else the variable `secretEnv`). */
export function webhookSecretSources(config: OracleConfig): SecretSource[] {
  return config.alerts.webhooks.map((w) => w.secret ?? { from: "env", name: w.secretEnv ?? "" });
}

/** The source of the signing key: `signer.privateKey`, else the environment variable `signer.privateKeyEnv`. */
export function signerKeySource(config: OracleConfig): SecretSource {
  return config.signer.privateKey ?? { from: "env", name: config.signer.privateKeyEnv ?? "ORACLE_PRIVATE_KEY" };
}

/** The source of the MQTT password: `mqtt.password`, else the environment variable `mqtt.passwordEnv`. */
export function mqttPasswordSource(config: OracleConfig): SecretSource {
  return config.mqtt.password ?? { from: "env", name: config.mqtt.passwordEnv ?? "ORACLE_MQTT_PASSWORD" };
}

/** Where each secret comes from, for a log line (names and paths only, never values). */
export function describeSecretSources(
  config: OracleConfig,
  env: NodeJS.ProcessEnv = process.env,
): { signerKeyFrom: string; mqttPasswordFrom: string } {
  const describe = (source: SecretSource): string =>
    source.from === "env" ? `env ${source.name}` : `keystore ${keystorePathOf(source, env)} key ${source.key}`;
  // The MQTT password is optional: an unset variable means none (the signing key's absence fails earlier).
  const mqtt = mqttPasswordSource(config);
  const mqttPasswordFrom =
    mqtt.from === "env" && env[mqtt.name] === undefined ? `none (${mqtt.name} not set)` : describe(mqtt);
  return { signerKeyFrom: describe(signerKeySource(config)), mqttPasswordFrom };
}

/** Keystore passwords obtained interactively, by keystore file path. */
export type KeystorePasswords = Readonly<Record<string, string>>;

/**
 * Reads the secrets the config names, from the environment or a Hardhat keystore (decrypted here: scrypt,
 * about a second, once per keystore file). A keystore's password comes from `passwords` (see
 * {@link promptKeystorePasswords}), else its `passwordEnv` variable. Throws SECRET_MISSING with a one-line
 * message naming the config key and what to do; no message holds a secret.
 */
export function readSecrets(
  config: OracleConfig,
  env: NodeJS.ProcessEnv = process.env,
  passwords: KeystorePasswords = {},
): OracleSecrets {
  const unlocked = new Map<string, UnlockedKeystore>();
  const read = (configKey: string, source: SecretSource): string | undefined => {
    if (source.from === "env") return env[source.name];
    const path = keystorePathOf(source, env);
    let passwordFrom = "";
    try {
      let keystore = unlocked.get(path);
      if (keystore === undefined) {
        const file = KeystoreFile.read(path, { dev: source.dev, key: source.key });
        let password = passwords[path];
        if (source.dev) {
          password = readDevPassword(path);
          passwordFrom = ` (password from ${devPasswordPath(path)})`;
        } else if (password === undefined) {
          password = env[source.passwordEnv];
          passwordFrom = ` (password from ${source.passwordEnv})`;
        }
        if (password === undefined) {
          throw new OracleError(
            "SECRET_MISSING",
            `${configKey}: set ${source.passwordEnv} to the password of the keystore ${path} (or start the oracle on a terminal to be asked)`,
          );
        }
        keystore = file.unlock(password);
        unlocked.set(path, keystore);
      }
      return keystore.get(source.key, source.dev);
    } catch (cause) {
      if (!(cause instanceof KeystoreError)) throw cause;
      const hint = cause.reason === "wrong_password" ? passwordFrom : "";
      throw new OracleError("SECRET_MISSING", `${configKey}: ${cause.message}${hint}`, { cause });
    }
  };

  const keySource = signerKeySource(config);
  const rawKey = read("signer.privateKey", keySource)?.trim();
  if (rawKey === undefined || !/^(0x)?[0-9a-fA-F]{64}$/.test(rawKey)) {
    throw new OracleError(
      "SECRET_MISSING",
      keySource.from === "env"
        ? `set ${keySource.name} to the oracle's 32-byte hex private key (the account that pays gas)`
        : `signer.privateKey: the value of "${keySource.key}" in the keystore ${keystorePathOf(keySource, env)} is not a 32-byte hex private key; replace it with \`npx hardhat keystore set${keySource.dev ? " --dev" : ""} --force ${keySource.key}\``,
    );
  }
  const mqttPassword = read("mqtt.password", mqttPasswordSource(config));
  const webhookSecrets = webhookSecretSources(config).map((source, i) => {
    const secret = read(`alerts.webhooks[${i}].secret`, source);
    if (secret === undefined || secret.length < 16) {
      throw new OracleError(
        "SECRET_MISSING",
        source.from === "env"
          ? `alerts.webhooks[${i}]: set ${source.name} to the webhook's HMAC secret (at least 16 characters)`
          : `alerts.webhooks[${i}].secret: the value of "${source.key}" in the keystore is shorter than 16 characters`,
      );
    }
    return secret;
  });
  return {
    privateKey: rawKey.startsWith("0x") ? rawKey : `0x${rawKey}`,
    mqttPassword,
    ...(webhookSecrets.length === 0 ? {} : { webhookSecrets }),
  };
}

/**
 * Asks on the terminal for the password of each production keystore the config reads whose password variable
 * is unset (once per file). Returns nothing to ask when stdin is not a terminal: {@link readSecrets} then
 * says which variable to set.
 */
export async function promptKeystorePasswords(
  config: OracleConfig,
  env: NodeJS.ProcessEnv = process.env,
  ask: (question: string) => Promise<string> = (question) => promptHidden(question),
  interactive: boolean = process.stdin.isTTY === true,
): Promise<KeystorePasswords> {
  const passwords: Record<string, string> = {};
  if (!interactive) return passwords;
  for (const source of [signerKeySource(config), mqttPasswordSource(config), ...webhookSecretSources(config)]) {
    if (source.from !== "keystore" || source.dev || env[source.passwordEnv] !== undefined) continue;
    const path = keystorePathOf(source, env);
    passwords[path] ??= await ask(`Password of the Hardhat keystore ${path}: `);
  }
  return passwords;
}

function keystorePathOf(source: SecretSource & { from: "keystore" }, env: NodeJS.ProcessEnv): string {
  return source.path ?? defaultKeystorePath(source.dev, env);
}
