/**
 * The verdict in words (sdk/verdict.ts), the decision reason codes (sdk/reasons.ts) and the formatting helpers
 * (sdk/format.ts): pure functions checked by properties over many values, and the verdict of the scenario's
 * shipment (test/sdk/scenario.ts: breached in the carrier's leg, then rejected) on a real chain (in-process EDR),
 * from the state alone and refined by the history.
 */
import { expect } from "chai";
import { encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";
import { network } from "hardhat";

import {
  BREACH_REASONS,
  DECISION_REASONS,
  DECISION_REASON_CODES,
  DecisionReasonError,
  MAX_DECISION_NOTE_BYTES,
  MINUS,
  TemperatureInputError,
  breachRuleText,
  breachText,
  checkDecisionNote,
  connectSuite,
  decisionText,
  decodeDecisionReason,
  encodeDecisionReason,
  formatCelsius,
  formatCelsiusRange,
  formatDateTime,
  formatDuration,
  formatIsoTime,
  formatLimitSeconds,
  parseCelsius,
  readShipment,
  reasonCodeForBreach,
  shipmentHistory,
  shipmentVerdict,
  toTemperatureProfile,
} from "../../sdk/index.js";
import type { ShipmentHistory, ShipmentStateWithVerdict, VerdictState } from "../../sdk/index.js";
import { VACCINE_PROFILE, deploySuite } from "../support/deploy.js";
import type { Suite } from "../support/deploy.js";
import { K1_DEVICE, deploymentOf, driveShipment } from "./scenario.js";
import type { Scenario } from "./scenario.js";

/** A small deterministic PRNG (mulberry32), so a failing property replays. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Reads a formatDuration text back to seconds. */
function durationSeconds(text: string): number {
  let total = 0;
  for (const [, n, unit] of text.matchAll(/(\d+) (h|min|s)\b/g)) {
    total += Number(n) * { h: 3600, min: 60, s: 1 }[unit as "h" | "min" | "s"];
  }
  return total;
}

describe("SDK formatting helpers", () => {
  it("writes °C with a real minus sign and as many decimals as the value needs", () => {
    expect(formatCelsius(-50)).to.equal(`${MINUS}0.5 °C`);
    expect(formatCelsius(800)).to.equal("8 °C");
    expect(formatCelsius(1234)).to.equal("12.34 °C");
    expect(formatCelsius(0)).to.equal("0 °C");
    expect(formatCelsius(800, { decimals: 1 })).to.equal("8.0 °C");
    expect(formatCelsius(-1, { decimals: 0 })).to.equal("0 °C");
    expect(formatCelsiusRange(-5000, -1500)).to.equal(`${MINUS}50 °C to ${MINUS}15 °C`);
    expect(formatCelsius(-5000)).not.to.include("-");
  });

  it("parses what it formats back to the same centi-degrees (property, 2,000 values)", () => {
    const random = prng(15);
    for (let i = 0; i < 2000; i++) {
      const centi = Math.floor(random() * 65535) - 32768;
      expect(parseCelsius(formatCelsius(centi)), String(centi)).to.equal(centi);
      expect(parseCelsius(formatCelsius(centi, { unit: false })), String(centi)).to.equal(centi);
    }
  });

  it("takes degrees typed by a person and refuses other units and out-of-range values", () => {
    expect(parseCelsius("2")).to.equal(200);
    expect(parseCelsius("-0.5")).to.equal(-50);
    expect(parseCelsius(`${MINUS}0.5 °C`)).to.equal(-50);
    expect(parseCelsius("8°C")).to.equal(800);
    expect(parseCelsius("2.25 C")).to.equal(225);
    expect(parseCelsius(8)).to.equal(800);
    for (const bad of ["46 °F", "275 K", "abc", "", "2.255", "400", "-1e3"]) {
      expect(() => parseCelsius(bad), bad).to.throw(TemperatureInputError);
    }
  });

  it("never rounds a duration down past the minute it is closest to (property, 5,000 values)", () => {
    expect(formatDuration(36_000)).to.equal("10 h");
    expect(formatDuration(35_999)).to.equal("10 h");
    expect(formatDuration(35_940)).to.equal("9 h 59 min");
    expect(formatDuration(93_600)).to.equal("26 h");
    expect(formatDuration(92_700)).to.equal("25 h 45 min");
    expect(formatDuration(45)).to.equal("45 s");
    expect(formatDuration(750)).to.equal("12 min 30 s");
    expect(formatDuration(3599.9)).to.equal("1 h");
    expect(formatDuration(0)).to.equal("0 s");
    const random = prng(7);
    for (let i = 0; i < 5000; i++) {
      const seconds = Math.floor(random() * 10 * 86400);
      const shown = durationSeconds(formatDuration(seconds));
      // Within half of the smallest unit shown: a second under an hour, a minute from an hour on.
      const unit = seconds < 3599.5 ? 1 : 60;
      expect(Math.abs(shown - seconds), `${seconds} → ${formatDuration(seconds)}`).to.be.at.most(unit / 2);
    }
    expect(() => formatDuration(-1)).to.throw(RangeError);
  });

  it('says "off" for a disabled duration limit', () => {
    expect(formatLimitSeconds(0)).to.equal("off");
    expect(formatLimitSeconds(1800)).to.equal("30 min");
  });

  it("writes dates as ISO and as readable local time with the zone", () => {
    expect(formatIsoTime(1_796_612_400)).to.equal("2026-12-07T03:00:00Z");
    expect(formatDateTime(1_796_612_400)).to.equal("2026-12-07 03:00:00 UTC");
    expect(formatDateTime(1_796_612_400, { timeZone: "Europe/Amsterdam", minutes: true })).to.match(
      /^2026-12-07 04:00 (CET|GMT\+1)$/,
    );
  });
});

describe("SDK decision reason codes", () => {
  it("documents short ASCII codes that fit a bytes32 and round-trip into words", () => {
    for (const code of DECISION_REASON_CODES) {
      expect(code).to.match(/^[A-Z_]+$/);
      expect(toUtf8Bytes(code).length).to.be.at.most(31);
      const decoded = decodeDecisionReason(encodeDecisionReason(code));
      expect(decoded).to.deep.include({ code, documented: true, text: DECISION_REASONS[code] });
    }
  });

  it("refuses an unknown code with the list, and never hashes a long one", () => {
    expect(() => encodeDecisionReason("TEMPERATURE_EXCURSION_DURING_TRANSPORT_LEG_2")).to.throw(
      DecisionReasonError,
      /unknown reason code .*TEMPERATURE_BREACH, FREEZE/,
    );
    expect(() => encodeDecisionReason("freeze")).to.throw(DecisionReasonError);
  });

  it("reads undocumented and hashed codes as such, and no code as none", () => {
    expect(decodeDecisionReason(encodeBytes32String("TEMP_EXCURSION"))).to.deep.include({
      code: "TEMP_EXCURSION",
      documented: false,
    });
    const hashed = keccak256(toUtf8Bytes("a reason longer than thirty-one bytes"));
    expect(decodeDecisionReason(hashed)).to.deep.include({ code: hashed, documented: false });
    expect(decodeDecisionReason(`0x${"00".repeat(32)}`)).to.equal(undefined);
  });

  it("names each breach kind with a documented code", () => {
    for (const kind of BREACH_REASONS) expect(DECISION_REASONS).to.have.property(reasonCodeForBreach(kind));
    expect(reasonCodeForBreach("MissingData")).to.equal("MISSING_DATA");
    expect(reasonCodeForBreach("Freeze")).to.equal("FREEZE");
    expect(reasonCodeForBreach("SingleExcursion")).to.equal("TEMPERATURE_BREACH");
  });

  it("checks a note: trimmed, bounded in UTF-8 bytes, no control characters", () => {
    expect(checkDecisionNote("  box 3 crushed ")).to.equal("box 3 crushed");
    expect(checkDecisionNote("é".repeat(MAX_DECISION_NOTE_BYTES / 2))).to.have.length(MAX_DECISION_NOTE_BYTES / 2);
    expect(() => checkDecisionNote("é".repeat(MAX_DECISION_NOTE_BYTES / 2 + 1))).to.throw(DecisionReasonError, /bytes/);
    expect(() => checkDecisionNote("   ")).to.throw(DecisionReasonError, /empty/);
    expect(() => checkDecisionNote("a\u0000b")).to.throw(DecisionReasonError, /control/);
  });
});

describe("SDK verdict from a state (pure)", () => {
  const profile = toTemperatureProfile({
    ...Object.fromEntries(Object.entries(VACCINE_PROFILE).map(([k, v]) => [k, typeof v === "boolean" ? v : BigInt(v)])),
  } as Parameters<typeof toTemperatureProfile>[0]);
  const base: VerdictState = {
    status: "InTransit",
    profile,
    custody: [
      { index: 0, custodian: "0xShipper", since: 1000, until: 2000, excursionSeconds: 0, breachFlags: 0, breaches: [] },
      {
        index: 1,
        custodian: "0xCarrier",
        since: 2000,
        until: undefined,
        excursionSeconds: 3600,
        breachFlags: 1 << 5,
        breaches: ["MissingData"],
      },
    ],
    liability: [
      { custodian: "0xShipper", periods: [0], excursionSeconds: 0, breaches: [], heldSeconds: 1000 },
      { custodian: "0xCarrier", periods: [1], excursionSeconds: 3600, breaches: ["MissingData"], heldSeconds: 36_000 },
    ],
    condition: {
      readingCount: 10,
      hasTemperature: true,
      minCentiC: -2000,
      maxCentiC: -2000,
      lastObservedAt: 5000,
      cumulativeExcursionSeconds: 3600,
      longestExcursionSeconds: 3600,
      excursionActive: false,
      freezeActive: false,
      excursionDevices: 0,
      freezeDevices: 0,
      mktAboveLimit: false,
      statusFlags: 1,
      breachFlags: 1 << 5,
      breaches: ["MissingData"],
      firstBreach: "MissingData",
      firstBreachAt: 4200,
      mktCentiC: -2000,
      mktSeconds: 3600,
    },
    decidedAt: 0,
    rejectionCode: `0x${"00".repeat(32)}`,
  };

  it("gives stage, condition, the breach with its time and liable custodian, and the liable party", () => {
    const v = shipmentVerdict(base);
    expect(v.stage).to.equal("in-transit");
    expect(v.condition).to.equal("breached");
    expect(v.breaches).to.have.length(1);
    expect(v.breaches[0]).to.deep.include({ kind: "MissingData", liable: "0xCarrier", periodIndex: 1 });
    expect(v.breaches[0]?.at).to.deep.equal({ unix: 4200, iso: formatIsoTime(4200) });
    expect(v.liable.map((l) => [l.party, l.heldSeconds])).to.deep.equal([["0xCarrier", 36_000]]);
    expect(v.decision).to.equal(undefined);
    expect(v.summary).to.equal("In transit — breached: Missing data — liable: 0xCarrier");
    expect(breachText(v.breaches[0]!)).to.include("liable: 0xCarrier").and.include("1970-01-01 01:10:00 UTC");
  });

  it("says when a MissingData gap began and how long it lasted, from the history's readings", () => {
    const ref = { blockNumber: 7, blockTime: 9000, transactionHash: `0x${"ab".repeat(32)}`, logIndex: 0 };
    const reading = (observedAt: number) => ({
      ...ref,
      deviceId: 301n,
      sequence: observedAt,
      observedAt,
      tempCentiC: -2000,
      tempC: -20,
      flags: 0,
      source: "readings" as const,
    });
    const v = shipmentVerdict(base, {
      breaches: [
        {
          ...ref,
          reason: "MissingData",
          custodian: "0xCarrier",
          periodIndex: 1,
          deviceId: 301n,
          sequence: 9,
          observedAt: 4200 + 10_800,
        },
      ],
      lifecycle: [],
      excursions: [],
      readings: [reading(3900), reading(4200), reading(4200 + 10_800), reading(900)],
    });
    expect(v.breaches[0]).to.deep.include({ deviceId: 301n, runSeconds: 10_800, blockNumber: 7 });
    expect(v.breaches[0]?.runStartedAt?.unix).to.equal(4200);
    expect(breachText(v.breaches[0]!)).to.include("on logger 301 — no reading from 1970-01-01 01:10:00 UTC for 3 h");
  });

  it("reads each status as its stage, and a record without breaches as compliant or no data", () => {
    const clean = { ...base.condition, breaches: [], breachFlags: 0, firstBreach: undefined, firstBreachAt: 0 };
    const stages = {
      Created: "not-started",
      InTransit: "in-transit",
      Delivered: "awaiting-decision",
      Released: "released",
      Rejected: "rejected",
      Cancelled: "cancelled",
    } as const;
    for (const [status, stage] of Object.entries(stages)) {
      const v = shipmentVerdict({
        ...base,
        status: status as VerdictState["status"],
        condition: clean,
        custody: base.custody.map((p) => ({ ...p, breachFlags: 0, breaches: [] })),
        liability: base.liability.map((l) => ({ ...l, breaches: [] })),
      });
      expect(v.breaches).to.deep.equal([]);
      expect(v.stage).to.equal(stage);
      expect(v.condition).to.equal("compliant");
      expect(v.liable).to.deep.equal([]);
    }
    const none = shipmentVerdict({ ...base, condition: { ...clean, hasTemperature: false } });
    expect(none.condition).to.equal("no-data");
  });

  it("decodes the rejection's code into words", () => {
    const v = shipmentVerdict({
      ...base,
      status: "Rejected",
      decidedAt: 9000,
      rejectionCode: encodeDecisionReason("MISSING_DATA"),
    });
    expect(v.decision).to.deep.include({ outcome: "rejected", by: undefined });
    expect(v.decision?.reason?.text).to.equal(DECISION_REASONS.MISSING_DATA);
    expect(v.summary).to.include(`reason: ${DECISION_REASONS.MISSING_DATA}`);
  });

  it("words every breach kind's rule with the profile's figures", () => {
    expect(breachRuleText("Freeze", { ...profile, freezeCentiC: -50, maxFreezeSeconds: 1800 })).to.equal(
      `Freeze: at or below ${MINUS}0.5 °C for 30 min or more`,
    );
    expect(breachRuleText("SingleExcursion", profile)).to.include("outside 2 °C to 8 °C");
    for (const kind of BREACH_REASONS.slice(1)) expect(breachRuleText(kind, profile)).to.match(/^[A-Z][^:]+: /);
  });
});

describe("SDK verdict of the scenario's shipment on a real chain", function () {
  this.timeout(120_000);
  let s: Suite;
  let scenario: Scenario;
  let state: ShipmentStateWithVerdict;
  let history: ShipmentHistory;

  before(async () => {
    const connection = await network.create();
    s = await deploySuite(connection);
    scenario = await driveShipment(s, connection.networkHelpers);
    const suite = connectSuite(await deploymentOf(s), connection.ethers.provider);
    state = await readShipment(suite, scenario.shipmentId);
    history = await shipmentHistory(suite, scenario.shipmentId);
  });

  it("readShipment carries the verdict from the state alone", () => {
    const v = state.verdict;
    expect(v.stage).to.equal("rejected");
    expect(v.condition).to.equal("breached");
    expect(v.breaches.map((b) => b.kind)).to.include.members(["AbsoluteLimit", "SingleExcursion"]);
    for (const b of v.breaches) expect(b.liable).to.equal(s.carrier.address);
    expect(v.breaches.filter((b) => b.at !== undefined).map((b) => b.at?.unix)).to.deep.equal([
      state.condition.firstBreachAt,
    ]);
    expect(v.liable.map((l) => l.party)).to.deep.equal([s.carrier.address]);
    expect(v.decision).to.deep.include({ outcome: "rejected", by: undefined });
    expect(v.decision?.at.unix).to.equal(state.decidedAt);
    expect(v.decision?.reason).to.deep.include({ code: "TEMP_EXCURSION", documented: false });
  });

  it("refines each breach with its time, logger, run and transaction, and the decision with its decider", () => {
    const v = shipmentVerdict(state, history);
    expect(v.breaches).to.have.length(history.breaches.length);
    for (const b of v.breaches) {
      expect(b.deviceId).to.equal(K1_DEVICE);
      expect(b.liable).to.equal(s.carrier.address);
      expect(b.at?.unix).to.be.within(scenario.excursion.from, scenario.excursion.to);
      expect(b.runStartedAt?.unix).to.equal(scenario.excursion.from);
      expect(b.transactionHash).to.match(/^0x[0-9a-f]{64}$/);
    }
    const times = v.breaches.map((b) => b.at?.unix ?? 0);
    expect(times).to.deep.equal([...times].sort((a, b) => a - b));
    const rejected = history.lifecycle.find((e) => e.kind === "rejected");
    expect(v.decision).to.deep.include({
      by: s.receiver.address,
      blockNumber: rejected?.blockNumber,
      transactionHash: rejected?.transactionHash,
    });
    const text = decisionText(v.decision!, (a) => (a === s.receiver.address ? "Receiver" : a));
    expect(text).to.match(/^rejected by Receiver at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(block \d+, tx 0x/);
    expect(text).to.include("reason: TEMP_EXCURSION — not a documented reason code");
    const line = breachText(v.breaches[0]!, (a) => (a === s.carrier.address ? "Carrier" : a));
    expect(line).to.include(`on logger ${K1_DEVICE}`).and.include("liable: Carrier (custody period 1)");
  });
});
