/**
 * Reads secrets from a Hardhat keystore: the encrypted file that `npx hardhat keystore set <KEY>` writes
 * (production) or `npx hardhat keystore set --dev <KEY>` (development), so one keystore serves the deploy
 * scripts (`configVariable()` in hardhat.config.ts) and the oracle.
 *
 * The format is the one of @nomicfoundation/hardhat-keystore 3.1.0, `src/internal/keystores/encryption.ts`
 * (version tag `hardhat-v3-keystore-1`); that package exports only its Hardhat plugin, so the reading side is
 * re-implemented here:
 * - master key = scrypt(NFKC(password), salt, N = 2^17, r = 8, p = 1, 32 bytes) (node:crypto);
 * - `hmacKey` and `dataEncryptionKey` are AES-256-GCM-SIV encryptions, under the master key, of their hex
 *   text; each secret is an AES-256-GCM-SIV encryption, under the data key, of its UTF-8 value (@noble/ciphers,
 *   the library and version the package itself uses);
 * - `hmac` = HMAC-SHA-256(hmacKey, JSON of the whole file without `hmac`, object keys sorted at every level).
 * A wrong password fails to decrypt `hmacKey` (GCM-SIV authenticates), a tampered file fails the HMAC.
 *
 * Where the files are (hardhat-utils 4.3 `getConfigDir()`, i.e. env-paths 4 of "hardhat" with suffix
 * "nodejs"): Linux `$XDG_CONFIG_HOME/hardhat-nodejs` (default `~/.config/hardhat-nodejs`), macOS
 * `~/Library/Preferences/hardhat-nodejs`, Windows `%APPDATA%\hardhat-nodejs\Config`. The production keystore
 * is `keystore.json` there; the development one `dev.keystore.json`, whose password Hardhat generates and keeps
 * in plain text in `hardhat.checksum` beside it (a convenience for test keys, not protection).
 *
 * Nothing here logs; error messages name files and keys, never values or passwords.
 */
import { createHmac, scryptSync, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, posix, win32 } from "node:path";

import { gcmsiv } from "@noble/ciphers/aes.js";

/** The `version` of the keystore files this module reads. */
export const KEYSTORE_VERSION = "hardhat-v3-keystore-1";

/** scrypt parameters of that version (fixed by the format; the file repeats them). */
const SCRYPT = { N: 131_072, r: 8, p: 1, keyLength: 32 } as const;
/** scrypt needs 128·N·r bytes (128 MiB); node:crypto refuses more than 32 MiB unless told. */
const SCRYPT_MAXMEM = 256 * 1024 * 1024;

/** Why a keystore could not give a value. */
export type KeystoreErrorReason = "missing" | "malformed" | "wrong_password" | "tampered" | "no_key";

/** A keystore problem; the message says what to do and never holds a secret. */
export class KeystoreError extends Error {
  readonly reason: KeystoreErrorReason;

  constructor(reason: KeystoreErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "KeystoreError";
    this.reason = reason;
  }
}

/** Hardhat's global config directory (where `npx hardhat keystore path` points). */
export function hardhatConfigDir(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
  home: string = homedir(),
): string {
  const name = "hardhat-nodejs";
  if (platform === "darwin") return posix.join(home, "Library", "Preferences", name);
  if (platform === "win32")
    return win32.join(nonEmpty(env.APPDATA) ?? win32.join(home, "AppData", "Roaming"), name, "Config");
  return posix.join(nonEmpty(env.XDG_CONFIG_HOME) ?? posix.join(home, ".config"), name);
}

/** The keystore file Hardhat uses: `keystore.json`, or `dev.keystore.json` for `--dev`. */
export function defaultKeystorePath(dev: boolean, env: NodeJS.ProcessEnv = process.env): string {
  return join(hardhatConfigDir(env), dev ? "dev.keystore.json" : "keystore.json");
}

/** The file holding a development keystore's generated password (`hardhat.checksum` beside it). */
export function devPasswordPath(keystorePath: string): string {
  return join(dirname(keystorePath), "hardhat.checksum");
}

/** Reads a development keystore's password from its `hardhat.checksum` file. */
export function readDevPassword(keystorePath: string): string {
  const path = devPasswordPath(keystorePath);
  try {
    return readFileSync(path, "utf8");
  } catch (cause) {
    throw new KeystoreError(
      "missing",
      `the development keystore's password file ${path} is missing; recreate the keystore with \`npx hardhat keystore set --dev <KEY>\``,
      { cause },
    );
  }
}

/** The command that adds `key` to a keystore (for error messages). */
export function keystoreSetCommand(key: string, dev: boolean, force = false): string {
  return `npx hardhat keystore set${dev ? " --dev" : ""}${force ? " --force" : ""} ${key}`;
}

interface EncryptedData {
  readonly iv: Uint8Array;
  readonly cypherText: Uint8Array;
}

/** A keystore file, parsed and checked for shape but not yet unlocked. */
export class KeystoreFile {
  /** The file's whole JSON object: the HMAC covers every field, known or not. */
  private readonly raw: Record<string, unknown>;
  private readonly salt: Uint8Array;
  private readonly hmacKey: EncryptedData;
  private readonly dataKey: EncryptedData;
  private readonly secrets: ReadonlyMap<string, EncryptedData>;
  private readonly hmac: string;

  private constructor(
    readonly path: string,
    raw: Record<string, unknown>,
  ) {
    this.raw = raw;
    const bad = (what: string): KeystoreError =>
      new KeystoreError("malformed", `the keystore ${path} is not a ${KEYSTORE_VERSION} file (${what})`);
    if (raw.version !== KEYSTORE_VERSION) throw bad(`version ${JSON.stringify(raw.version)}`);
    const crypto = record(raw.crypto);
    const kdf = record(crypto?.masterKeyDerivation);
    const cipher = record(crypto?.encryption);
    const mac = record(crypto?.hmac);
    if (
      kdf?.algorithm !== "scrypt" ||
      kdf.paramN !== SCRYPT.N ||
      kdf.paramR !== SCRYPT.r ||
      kdf.paramP !== SCRYPT.p ||
      kdf.keyLength !== SCRYPT.keyLength * 8 ||
      kdf.unicodeNormalizationForm !== "NFKC" ||
      cipher?.algorithm !== "AES-GCM-SIV" ||
      cipher.keyLength !== 256 ||
      mac?.algorithm !== "HMAC-SHA-256" ||
      mac.keyLength !== 256
    ) {
      throw bad("unexpected crypto parameters");
    }
    const salt = hexBytes(kdf.salt);
    if (salt === undefined) throw bad("crypto.masterKeyDerivation.salt");
    this.salt = salt;
    const encrypted = (value: unknown, name: string): EncryptedData => {
      const r = record(value);
      const iv = hexBytes(r?.iv);
      const cypherText = hexBytes(r?.cypherText);
      if (iv === undefined || cypherText === undefined || iv.length !== 12) throw bad(name);
      return { iv, cypherText };
    };
    this.hmacKey = encrypted(raw.hmacKey, "hmacKey");
    this.dataKey = encrypted(raw.dataEncryptionKey, "dataEncryptionKey");
    const secrets = record(raw.secrets);
    if (secrets === undefined) throw bad("secrets");
    this.secrets = new Map(Object.entries(secrets).map(([k, v]) => [k, encrypted(v, `secrets.${k}`)]));
    if (typeof raw.hmac !== "string" || !/^[0-9a-f]{64}$/.test(raw.hmac)) throw bad("hmac");
    this.hmac = raw.hmac;
  }

  /** Reads and checks a keystore file. `dev` and `key` only shape the "missing" message. */
  static read(path: string, { dev = false, key = "<KEY>" }: { dev?: boolean; key?: string } = {}): KeystoreFile {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      if (code === "ENOENT") {
        throw new KeystoreError(
          "missing",
          `no Hardhat keystore at ${path}; create it with \`${keystoreSetCommand(key, dev)}\``,
          { cause },
        );
      }
      throw new KeystoreError("missing", `cannot read the keystore ${path} (${code ?? "error"})`, { cause });
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (cause) {
      throw new KeystoreError("malformed", `the keystore ${path} is not valid JSON`, { cause });
    }
    const object = record(raw);
    if (object === undefined) throw new KeystoreError("malformed", `the keystore ${path} must hold a JSON object`);
    return new KeystoreFile(path, object);
  }

  /** Key names, as stored (not authenticated until {@link unlock}). */
  keys(): string[] {
    return [...this.secrets.keys()].sort();
  }

  /**
   * Derives the master key (scrypt: about 0.3 s and 128 MiB, once) and checks the password and the file's
   * integrity. Throws `wrong_password` or `tampered`.
   */
  unlock(password: string): UnlockedKeystore {
    const masterKey = new Uint8Array(
      scryptSync(password.normalize("NFKC"), this.salt, SCRYPT.keyLength, {
        N: SCRYPT.N,
        r: SCRYPT.r,
        p: SCRYPT.p,
        maxmem: SCRYPT_MAXMEM,
      }),
    );
    let hmacKey: Uint8Array;
    try {
      hmacKey = hexKey(decrypt(masterKey, this.hmacKey));
    } catch (cause) {
      throw new KeystoreError(
        "wrong_password",
        `wrong password for the keystore ${this.path}, or the file is corrupted`,
        { cause },
      );
    }
    const expected = createHmac("sha256", hmacKey)
      .update(sortedJson({ ...this.raw, hmac: undefined }))
      .digest();
    if (!timingSafeEqual(expected, Buffer.from(this.hmac, "hex"))) {
      throw new KeystoreError(
        "tampered",
        `the keystore ${this.path} fails its integrity check (edited by hand or corrupted); recreate it with \`npx hardhat keystore set\``,
      );
    }
    let dataKey: Uint8Array;
    try {
      dataKey = hexKey(decrypt(masterKey, this.dataKey));
    } catch (cause) {
      throw new KeystoreError("tampered", `the keystore ${this.path} has a corrupted data key`, { cause });
    }
    return new UnlockedKeystore(this, dataKey, this.secrets);
  }
}

/** An unlocked keystore: values can be read. */
export class UnlockedKeystore {
  constructor(
    private readonly file: KeystoreFile,
    private readonly dataKey: Uint8Array,
    private readonly secrets: ReadonlyMap<string, EncryptedData>,
  ) {}

  /** Key names (authenticated). */
  keys(): string[] {
    return this.file.keys();
  }

  /** The value of `key`; throws `no_key` naming the keys the keystore has (names only). */
  get(key: string, dev = false): string {
    const encrypted = this.secrets.get(key);
    if (encrypted === undefined) {
      const have = this.keys();
      throw new KeystoreError(
        "no_key",
        `the keystore ${this.file.path} has no key "${key}" (it has: ${have.length === 0 ? "none" : have.join(", ")}); add it with \`${keystoreSetCommand(key, dev)}\``,
      );
    }
    try {
      return decrypt(this.dataKey, encrypted);
    } catch (cause) {
      throw new KeystoreError("tampered", `the value of "${key}" in the keystore ${this.file.path} is corrupted`, {
        cause,
      });
    }
  }
}

/**
 * Asks for a password on a terminal without echoing it (stderr carries the question). Rejects when `input`
 * is not a TTY or the user presses Ctrl-C.
 */
export function promptHidden(
  question: string,
  input: NodeJS.ReadStream = process.stdin,
  output: NodeJS.WritableStream = process.stderr,
): Promise<string> {
  if (input.isTTY !== true) return Promise.reject(new Error("no terminal to ask for the password on"));
  input.setRawMode(true); // echo off before the question shows, so nothing typed after it is echoed
  input.setEncoding("utf8");
  input.resume();
  output.write(question);
  return new Promise((resolve, reject) => {
    let chars: string[] = [];
    const finish = (): void => {
      input.off("data", onData);
      input.setRawMode(false);
      input.pause();
      output.write("\n");
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === "\r" || ch === "\n" || ch === "\u0004") {
          finish();
          resolve(chars.join(""));
          return;
        }
        if (ch === "\u0003") {
          finish();
          reject(new Error("password entry cancelled"));
          return;
        }
        if (ch === "\u007f" || ch === "\b") chars = chars.slice(0, -1);
        else chars.push(ch);
      }
    };
    input.on("data", onData);
  });
}

function decrypt(key: Uint8Array, data: EncryptedData): string {
  return new TextDecoder("utf-8", { fatal: true }).decode(gcmsiv(key, data.iv).decrypt(data.cypherText));
}

function hexKey(text: string): Uint8Array {
  const bytes = hexBytes(text);
  if (bytes?.length !== 32) throw new Error("not a 32-byte hex key");
  return bytes;
}

function hexBytes(value: unknown): Uint8Array | undefined {
  if (typeof value !== "string" || value.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(value)) return undefined;
  return new Uint8Array(Buffer.from(value, "hex"));
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

/** JSON with object keys sorted at every level (the package's `deterministicJsonStringify`). */
function sortedJson(value: object): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    const r = record(v);
    if (r === undefined) return v;
    return Object.fromEntries(
      Object.keys(r)
        .sort()
        .map((k) => [k, r[k]]),
    );
  });
}
