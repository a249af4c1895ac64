/**
 * Config and payload codec: the schema's defaults and errors, environment overrides, secrets from the
 * environment only, and both MQTT payload forms of both item kinds (round trip, and every refusal).
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";

import { expect } from "chai";
import { Wallet } from "ethers";

import { describeSecretSources, loadConfig, readSecrets } from "../../oracle/config/index.js";
import { isOracleError } from "../../oracle/errors.js";
import { createLogger } from "../../oracle/log.js";
import {
  MqttPayloadError,
  TEST_DOMAIN,
  decodeMqttPayload,
  encodeMqttPayload,
  mqttReadingsTopic,
  mqttStatusTopic,
  parseMqttReadingsTopic,
  signReading,
  signWindow,
} from "../../sdk/protocol/index.js";
import type { SignedItem } from "../../sdk/protocol/index.js";

const MINIMAL = {
  chain: {
    rpcUrls: ["http://127.0.0.1:8545"],
    chainId: 31337,
    coldChain: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
  },
};

function writeConfig(value: unknown): string {
  const path = join(mkdtempSync(join(tmpdir(), "coldchain-config-")), "oracle.json");
  writeFileSync(path, JSON.stringify(value));
  return path;
}

describe("oracle config", () => {
  it("fills every default from a minimal file", () => {
    const config = loadConfig(writeConfig(MINIMAL), {});
    expect(config.batch.gasCap).to.equal(8_000_000);
    expect(config.batch.maxCalldataBytes).to.equal(120_000);
    expect(config.mqtt.protocolVersion).to.equal("auto");
    expect(config.store.synchronous).to.equal("FULL");
    expect(config.chain.confirmations).to.equal(2);
  });

  it("applies ORACLE__SECTION__KEY overrides, lists from commas", () => {
    const config = loadConfig(writeConfig(MINIMAL), {
      ORACLE__BATCH__MAX_READINGS: "250",
      ORACLE__CHAIN__RPC_URLS: "http://a:8545,http://b:8545",
      ORACLE__MQTT__URL: "mqtt://broker:1883",
    });
    expect(config.batch.maxReadings).to.equal(250);
    expect(config.chain.rpcUrls).to.deep.equal(["http://a:8545", "http://b:8545"]);
    expect(config.mqtt.url).to.equal("mqtt://broker:1883");
  });

  it("holds anchor copies 20 s by default with a share group, not at all without one; refuses a bad hold", () => {
    expect(loadConfig(writeConfig(MINIMAL), {}).mqtt.anchorHoldMs).to.equal(0);
    const shared = { ...MINIMAL, mqtt: { shareGroup: "g" } };
    expect(loadConfig(writeConfig(shared), {}).mqtt.anchorHoldMs).to.equal(20_000);
    expect(loadConfig(writeConfig(shared), { ORACLE__MQTT__ANCHOR_HOLD_MS: "5000" }).mqtt.anchorHoldMs).to.equal(5_000);
    expect(
      loadConfig(writeConfig({ ...MINIMAL, mqtt: { shareGroup: "g", anchorHoldMs: 0 } }), {}).mqtt.anchorHoldMs,
    ).to.equal(0);
    expect(() => loadConfig(writeConfig({ ...MINIMAL, mqtt: { anchorHoldMs: -1 } }), {}))
      .to.throw(/mqtt\.anchorHoldMs/)
      .and.satisfy((e: unknown) => isOracleError(e, "CONFIG_INVALID"));
    expect(() => loadConfig(writeConfig({ ...MINIMAL, mqtt: { anchorHoldMs: 1.5 } }), {})).to.throw(
      /mqtt\.anchorHoldMs/,
    );
  });

  it("refuses a bad file with CONFIG_INVALID naming each key", () => {
    const bad = { ...MINIMAL, batch: { gasCap: 20_000_000 }, privateKey: "0x01" };
    expect(() => loadConfig(writeConfig(bad), {}))
      .to.throw(/batch\.gasCap/)
      .and.satisfy((e: unknown) => isOracleError(e, "CONFIG_INVALID"));
    expect(() => loadConfig(writeConfig({}), {})).to.throw(/chain: Required/);
    expect(() => loadConfig(writeConfig(MINIMAL), { ORACLE__NOPE: "1" })).to.throw(/no config key "NOPE"/);
    expect(() => loadConfig("/nonexistent/oracle.json", {})).to.throw(/--config/);
  });

  it("reads the signing key from the environment only, and never logs it", () => {
    const config = loadConfig(writeConfig(MINIMAL), {});
    expect(() => readSecrets(config, {})).to.throw(/ORACLE_PRIVATE_KEY/);
    const key = Wallet.createRandom().privateKey;
    expect(readSecrets(config, { ORACLE_PRIVATE_KEY: key }).privateKey).to.equal(key);
    let out = "";
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        out += chunk.toString();
        done();
      },
    });
    createLogger("info", sink).info({ secrets: { privateKey: key, password: "hunter2" } }, "hello");
    expect(out).to.include("[redacted]").and.not.include(key.slice(2)).and.not.include("hunter2");
  });

  it("says where each secret comes from, and that there is no MQTT password when its variable is unset", () => {
    const config = loadConfig(writeConfig(MINIMAL), {});
    expect(describeSecretSources(config, {})).to.deep.equal({
      signerKeyFrom: "env ORACLE_PRIVATE_KEY",
      mqttPasswordFrom: "none (ORACLE_MQTT_PASSWORD not set)",
    });
    expect(describeSecretSources(config, { ORACLE_MQTT_PASSWORD: "hunter2" }).mqttPasswordFrom).to.equal(
      "env ORACLE_MQTT_PASSWORD",
    );
  });
});

describe("MQTT payloads (sdk/protocol/mqtt.ts)", () => {
  const key = { keyType: "secp256k1", privateKey: `0x${"01".repeat(32)}` } as const;
  const p256 = { keyType: "p256", privateKey: `0x${"02".repeat(32)}` } as const;
  const single = signReading(
    TEST_DOMAIN,
    {
      deviceId: 12648430n,
      sequence: 42,
      observedAt: 1767225600,
      tempCentiC: -512,
      flags: 2,
      previousObservedAt: 1767225300,
    },
    key,
  );
  const win = signWindow(
    TEST_DOMAIN,
    {
      deviceId: 12648430n,
      firstSequence: 100,
      firstObservedAt: 1767225600,
      intervalSeconds: 300,
      samples: [
        { tempCentiC: 450, flags: 0 },
        { tempCentiC: -30, flags: 1 },
      ],
      previousObservedAt: 1767225300,
    },
    p256,
  );

  for (const [name, item] of [
    ["reading", single],
    ["window", win],
  ] as [string, SignedItem][]) {
    for (const format of ["json", "binary"] as const) {
      it(`round-trips a ${name} in the ${format} form`, () => {
        const decoded = decodeMqttPayload(encodeMqttPayload(item, format));
        expect(decoded.format).to.equal(format);
        expect(decoded.item).to.deep.equal(item);
      });
    }
  }

  it("sizes the binary forms as specified (93 and 94 + 3·N bytes)", () => {
    expect(encodeMqttPayload(single, "binary")).to.have.length(93);
    expect(encodeMqttPayload(win, "binary")).to.have.length(94 + 3 * 2);
  });

  it("refuses malformed payloads with a message naming the problem", () => {
    const json = JSON.parse(new TextDecoder().decode(encodeMqttPayload(single, "json"))) as Record<string, unknown>;
    const bad: [Uint8Array | string, RegExp][] = [
      [new Uint8Array(), /empty/],
      [new Uint8Array([0x03]), /neither/],
      [new Uint8Array([0x01]), /protocol v1/],
      ["{", /not valid UTF-8 JSON/],
      [JSON.stringify({ ...json, v: 1 }), /"v" must be 2 \(protocol v1/],
      [JSON.stringify({ ...json, previousObservedAt: undefined }), /"previousObservedAt" is missing/],
      [JSON.stringify({ ...json, deviceId: 12648430 }), /decimal string/],
      [JSON.stringify({ ...json, extra: 1 }), /unknown field "extra"/],
      [JSON.stringify({ ...json, tempCentiC: 40000 }), /tempCentiC/],
      [JSON.stringify({ ...json, signature: "0x1234" }), /64 bytes/],
      [JSON.stringify({ ...json, kind: "batch" }), /"kind"/],
      [
        new Uint8Array([...encodeMqttPayload(single, "binary"), ...encodeMqttPayload(single, "binary").subarray(1)]),
        /exactly one/,
      ],
    ];
    for (const [payload, message] of bad) {
      const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
      expect(() => decodeMqttPayload(bytes)).to.throw(MqttPayloadError, message);
    }
  });

  it("names topics as specified", () => {
    expect(mqttReadingsTopic(12648430n)).to.equal("coldchain/v1/devices/12648430/readings");
    expect(parseMqttReadingsTopic("coldchain/v1/devices/12648430/readings")).to.equal(12648430n);
    expect(parseMqttReadingsTopic("coldchain/v1/devices/0012/readings")).to.equal(undefined);
    expect(parseMqttReadingsTopic("coldchain/v1/devices/18446744073709551616/readings")).to.equal(undefined);
    expect(mqttStatusTopic("oracle-1")).to.equal("coldchain/v1/oracles/oracle-1/status");
    expect(() => mqttStatusTopic("a/b")).to.throw(MqttPayloadError);
  });
});
