/**
 * The run of `npm start` (scripts/start.ts parses the command line, owns the signals and the run folder): the
 * chain and the broker, the deployment, the world, the oracle and the fleet, the scenario, the receiver's decisions
 * and the report. Loaded once the contracts are built: its modules need the build (`--help` does not load it).
 */
import { writeFileSync } from "node:fs";
import { basename, join } from "node:path";

import { Wallet, getAddress, keccak256, parseEther, toUtf8Bytes } from "ethers";
import hre from "hardhat";

import { ensureAppBuilt, serveApp } from "../../app/serve.js";
import { connectSuite } from "../../sdk/contracts.js";
import { formatDateTime } from "../../sdk/format.js";
import { breachReasonName } from "../../sdk/names.js";
import { checkDecisionNote, encodeDecisionReason, reasonCodeForBreach } from "../../sdk/reasons.js";
import { BREACH_KIND_WORDS } from "../../sdk/verdict.js";
import { saveDeployment } from "../../sdk/node/deployment.js";
import { StackFleet } from "./fleet.js";
import { choosePort, startLocalChain } from "./local-chain.js";
import type { PortChoice } from "./local-chain.js";
import { PARTY_ACCOUNTS, PARTY_NAMES, SCENARIO_HOURS, SHIPMENTS, firstLateUpload } from "./plan.js";
import type { PartyRole } from "./plan.js";
import { ProgressLine, totalDropped } from "./progress.js";
import { buildReport, formatReport } from "./report.js";
import { oracleAlertsUrl, startBroker, startOracle } from "./services.js";
import {
  createWorld,
  deployWorldSuite,
  partiesOf,
  performHandover,
  tryReorderedRelay,
  tryShipperCancel,
} from "./world.js";
import type { BendAttempt } from "./world.js";

export type { PortChoice };

/** `npm start`'s options, as scripts/start.ts parsed them. */
export interface StackOptions {
  quick: boolean;
  serve: boolean;
  report: string | undefined;
  rpc: string | undefined;
  broker: string | undefined;
  ports: { chain: PortChoice; broker: PortChoice; dashboard: PortChoice };
  speed: number;
  seed: number;
  format: "json" | "binary" | undefined;
  prices: { l1Gwei: number; l2Gwei: number; ethUsd: number };
  verbose: boolean;
  /** Keep the run folder after exit (scripts/start.ts removes it otherwise). */
  keepRunDir: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A failure of one step of the run; the message names the step. */
export class StepError extends Error {}

async function step<T>(name: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw new StepError(`${name}: ${(error as Error).message}`, { cause: error });
  }
}

/** Plays the run in `runDir` (address book, oracle store and log); `stops` gathers what to stop at the end. */
export async function run(
  o: StackOptions,
  runDir: string,
  stops: (() => Promise<void>)[],
  signal: { readonly interrupted: boolean },
): Promise<number> {
  const runId = basename(runDir).replace(/^coldchain-stack-/, "");
  const intervalSeconds = o.quick ? 900 : 300;
  const scenarioSeconds = SCENARIO_HOURS * 3600;

  const chain = await step("starting the chain", () =>
    startLocalChain({ ...(o.rpc === undefined ? {} : { rpcUrl: o.rpc }), port: o.ports.chain }),
  );
  stops.push(() => chain.stop());
  const broker = await step("starting the broker", () =>
    startBroker({ ...(o.broker === undefined ? {} : { brokerUrl: o.broker }), port: o.ports.broker }),
  );
  stops.push(() => broker.stop());
  console.log(
    `chain   ${chain.url}  (${chain.embedded ? "embedded Hardhat EDR node, osaka" : "your node"}, chain id ${chain.chainId})`,
  );
  console.log(`broker  ${broker.url}  (${broker.embedded ? "embedded aedes" : "your broker"})`);
  console.log(
    `run dir ${runDir}  (address book, oracle store and log; ${o.keepRunDir ? "kept" : "removed at exit unless the run fails"})`,
  );

  const parties = partiesOf(chain);
  const deployment = await step("deploying the suite", () => deployWorldSuite(hre, chain, parties));
  const deploymentsDir = join(runDir, "deployments");
  saveDeployment(deployment, deploymentsDir);
  console.log(
    `deployed ColdChain ${deployment.contracts.ColdChain.address} (Ignition; ${join(deploymentsDir, "local.json")})`,
  );

  // The fleet: one simulated logger per planned device, keys derived from the seed.
  const domain = { chainId: BigInt(deployment.chainId), verifyingContract: deployment.contracts.ColdChain.address };
  const fleet = new StackFleet({
    plan: SHIPMENTS,
    seed: o.seed,
    runId,
    intervalSeconds,
    domain,
    brokerUrl: broker.url,
    ...(o.format === undefined ? {} : { format: o.format }),
  });
  stops.push(() => fleet.close());
  const world = await step("creating profiles, loggers and shipments", () =>
    createWorld(chain, deployment, parties, SHIPMENTS, fleet.keys, intervalSeconds),
  );
  await step("connecting the loggers", () => fleet.begin(world.startedAt));
  console.log(
    `created ${world.shipmentIds.length} shipments (${SHIPMENTS.map((s) => s.title).join("; ")}), ` +
      `${fleet.keys.size} loggers registered`,
  );

  // Simulated time: hour 0 is the shipments' start; chain time is moved along with it. The oracle checks that
  // readings are not in the future against it (flowing at wall-clock pace between steps); everything else in the
  // oracle (batch ages, back-off, health) runs on the wall clock.
  let simNow = world.startedAt;
  const attempts: BendAttempt[] = [];
  let simSetAt = Date.now();
  const simClockMs = (): number => simNow * 1000 + (Date.now() - simSetAt);
  const oracleKey = Wallet.createRandom();
  // A rogue relayer: an account of its own (derived from the seed), funded as anyone's could be.
  const rogue = new Wallet(keccak256(toUtf8Bytes(`coldchain-stack/rogue-relayer/${o.seed}`)), chain.provider);
  await step("funding the relayers", async () => {
    await (await parties.admin.sendTransaction({ to: oracleKey.address, value: parseEther("100") })).wait();
    await (await parties.admin.sendTransaction({ to: rogue.address, value: parseEther("10") })).wait();
  });
  const oracle = await step("starting the oracle", () =>
    startOracle({
      deployment,
      rpcUrl: chain.url,
      brokerUrl: broker.url,
      runDir,
      oracleId: `local-stack-${runId}`,
      privateKey: oracleKey.privateKey,
      observationClock: simClockMs,
      logLevel: o.verbose ? "debug" : "info",
      onCreated: (created) => stops.push(() => created.stop()),
    }),
  );
  const dropped: Record<string, number> = {};
  // `alreadyOnChain`: readings the oracle found recorded (by another relayer) before sending them; settled too.
  const relayed = { messages: 0, accepted: 0, settled: 0, onChain: 0, alreadyOnChain: 0, batches: 0, gasUsed: 0n };
  oracle.events.on("intake", (result) => {
    relayed.messages++;
    if (result.ok) relayed.accepted += result.readings;
    else dropped[result.reason] = (dropped[result.reason] ?? 0) + 1;
  });
  oracle.relay.events.on("batch-confirmed", ({ recorded, skipped }) => {
    relayed.settled += recorded + skipped;
    relayed.onChain += recorded;
    relayed.batches++;
  });
  oracle.relay.events.on("preflight-skipped", ({ itemIds, reason }) => {
    const readings = itemIds.reduce((n, id) => n + (oracle.store.item(id)?.count ?? 1), 0);
    relayed.settled += readings;
    if (reason === "DuplicateSequence") relayed.alreadyOnChain += readings;
  });
  oracle.relay.events.on("batch-mined", () => {
    void oracle.metrics.gasUsed.get().then((m) => (relayed.gasUsed = BigInt(Math.round(m.values[0]?.value ?? 0))));
  });
  console.log(`oracle  relaying as ${oracleKey.address}; metrics on http://127.0.0.1:${oracle.httpPort}/metrics`);
  console.log(
    `playing ${SCENARIO_HOURS} h of simulated time at ${o.speed}x (${Math.round(scenarioSeconds / o.speed)} s), ` +
      `one reading per logger every ${intervalSeconds / 60} min\n`,
  );

  const roles = new Map<string, PartyRole>(
    (Object.keys(PARTY_ACCOUNTS) as PartyRole[]).map((role) => [getAddress(parties[role].address), role]),
  );
  const suite = connectSuite(deployment, chain.provider);
  const progress = new ProgressLine();
  const nextHandover = SHIPMENTS.map(() => 0);
  const figures = () => ({
    simSeconds: simNow - world.startedAt,
    totalSimSeconds: scenarioSeconds,
    published: fleet.published(),
    onChain: relayed.onChain + relayed.alreadyOnChain,
    dropped: totalDropped(dropped),
    batches: relayed.batches,
    gasUsed: relayed.gasUsed,
  });
  const interruptedExit = (): number => {
    progress.done();
    console.log("interrupted: stopped before the receiver's decision; no report");
    return 130;
  };

  // The rogue relayer strikes when the late-uploading logger's backlog is due, before the broker has it.
  const late = firstLateUpload(SHIPMENTS);
  let rogueDue = late === undefined ? Infinity : late.toHour * 3600;
  const reorderBacklog = async (): Promise<BendAttempt> => {
    if (late === undefined) throw new Error("no logger uploads late");
    const backlog = fleet.dueUploads(late.deviceId, simNow);
    // The oldest item names the logger's last reading before it went offline: wait (seconds at most) until the
    // oracle has recorded that one, so the outcome does not depend on how far the oracle had got.
    const first = backlog[0];
    const previous =
      first === undefined
        ? 0
        : first.kind === "reading"
          ? first.reading.previousObservedAt
          : first.window.previousObservedAt;
    const until = Date.now() + 30_000;
    while (Date.now() < until && !signal.interrupted) {
      if (Number((await world.coldChain.deviceTrack(late.deviceId)).lastObservedAt) >= previous) break;
      progress.update(figures());
      await sleep(200);
    }
    const plan = SHIPMENTS[late.shipmentIndex];
    const across = plan?.handovers.some((h) => h.atHour > late.fromHour && h.atHour < late.toHour) ?? false;
    const what =
      `logger ${late.deviceId}'s backlog (${hours(late.fromHour * 3600)} to ${hours(late.toHour * 3600)}` +
      `${across ? ", across a custody handover" : ""})`;
    return tryReorderedRelay(world, rogue, late.deviceId, backlog, what);
  };

  let shipperCancelTried = false;
  const tickMs = 250;
  const startedReal = Date.now();
  await step("playing the scenario", async () => {
    while (simNow < world.startedAt + scenarioSeconds && !signal.interrupted) {
      // Never past the next handover: it happens at its scheduled time, with readings on both sides of it. Nor past
      // the rogue relayer's moment: the backlog it takes is then the same for a given seed.
      const nextDue = Math.min(
        ...SHIPMENTS.map((s, i) => (s.handovers[nextHandover[i] ?? 0]?.atHour ?? Infinity) * 3600),
        rogueDue,
        scenarioSeconds,
      );
      const target = world.startedAt + Math.min(nextDue, Math.floor(((Date.now() - startedReal) * o.speed) / 1000));
      if (target > simNow) {
        simNow = target;
        simSetAt = Date.now();
        await chain.warpTo(simNow);
      }
      for (const [index, shipment] of SHIPMENTS.entries()) {
        const h = shipment.handovers[nextHandover[index] ?? 0];
        if (h === undefined || h.atHour * 3600 > simNow - world.startedAt) continue;
        const from = world.custodians[index] ?? "shipper";
        await performHandover(world, index, h);
        nextHandover[index] = (nextHandover[index] ?? 0) + 1;
        progress.say(
          `  ${hours(simNow - world.startedAt)}  shipment ${world.shipmentIds[index]}: ${PARTY_NAMES[from]} → ${PARTY_NAMES[h.to]} (${h.method})`,
        );
        if (from === "shipper" && !shipperCancelTried) {
          shipperCancelTried = true;
          // An attempt to bend the verdict: the shipper wants the carrier's coming readings gone.
          const attempt = await tryShipperCancel(world, index);
          attempts.push(attempt);
          progress.say(`  ${hours(simNow - world.startedAt)}  ${attempt.attempt}: ${attempt.refusedWith ?? "ALLOWED"}`);
        }
      }
      if (rogueDue <= simNow - world.startedAt) {
        // A relayer that reorders: the backlog on chain newest first, ahead of the oracle (which gets it next).
        rogueDue = Infinity;
        const attempt = await reorderBacklog();
        attempts.push(attempt);
        progress.say(
          `  ${hours(simNow - world.startedAt)}  ${attempt.attempt}: ${attempt.outcome ?? attempt.refusedWith ?? "ALLOWED"}`,
        );
      }
      await fleet.advanceTo(simNow);
      progress.update(figures());
      await sleep(tickMs);
    }
  });
  if (signal.interrupted) return interruptedExit();
  // Late uploads and the last batches.
  await step("uploading the loggers' backlogs", () => fleet.flush());
  const settleUntil = Date.now() + 60_000;
  let settled = false;
  while (Date.now() < settleUntil && !signal.interrupted) {
    // Settled: the oracle has taken in every message the loggers had acknowledged by the broker, and every
    // reading it accepted is in a confirmed batch.
    const inFlight = fleet.messages() - relayed.messages;
    settled = inFlight <= 0 && oracle.store.pendingReadings() === 0 && relayed.settled >= relayed.accepted;
    if (settled) break;
    progress.update(figures());
    await sleep(200);
  }
  progress.done(figures());
  if (signal.interrupted) return interruptedExit();
  if (!settled) {
    console.error(
      `npm start: the oracle did not settle within 60 s (${fleet.messages() - relayed.messages} messages not taken in, ` +
        `${oracle.store.pendingReadings()} readings pending, ${relayed.accepted - relayed.settled} not confirmed); ` +
        `see ${join(runDir, "oracle.log")}. No decision was taken.`,
    );
    return 1;
  }

  // The receiver decides on the evidence.
  await step("the receiver's decisions", async () => {
    for (const id of world.shipmentIds) {
      const state = await suite.coldChain.shipment(id);
      if (Number(state.status) !== 3) continue; // Delivered
      const condition = await suite.coldChain.condition(id);
      const receiver = suite.coldChain.connect(parties.receiver);
      if (condition.breachFlags === 0n) {
        await (await receiver.release(id)).wait();
        continue;
      }
      // The reason names the first breach's kind (a MissingData breach is MISSING_DATA, not a temperature breach),
      // and the note says when it happened.
      const first = breachReasonName(condition.firstBreach);
      const note = `first breach: ${BREACH_KIND_WORDS[first]} at ${formatDateTime(Number(condition.firstBreachAt))}`;
      const code = encodeDecisionReason(reasonCodeForBreach(first));
      await (await receiver.decideWithNote(id, false, code, checkDecisionNote(note))).wait();
    }
  });

  const report = await step("reading the report back from the chain", () =>
    buildReport({
      suite,
      provider: chain.provider,
      plan: SHIPMENTS,
      shipmentIds: world.shipmentIds,
      roles,
      published: fleet.ledger(),
      dropped,
      prices: o.prices,
      attempts,
      relay: { address: oracleKey.address, alreadyOnChain: relayed.alreadyOnChain },
    }),
  );
  console.log(formatReport(report));
  if (o.report !== undefined) {
    const file = o.report;
    await step(`writing the report to ${file}`, () =>
      Promise.resolve(writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`)),
    );
    console.log(`\nreport written to ${file}`);
  }
  if (o.serve && !signal.interrupted) {
    const app = await step("serving the dashboard", async () => {
      await ensureAppBuilt();
      const labels = Object.fromEntries([...roles].map(([address, role]) => [address, PARTY_NAMES[role]]));
      labels[oracleKey.address] = "Relay oracle";
      labels[rogue.address] = "Rogue relayer";
      return serveApp({
        port: await choosePort(o.ports.dashboard, "--dashboard-port"),
        deploymentsDir,
        network: "local",
        rpcUrl: chain.url,
        labels,
        alertsUrl: oracleAlertsUrl(oracle), // the Live alerts panel reads the oracle's GET /alerts
      });
    });
    stops.push(() => app.close());
    console.log(`\ndashboard ${app.url}  (open it in a browser; connect a wallet to ${chain.url} to act as a party)`);
    console.log(`still running: chain ${chain.url}, broker ${broker.url}, oracle. Ctrl-C stops everything.`);
    while (!signal.interrupted) await sleep(200);
    return 0;
  }
  return report.crossCheck.ok ? 0 : 1;
}

function hours(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return `+${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}`;
}
