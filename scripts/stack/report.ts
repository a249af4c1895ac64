/**
 * The report `npm start` ends with. Every number is read back from the chain — state through `readShipment`,
 * history (readings, breaches, custody, gas) through `shipmentHistory` and the receipts of the transactions
 * that recorded the readings — and is then cross-checked against what the simulator says it published and the
 * oracle says it dropped. A disagreement is listed under `crossCheck.problems` and fails the run.
 *
 * MKT is shown per logger, as the contract judges it (`deviceEvidence`): pooled over loggers that travelled
 * together it would count logger-time (two loggers on a 26 h trip make "MKT over 52 h"). Each shipment's verdict is
 * the SDK's (`shipmentVerdict`): every breach in words with its time, logger and liable custodian, the liable
 * parties with their time, and the decision with its reason in words.
 */
import { getAddress } from "ethers";
import type { JsonRpcProvider } from "ethers";

import type { ColdChainSuite } from "../../sdk/contracts.js";
import { shipmentHistory } from "../../sdk/history.js";
import type { ShipmentHistory } from "../../sdk/history.js";
import { isRetryableSkip } from "../../sdk/names.js";
import { formatCelsius, formatDateTime, formatDuration } from "../../sdk/format.js";
import { readShipment } from "../../sdk/state.js";
import type { ShipmentState } from "../../sdk/state.js";
import { BREACH_KIND_WORDS, breachText, shipmentVerdict } from "../../sdk/verdict.js";
import { PARTY_NAMES } from "./plan.js";
import { totalDropped } from "./progress.js";
import { FLAG_SENSOR_FAULT, onchainMktOfReadings } from "../../sdk/protocol/index.js";
import type { Custodian, PartyRole, ShipmentPlan } from "./plan.js";
import type { BendAttempt } from "./world.js";

/** Gas prices the cost lines are stated at (override with --l1-gwei / --l2-gwei / --eth-usd). */
export interface Prices {
  readonly l1Gwei: number;
  readonly l2Gwei: number;
  readonly ethUsd: number;
}

/** A valid reading as the simulator published it. */
export interface PublishedReading {
  readonly sequence: number;
  readonly observedAt: number;
  readonly tempCentiC: number;
  readonly flags: number;
}

/** What the simulator published (its own ledger), to check the chain and the oracle against. */
export interface Published {
  /** Per device: the valid readings published. */
  readonly validReadings: ReadonlyMap<bigint, readonly PublishedReading[]>;
  /** Tampered messages published: the drop reason the oracle must give and the readings each carries. */
  readonly tampered: readonly { readonly reason: string; readonly readings: number }[];
}

/** One logger's own mean kinetic temperature, as the contract judges the MKT rule (`deviceEvidence`). */
export interface LoggerMkt {
  readonly deviceId: string;
  /** centi-°C, null before any evaluated reading. */
  readonly mktCentiC: number | null;
  /** Seconds the logger's MKT covers (its own evaluated readings, each standing for its interval). */
  readonly mktSeconds: number;
}

export interface ShipmentReport {
  readonly id: string;
  readonly title: string;
  readonly status: string;
  readonly readingsOnChain: number;
  readonly minCentiC: number | null;
  readonly maxCentiC: number | null;
  /** Each logger's own MKT, in plan order (the MKT rule is judged per logger; no pooled figure). */
  readonly mktByLogger: readonly LoggerMkt[];
  /** The profile's MKT limit, null when its MKT rule is off. */
  readonly mktLimitCentiC: number | null;
  /** The verdict in one line, parties by name (`ShipmentVerdict.summary`). */
  readonly verdict: string;
  /**
   * Each breach: its kind, the custodian liable (role and address), and, from the SDK's verdict, when (observation
   * time of the reading that broke the rule, ISO), on which logger, and the breach in words (`text`).
   */
  readonly breaches: readonly {
    reason: string;
    custodian: string;
    custodianAddress: string;
    at: string;
    deviceId: string;
    text: string;
  }[];
  /** The parties answerable for a breach, with the time they held the shipment and the excursion charged to them. */
  readonly liable: readonly { custodian: string; heldSeconds: number; excursionSeconds: number; breaches: string[] }[];
  readonly excursionSecondsByCustodian: Readonly<Record<string, number>>;
  readonly custody: readonly { custodian: string; address: string; since: string }[];
  /** Gas of the oracle's transactions that recorded the shipment's readings (shared by readings). */
  readonly gasUsed: string;
  /** Per reading the oracle recorded. */
  readonly gasPerReading: number | null;
  /**
   * The receiver's (or QA's) decision as recorded on chain, or null while undecided: the reason code as text and
   * in words (`reason`), and the decider's note.
   */
  readonly decision: {
    kind: string;
    by: string;
    at: string;
    reasonCode: string | null;
    reason: string | null;
    note: string | null;
  } | null;
}

export interface StackReport {
  readonly chainId: number;
  readonly coldChain: string;
  readonly shipments: readonly ShipmentReport[];
  readonly readingsPublished: number;
  readonly readingsOnChain: number;
  /** Readings on chain that transactions of another account than the oracle recorded (a rogue relayer's). */
  readonly readingsByOtherRelayers: number;
  /**
   * Readings refused: by the oracle (its drop reasons) and by the contract — `contract:<SkipReason>` for final skips
   * the device's signature backs (the shipment's evidence; retryable ones recorded later are in `readingsWaited`),
   * `relay-noise:<SkipReason>` for the others (no device signature verified: anyone can cause these; here the
   * relayers relay only genuine signed readings, so one relayed what it should drop).
   */
  readonly readingsRejected: Readonly<Record<string, number>>;
  /**
   * Readings the contract skipped for a retryable reason (`contract:SequenceGap`: relayed before their predecessor)
   * and recorded later: they waited, nothing was lost. A retryable skip never recorded later is a cross-check
   * problem.
   */
  readonly readingsWaited: Readonly<Record<string, number>>;
  /** Messages the oracle dropped, by reason (a window is one message). */
  readonly messagesRejected: Readonly<Record<string, number>>;
  /** The oracle's transactions that recorded readings, their gas, and gas per reading they recorded. */
  readonly batches: number;
  readonly gasUsed: string;
  readonly gasPerReading: number | null;
  readonly cost: {
    readonly prices: Prices;
    readonly l1Eth: number;
    readonly l1Usd: number;
    readonly l2Eth: number;
    readonly l2Usd: number;
    readonly note: string;
  };
  /** Attempts to bend a verdict the story played, each with the error (or skip) the contract answered with. */
  readonly attempts: readonly BendAttempt[];
  readonly crossCheck: { readonly ok: boolean; readonly problems: readonly string[] };
}

export interface ReportInput {
  readonly suite: ColdChainSuite;
  readonly provider: JsonRpcProvider;
  readonly plan: readonly ShipmentPlan[];
  readonly shipmentIds: readonly bigint[];
  /** Address → role in the story. */
  readonly roles: ReadonlyMap<string, PartyRole>;
  readonly published: Published;
  /** Oracle drops by reason, in messages. */
  readonly dropped: Readonly<Record<string, number>>;
  readonly prices: Prices;
  /** Attempts to bend a verdict played during the run. */
  readonly attempts?: readonly BendAttempt[];
  /**
   * The oracle: its address (gas and batches count its transactions only, what relaying costs its operator;
   * readings other accounts recorded are counted apart) and the readings it found already on chain before relaying
   * them (its pre-flight's `DuplicateSequence`), which must be those other relayers recorded.
   */
  readonly relay?: { readonly address: string; readonly alreadyOnChain: number };
}

export async function buildReport(input: ReportInput): Promise<StackReport> {
  const { suite, plan, shipmentIds, roles } = input;
  const roleOf = (address: string): string => roles.get(address) ?? address;
  // State and events at one block, so the two always describe the same chain.
  const block = await input.provider.getBlockNumber();
  const states: ShipmentState[] = [];
  const histories: ShipmentHistory[] = [];
  for (const id of shipmentIds) {
    states.push(await readShipment(suite, id, { blockTag: block }));
    histories.push(await shipmentHistory(suite, id, { toBlock: block }));
  }

  // Gas: every transaction that recorded readings, shared among shipments by their readings in it.
  const readingsPerTx = new Map<string, number>();
  for (const h of histories) {
    for (const r of h.readings) readingsPerTx.set(r.transactionHash, (readingsPerTx.get(r.transactionHash) ?? 0) + 1);
  }
  // Only the oracle's transactions: a rogue relayer's are not what relaying costs (their readings count apart).
  const gasOfTx = new Map<string, bigint>();
  let readingsByOtherRelayers = 0;
  for (const [hash, n] of readingsPerTx) {
    const receipt = await input.provider.getTransactionReceipt(hash);
    if (receipt === null) throw new Error(`receipt of relay transaction ${hash} not found`);
    if (input.relay !== undefined && getAddress(receipt.from) !== getAddress(input.relay.address)) {
      readingsByOtherRelayers += n;
    } else {
      gasOfTx.set(hash, receipt.gasUsed);
    }
  }
  const totalGas = [...gasOfTx.values()].reduce((a, b) => a + b, 0n);
  const relayedReadings = [...gasOfTx.keys()].reduce((a, hash) => a + (readingsPerTx.get(hash) ?? 0), 0);

  const problems: string[] = [];
  const readingsWaited: Record<string, number> = {};
  // Final skips the devices' signatures back, by `contract:<reason>` (retryable ones recorded since: readingsWaited).
  const skippedByContract: Record<string, number> = {};
  const shipments: ShipmentReport[] = states.map((state, i) => {
    const history = histories[i] as ShipmentHistory;
    const shipmentPlan = plan[i] as ShipmentPlan;
    let gas = 0;
    let relayed = 0;
    const mine = new Map<string, number>();
    for (const r of history.readings) mine.set(r.transactionHash, (mine.get(r.transactionHash) ?? 0) + 1);
    for (const [hash, n] of mine) {
      const txGas = gasOfTx.get(hash);
      if (txGas === undefined) continue; // another relayer's
      gas += (Number(txGas) * n) / (readingsPerTx.get(hash) ?? n);
      relayed += n;
    }
    const nameOf = (address: string): string => PARTY_NAMES[roleOf(address) as PartyRole] ?? address;
    const verdict = shipmentVerdict(state, history, nameOf);
    const breaches = verdict.breaches.map((b) => ({
      reason: b.kind,
      custodian: roleOf(b.liable),
      custodianAddress: b.liable,
      at: b.at?.iso ?? "",
      deviceId: b.deviceId?.toString() ?? "",
      text: breachText(b, nameOf),
    }));
    const excursion: Record<string, number> = {};
    for (const l of state.liability) excursion[roleOf(l.custodian)] = l.excursionSeconds;

    // Cross-checks of this shipment.
    if (history.readings.length !== state.condition.readingCount) {
      problems.push(
        `shipment ${state.shipmentId}: ${history.readings.length} readings in events but readingCount ${state.condition.readingCount}`,
      );
    }
    const expected = new Set(shipmentPlan.expectedBreaches.map((b) => `${b.reason}@${b.custodian}`));
    const found = new Set(breaches.map((b) => `${b.reason}@${b.custodian}`));
    for (const e of expected)
      if (!found.has(e)) problems.push(`shipment ${state.shipmentId}: expected breach ${e} not on chain`);
    for (const f of found) if (!expected.has(f)) problems.push(`shipment ${state.shipmentId}: unexpected breach ${f}`);
    const evaluateFrom = state.startedAt + state.profile.adaptationSeconds;
    const evaluated: number[] = [];
    const mktByLogger: LoggerMkt[] = [];
    for (const device of shipmentPlan.devices) {
      const onChain = history.readings.filter((r) => r.deviceId === device.deviceId);
      // Nothing recorded out of order: by the block and log that recorded them, each reading is later than the last.
      const byRecording = [...onChain].sort(
        (a, b) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex || a.observedAt - b.observedAt,
      );
      const outOfOrder = byRecording.findIndex(
        (r, k) => k > 0 && r.observedAt <= (byRecording[k - 1]?.observedAt ?? 0),
      );
      if (outOfOrder !== -1) {
        problems.push(
          `device ${device.deviceId}: seq ${byRecording[outOfOrder]?.sequence} was recorded after a later reading ` +
            `(out of the device's order)`,
        );
      }
      const sent = input.published.validReadings.get(device.deviceId) ?? [];
      const sentBySequence = new Map(sent.map((r) => [r.sequence, r]));
      const onChainSet = new Set(onChain.map((r) => r.sequence));
      const missing = sent.filter((r) => !onChainSet.has(r.sequence));
      if (onChain.length !== onChainSet.size) problems.push(`device ${device.deviceId}: a sequence is on chain twice`);
      if (missing.length > 0) {
        problems.push(
          `device ${device.deviceId}: ${missing.length} valid readings not on chain (first seq ${missing[0]?.sequence})`,
        );
      }
      for (const r of onChain) {
        const published = sentBySequence.get(r.sequence);
        if (published === undefined) {
          problems.push(`device ${device.deviceId}: seq ${r.sequence} is on chain but was never sent`);
        } else if (
          published.observedAt !== r.observedAt ||
          published.tempCentiC !== r.tempCentiC ||
          published.flags !== r.flags
        ) {
          problems.push(
            `device ${device.deviceId}: seq ${r.sequence} on chain (${r.observedAt}, ${r.tempCentiC}, ${r.flags}) ` +
              `differs from what was sent (${published.observedAt}, ${published.tempCentiC}, ${published.flags})`,
          );
        }
      }
      const mine: number[] = [];
      for (const r of sent) {
        if (r.observedAt >= evaluateFrom && (r.flags & FLAG_SENSOR_FAULT) === 0) mine.push(r.tempCentiC);
      }
      evaluated.push(...mine);
      // The logger's own MKT on chain is that of the readings it sent, each standing for its interval, in its order.
      const onChainDevice = state.devices.find((d) => d.deviceId === device.deviceId);
      const evidence = onChainDevice?.evidence;
      mktByLogger.push({
        deviceId: device.deviceId.toString(),
        mktCentiC: evidence?.mktCentiC ?? null,
        mktSeconds: evidence?.mktSeconds ?? 0,
      });
      const interval = onChainDevice?.intervalSeconds ?? 0;
      const expectedMkt =
        mine.length > 0 ? onchainMktOfReadings(mine.map((t) => ({ tempCentiC: t, seconds: interval }))) : undefined;
      if (expectedMkt !== evidence?.mktCentiC || mine.length * interval !== (evidence?.mktSeconds ?? 0)) {
        problems.push(
          `device ${device.deviceId}: MKT on chain ${evidence?.mktCentiC} over ${evidence?.mktSeconds} s, ` +
            `of the readings sent ${expectedMkt} over ${mine.length * interval} s`,
        );
      }
    }
    // The condition's min / max are those of the readings the rules evaluate (after adaptation, no sensor fault).
    const expectedMin = evaluated.length > 0 ? Math.min(...evaluated) : undefined;
    const expectedMax = evaluated.length > 0 ? Math.max(...evaluated) : undefined;
    if (expectedMin !== state.condition.minCentiC || expectedMax !== state.condition.maxCentiC) {
      problems.push(
        `shipment ${state.shipmentId}: min/max on chain ${state.condition.minCentiC}/${state.condition.maxCentiC}, ` +
          `of the readings sent ${expectedMin}/${expectedMax}`,
      );
    }
    // No excursion time charged to a party the plan does not hold liable for a temperature breach.
    const liableForTemperature = new Set(
      shipmentPlan.expectedBreaches.filter((b) => b.reason !== "MissingData").map((b) => b.custodian),
    );
    for (const l of state.liability) {
      if (l.excursionSeconds > 0 && !liableForTemperature.has(roleOf(l.custodian) as Custodian)) {
        problems.push(
          `shipment ${state.shipmentId}: ${l.excursionSeconds} s of excursion charged to ${roleOf(l.custodian)}`,
        );
      }
    }
    const recordedKeys = new Set(history.readings.map((r) => `${r.deviceId}:${r.sequence}`));
    for (const s of history.skipped) {
      // A retryable skip (SequenceGap: relayed before its predecessor) waited; it must be recorded since.
      const never = Array.from({ length: s.count }, (_, k) => s.sequence + k).filter(
        (seq) => !recordedKeys.has(`${s.deviceId}:${seq}`),
      );
      const key = `contract:${s.reason}`;
      if (isRetryableSkip(s.reason) && never.length === 0) {
        readingsWaited[key] = (readingsWaited[key] ?? 0) + s.count;
        continue;
      }
      skippedByContract[key] = (skippedByContract[key] ?? 0) + s.count;
      problems.push(
        `device ${s.deviceId}: ${s.count} readings from seq ${s.sequence} skipped by the contract (${s.reason})` +
          (isRetryableSkip(s.reason) ? `, ${never.length} of them never recorded since` : ""),
      );
    }
    // Only the oracle and a rogue relayer with genuine signed readings relay here, so relay noise is a relayer
    // relaying what it should have dropped.
    for (const s of history.unauthenticatedSkips) {
      problems.push(
        `device ${s.deviceId}: ${s.count} readings from seq ${s.sequence} relayed and skipped by the contract ` +
          `before any device signature verified (${s.reason}; relay noise, not the device's evidence)`,
      );
    }
    return {
      id: state.shipmentId.toString(),
      title: shipmentPlan.title,
      status: state.status,
      readingsOnChain: state.condition.readingCount,
      minCentiC: state.condition.minCentiC ?? null,
      maxCentiC: state.condition.maxCentiC ?? null,
      mktByLogger,
      mktLimitCentiC: state.profile.mktEnabled ? state.profile.mktLimitCentiC : null,
      verdict: verdict.summary,
      breaches,
      liable: verdict.liable.map((l) => ({
        custodian: roleOf(l.party),
        heldSeconds: l.heldSeconds,
        excursionSeconds: l.excursionSeconds,
        breaches: [...l.breaches],
      })),
      excursionSecondsByCustodian: excursion,
      custody: state.custody.map((p) => ({
        custodian: roleOf(p.custodian),
        address: p.custodian,
        since: new Date(p.since * 1000).toISOString(),
      })),
      gasUsed: Math.round(gas).toString(),
      gasPerReading: relayed > 0 ? Math.round(gas / relayed) : null,
      decision:
        verdict.decision === undefined
          ? null
          : {
              kind: verdict.decision.outcome,
              by: verdict.decision.by ?? "",
              at: verdict.decision.at.iso,
              reasonCode: verdict.decision.reason?.code ?? null,
              reason: verdict.decision.reason?.text ?? null,
              note: verdict.decision.note ?? null,
            },
    };
  });

  // Rejections: every tampered message dropped by the oracle with the reason the simulator expects. QoS 1 is at
  // least once, so a message resent after a lost PUBACK is a harmless extra `duplicate`.
  const tamperedMessages: Record<string, number> = {};
  const readingsRejected: Record<string, number> = {};
  for (const t of input.published.tampered) {
    tamperedMessages[t.reason] = (tamperedMessages[t.reason] ?? 0) + 1;
    readingsRejected[t.reason] = (readingsRejected[t.reason] ?? 0) + t.readings;
  }
  for (const reason of new Set([...Object.keys(tamperedMessages), ...Object.keys(input.dropped)])) {
    const expected = tamperedMessages[reason] ?? 0;
    const dropped = input.dropped[reason] ?? 0;
    if (reason === "duplicate" ? dropped < expected : dropped !== expected) {
      problems.push(`${expected} tampered messages should be dropped as ${reason}; the oracle dropped ${dropped}`);
    }
  }
  for (const [key, n] of Object.entries(skippedByContract)) readingsRejected[key] = (readingsRejected[key] ?? 0) + n;
  for (const h of histories) {
    for (const s of h.unauthenticatedSkips) {
      readingsRejected[`relay-noise:${s.reason}`] = (readingsRejected[`relay-noise:${s.reason}`] ?? 0) + s.count;
    }
  }
  const readingsOnChain = shipments.reduce((a, s) => a + s.readingsOnChain, 0);
  const readingsPublished = [...input.published.validReadings.values()].reduce((a, s) => a + s.length, 0);
  const gasPerReading = relayedReadings > 0 ? Math.round(Number(totalGas) / relayedReadings) : null;
  const { prices } = input;
  const l1Eth = (Number(totalGas) * prices.l1Gwei) / 1e9;
  const l2Eth = (Number(totalGas) * prices.l2Gwei) / 1e9;
  for (const a of input.attempts ?? []) {
    if (a.refusedWith === null) {
      problems.push(
        `the contract allowed an attempt to bend the verdict: ${a.attempt}` +
          (a.outcome === undefined ? "" : ` (${a.outcome})`),
      );
    }
  }
  // What other relayers recorded, the oracle found on chain before relaying it (and spent no gas on).
  if (input.relay !== undefined && input.relay.alreadyOnChain !== readingsByOtherRelayers) {
    problems.push(
      `${readingsByOtherRelayers} readings were recorded by other relayers; the oracle found ` +
        `${input.relay.alreadyOnChain} already on-chain`,
    );
  }
  return {
    chainId: suite.deployment.chainId,
    coldChain: suite.deployment.contracts.ColdChain.address,
    shipments,
    readingsPublished,
    readingsOnChain,
    readingsByOtherRelayers,
    readingsRejected,
    readingsWaited,
    messagesRejected: { ...input.dropped },
    batches: gasOfTx.size,
    gasUsed: totalGas.toString(),
    gasPerReading,
    cost: {
      prices,
      l1Eth,
      l1Usd: l1Eth * prices.ethUsd,
      l2Eth,
      l2Usd: l2Eth * prices.ethUsd,
      note: "execution gas of the oracle's relay transactions only; an L2 also charges for posting the calldata to L1",
    },
    attempts: input.attempts ?? [],
    crossCheck: { ok: problems.length === 0, problems },
  };
}

const c = (centi: number | null): string => (centi === null ? "n/a" : formatCelsius(centi, { decimals: 2 }));

/** "101: 6.13 °C over 25 h 30 min, 102: … (limit 8.00 °C)": each logger's own MKT, as the rule judges it. */
function formatMkt(s: ShipmentReport): string {
  const loggers = s.mktByLogger
    .map(
      (l) =>
        `${l.deviceId}: ${l.mktCentiC === null ? "n/a" : `${c(l.mktCentiC)} over ${formatDuration(l.mktSeconds)}`}`,
    )
    .join(", ");
  return `${loggers} (${s.mktLimitCentiC === null ? "no MKT limit" : `limit ${c(s.mktLimitCentiC)}`})`;
}

/** How an attempt to bend the verdict ended. */
function formatAttempt(a: BendAttempt, crossCheckOk: boolean): string {
  if (a.outcome === undefined) {
    return a.refusedWith === null ? "ALLOWED (a defect)" : `refused by the contract (${a.refusedWith})`;
  }
  if (a.refusedWith === null) return `${a.outcome} (a defect)`;
  return `${a.outcome}, ${crossCheckOk ? "verdict unchanged (cross-check)" : "verdict not confirmed (cross-check failed)"}`;
}

/** The report as text, one block per shipment and the totals. */
export function formatReport(report: StackReport): string {
  const lines: string[] = [];
  for (const s of report.shipments) {
    lines.push("", `== shipment ${s.id}: ${s.title}`);
    const name = (role: string): string => PARTY_NAMES[role as PartyRole] ?? role;
    lines.push(`status            ${s.status}`);
    lines.push(`verdict           ${s.verdict}`);
    if (s.decision !== null) {
      const who = name(s.custody.find((p) => p.address === s.decision?.by)?.custodian ?? s.decision.by);
      const at = formatDateTime(Date.parse(s.decision.at) / 1000);
      lines.push(
        `decision          ${s.decision.kind} by ${who} at ${at}` +
          (s.decision.reasonCode === null ? "" : ` — reason ${s.decision.reasonCode}: ${s.decision.reason ?? ""}`) +
          (s.decision.note === null ? "" : ` — note: "${s.decision.note}"`),
      );
    }
    for (const [i, b] of s.breaches.entries())
      lines.push(`${i === 0 ? "breaches          " : " ".repeat(18)}${b.text}`);
    for (const [i, l] of s.liable.entries()) {
      lines.push(
        `${i === 0 ? "liable            " : " ".repeat(18)}${name(l.custodian)}: held ${formatDuration(l.heldSeconds)}, ` +
          `excursion ${formatDuration(l.excursionSeconds)}, ${l.breaches.map((k) => BREACH_KIND_WORDS[k as keyof typeof BREACH_KIND_WORDS] ?? k).join(", ")}`,
      );
    }
    lines.push(`readings          ${s.readingsOnChain} on-chain`);
    lines.push(`min / max         ${c(s.minCentiC)} / ${c(s.maxCentiC)}`);
    lines.push(`MKT per logger    ${formatMkt(s)}`);
    lines.push(
      `gas               ${Number(s.gasUsed).toLocaleString("en-US")} (${s.gasPerReading?.toLocaleString("en-US") ?? "n/a"} per reading)`,
    );
    lines.push("custody, excursion time and breaches per custodian:");
    const seen = new Set<string>();
    for (const p of s.custody) {
      if (seen.has(p.custodian)) continue;
      seen.add(p.custodian);
      const mine = [...new Set(s.breaches.filter((b) => b.custodian === p.custodian).map((b) => b.reason))];
      const kinds = mine.map((k) => BREACH_KIND_WORDS[k as keyof typeof BREACH_KIND_WORDS] ?? k);
      lines.push(
        `  ${name(p.custodian).padEnd(32)} since ${formatDateTime(Date.parse(p.since) / 1000)}  ` +
          `excursion ${formatDuration(s.excursionSecondsByCustodian[p.custodian] ?? 0).padStart(10)}  ` +
          `breaches: ${kinds.length > 0 ? `${kinds.join(", ")} (liable)` : "none"}`,
      );
    }
  }
  lines.push("", "== totals");
  lines.push(
    `readings          ${report.readingsPublished} published, ${report.readingsOnChain} on-chain` +
      (report.readingsByOtherRelayers > 0 ? ` (${report.readingsByOtherRelayers} recorded by another relayer)` : ""),
  );
  // The oracle's drops in messages, from the same count as the progress line (`totalDropped`), with the readings
  // those messages carried; then what the contract refused, in readings.
  const messages = Object.entries(report.messagesRejected).filter(([, n]) => n > 0);
  const byOracle = Object.entries(report.readingsRejected).filter(([r, n]) => n > 0 && !r.includes(":"));
  const byContract = Object.entries(report.readingsRejected).filter(([r, n]) => n > 0 && r.includes(":"));
  const droppedReadings = byOracle.reduce((a, [, n]) => a + n, 0);
  lines.push(
    `dropped           ${totalDropped(report.messagesRejected)} messages by the oracle` +
      (messages.length === 0
        ? ""
        : `: ${messages.map(([r, n]) => `${r} ${n}`).join(", ")} (${droppedReadings} readings in them: ` +
          `${byOracle.map(([r, n]) => `${r} ${n}`).join(", ")})`),
  );
  lines.push(
    `refused           ${byContract.length === 0 ? "none" : byContract.map(([r, n]) => `${r} ${n}`).join(", ")} ` +
      "(readings, by the contract)",
  );
  lines.push(
    `gas               ${Number(report.gasUsed).toLocaleString("en-US")} in ${report.batches} batches, ` +
      `${report.gasPerReading?.toLocaleString("en-US") ?? "n/a"} per reading`,
  );
  const p = report.cost.prices;
  lines.push(
    `cost              L1 at ${p.l1Gwei} gwei: ${report.cost.l1Eth.toFixed(6)} ETH ($${report.cost.l1Usd.toFixed(2)}); ` +
      `L2 at ${p.l2Gwei} gwei: ${report.cost.l2Eth.toFixed(8)} ETH ($${report.cost.l2Usd.toFixed(4)}) at $${p.ethUsd}/ETH`,
  );
  lines.push(`                  (${report.cost.note})`);
  for (const [i, a] of report.attempts.entries()) {
    lines.push(
      `${i === 0 ? "bend attempts     " : "                  "}${a.attempt}: ${formatAttempt(a, report.crossCheck.ok)}`,
    );
  }
  lines.push(
    report.crossCheck.ok
      ? "cross-check       chain, simulator and oracle agree"
      : `cross-check       FAILED:\n${report.crossCheck.problems.map((x) => `  - ${x}`).join("\n")}`,
  );
  return lines.join("\n");
}
