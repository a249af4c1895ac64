/**
 * Oracle secrets from a Hardhat keystore (oracle/config/keystore.ts, `readSecrets` in oracle/config/schema.ts). Keystore
 * files are written by hardhat-keystore itself: the production one through the package's own encryption
 * module (its writer), the development one by the real `npx hardhat keystore set --dev` CLI. Then: the key
 * and the MQTT password read back, every refusal with its one-line message (no secret in any of them), the
 * environment still working, the terminal prompt, and the oracle process's start-up output free of secrets.
 */
import { spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { expect } from "chai";
import { Wallet } from "ethers";

import { loadConfig, parseConfig, promptKeystorePasswords, readSecrets } from "../../oracle/config/index.js";
import type { OracleConfigInput } from "../../oracle/config/index.js";
import { isOracleError } from "../../oracle/errors.js";
import { defaultKeystorePath, hardhatConfigDir } from "../../oracle/config/keystore.js";
import { REPO_ROOT, freePort, tempDir } from "./support.js";

/** The part of hardhat-keystore's `src/internal/keystores/encryption.ts` used to write keystores. */
interface HardhatKeystoreEncryption {
  createMasterKey(args: { password: string }): { salt: Uint8Array; masterKey: Uint8Array };
  createEmptyEncryptedKeystore(args: { masterKey: Uint8Array; salt: Uint8Array }): object;
  addSecretToKeystore(args: { masterKey: Uint8Array; encryptedKeystore: object; key: string; value: string }): object;
}

/** The package exports only its plugin; its writer is loaded from the installed files. */
async function hardhatKeystoreWriter(): Promise<HardhatKeystoreEncryption> {
  const entry = import.meta.resolve("@nomicfoundation/hardhat-keystore");
  return (await import(new URL("./internal/keystores/encryption.js", entry).href)) as HardhatKeystoreEncryption;
}

const CHAIN = {
  rpcUrls: ["http://127.0.0.1:8545"],
  chainId: 31337,
  coldChain: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
};
const PASSWORD = "correct horse battery staple";
const MQTT_PASSWORD = "mqtt-Pa55word-7f3a";
const BAD_VALUE = "zz-not-a-private-key-zz";

function config(extra: Partial<OracleConfigInput> = {}): ReturnType<typeof parseConfig> {
  return parseConfig({ chain: CHAIN, ...extra });
}

const fromKeystore = (key: string, more: Record<string, unknown> = {}) => ({ from: "keystore", key, ...more }) as const;

/** Runs `fn` expecting SECRET_MISSING; returns its message. */
function secretError(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(isOracleError(error, "SECRET_MISSING"), String(error)).to.equal(true);
    const message = (error as Error).message;
    expect(message).to.not.include("\n");
    return message;
  }
  throw new Error("expected SECRET_MISSING");
}

describe("oracle secrets from the Hardhat keystore (oracle/config/keystore.ts)", function () {
  this.timeout(60_000);
  const signer = Wallet.createRandom();
  const privateKey = signer.privateKey;
  let xdg: string;
  let env: NodeJS.ProcessEnv;
  let keystorePath: string;

  before(async () => {
    xdg = tempDir("coldchain-keystore-");
    env = { XDG_CONFIG_HOME: xdg };
    keystorePath = defaultKeystorePath(false, env);
    const hh = await hardhatKeystoreWriter();
    const { masterKey, salt } = hh.createMasterKey({ password: PASSWORD });
    let keystore = hh.createEmptyEncryptedKeystore({ masterKey, salt });
    for (const [key, value] of [
      ["ORACLE_PRIVATE_KEY", privateKey],
      ["ORACLE_MQTT_PASSWORD", MQTT_PASSWORD],
      ["BAD_KEY", BAD_VALUE],
    ] as const) {
      keystore = hh.addSecretToKeystore({ masterKey, encryptedKeystore: keystore, key, value });
    }
    mkdirSync(hardhatConfigDir(env), { recursive: true });
    writeFileSync(keystorePath, JSON.stringify(keystore, null, 2));
  });

  it("finds the keystore where Hardhat keeps it", async () => {
    expect(keystorePath).to.equal(join(xdg, "hardhat-nodejs", "keystore.json"));
    expect(hardhatConfigDir({}, "linux", "/home/op")).to.equal("/home/op/.config/hardhat-nodejs");
    expect(hardhatConfigDir({}, "darwin", "/Users/op")).to.equal("/Users/op/Library/Preferences/hardhat-nodejs");
    expect(hardhatConfigDir({ APPDATA: "C:\\AD" }, "win32", "C:\\op")).to.equal("C:\\AD\\hardhat-nodejs\\Config");
    // Cross-check with Hardhat's own resolution (it reads the live process environment).
    const { getConfigDir } = await import("@nomicfoundation/hardhat-utils/global-dir");
    const saved = process.env.XDG_CONFIG_HOME;
    process.env.XDG_CONFIG_HOME = xdg;
    try {
      expect(await getConfigDir()).to.equal(hardhatConfigDir(process.env));
    } finally {
      if (saved === undefined) delete process.env.XDG_CONFIG_HOME;
      else process.env.XDG_CONFIG_HOME = saved;
    }
  });

  it("reads the signing key and the MQTT password from the keystore hardhat-keystore wrote", () => {
    const c = config({
      signer: { privateKey: fromKeystore("ORACLE_PRIVATE_KEY") },
      mqtt: { username: "oracle", password: fromKeystore("ORACLE_MQTT_PASSWORD") },
    });
    const secrets = readSecrets(c, { ...env, ORACLE_KEYSTORE_PASSWORD: PASSWORD });
    expect(secrets.privateKey).to.equal(privateKey);
    expect(secrets.mqttPassword).to.equal(MQTT_PASSWORD);
    // The same keystore at an explicit path, its password from a variable of another name.
    const explicit = config({
      signer: { privateKey: fromKeystore("ORACLE_PRIVATE_KEY", { path: keystorePath, passwordEnv: "KS_PW" }) },
    });
    expect(readSecrets(explicit, { KS_PW: PASSWORD }).privateKey).to.equal(privateKey);
  });

  it("refuses a wrong or missing password, naming the variable and never the password", () => {
    const c = config({ signer: { privateKey: fromKeystore("ORACLE_PRIVATE_KEY") } });
    const wrong = "not the password at all";
    const message = secretError(() => readSecrets(c, { ...env, ORACLE_KEYSTORE_PASSWORD: wrong }));
    expect(message).to.match(/^SECRET_MISSING: signer\.privateKey: wrong password for the keystore /);
    expect(message).to.equal(
      `SECRET_MISSING: signer.privateKey: wrong password for the keystore ${keystorePath}, or the file is corrupted (password from ORACLE_KEYSTORE_PASSWORD)`,
    );
    expect(secretError(() => readSecrets(c, env))).to.match(
      /: signer\.privateKey: set ORACLE_KEYSTORE_PASSWORD to the password of the keystore .*keystore\.json \(or start the oracle on a terminal to be asked\)$/,
    );
  });

  it("names the keys a keystore has when the one asked for is missing", () => {
    const c = config({
      signer: { privateKey: fromKeystore("ORACLE_PRIVATE_KEY") },
      mqtt: { password: fromKeystore("NOPE") },
    });
    const message = secretError(() => readSecrets(c, { ...env, ORACLE_KEYSTORE_PASSWORD: PASSWORD }));
    expect(message).to.equal(
      `SECRET_MISSING: mqtt.password: the keystore ${keystorePath} has no key "NOPE" (it has: BAD_KEY, ORACLE_MQTT_PASSWORD, ORACLE_PRIVATE_KEY); add it with \`npx hardhat keystore set NOPE\``,
    );
  });

  it("says which command creates a missing keystore", () => {
    const c = config({ signer: { privateKey: fromKeystore("ORACLE_PRIVATE_KEY") } });
    const other = { XDG_CONFIG_HOME: tempDir("coldchain-keystore-none-"), ORACLE_KEYSTORE_PASSWORD: PASSWORD };
    expect(secretError(() => readSecrets(c, other))).to.match(
      /signer\.privateKey: no Hardhat keystore at .*hardhat-nodejs\/keystore\.json; create it with `npx hardhat keystore set ORACLE_PRIVATE_KEY`$/,
    );
    const dev = config({ signer: { privateKey: fromKeystore("ORACLE_PRIVATE_KEY", { dev: true }) } });
    expect(secretError(() => readSecrets(dev, other))).to.match(
      /dev\.keystore\.json; create it with `npx hardhat keystore set --dev ORACLE_PRIVATE_KEY`$/,
    );
  });

  it("refuses a value that is not a private key without showing it", () => {
    const c = config({ signer: { privateKey: fromKeystore("BAD_KEY") } });
    const message = secretError(() => readSecrets(c, { ...env, ORACLE_KEYSTORE_PASSWORD: PASSWORD }));
    expect(message).to.match(
      /the value of "BAD_KEY" in the keystore .* is not a 32-byte hex private key; replace it with `npx hardhat keystore set --force BAD_KEY`/,
    );
    expect(message).to.not.include(BAD_VALUE);
  });

  it("refuses a keystore edited by hand or not a keystore at all", () => {
    const dir = tempDir("coldchain-keystore-bad-");
    const original = JSON.parse(readFileSync(keystorePath, "utf8")) as { secrets: Record<string, unknown> };
    const tampered = { ...original, secrets: { ...original.secrets, EXTRA: original.secrets.BAD_KEY } };
    writeFileSync(join(dir, "tampered.json"), JSON.stringify(tampered));
    writeFileSync(join(dir, "text.json"), "hello");
    writeFileSync(join(dir, "v2.json"), JSON.stringify({ ...original, version: "hardhat-v2-keystore" }));
    const at = (file: string) =>
      config({ signer: { privateKey: fromKeystore("ORACLE_PRIVATE_KEY", { path: join(dir, file) }) } });
    const pw = { ORACLE_KEYSTORE_PASSWORD: PASSWORD };
    expect(secretError(() => readSecrets(at("tampered.json"), pw))).to.match(/fails its integrity check/);
    expect(secretError(() => readSecrets(at("text.json"), pw))).to.match(/text\.json is not valid JSON$/);
    expect(secretError(() => readSecrets(at("v2.json"), pw))).to.match(/is not a hardhat-v3-keystore-1 file/);
  });

  it("still reads secrets from the environment (short and long forms)", () => {
    const other = Wallet.createRandom().privateKey;
    expect(readSecrets(config(), { ORACLE_PRIVATE_KEY: other }).privateKey).to.equal(other);
    const short = config({ signer: { privateKeyEnv: "MY_KEY" }, mqtt: { passwordEnv: "MY_MQTT_PW" } });
    expect(readSecrets(short, { MY_KEY: other.slice(2), MY_MQTT_PW: "pw" })).to.deep.equal({
      privateKey: other,
      mqttPassword: "pw",
    });
    const long = config({ signer: { privateKey: { from: "env", name: "MY_KEY" } } });
    expect(readSecrets(long, { MY_KEY: other }).privateKey).to.equal(other);
    expect(readSecrets(long, { MY_KEY: other }).mqttPassword).to.equal(undefined);
    expect(secretError(() => readSecrets(long, { MY_KEY: "0x1234" }))).to.match(
      /set MY_KEY to the oracle's 32-byte hex/,
    );
    // Both forms at once is a config error; the long form can come from an ORACLE__ override.
    expect(() => config({ signer: { privateKeyEnv: "A", privateKey: { from: "env", name: "B" } } })).to.throw(
      /CONFIG_INVALID: .*set signer\.privateKey or signer\.privateKeyEnv, not both/,
    );
    const dir = tempDir("coldchain-keystore-config-");
    writeFileSync(join(dir, "oracle.json"), JSON.stringify({ chain: CHAIN }));
    const overridden = loadConfig(join(dir, "oracle.json"), {
      ORACLE__SIGNER__PRIVATE_KEY: JSON.stringify(fromKeystore("ORACLE_PRIVATE_KEY")),
    });
    expect(readSecrets(overridden, { ...env, ORACLE_KEYSTORE_PASSWORD: PASSWORD }).privateKey).to.equal(privateKey);
  });

  it("asks for a keystore password once per file, only on a terminal and only when the environment lacks it", async () => {
    const c = config({
      signer: { privateKey: fromKeystore("ORACLE_PRIVATE_KEY") },
      mqtt: { password: fromKeystore("ORACLE_MQTT_PASSWORD") },
    });
    const questions: string[] = [];
    const ask = (q: string): Promise<string> => {
      questions.push(q);
      return Promise.resolve(PASSWORD);
    };
    const passwords = await promptKeystorePasswords(c, env, ask, true);
    expect(questions).to.deep.equal([`Password of the Hardhat keystore ${keystorePath}: `]);
    expect(readSecrets(c, env, passwords).mqttPassword).to.equal(MQTT_PASSWORD);
    expect(await promptKeystorePasswords(c, { ...env, ORACLE_KEYSTORE_PASSWORD: "x" }, ask, true)).to.deep.equal({});
    expect(await promptKeystorePasswords(c, env, ask, false)).to.deep.equal({});
    expect(questions).to.have.length(1);
  });

  it("reads the development keystore `npx hardhat keystore set --dev` writes", async function () {
    this.timeout(90_000);
    const devXdg = tempDir("coldchain-keystore-dev-");
    const devKey = Wallet.createRandom().privateKey;
    const proc = spawn("npx", ["hardhat", "keystore", "set", "--dev", "ORACLE_PRIVATE_KEY"], {
      cwd: REPO_ROOT,
      env: { ...process.env, XDG_CONFIG_HOME: devXdg },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    proc.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    proc.stdin.end(`${devKey}\n`);
    const [code] = (await once(proc, "exit")) as [number | null];
    expect(code, out).to.equal(0);
    expect(out).to.include('Key "ORACLE_PRIVATE_KEY" set in the development keystore');
    const c = config({ signer: { privateKey: fromKeystore("ORACLE_PRIVATE_KEY", { dev: true }) } });
    expect(readSecrets(c, { XDG_CONFIG_HOME: devXdg }).privateKey).to.equal(devKey);
  });

  describe("the oracle process", () => {
    const children: ChildProcess[] = [];
    after(() => {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    });

    /** Starts `oracle/main.ts` on a keystore config (no broker, no chain: only its start-up output matters). */
    async function startOracle(
      extraEnv: NodeJS.ProcessEnv,
      until: RegExp,
      tty = false,
    ): Promise<{ output: string; proc: ChildProcess }> {
      const dir = tempDir("coldchain-keystore-run-");
      const configPath = join(dir, "oracle.json");
      writeFileSync(
        configPath,
        JSON.stringify({
          chain: { ...CHAIN, rpcUrls: [`http://127.0.0.1:${await freePort()}`] },
          mqtt: {
            url: `mqtt://127.0.0.1:${await freePort()}`,
            username: "oracle",
            password: fromKeystore("ORACLE_MQTT_PASSWORD"),
          },
          signer: { privateKey: fromKeystore("ORACLE_PRIVATE_KEY") },
          store: { path: join(dir, "oracle.db") },
          http: { port: 0 },
          log: { level: "trace" },
        }),
      );
      const command = [process.execPath, "--import", "tsx", "oracle/main.ts", "--config", configPath];
      const childEnv: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: xdg, NODE_NO_WARNINGS: "1" };
      delete childEnv.ORACLE_PRIVATE_KEY;
      delete childEnv.ORACLE_KEYSTORE_PASSWORD;
      Object.assign(childEnv, extraEnv);
      const proc = tty
        ? spawn("script", ["-q", "-e", "-c", command.map((a) => `'${a}'`).join(" "), "/dev/null"], {
            cwd: REPO_ROOT,
            env: childEnv,
            stdio: ["pipe", "pipe", "pipe"],
          })
        : spawn(command[0] as string, command.slice(1), {
            cwd: REPO_ROOT,
            env: childEnv,
            stdio: ["pipe", "pipe", "pipe"],
          });
      children.push(proc);
      let output = "";
      let asked = false;
      await new Promise<void>((resolve, reject) => {
        const onData = (chunk: Buffer): void => {
          output += chunk.toString();
          if (tty && !asked && output.includes("Password of the Hardhat keystore")) {
            asked = true;
            proc.stdin?.write(`${PASSWORD}\r`);
          }
          if (until.test(output)) resolve();
        };
        proc.stdout?.on("data", onData);
        proc.stderr?.on("data", onData);
        proc.once("exit", (code) =>
          until.test(output) ? resolve() : reject(new Error(`oracle exited (${code}): ${output}`)),
        );
      });
      return { output, proc };
    }

    async function stop(proc: ChildProcess): Promise<string> {
      let rest = "";
      proc.stdout?.on("data", (chunk: Buffer) => (rest += chunk.toString()));
      proc.stderr?.on("data", (chunk: Buffer) => (rest += chunk.toString()));
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = once(proc, "exit");
        proc.kill("SIGTERM");
        const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }
      return rest;
    }

    const expectNoSecret = (output: string): void => {
      for (const secret of [privateKey, privateKey.slice(2), PASSWORD, MQTT_PASSWORD]) {
        expect(output, "a secret in the oracle's output").to.not.include(secret);
      }
    };

    it("starts with its key from the keystore and prints no secret", async function () {
      this.timeout(60_000);
      // With Node's warnings on: node:sqlite's experimental-feature warning is left out (JSON lines only).
      const { output, proc } = await startOracle(
        { ORACLE_KEYSTORE_PASSWORD: PASSWORD, NODE_NO_WARNINGS: undefined },
        /"oracle starting"/,
      );
      const all = output + (await stop(proc));
      expect(all).to.include(`"signer":"${signer.address}"`);
      expect(all).to.include(`"signerKeyFrom":"keystore ${keystorePath} key ORACLE_PRIVATE_KEY"`);
      expect(all).to.match(/"secp256k1":"(native|wasm)"/);
      if (process.platform === "linux" && process.arch === "x64") expect(all).to.include(`"secp256k1":"native"`);
      expect(all).to.not.include("ExperimentalWarning");
      expectNoSecret(all);
    });

    it("asks for the password on a terminal without echoing it", async function () {
      this.timeout(60_000);
      // util-linux `script` gives the oracle a pseudo-terminal.
      if (spawnSync("sh", ["-c", "command -v script"]).status !== 0) this.skip();
      const { output, proc } = await startOracle({}, /"oracle starting"/, true);
      const all = output + (await stop(proc));
      expect(all).to.include(`"signer":"${signer.address}"`);
      expectNoSecret(all);
    });

    it("exits with one clear line on a wrong password", async function () {
      this.timeout(60_000);
      const wrong = "wrong-password-123";
      const { output, proc } = await startOracle({ ORACLE_KEYSTORE_PASSWORD: wrong }, /wrong password/);
      if (proc.exitCode === null) await once(proc, "exit");
      expect(proc.exitCode).to.equal(1);
      expect(output).to.match(
        /"level":60,.*"msg":"SECRET_MISSING: signer\.privateKey: wrong password for the keystore /,
      );
      expectNoSecret(output);
      expect(output).to.not.include(wrong);
    });
  });
});
