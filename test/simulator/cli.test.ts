/**
 * `npm run simulate` as a user runs it (node --import tsx simulator/main.ts …, a child process): help, one-line
 * errors with a non-zero exit for bad input, the fleet file, and a short run against a real broker whose ledger
 * matches what a subscriber received.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { expect } from "chai";
import { decodeMqttPayload } from "../../sdk/protocol/index.js";
import { JsonRpcProvider } from "ethers";

import { freePort, runScript, startHardhatNode } from "../support/node.js";
import { collect, startBroker } from "./support.js";

const SCRIPT = "simulator/main.ts";
const DOMAIN_ARGS = ["--chain-id", "31337", "--cold-chain", "0x5FbDB2315678afecb367f032d93F642f64180aa3"];

describe("npm run simulate (CLI)", function () {
  this.timeout(60_000);
  let dir: string;

  before(function () {
    dir = mkdtempSync(join(tmpdir(), "coldchain-sim-"));
  });

  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it("--help prints the usage and every scenario, exit 0", async function () {
    const r = await runScript(SCRIPT, ["--help"]);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.match(/Usage: npm run simulate/);
    for (const name of ["compliant", "heat-excursion", "freeze", "offline-gap", "late-upload", "tamper", "mixed"]) {
      expect(r.stdout).to.include(name);
    }
  });

  const bad: [string, string[], RegExp][] = [
    [
      "a bad --speed",
      ["--broker", "mqtt://127.0.0.1:1", ...DOMAIN_ARGS, "--speed", "fast"],
      /invalid speed "fast".*300x/,
    ],
    [
      "a bad --duration",
      ["--broker", "mqtt://127.0.0.1:1", ...DOMAIN_ARGS, "--duration", "3 days"],
      /invalid --duration/,
    ],
    ["a bad --interval", ["--broker", "mqtt://127.0.0.1:1", ...DOMAIN_ARGS, "--interval", "0s"], /--interval/],
    ["a broker URL that is not MQTT", ["--broker", "http://127.0.0.1:1883", ...DOMAIN_ARGS], /--broker .*mqtt/],
    ["no broker", [...DOMAIN_ARGS], /--broker <url> is required/],
    ["no signing domain", ["--broker", "mqtt://127.0.0.1:1"], /--network <name>.*--chain-id/],
    [
      "an unknown scenario",
      ["--broker", "mqtt://127.0.0.1:1", ...DOMAIN_ARGS, "--scenario", "meltdown"],
      /unknown --scenario/,
    ],
    ["an unknown flag", ["--broker", "mqtt://127.0.0.1:1", ...DOMAIN_ARGS, "--turbo"], /--turbo.*--help/],
  ];
  for (const [what, args, message] of bad) {
    it(`${what}: one line on stderr, exit 2, nothing published`, async function () {
      const r = await runScript(SCRIPT, args);
      expect(r.code).to.equal(2);
      const lines = r.stderr.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("npm warn"));
      expect(lines, r.stderr).to.have.length(1);
      expect(lines[0]).to.match(message);
      expect(r.stdout).to.equal("");
    });
  }

  it("a broker that is not there: one line naming the URL, exit 1, within seconds", async function () {
    const url = `mqtt://127.0.0.1:${await freePort()}`;
    const started = Date.now();
    const r = await runScript(SCRIPT, ["--broker", url, ...DOMAIN_ARGS, "--devices", "5"]);
    expect(r.code).to.equal(1);
    const lines = r.stderr.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("npm warn"));
    expect(lines, r.stderr).to.have.length(1);
    expect(lines[0])
      .to.include(url)
      .and.to.match(/check --broker/);
    expect(Date.now() - started).to.be.lessThan(8000);
  });

  it("--fleet-only writes the public identities (no private keys) and exits", async function () {
    const file = join(dir, "fleet.json");
    const r = await runScript(SCRIPT, [
      "--fleet-out",
      file,
      "--fleet-only",
      "--devices",
      "4",
      "--key-types",
      "secp256k1,p256",
    ]);
    expect(r.code, r.stderr).to.equal(0);
    const fleet = JSON.parse(readFileSync(file, "utf8")) as { devices: Record<string, unknown>[] };
    expect(fleet.devices.map((d) => [d.deviceId, d.keyType])).to.deep.equal([
      ["1000001", "secp256k1"],
      ["1000002", "p256"],
      ["1000003", "secp256k1"],
      ["1000004", "p256"],
    ]);
    expect(fleet.devices[0]).to.have.property("address");
    expect(fleet.devices[1]).to.have.keys(["index", "deviceId", "intervalSeconds", "keyType", "x", "y"]);
    expect(readFileSync(file, "utf8")).to.not.match(/privateKey/i);
  });

  it("a short mixed run publishes to the broker what its ledger says", async function () {
    const broker = await startBroker();
    const sub = await collect(broker.url);
    try {
      const ledgerFile = join(dir, "ledger.json");
      const r = await runScript(SCRIPT, [
        "--broker",
        broker.url,
        ...DOMAIN_ARGS,
        "--devices",
        "6",
        "--scenario",
        "mixed",
        "--duration",
        "8h",
        "--speed",
        "28800x",
        "--mode",
        "window",
        "--format",
        "binary",
        "--start",
        "2026-01-01T00:00:00Z",
        "--ledger-out",
        ledgerFile,
      ]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/done: \d+ messages, \d+ valid readings, 8 tampered, 0 unpublished/);
      const ledger = JSON.parse(readFileSync(ledgerFile, "utf8")) as {
        devices: { scenario: string; messages: number; readings: unknown[] }[];
      };
      expect(ledger.devices.map((d) => d.scenario)).to.deep.equal([
        "compliant",
        "heat-excursion",
        "freeze",
        "offline-gap",
        "late-upload",
        "tamper",
      ]);
      const messages = ledger.devices.reduce((n, d) => n + d.messages, 0);
      await sub.waitFor(messages);
      expect(sub.messages).to.have.length(messages);
      for (const m of sub.messages) expect(decodeMqttPayload(m.payload).format).to.equal("binary");
    } finally {
      await sub.close();
      await broker.stop();
    }
  });
  it("--warp-rpc moves a hardhat node's time along with the simulated clock", async function () {
    const node = await startHardhatNode();
    const broker = await startBroker();
    const provider = new JsonRpcProvider(node.url, undefined, { staticNetwork: true });
    try {
      const before = (await provider.getBlock("latest"))?.timestamp ?? 0;
      const ledgerFile = join(dir, "warp-ledger.json");
      const r = await runScript(SCRIPT, [
        "--broker",
        broker.url,
        ...DOMAIN_ARGS,
        "--devices",
        "2",
        "--duration",
        "6h",
        "--speed",
        "21600x",
        "--warp-rpc",
        node.url,
        "--ledger-out",
        ledgerFile,
      ]);
      expect(r.code, r.stderr).to.equal(0);
      const after = (await provider.getBlock("latest"))?.timestamp ?? 0;
      expect(after - before).to.be.within(6 * 3600, 6 * 3600 + 60);
      const ledger = JSON.parse(readFileSync(ledgerFile, "utf8")) as {
        devices: { readings: { observedAt: number }[] }[];
      };
      const times = ledger.devices.flatMap((d) => d.readings.map((x) => x.observedAt));
      expect(times).to.have.length(2 * 72);
      expect(Math.min(...times)).to.be.greaterThan(before);
      expect(Math.max(...times)).to.be.at.most(after);
    } finally {
      provider.destroy();
      await broker.stop();
      await node.stop();
    }
  });
});
