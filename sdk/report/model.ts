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
import { formatCelsius, formatCelsiusRange, formatDateTime, formatDuration } from "../format.js";
import type { BreachReasonName } from "../names.js";
import {
  BREACH_KIND_WORDS,
  CONDITION_WORDS,
  STAGE_WORDS,
  breachRuleText,
  breachText,
  decisionText,
  shipmentVerdict,
} from "../verdict.js";
import type { ShipmentVerdict } from "../verdict.js";

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

/** "2026-12-07 03:00:00 UTC"; "-" for 0 (not yet). */
function utc(unix: number): string {
  return unix === 0 ? "-" : formatDateTime(unix);
}

/** A temperature in centi-°C, "-" when unknown. */
function celsius(centiC: number | undefined): string {
  return centiC === undefined ? "-" : formatCelsius(centiC);
}

/**
 * The profile's rules in sentences, each rule in the words the verdict uses for its breach
 * (`breachRuleText`), and "off" for a rule the profile does not apply.
 */
export function profileInWords(p: TemperatureProfile): string[] {
  const off = (kind: BreachReasonName): string => `${BREACH_KIND_WORDS[kind]}: off (the profile does not apply it).`;
  const rule = (kind: BreachReasonName, on: boolean, more = ""): string =>
    on ? `${breachRuleText(kind, p)}${more} is a breach.` : off(kind);
  const flags = [
    [FLAG_SENSOR_FAULT, "sensor fault"],
    [FLAG_LOW_BATTERY, "low battery"],
    [FLAG_TAMPER, "tamper"],
  ] as const;
  const named = flags.filter(([bit]) => (p.faultFlagMask & bit) !== 0).map(([, name]) => name);
  return [
    `Allowed range: ${formatCelsiusRange(p.minCentiC, p.maxCentiC)}; a reading outside it is an excursion.`,
    rule("AbsoluteLimit", true, " (a single reading)"),
    rule("SingleExcursion", p.maxSingleExcursionSeconds !== 0),
    rule("CumulativeExcursion", p.maxCumulativeExcursionSeconds !== 0),
    rule("Freeze", p.maxFreezeSeconds !== 0),
    rule("MissingData", p.maxGapIntervals !== 0),
    rule(
      "DeviceFault",
      p.faultFlagMask !== 0,
      ` (flags: ${named.join(", ") || "other bits"}; mask 0x${p.faultFlagMask.toString(16).padStart(2, "0")})`,
    ),
    rule("MktExceeded", p.mktEnabled, ` once it covers ${formatDuration(p.mktMinCoverageSeconds)} or more`),
    p.adaptationSeconds === 0
      ? "Every reading from the start is judged (no adaptation time)."
      : `Readings in the first ${formatDuration(p.adaptationSeconds)} after the start are not judged (adaptation time).`,
  ];
}

/** The verdict in sentences: the summary, each breach (at most `maxBreaches`), the liable parties, the decision. */
export function verdictSentences(
  verdict: ShipmentVerdict,
  party: (address: string) => string,
  readings: { count: number; loggers: number },
  maxBreaches = 3,
): string[] {
  const out = [`${verdict.summary}.`];
  if (verdict.condition === "compliant") {
    out.push(
      `No breach of the profile's rules is recorded on chain (${readings.count} readings from ${readings.loggers} logger${readings.loggers === 1 ? "" : "s"}).`,
    );
  }
  verdict.breaches.slice(0, maxBreaches).forEach((b, i) => out.push(`Breach ${i + 1}: ${breachText(b, party)}.`));
  if (verdict.breaches.length > maxBreaches) {
    out.push(`… and ${verdict.breaches.length - maxBreaches} more breaches: see the breach table.`);
  }
  for (const l of verdict.liable) {
    out.push(
      `Liable: ${party(l.party)} for ${l.breaches.map((b) => BREACH_KIND_WORDS[b].toLowerCase()).join(", ")} ` +
        `(held the shipment ${formatDuration(l.heldSeconds)}, ${formatDuration(l.excursionSeconds)} out of range charged to it).`,
    );
  }
  out.push(
    verdict.decision === undefined
      ? `QA decision: none yet (${STAGE_WORDS[verdict.stage]}).`
      : `QA decision: ${decisionText(verdict.decision, party)}.`,
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

  // The verdict (sdk/verdict.ts) refined by the history: breaches in time order, numbered; the chart's markers
  // and the breach table use the same numbers.
  const verdict = shipmentVerdict(state, history, party);
  const breaches = verdict.breaches;
  const compliant = verdict.condition !== "breached";
  const decisionEvent = history.lifecycle.find((e) => DECISIONS.has(e.kind));
  const verdictLines = verdictSentences(verdict, party, {
    count: c.readingCount,
    loggers: state.devices.length,
  });
  const headline = `${CONDITION_WORDS[verdict.condition].toUpperCase()} · ${STAGE_WORDS[verdict.stage].toUpperCase()}`;
  /** The history's event of a verdict breach (for its sequence and the run's shares). */
  const eventOf = (b: (typeof breaches)[number]) =>
    history.breaches.find(
      (e) => e.transactionHash === b.transactionHash && e.deviceId === b.deviceId && e.reason === b.kind,
    );

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
      String(period.index),
      party(period.custodian),
      utc(period.since),
      until === undefined ? "now" : utc(until),
      formatDuration(Math.max(0, (until ?? end) - period.since)),
      formatDuration(period.excursionSeconds),
      period.breaches.length > 0
        ? `LIABLE for ${period.breaches.map((b) => BREACH_KIND_WORDS[b]).join(", ")}`
        : "no breach",
    ];
  });

  const references: ReportReference[] = [];
  const created = history.lifecycle.find((e) => e.kind === "created");
  if (created !== undefined) references.push({ what: "shipment created", ...refOf(created) });
  for (const h of history.custody) {
    references.push({ what: `custody period ${h.periodIndex} to ${party(h.to)}`, ...refOf(h) });
  }
  breaches.forEach((b, i) => {
    if (b.blockNumber === undefined || b.transactionHash === undefined) return;
    references.push({
      what: `breach ${i + 1}: ${BREACH_KIND_WORDS[b.kind]}`,
      blockNumber: b.blockNumber,
      transactionHash: b.transactionHash,
    });
  });
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
    verdict: headline,
    verdictLines,
    summary: [
      ["Shipper", party(state.shipper)],
      ["Receiver", party(state.receiver)],
      ["Owner", party(state.owner)],
      ["Readings", `${evaluated} on chain from ${state.devices.length} logger${state.devices.length === 1 ? "" : "s"}`],
      ["Min / max", c.hasTemperature ? `${celsius(c.minCentiC)} / ${celsius(c.maxCentiC)}` : "no evaluated reading"],
      ["Longest excursion", formatDuration(c.longestExcursionSeconds)],
      ["Status", STAGE_WORDS[verdict.stage]],
      ["Profile", `#${state.profileId}: ${formatCelsiusRange(p.minCentiC, p.maxCentiC)}`],
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
      breaches: breaches.flatMap((b, i) =>
        b.at === undefined ? [] : [{ number: i + 1, at: b.at.unix, reason: BREACH_KIND_WORDS[b.kind] }],
      ),
      custody: state.custody.map((period) => ({
        number: period.index,
        from: Math.max(period.since, xMin),
        to: Math.min(period.until ?? xMax, xMax),
        liable: period.breaches.length > 0,
      })),
    },
    breaches: {
      header: ["#", "rule broken", "observed", "logger", "seq", "charged to (liable)", "custody period"],
      rows: breaches.map((b, i) => {
        const event = eventOf(b);
        return [
          String(i + 1),
          b.rule,
          b.at === undefined ? "-" : utc(b.at.unix),
          b.deviceId === undefined ? "-" : String(b.deviceId),
          event === undefined ? "-" : String(event.sequence),
          party(b.liable) + (event === undefined ? "" : shareText(history, event, party)),
          String(b.periodIndex),
        ];
      }),
      details: breaches.map((b) =>
        b.transactionHash === undefined ? undefined : `block ${b.blockNumber}  tx ${b.transactionHash}`,
      ),
    },
    excursions: {
      header: ["logger", "direction", "from", "to", "lasted", "peak"],
      rows: history.excursions.map((e) => [
        String(e.deviceId),
        e.direction === "high" ? "above range" : "below range",
        utc(e.startedAt),
        e.ongoing ? `${utc(e.endedAt)} (last reading)` : utc(e.endedAt),
        formatDuration(e.durationSeconds),
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
        l.periods.map(String).join(", "),
        formatDuration(l.heldSeconds),
        formatDuration(l.excursionSeconds),
        l.breaches.map((b) => BREACH_KIND_WORDS[b]).join(", ") || "none",
      ]),
    },
    loggers: {
      header: ["logger", "MKT", "MKT covers", "MKT limit", "out of range (total)", "readings"],
      rows: state.devices.map((d) => [
        String(d.deviceId),
        celsius(d.evidence.mktCentiC),
        d.evidence.mktCentiC === undefined ? "-" : formatDuration(d.evidence.mktSeconds),
        p.mktEnabled ? celsius(p.mktLimitCentiC) : "off",
        formatDuration(d.evidence.cumulativeExcursionSeconds),
        String(history.readings.filter((r) => r.deviceId === d.deviceId).length),
      ]),
    },
    devices: {
      header: ["logger", "key type", "interval", "owner", "status"],
      rows: state.devices.map((d) => [
        String(d.deviceId),
        d.keyType === "P256" ? "P-256" : d.keyType,
        formatDuration(d.intervalSeconds),
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
  return `; run shared: ${shares.map((s) => `${party(s.custodian)} ${formatDuration(s.runSeconds)} (custody period ${s.periodIndex})`).join(", ")}`;
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
