/**
 * Fault drill: SIGTERM while the broker goes away (issue 16, item 6). The oracle logged "shutting down" and
 * then kept reconnecting and running relay ticks until a second signal, in 2 of 6 runs: its stop waited for the
 * broker to acknowledge the "offline" status and for a clean disconnect before it stopped the relay.
 *
 * A real oracle process (as in crash.test.ts), Mosquitto (a real broker process: persistence on, so what it
 * acknowledged to the devices survives its restart) and a real chain behind a JSON-RPC front that can stop
 * answering. Four runs while four devices publish without pause, each at a random moment of the flow:
 * 1. the broker and the oracle get SIGTERM in the same tick;
 * 2. the oracle first, the broker right after;
 * 3. the broker first, the oracle 50 ms later (the oracle is already reconnecting);
 * 4. as 1, and the RPC node stops answering at the same moment (a relay step waits on it).
 * Each run asserts: the process exits with code 0 within SHUTDOWN_DEADLINE_MS (10 s; measured times are printed),
 * every part stopped (no "did not stop"), no reconnect and no new connection after "shutting down" (a summary of
 * errors counted before it is allowed), no relay line after "relay stopped". Then the broker comes back and
 * the next run starts. At the end every reading published is on chain exactly once and stored once: nothing was
 * acknowledged that was not stored, even with the broker gone mid-commit.
 */

import { expect } from "chai";

import { SHUTDOWN_DEADLINE_MS } from "../../oracle/oracle.js";
import { OracleProcess } from "./oracle-process.js";
import type { ProcessLogLine } from "./oracle-process.js";
import { startRpcFront } from "./rpc-front.js";
import type { RpcFront } from "./rpc-front.js";
import {
  INTERVAL_SECONDS,
  Publisher,
  deployWorld,
  freePort,
  fundedOracleKey,
  mosquittoAvailable,
  oracleConfig,
  reading,
  startChain,
  startMosquitto,
  tempDir,
  waitFor,
  storeCounts,
} from "./support.js";
import type { MosquittoHandle, NodeHandle } from "./support.js";

interface Run {
  readonly name: string;
  /** Who gets SIGTERM first, and how long before the other. */
  readonly first: "broker" | "oracle";
  readonly gapMs: number;
  readonly rpcHangs?: boolean;
}

const RUNS: readonly Run[] = [
  { name: "broker and oracle in the same tick", first: "broker", gapMs: 0 },
  { name: "oracle first, broker right after", first: "oracle", gapMs: 0 },
  { name: "broker first, oracle 50 ms later (reconnecting)", first: "broker", gapMs: 50 },
  { name: "broker gone and the RPC node not answering", first: "broker", gapMs: 0, rpcHangs: true },
];

/** Lines that mean a connection or a reconnect attempt (a summary of errors counted before the stop aside). */
const RECONNECT = /reconnect|connected to the MQTT broker|MQTT connection lost|MQTT error|subscribe failed/;

describe("fault drill: SIGTERM while the broker goes away (a real oracle process)", function () {
  this.timeout(600_000);
  let node: NodeHandle | undefined;
  let broker: MosquittoHandle | undefined;
  let rpc: RpcFront | undefined;
  const processes: OracleProcess[] = [];

  before(async function () {
    if (!mosquittoAvailable()) {
      console.warn("    SKIPPED: the `mosquitto` binary is not installed (apt-get install -y mosquitto)");
      this.skip();
    }
    [node, broker] = await Promise.all([startChain(), startMosquitto()]);
    rpc = await startRpcFront(node.url);
  });
  after(async () => {
    for (const p of processes) await p.stop("SIGKILL");
    await Promise.all([rpc?.stop(), node?.stop(), broker?.stop()]);
  });

  it(`exits within ${SHUTDOWN_DEADLINE_MS / 1000} s with no reconnect or relay tick after "shutting down", in ${RUNS.length} runs, and loses nothing`, async () => {
    if (node === undefined || broker === undefined || rpc === undefined) throw new Error("setup failed");
    const chain = node;
    const mosquitto = broker;
    const front = rpc;
    const w = await deployWorld(chain, 4, 8300n);
    const span = 2_000 * INTERVAL_SECONDS;
    await chain.provider.send("evm_increaseTime", [span]);
    await chain.provider.send("evm_mine", []);
    const config = oracleConfig(w, chain, mosquitto.url, {
      mqtt: { reconnectPeriodMs: 100 },
      chain: { rpcUrls: [front.url], pollIntervalMs: 50 },
      batch: { maxReadings: 20, maxAgeMs: 50 },
      log: { level: "info" },
      verify: { maxFutureSkewSeconds: span + 600 },
    });
    const privateKey = await fundedOracleKey(chain);
    const dir = tempDir();
    const start = async (): Promise<OracleProcess> => {
      const p = OracleProcess.start(config, dir, privateKey, await freePort(), `oracle-${processes.length + 1}`);
      processes.push(p);
      return p;
    };

    // The first instance creates the persistent session; the devices publish only once it is subscribed. Then four
    // devices publish one reading each, round after round, until told to stop (across the broker's restarts:
    // mqtt.js keeps a QoS 1 message until the broker acknowledges it).
    let oracle = await start();
    await oracle.waitForLog(/^oracle running$/);
    const device = await Publisher.connect(mosquitto.url);
    let published = 0;
    let publishing = true;
    const flow = (async () => {
      for (let seq = 1; publishing; seq++) {
        for (const d of w.devices) {
          await device.publish(reading(w, d, seq, w.startedAt + seq * INTERVAL_SECONDS, 450));
          published++;
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();

    const report: string[] = [];
    for (const [i, run] of RUNS.entries()) {
      if (i > 0) {
        oracle = await start();
        await oracle.waitForLog(/^oracle running$/);
      }
      await new Promise((resolve) => setTimeout(resolve, 500 + Math.random() * 1000)); // a random moment of the flow
      if (run.rpcHangs === true) front.hang();
      const signalAt = Date.now();
      const killBroker = (): Promise<void> => mosquitto.stop();
      let brokerDown: Promise<void>;
      if (run.first === "broker") {
        brokerDown = killBroker();
        if (run.gapMs > 0) await new Promise((resolve) => setTimeout(resolve, run.gapMs));
        oracle.child.kill("SIGTERM");
      } else {
        oracle.child.kill("SIGTERM");
        brokerDown = killBroker();
      }
      const exit = await oracle.exited;
      const exitMs = exit.at - signalAt;
      await brokerDown;

      const lines = oracle.logs;
      const shuttingDown = lines.findIndex((l) => l.msg === "shutting down");
      const after: ProcessLogLine[] = shuttingDown < 0 ? [] : lines.slice(shuttingDown + 1);
      const reconnects = after.filter((l) => RECONNECT.test(l.msg) && l.repeated === undefined);
      const relayStopped = after.findIndex((l) => l.msg === "relay stopped");
      const relayAfterStop = relayStopped < 0 ? [] : after.slice(relayStopped + 1).filter((l) => l.module === "relay");
      const stopped = after.find((l) => l.msg === "oracle stopped");
      report.push(
        `${run.name}: exit ${exit.code} in ${exitMs} ms (stop ${String(stopped?.stopMs)} ms), ` +
          `${after.length} lines after "shutting down"`,
      );
      expect(shuttingDown, `${run.name}: "shutting down" logged`).to.be.at.least(0);
      expect(exit.code, `${run.name}: exit code (log ${oracle.logFile})`).to.equal(0);
      expect(exitMs, `${run.name}: exit time`).to.be.below(SHUTDOWN_DEADLINE_MS);
      expect(stopped?.failed, `${run.name}: parts that did not stop`).to.deep.equal([]);
      expect(
        reconnects.map((l) => l.msg),
        `${run.name}: reconnects after "shutting down"`,
      ).to.deep.equal([]);
      expect(relayStopped, `${run.name}: "relay stopped" logged`).to.be.at.least(0);
      expect(
        relayAfterStop.map((l) => l.msg),
        `${run.name}: relay lines after "relay stopped"`,
      ).to.deep.equal([]);

      front.answer();
      await mosquitto.restart();
    }

    // The last instance drains everything: every reading published is stored once and recorded once.
    publishing = false;
    await flow;
    await device.close();
    const last = await start();
    await last.waitForLog(/^oracle running$/);
    await waitFor(
      "every reading published recorded",
      () => storeCounts(config.store.path).recorded === published,
      180_000,
      200,
    );
    let onChain = 0;
    for (let shipmentId = 1n; shipmentId <= 1n; shipmentId++) {
      onChain += Number((await w.coldChain.condition(w.shipmentId)).readingCount);
    }
    const final = storeCounts(config.store.path);
    const lastExit = await last.stop();
    console.log(
      `    ${report.join("\n    ")}\n    ${published} published, ${final.readings} stored, ${onChain} on chain`,
    );
    expect(final).to.deep.equal({ items: published, readings: published, recorded: published, skipped: 0 });
    expect(onChain).to.equal(published);
    expect(lastExit.code).to.equal(0);
  });
});
