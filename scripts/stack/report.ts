/**
 * The report `npm start` ends with. Every number is read back from the chain — state through `readShipment`,
 * history (readings, breaches, custody, gas) through `shipmentHistory` and the receipts of the transactions
 * that recorded the readings — and is then cross-checked against what the simulator says it published and the
 * oracle says it dropped. A disagreement is listed under `crossCheck.problems` and fails the run.
 */
import type { JsonRpcProvider } from "ethers";

import type { ColdChainSuite } from "../../sdk/contracts.js";
import { shipmentHistory } from "../../sdk/history.js";
import type { ShipmentHistory } from "../../sdk/history.js";
import { readShipment } from "../../sdk/state.js";
import type { ShipmentState } from "../../sdk/state.js";
import { PARTY_NAMES } from "./plan.js";
import type { PartyRole, ShipmentPlan } from "./plan.js";

/** Gas prices the cost lines are stated at (override with --l1-gwei / --l2-gwei / --eth-usd). */
export interface Prices {
  readonly l1Gwei: number;
  readonly l2Gwei: number;
  readonly ethUsd: number;
}

/** What the simulator published (its own ledger) and the oracle dropped, to check the chain against. */
export interface Published {
  /** Per device: sequences of the valid readings published. */
  readonly validSequences: ReadonlyMap<bigint, readonly number[]>;
  /** Tampered messages published, by the drop reason the oracle must give. */
  readonly tamperedByReason: Readonly<Record<string, number>>;
}

export interface ShipmentReport {
  readonly id: string;
  readonly title: string;
  readonly status: string;
  readonly readingsOnChain: number;
  readonly minCentiC: number | null;
  readonly maxCentiC: number | null;
  readonly mktCentiC: number | null;
  readonly breaches: readonly { reason: string; custodian: string; custodianAddress: string }[];
  readonly excursionSecondsByCustodian: Readonly<Record<string, number>>;
  readonly custody: readonly { custodian: string; address: string; since: string }[];
  readonly gasUsed: string;
  readonly gasPerReading: number | null;
  readonly decision: string;
}

export interface StackReport {
  readonly chainId: number;
  readonly coldChain: string;
  readonly shipments: readonly ShipmentReport[];
  readonly readingsPublished: number;
  readonly readingsOnChain: number;
  /** Oracle drops (its reasons) and contract skips (`contract:<SkipReason>`), in readings. */
  readonly readingsRejected: Readonly<Record<string, number>>;
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
  /** Oracle drops by reason, in messages (one reading each, windows count their samples). */
  readonly dropped: Readonly<Record<string, number>>;
  readonly prices: Prices;
}

export async function buildReport(input: ReportInput): Promise<StackReport> {
  const { suite, plan, shipmentIds, roles } = input;
  const roleOf = (address: string): string => roles.get(address) ?? address;
  const states: ShipmentState[] = [];
  const histories: ShipmentHistory[] = [];
  for (const id of shipmentIds) {
    states.push(await readShipment(suite, id));
    histories.push(await shipmentHistory(suite, id));
  }

  // Gas: every transaction that recorded readings, shared among shipments by their readings in it.
  const readingsPerTx = new Map<string, number>();
  for (const h of histories) {
    for (const r of h.readings) readingsPerTx.set(r.transactionHash, (readingsPerTx.get(r.transactionHash) ?? 0) + 1);
  }
  const gasOfTx = new Map<string, bigint>();
  for (const hash of readingsPerTx.keys()) {
    const receipt = await input.provider.getTransactionReceipt(hash);
    if (receipt === null) throw new Error(`receipt of relay transaction ${hash} not found`);
    gasOfTx.set(hash, receipt.gasUsed);
  }
  const totalGas = [...gasOfTx.values()].reduce((a, b) => a + b, 0n);

  const problems: string[] = [];
  const shipments: ShipmentReport[] = states.map((state, i) => {
    const history = histories[i] as ShipmentHistory;
    const shipmentPlan = plan[i] as ShipmentPlan;
    let gas = 0;
    const mine = new Map<string, number>();
    for (const r of history.readings) mine.set(r.transactionHash, (mine.get(r.transactionHash) ?? 0) + 1);
    for (const [hash, n] of mine) {
      gas += (Number(gasOfTx.get(hash) ?? 0n) * n) / (readingsPerTx.get(hash) ?? n);
    }
    const breaches = history.breaches.map((b) => ({
      reason: b.reason,
      custodian: roleOf(b.custodian),
      custodianAddress: b.custodian,
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
    for (const device of shipmentPlan.devices) {
      const onChain = history.readings.filter((r) => r.deviceId === device.deviceId).map((r) => r.sequence);
      const sent = input.published.validSequences.get(device.deviceId) ?? [];
      const onChainSet = new Set(onChain);
      const missing = sent.filter((s) => !onChainSet.has(s));
      const sentSet = new Set(sent);
      const extra = onChain.filter((s) => !sentSet.has(s));
      if (onChain.length !== onChainSet.size) problems.push(`device ${device.deviceId}: a sequence is on chain twice`);
      if (missing.length > 0) {
        problems.push(
          `device ${device.deviceId}: ${missing.length} valid readings not on chain (first seq ${missing[0]})`,
        );
      }
      if (extra.length > 0) problems.push(`device ${device.deviceId}: ${extra.length} readings on chain it never sent`);
    }
    for (const s of history.skipped) {
      problems.push(
        `device ${s.deviceId}: ${s.count} readings from seq ${s.sequence} skipped by the contract (${s.reason})`,
      );
    }
    return {
      id: state.shipmentId.toString(),
      title: shipmentPlan.title,
      status: state.status,
      readingsOnChain: state.condition.readingCount,
      minCentiC: state.condition.minCentiC ?? null,
      maxCentiC: state.condition.maxCentiC ?? null,
      mktCentiC: state.condition.mktCentiC ?? null,
      breaches,
      excursionSecondsByCustodian: excursion,
      custody: state.custody.map((p) => ({
        custodian: roleOf(p.custodian),
        address: p.custodian,
        since: new Date(p.since * 1000).toISOString(),
      })),
      gasUsed: Math.round(gas).toString(),
      gasPerReading: state.condition.readingCount > 0 ? Math.round(gas / state.condition.readingCount) : null,
      decision: state.status,
    };
  });

  const readingsRejected: Record<string, number> = { ...input.dropped };
  for (const h of histories) {
    for (const s of h.skipped)
      readingsRejected[`contract:${s.reason}`] = (readingsRejected[`contract:${s.reason}`] ?? 0) + s.count;
  }
  for (const [reason, n] of Object.entries(input.published.tamperedByReason)) {
    const dropped = input.dropped[reason] ?? 0;
    // MQTT QoS 1 is at least once: a message resent after a lost PUBACK is a harmless extra `duplicate`.
    if (reason === "duplicate" ? dropped < n : dropped !== n) {
      problems.push(
        `tampered messages with reason ${reason}: ${n} published, ${input.dropped[reason] ?? 0} dropped by the oracle`,
      );
    }
  }
  for (const [reason, n] of Object.entries(input.dropped)) {
    if (n > 0 && reason !== "duplicate" && input.published.tamperedByReason[reason] === undefined) {
      problems.push(`the oracle dropped ${n} messages as ${reason}, none of them tampered (a valid reading lost?)`);
    }
  }
  const readingsOnChain = shipments.reduce((a, s) => a + s.readingsOnChain, 0);
  const readingsPublished = [...input.published.validSequences.values()].reduce((a, s) => a + s.length, 0);
  const gasPerReading = readingsOnChain > 0 ? Math.round(Number(totalGas) / readingsOnChain) : null;
  const { prices } = input;
  const l1Eth = (Number(totalGas) * prices.l1Gwei) / 1e9;
  const l2Eth = (Number(totalGas) * prices.l2Gwei) / 1e9;
  return {
    chainId: suite.deployment.chainId,
    coldChain: suite.deployment.contracts.ColdChain.address,
    shipments,
    readingsPublished,
    readingsOnChain,
    readingsRejected,
    batches: gasOfTx.size,
    gasUsed: totalGas.toString(),
    gasPerReading,
    cost: {
      prices,
      l1Eth,
      l1Usd: l1Eth * prices.ethUsd,
      l2Eth,
      l2Usd: l2Eth * prices.ethUsd,
      note: "execution gas of the relay transactions only; an L2 also charges for posting the calldata to L1",
    },
    crossCheck: { ok: problems.length === 0, problems },
  };
}

const c = (centi: number | null): string => (centi === null ? "n/a" : `${(centi / 100).toFixed(2)} °C`);
const minutes = (seconds: number): string => `${Math.round(seconds / 60)} min`;

/** The report as text, one block per shipment and the totals. */
export function formatReport(report: StackReport): string {
  const lines: string[] = [];
  for (const s of report.shipments) {
    lines.push("", `== shipment ${s.id}: ${s.title}`);
    lines.push(`status            ${s.status}`);
    lines.push(`readings          ${s.readingsOnChain} on-chain`);
    lines.push(`min / max / MKT   ${c(s.minCentiC)} / ${c(s.maxCentiC)} / ${c(s.mktCentiC)}`);
    lines.push(
      `gas               ${Number(s.gasUsed).toLocaleString("en-US")} (${s.gasPerReading?.toLocaleString("en-US") ?? "n/a"} per reading)`,
    );
    lines.push("custody, excursion time and breaches per custodian:");
    const seen = new Set<string>();
    for (const p of s.custody) {
      if (seen.has(p.custodian)) continue;
      seen.add(p.custodian);
      const name = PARTY_NAMES[p.custodian as PartyRole] ?? p.custodian;
      const mine = s.breaches.filter((b) => b.custodian === p.custodian).map((b) => b.reason);
      lines.push(
        `  ${name.padEnd(32)} since ${p.since}  excursion ${minutes(s.excursionSecondsByCustodian[p.custodian] ?? 0).padStart(7)}  ` +
          `breaches: ${mine.length > 0 ? [...new Set(mine)].join(", ") : "none"}`,
      );
    }
  }
  lines.push("", "== totals");
  lines.push(`readings          ${report.readingsPublished} published, ${report.readingsOnChain} on-chain`);
  const rejected = Object.entries(report.readingsRejected).filter(([, n]) => n > 0);
  lines.push(`rejected          ${rejected.length === 0 ? "none" : rejected.map(([r, n]) => `${r} ${n}`).join(", ")}`);
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
  lines.push(
    report.crossCheck.ok
      ? "cross-check       chain, simulator and oracle agree"
      : `cross-check       FAILED:\n${report.crossCheck.problems.map((x) => `  - ${x}`).join("\n")}`,
  );
  return lines.join("\n");
}
