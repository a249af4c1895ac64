/**
 * The shipment temperature report as data: everything the PDF prints (sdk/report/pdf.ts), already in words, with
 * the on-chain reference of every figure. Built from the SDK's `readShipment` and `shipmentHistory` read at one
 * block, so the same block gives the same report (and the same `digest`): that is how an auditor re-checks a PDF.
 * Browser-safe.
 */
import { decodeBytes32String, getBytes, keccak256, toUtf8Bytes, ZeroHash } from "ethers";
import type { BlockTag } from "ethers";

import type { ColdChainSuite } from "../contracts.js";
import type { Deployment } from "../deployment.js";
import { runSharesOf, shipmentHistory, temperatureTimeline } from "../history.js";
import type { LifecycleEvent, ShipmentHistory } from "../history.js";
import type { DeviceKeyTypeName } from "../names.js";
import { deviceKeyTypeName } from "../names.js";
import { FLAG_LOW_BATTERY, FLAG_SENSOR_FAULT, FLAG_TAMPER } from "../protocol/constants.js";
import { readShipment } from "../state.js";
import type { ShipmentState, TemperatureProfile } from "../state.js";
import { BREACH_WORDS, breachTitle, celsius, celsiusRange, duration, utc } from "./text.js";

/** A device's verification key as the DeviceRegistry holds it at the report's block. */
export interface DeviceKey {
  readonly deviceId: bigint;
  readonly keyType: DeviceKeyTypeName;
  /** The secp256k1 key's address (zero for P-256). */
  readonly signer: string;
  /** The P-256 public key (zero for secp256k1). */
  readonly qx: string;
  readonly qy: string;
}

/** A plain table: header, rows of cells, and an optional full-width line under a row (a transaction hash). */
export interface ReportTable {
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
  /** Under row i: its on-chain reference (printed in a fixed-width font, never wrapped). */
  readonly details?: readonly (string | undefined)[];
}

/** One line of the chart: a logger's readings (unix seconds, °C). */
export interface ReportSeries {
  readonly deviceId: string;
  readonly times: readonly number[];
  readonly tempsC: readonly number[];
  /** A new line starts after a gap longer than the profile allows (readings missing). */
  readonly breaksAfter: readonly number[];
}

export interface ReportChart {
  readonly series: readonly ReportSeries[];
  readonly minC: number;
  readonly maxC: number;
  readonly absoluteMinC: number;
  readonly absoluteMaxC: number;
  /** The freeze threshold when the freeze rule is on. */
  readonly freezeC: number | undefined;
  readonly xMin: number;
  readonly xMax: number;
  /** Breach markers, numbered as in the breach table. */
  readonly breaches: readonly { readonly number: number; readonly at: number; readonly reason: string }[];
  /** Custody periods, numbered as in the custody table. */
  readonly custody: readonly {
    readonly number: number;
    readonly from: number;
    readonly to: number;
    readonly liable: boolean;
  }[];
}

/** An event the report cites: what, block, transaction. */
export interface ReportReference {
  readonly what: string;
  readonly blockNumber: number;
  readonly transactionHash: string;
}

export interface ShipmentReport {
  readonly title: string;
  readonly shipmentId: string;
  /** The business reference (bytes32, e.g. a hashed SSCC) as 0x hex, or its text when it is a short string. */
  readonly reference: string;
  readonly network: string;
  readonly chainId: number;
  readonly contracts: { readonly ColdChain: string; readonly DeviceRegistry: string; readonly ColdChainLens: string };
  /** The block everything was read at, and its time. */
  readonly blockNumber: number;
  readonly blockTime: number;
  readonly compliant: boolean;
  /** "COMPLIANT" / "BREACHED" (and the QA decision, when taken). */
  readonly verdict: string;
  /** The verdict in sentences: what breach, when, on which logger, who was liable and for how long, the decision. */
  readonly verdictLines: readonly string[];
  readonly summary: readonly (readonly [string, string])[];
  readonly chart: ReportChart;
  readonly breaches: ReportTable;
  readonly excursions: ReportTable;
  readonly custody: ReportTable;
  readonly liability: ReportTable;
  readonly loggers: ReportTable;
  readonly devices: ReportTable;
  readonly profile: readonly string[];
  readonly decision: ReportReference | undefined;
  readonly references: readonly ReportReference[];
  /** Commands that re-check the report against the chain. */
  readonly verify: readonly string[];
  /** keccak256 of the report's data (this object without `digest`), 0x hex: same block, same digest. */
  readonly digest: string;
}

export interface ShipmentReportInput {
  readonly state: ShipmentState;
  readonly history: ShipmentHistory;
  readonly keys: readonly DeviceKey[];
  readonly deployment: Deployment;
  /** Time of `state.blockNumber` (unix seconds). */
  readonly blockTime: number;
  /** Names of parties by address (any case), e.g. "Polar Freight (carrier)"; else addresses are printed. */
  readonly labels?: Readonly<Record<string, string>>;
}

/** The key fingerprint printed for a device: the secp256k1 address, or the first 20 bytes of keccak256(qx‖qy). */
export function keyFingerprint(key: Pick<DeviceKey, "keyType" | "signer" | "qx" | "qy">): string {
  if (key.keyType === "P256") {
    const hash = keccak256(new Uint8Array([...getBytes(key.qx), ...getBytes(key.qy)]));
    return `0x${hash.slice(2, 42)}`;
  }
  return key.signer;
}

/** Reads the keys of `deviceIds` from the DeviceRegistry at `blockTag`. */
export async function readDeviceKeys(
  suite: ColdChainSuite,
  deviceIds: readonly bigint[],
  blockTag: BlockTag,
): Promise<DeviceKey[]> {
  return await Promise.all(
    deviceIds.map(async (deviceId) => {
      const d = await suite.registry.device(deviceId, { blockTag });
      return { deviceId, keyType: deviceKeyTypeName(d.keyType), signer: d.signer, qx: d.qx, qy: d.qy };
    }),
  );
}

export interface ReadShipmentReportOptions {
  /** Block to read at (default the latest): a report for block B is the same document whenever it is made. */
  readonly blockNumber?: number;
  readonly labels?: Readonly<Record<string, string>>;
  /** Largest block range of one `eth_getLogs` (see shipmentHistory). */
  readonly maxRange?: number;
  readonly fromBlock?: number;
}

/** Reads state, history and device keys of `shipmentId` at one block and builds its report. */
export async function readShipmentReport(
  suite: ColdChainSuite,
  shipmentId: bigint | number,
  options: ReadShipmentReportOptions = {},
): Promise<ShipmentReport> {
  const state = await readShipment(suite, shipmentId, {
    ...(options.blockNumber === undefined ? {} : { blockTag: options.blockNumber }),
  });
  const provider = suite.runner.provider;
  if (provider == null) throw new Error("the suite's runner has no provider");
  const [history, keys, block] = await Promise.all([
    shipmentHistory(suite, shipmentId, {
      toBlock: state.blockNumber,
      ...(options.maxRange === undefined ? {} : { maxRange: options.maxRange }),
      ...(options.fromBlock === undefined ? {} : { fromBlock: options.fromBlock }),
    }),
    readDeviceKeys(
      suite,
      state.devices.map((d) => d.deviceId),
      state.blockNumber,
    ),
    provider.getBlock(state.blockNumber),
  ]);
  return shipmentReport({
    state,
    history,
    keys,
    deployment: suite.deployment,
    blockTime: block?.timestamp ?? 0,
    ...(options.labels === undefined ? {} : { labels: options.labels }),
  });
}

const DECISIONS = new Set<LifecycleEvent["kind"]>(["released", "rejected", "cancelled"]);

/** A bytes32 as its text when it is a printable short string, else as hex. */
export function bytes32Text(value: string): string {
  if (value === ZeroHash) return "-";
  try {
    const text = decodeBytes32String(value);
    if (/^[\x20-\x7e]+$/.test(text)) return text;
  } catch {
    // not a short string
  }
  return value;
}

/** The profile's rules in sentences (a rule that is off says so). */
export function profileInWords(p: TemperatureProfile): string[] {
  const out = [`Allowed range ${celsiusRange(p.minCentiC, p.maxCentiC)}: a reading outside it is an excursion.`];
  out.push(
    `Absolute limits ${celsiusRange(p.absoluteMinCentiC, p.absoluteMaxCentiC)}: a single reading beyond them is a breach (absolute limit).`,
  );
  out.push(
    p.maxSingleExcursionSeconds === 0
      ? "Single excursion: no limit (rule off)."
      : `Single excursion: one excursion of a logger may last at most ${duration(p.maxSingleExcursionSeconds)}.`,
  );
  out.push(
    p.maxCumulativeExcursionSeconds === 0
      ? "Cumulative excursion: no limit (rule off)."
      : `Cumulative excursion: each logger's total time out of range may be at most ${duration(p.maxCumulativeExcursionSeconds)}.`,
  );
  out.push(
    p.maxFreezeSeconds === 0
      ? "Freeze: rule off."
      : `Freeze: at or below ${celsius(p.freezeCentiC)} for more than ${duration(p.maxFreezeSeconds)} is a breach.`,
  );
  out.push(
    p.maxGapIntervals === 0
      ? "Missing data: rule off."
      : `Missing data: more than ${p.maxGapIntervals} recording intervals without a reading is a breach.`,
  );
  const flags = [
    [FLAG_SENSOR_FAULT, "sensor fault"],
    [FLAG_LOW_BATTERY, "low battery"],
    [FLAG_TAMPER, "tamper"],
  ] as const;
  const named = flags.filter(([bit]) => (p.faultFlagMask & bit) !== 0).map(([, name]) => name);
  out.push(
    p.faultFlagMask === 0
      ? "Device fault: rule off."
      : `Device fault: a reading flagged ${named.join(" or ") || "with mask bits"} (mask 0x${p.faultFlagMask.toString(16).padStart(2, "0")}) is a breach.`,
  );
  out.push(
    p.mktEnabled
      ? `Mean kinetic temperature: each logger's MKT may not exceed ${celsius(p.mktLimitCentiC)} once it covers at least ${duration(p.mktMinCoverageSeconds)}.`
      : "Mean kinetic temperature: rule off.",
  );
  out.push(
    p.adaptationSeconds === 0
      ? "Every reading from the start is judged (no adaptation time)."
      : `Readings in the first ${duration(p.adaptationSeconds)} after the start are not judged (adaptation time).`,
  );
  return out;
}

/** Builds the report from a state and history read at the same block. */
export function shipmentReport(input: ShipmentReportInput): ShipmentReport {
  const { state, history, deployment, keys } = input;
  const labels = new Map(Object.entries(input.labels ?? {}).map(([a, n]) => [a.toLowerCase(), n]));
  const party = (address: string): string => {
    const name = labels.get(address.toLowerCase());
    return name === undefined ? address : `${name} ${address.slice(0, 8)}…`;
  };
  const id = state.shipmentId;
  const p = state.profile;
  const c = state.condition;

  // Breaches, in order of observation, numbered: the chart's markers use the numbers.
  const breaches = [...history.breaches].sort(
    (a, b) => a.observedAt - b.observedAt || a.blockNumber - b.blockNumber || a.logIndex - b.logIndex,
  );
  const compliant = breaches.length === 0 && c.breaches.length === 0;
  const decisionEvent = history.lifecycle.find((e) => DECISIONS.has(e.kind));
  const decisionWords =
    decisionEvent === undefined
      ? "no QA decision yet"
      : `${decisionEvent.kind} by ${party(decisionEvent.by)} at ${utc(decisionEvent.at)}` +
        (decisionEvent.reasonCode === undefined ? "" : `, reason ${bytes32Text(decisionEvent.reasonCode)}`);

  const verdictLines: string[] = [];
  if (compliant) {
    verdictLines.push(
      `No breach of the profile's rules is recorded on chain for this shipment (${c.readingCount} readings from ${state.devices.length} logger${state.devices.length === 1 ? "" : "s"}).`,
    );
  } else {
    const kinds = [...new Set(breaches.map((b) => b.reason))];
    verdictLines.push(
      `${breaches.length} breach${breaches.length === 1 ? "" : "es"} recorded: ${kinds.map((k) => breachTitle(k).toLowerCase()).join(", ")}.`,
    );
    const first = breaches[0];
    if (first !== undefined) {
      verdictLines.push(
        `First: ${breachTitle(first.reason).toLowerCase()} (${BREACH_WORDS[first.reason]}) at ${utc(first.observedAt)} on logger ${first.deviceId}, ` +
          `while ${party(first.custodian)} had custody.`,
      );
    }
    for (const l of state.liability.filter((x) => x.breaches.length > 0)) {
      verdictLines.push(
        `Liable: ${party(l.custodian)} for ${l.breaches.map((b) => breachTitle(b).toLowerCase()).join(", ")} ` +
          `(held the shipment ${duration(l.heldSeconds)}, ${duration(l.excursionSeconds)} out of range charged to it).`,
      );
    }
  }
  verdictLines.push(`QA decision: ${decisionWords}.`);
  const status = state.status.toUpperCase();
  const verdict = `${compliant ? "COMPLIANT" : "BREACHED"} · ${status}`;

  const timeline = temperatureTimeline(history);
  const series: ReportSeries[] = timeline.devices.map((d) => ({
    deviceId: String(d.deviceId),
    times: d.times,
    tempsC: d.tempsC,
    breaksAfter: d.gaps.map((g) => g.from),
  }));
  const allTimes = series.flatMap((s) => [s.times[0], s.times.at(-1)]).filter((t) => t !== undefined);
  const end = state.deliveredAt || state.decidedAt || input.blockTime;
  // The chart spans the readings and the trip (start to delivery), not the time until the decision.
  const xMin = Math.min(state.startedAt || state.createdAt, ...allTimes);
  const xMax = Math.max(xMin + 60, ...allTimes, state.deliveredAt);

  const custodyRows = state.custody.map((period) => {
    const until = period.until ?? (state.deliveredAt > 0 ? state.deliveredAt : undefined);
    return [
      String(period.index + 1),
      party(period.custodian),
      utc(period.since),
      until === undefined ? "now" : utc(until),
      duration((until ?? end) - period.since),
      duration(period.excursionSeconds),
      period.breaches.length > 0 ? `LIABLE for ${period.breaches.map(breachTitle).join(", ")}` : "no breach",
    ];
  });

  const references: ReportReference[] = [];
  const created = history.lifecycle.find((e) => e.kind === "created");
  if (created !== undefined) references.push({ what: "shipment created", ...refOf(created) });
  for (const h of history.custody) {
    references.push({ what: `custody ${h.periodIndex + 1} to ${party(h.to)}`, ...refOf(h) });
  }
  breaches.forEach((b, i) => references.push({ what: `breach ${i + 1}: ${breachTitle(b.reason)}`, ...refOf(b) }));
  const decision =
    decisionEvent === undefined ? undefined : { what: `decision: ${decisionEvent.kind}`, ...refOf(decisionEvent) };
  if (decision !== undefined) references.push(decision);

  const keyById = new Map(keys.map((k) => [k.deviceId, k]));
  const evaluated = c.readingCount;
  const report: Omit<ShipmentReport, "digest"> = {
    title: `Shipment temperature report - shipment ${id}`,
    shipmentId: String(id),
    reference: bytes32Text(state.externalRef),
    network: deployment.network,
    chainId: deployment.chainId,
    contracts: {
      ColdChain: deployment.contracts.ColdChain.address,
      DeviceRegistry: deployment.contracts.DeviceRegistry.address,
      ColdChainLens: deployment.contracts.ColdChainLens.address,
    },
    blockNumber: state.blockNumber,
    blockTime: input.blockTime,
    compliant,
    verdict,
    verdictLines,
    summary: [
      ["Shipper", party(state.shipper)],
      ["Receiver", party(state.receiver)],
      ["Owner", party(state.owner)],
      ["Readings", `${evaluated} on chain from ${state.devices.length} logger${state.devices.length === 1 ? "" : "s"}`],
      ["Min / max", c.hasTemperature ? `${celsius(c.minCentiC)} / ${celsius(c.maxCentiC)}` : "no evaluated reading"],
      ["Longest excursion", duration(c.longestExcursionSeconds)],
      ["Status", state.status],
      ["Profile", `#${state.profileId}: ${celsiusRange(p.minCentiC, p.maxCentiC)}`],
      ["Created", utc(state.createdAt)],
      ["Started", utc(state.startedAt)],
      ["Delivered", utc(state.deliveredAt)],
      ["Decided", utc(state.decidedAt)],
      ["Read at", `block ${state.blockNumber}, ${utc(input.blockTime)}`],
    ],
    chart: {
      series,
      minC: p.minCentiC / 100,
      maxC: p.maxCentiC / 100,
      absoluteMinC: p.absoluteMinCentiC / 100,
      absoluteMaxC: p.absoluteMaxCentiC / 100,
      freezeC: p.maxFreezeSeconds === 0 ? undefined : p.freezeCentiC / 100,
      xMin,
      xMax,
      breaches: breaches.map((b, i) => ({ number: i + 1, at: b.observedAt, reason: breachTitle(b.reason) })),
      custody: state.custody.map((period) => ({
        number: period.index + 1,
        from: Math.max(period.since, xMin),
        to: Math.min(period.until ?? xMax, xMax),
        liable: period.breaches.length > 0,
      })),
    },
    breaches: {
      header: ["#", "breach", "observed", "logger", "seq", "charged to (liable)", "custody"],
      rows: breaches.map((b, i) => [
        String(i + 1),
        `${breachTitle(b.reason)}: ${BREACH_WORDS[b.reason]}`,
        utc(b.observedAt),
        String(b.deviceId),
        String(b.sequence),
        party(b.custodian) + shareText(history, b, party),
        String(b.periodIndex + 1),
      ]),
      details: breaches.map((b) => `block ${b.blockNumber}  tx ${b.transactionHash}`),
    },
    excursions: {
      header: ["logger", "direction", "from", "to", "lasted", "peak"],
      rows: history.excursions.map((e) => [
        String(e.deviceId),
        e.direction === "high" ? "above range" : "below range",
        utc(e.startedAt),
        e.ongoing ? `${utc(e.endedAt)} (last reading)` : utc(e.endedAt),
        duration(e.durationSeconds),
        celsius(e.peakCentiC),
      ]),
    },
    custody: {
      header: ["#", "custodian", "from", "until", "held", "out of range", "liability"],
      rows: custodyRows,
      details: state.custody.map((period) => {
        const h = history.custody.find((x) => x.periodIndex === period.index);
        return h === undefined ? undefined : `block ${h.blockNumber}  tx ${h.transactionHash}`;
      }),
    },
    liability: {
      header: ["party", "periods", "held", "out of range", "breaches charged"],
      rows: state.liability.map((l) => [
        party(l.custodian),
        l.periods.map((i) => String(i + 1)).join(", "),
        duration(l.heldSeconds),
        duration(l.excursionSeconds),
        l.breaches.map(breachTitle).join(", ") || "none",
      ]),
    },
    loggers: {
      header: ["logger", "MKT", "MKT covers", "MKT limit", "out of range (total)", "readings"],
      rows: state.devices.map((d) => [
        String(d.deviceId),
        celsius(d.evidence.mktCentiC),
        d.evidence.mktCentiC === undefined ? "-" : duration(d.evidence.mktSeconds),
        p.mktEnabled ? celsius(p.mktLimitCentiC) : "rule off",
        duration(d.evidence.cumulativeExcursionSeconds),
        String(history.readings.filter((r) => r.deviceId === d.deviceId).length),
      ]),
    },
    devices: {
      header: ["logger", "key type", "interval", "owner", "status"],
      rows: state.devices.map((d) => [
        String(d.deviceId),
        d.keyType === "P256" ? "P-256" : d.keyType,
        duration(d.intervalSeconds),
        party(d.owner),
        d.revokedAtBlock === 0 ? "active" : `revoked in block ${d.revokedAtBlock}`,
      ]),
      details: state.devices.map((d) => {
        const key = keyById.get(d.deviceId);
        const rotations = history.deviceKeyEvents.filter((e) => e.deviceId === d.deviceId).length;
        return key === undefined
          ? undefined
          : `key fingerprint ${keyFingerprint(key)}${rotations > 0 ? `  (${rotations} key event${rotations === 1 ? "" : "s"} during the shipment)` : ""}`;
      }),
    },
    profile: profileInWords(p),
    decision,
    references,
    verify: verifyCommands(deployment.network, id, state.blockNumber),
  };
  return { ...report, digest: reportDigest(report) };
}

/** ", run shared: A 20 min (custody 1), …" for a run that began under earlier custodians. */
function shareText(
  history: ShipmentHistory,
  breach: ShipmentHistory["breaches"][number],
  party: (a: string) => string,
): string {
  const shares = runSharesOf(history, breach);
  if (shares.length === 0) return "";
  return `; run shared: ${shares.map((s) => `${party(s.custodian)} ${duration(s.runSeconds)} (custody ${s.periodIndex + 1})`).join(", ")}`;
}

function refOf(e: { blockNumber: number; transactionHash: string }): { blockNumber: number; transactionHash: string } {
  return { blockNumber: e.blockNumber, transactionHash: e.transactionHash };
}

/** The CLI commands that re-check the report. */
export function verifyCommands(network: string, id: bigint, blockNumber: number): string[] {
  return [
    `npm run cli -- report --network ${network} --id ${id} --block ${blockNumber} --json`,
    `npm run cli -- show --network ${network} --id ${id}`,
    `npm run cli -- export-epcis --network ${network} --id ${id} --out shipment-${id}.epcis.json`,
  ];
}

/** keccak256 of the report's canonical JSON (bigints as decimal strings). */
export function reportDigest(report: Omit<ShipmentReport, "digest">): string {
  return keccak256(toUtf8Bytes(JSON.stringify(report, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v))));
}
