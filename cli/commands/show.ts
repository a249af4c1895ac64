/**
 * `show --id <shipmentId>`: a shipment's verdict in words (status, each breach with its time, logger and liable
 * custodian, the QA decision with its decider, time, reason and note), then its parties, profile in words,
 * condition, each logger's own evidence (its MKT and cumulative excursion: the per-device rules judge these),
 * custody chain and liability per custodian, as tables or (`--json`) as the SDK's `ShipmentState` (with its
 * `verdict`) plus the history and the verdict refined by it. Reads only.
 */
import { formatCelsius, formatCelsiusRange, formatDateTime, formatDuration } from "../../sdk/format.js";
import { runSharesOf, shipmentHistory } from "../../sdk/history.js";
import { readShipment, ShipmentNotFoundError } from "../../sdk/state.js";
import type { ShipmentStateWithVerdict } from "../../sdk/state.js";
import { breachText, decisionText, describeProfile, shipmentVerdict, STAGE_WORDS } from "../../sdk/verdict.js";
import type { ShipmentVerdict } from "../../sdk/verdict.js";
import type { DeviceKeyEvent, RunShare, ShipmentHistory, ShipmentState } from "../../sdk/index.js";
import { CliError } from "../command.js";
import type { Command, CommandContext } from "../command.js";
import { shipmentId } from "./shipment.js";

/** A date and time in UTC ("2026-12-07 03:00:00 UTC"), "-" for 0 (not yet). */
function time(seconds: number): string {
  return seconds === 0 ? "-" : formatDateTime(seconds);
}

function celsius(centiC: number | undefined): string {
  return centiC === undefined ? "-" : formatCelsius(centiC, { decimals: 2 });
}

const duration = formatDuration;

/** Minutes of a run share, to one decimal where it is not whole. */
function minutes(seconds: number): string {
  const m = seconds / 60;
  return `${Number.isInteger(m) ? m : m.toFixed(1)} min`;
}

/** "run shared: <custodian> <minutes> min (period n), …", the crossing period first (as the events are). */
export function runSharedLine(shares: readonly RunShare[]): string {
  return `run shared: ${shares.map((x) => `${x.custodian} ${minutes(x.runSeconds)} (period ${x.periodIndex})`).join(", ")}`;
}

/** A device's key rotation or revocation in words (under the devices of `show`). */
export function deviceKeyEventLine(e: DeviceKeyEvent): string {
  if (e.kind === "keyRotated") {
    const key = e.keyType === "P256" ? `P-256 ${e.qx.slice(0, 10)}…` : `secp256k1 ${e.signer}`;
    return (
      `device ${e.deviceId}: key rotated in block ${e.blockNumber} (key #${e.keyIndex}, ${key}), valid from ` +
      `${time(e.validFrom)}; earlier readings verify under the previous key`
    );
  }
  return (
    `device ${e.deviceId}: distrusted from ${time(Math.max(1, e.distrustedFrom))} by ${e.by} (revoked in block ${e.blockNumber}); ` +
    "its readings observed from then on are refused"
  );
}

/** What is out of range now: how many loggers' latest reading is out of range / at or below freeze. */
function nowCell(c: ShipmentState["condition"]): string {
  const parts: string[] = [];
  if (c.excursionDevices > 0) parts.push(`${c.excursionDevices} out of range`);
  if (c.freezeDevices > 0) parts.push(`${c.freezeDevices} at/below freeze`);
  return parts.length === 0 ? "in range" : parts.join(", ");
}

/** A plain-text table: a header row, a rule and the rows, columns padded to their widest cell. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** The verdict in words: one summary line, then each breach, the liable parties and the decision. */
export function formatVerdict(verdict: ShipmentVerdict, names: (address: string) => string = (a) => a): string[] {
  const out = [`Verdict: ${verdict.summary}`];
  if (verdict.breaches.length > 0) {
    out.push("Breaches in words:");
    for (const b of verdict.breaches) out.push(`  - ${breachText(b, names)}`);
  }
  for (const l of verdict.liable) {
    out.push(
      `Liable: ${names(l.party)} held the shipment for ${formatDuration(l.heldSeconds)}, ` +
        `${formatDuration(l.excursionSeconds)} of excursion charged (${l.breaches.join(", ")})`,
    );
  }
  out.push(
    verdict.decision === undefined
      ? `Decision: none (${STAGE_WORDS[verdict.stage]})`
      : `Decision: ${decisionText(verdict.decision, names)}`,
  );
  return out;
}

/** The human-readable report of `show`. */
export function formatShipment(state: ShipmentState, history: ShipmentHistory | undefined): string {
  const c = state.condition;
  const out: string[] = [];
  out.push(`Shipment ${state.shipmentId}: ${state.status}`);
  out.push(...formatVerdict(shipmentVerdict(state, history)), "");
  out.push(
    formatTable(
      ["field", "value"],
      [
        ["shipper", state.shipper],
        ["receiver", state.receiver],
        ["owner", state.owner],
        ["custodian", state.custodian],
        ["profile", `#${state.profileId} (${formatCelsiusRange(state.profile.minCentiC, state.profile.maxCentiC)})`],
        ...describeProfile(state.profile).map((line) => ["", line]),
        ["devices", state.devices.map((d) => `${d.deviceId} (${d.keyType}, ${d.intervalSeconds}s)`).join(", ")],
        // Under the devices: their key rotations and revocations while the shipment was open.
        ...(history?.deviceKeyEvents ?? []).map((e) => ["", deviceKeyEventLine(e)]),
        ["created", time(state.createdAt)],
        ["started", time(state.startedAt)],
        ["delivered", time(state.deliveredAt)],
        ["decided", time(state.decidedAt)],
        ...(state.pendingOffer === undefined
          ? []
          : [["custody offer", `to ${state.pendingOffer.to} until ${time(state.pendingOffer.deadline)}`]]),
      ],
    ),
  );
  out.push("", "Condition");
  out.push(
    formatTable(
      ["readings", "min", "max", "last reading", "longest excursion", "now", "breaches"],
      [
        [
          String(c.readingCount),
          celsius(c.minCentiC),
          celsius(c.maxCentiC),
          time(c.lastObservedAt),
          duration(c.longestExcursionSeconds),
          nowCell(c),
          c.firstBreach === undefined
            ? "none"
            : `${c.breaches.join(", ")} (first: ${c.firstBreach} at ${time(c.firstBreachAt)})`,
        ],
      ],
    ),
  );
  // MKT and cumulative excursion per logger: pooled over loggers that travelled together they would count
  // logger-time (two loggers on a 26 h trip make "MKT over 52 h"); the contract judges both per logger.
  out.push("", "Loggers");
  out.push(
    formatTable(
      ["device", "MKT", "MKT over", "excursion (cumulative)", "breaches (latest period)"],
      state.devices.map((d) => [
        String(d.deviceId),
        celsius(d.evidence.mktCentiC),
        d.evidence.mktCentiC === undefined ? "-" : duration(d.evidence.mktSeconds),
        duration(d.evidence.cumulativeExcursionSeconds),
        d.evidence.breaches.length === 0
          ? "-"
          : `${d.evidence.breaches.join(", ")} (period ${d.evidence.breachPeriod})`,
      ]),
    ),
  );
  out.push("", "Custody");
  out.push(
    formatTable(
      ["#", "custodian", "since", "until", "excursion", "breaches", "tx"],
      state.custody.map((p) => [
        String(p.index),
        p.custodian,
        time(p.since),
        p.until === undefined ? "now" : time(p.until),
        duration(p.excursionSeconds),
        p.breaches.join(", ") || "-",
        history?.custody.find((h) => h.periodIndex === p.index)?.transactionHash ?? "",
      ]),
    ),
  );
  out.push("", "Liability");
  out.push(
    formatTable(
      ["custodian", "periods", "held", "excursion", "breaches"],
      state.liability.map((l) => [
        l.custodian,
        l.periods.join(","),
        duration(l.heldSeconds),
        duration(l.excursionSeconds),
        l.breaches.join(", ") || "-",
      ]),
    ),
  );
  if (history !== undefined && history.breaches.length > 0) {
    out.push("", "Breaches");
    const table = formatTable(
      ["reason", "custodian", "device", "seq", "observed", "tx"],
      history.breaches.map((b) => [
        b.reason,
        b.custodian,
        String(b.deviceId),
        String(b.sequence),
        time(b.observedAt),
        b.transactionHash,
      ]),
    ).split("\n");
    // Under a single-excursion or freeze breach whose run began under earlier custodians: each one's share.
    out.push(...table.slice(0, 2));
    history.breaches.forEach((b, i) => {
      out.push(table[i + 2] ?? "");
      const shares = runSharesOf(history, b);
      if (shares.length > 0) out.push(`  ${runSharedLine(shares)}`);
    });
  }
  // Only skips the device's signature backs are the shipment's; the others anyone can cause (sdk/names.ts
  // AUTHENTICATED_SKIP_REASONS), so they are counted, never listed.
  if (history !== undefined && history.skipped.length > 0) {
    out.push(
      "",
      `Skipped readings: ${history.skipped.map((x) => `${x.deviceId}#${x.sequence} ${x.reason}`).join(", ")}`,
    );
  }
  if (history !== undefined && history.unauthenticatedSkips.length > 0) {
    const n = history.unauthenticatedSkips.length;
    out.push(
      "",
      `Relay noise: ${n} unauthenticated skip event${n === 1 ? "" : "s"} for this shipment's devices ` +
        "(no device signature verified; anyone can cause these; not evidence)",
    );
  }
  return out.join("\n");
}

/**
 * The SDK's contract bindings, loaded when a command runs: they need the contracts' build, which `--help` must not
 * (cli/main.ts builds before running a command).
 */
async function connect(ctx: CommandContext) {
  const { connectSuite } = await import("../../sdk/contracts.js");
  return connectSuite(ctx.deployment, ctx.provider);
}

async function loadState(ctx: CommandContext, id: bigint): Promise<ShipmentStateWithVerdict> {
  const suite = await connect(ctx);
  try {
    return await readShipment(suite, id);
  } catch (error) {
    if (error instanceof ShipmentNotFoundError) {
      throw new CliError(`shipment ${id} does not exist on ${ctx.network}; check --id`);
    }
    throw error;
  }
}

export const showCommand: Command = {
  name: ["show"],
  summary:
    "show a shipment: the verdict in words, parties, profile, condition, each logger's MKT and excursion, custody, liability",
  usage: `--id <shipmentId> [--no-history] [--from-block <n>] [--max-range <blocks>]

The condition's figures are the shipment's (longest excursion of any logger, loggers out of range now, breaches
with the earliest one by observation time); MKT and cumulative excursion are shown per logger (Loggers), as the
contract judges them: pooled over loggers that travel together they would count logger-time. Reads the
contracts' views (and, unless --no-history, the events for tx hashes, breaches and skipped readings:
--from-block defaults to the deployment's first block, --max-range to 5000 blocks per eth_getLogs). Only skips
whose device signature verified are listed; the others, which anyone can cause, are counted as relay noise. A
single-excursion or freeze run that began under an earlier custodian is followed by each custodian's share
("run shared: ..."; history.runShares in --json). Key rotations and revocations of the shipment's devices while it
was open are listed under the devices ("key rotated ..., valid from ...", "distrusted from ... by ...";
history.deviceKeyEvents in --json). The verdict comes first, in words: the status, each breach with its time
(UTC), logger and liable custodian, the liable parties and the QA decision with its decider, time, reason code in
words and note. --json prints { state, history, verdict } with bigints as decimal strings (verdict: the SDK's
shipmentVerdict(state, history); state.verdict is the same from the state alone).`,
  options: {
    id: { type: "string" },
    "no-history": { type: "boolean", default: false },
    "from-block": { type: "string" },
    "max-range": { type: "string" },
  },
  async run(ctx, args) {
    const id = shipmentId(args);
    const state = await loadState(ctx, id);
    const history =
      args.values["no-history"] === true ? undefined : await readHistory(ctx, id, args.values, state.blockNumber);
    // With the history, the verdict knows each breach's time and logger and the decider: `verdict` is that one
    // (state.verdict, from the state alone, stays as readShipment gives it).
    const verdict = history === undefined ? state.verdict : shipmentVerdict(state, history);
    ctx.out.result({ state, history, verdict }, formatShipment(state, history));
  },
};

function blockOption(values: Record<string, unknown>, name: string): number | undefined {
  const text = values[name];
  if (typeof text !== "string") return undefined;
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new CliError(`--${name} must be a non-negative integer, got "${text}"`, 2);
  }
  return Number(text);
}

/** The shipment's history up to `toBlock`, with the paging options of the command line. */
export async function readHistory(
  ctx: CommandContext,
  id: bigint,
  values: Record<string, unknown>,
  toBlock: number,
): Promise<ShipmentHistory> {
  const fromBlock = blockOption(values, "from-block");
  const maxRange = blockOption(values, "max-range");
  if (maxRange === 0) throw new CliError("--max-range must be at least 1", 2);
  return await shipmentHistory(await connect(ctx), id, {
    toBlock,
    ...(fromBlock === undefined ? {} : { fromBlock }),
    ...(maxRange === undefined ? {} : { maxRange }),
  });
}

export { loadState as loadShipmentState };
