// Data shaping of the dashboard (app/src/data): history → chart model, custody → timeline, list rows, codecs.
import { expect } from "chai";

import { temperatureTimeline } from "../../sdk/index.js";
import type { HistoryReading, ShipmentHistory, ShipmentState, TemperatureProfile } from "../../sdk/index.js";
import { resolveConfig } from "../../app/src/data/config.js";
import { HandoverError, encodeHandover, readHandover } from "../../app/src/data/handover.js";
import type { HandoverTarget } from "../../app/src/data/handover.js";
import { TEST_HANDOVER_TEXT } from "../../sdk/protocol/index.js";
import { formatDate, formatRange, profileRules, referenceText } from "../../app/src/data/words.js";
import { encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";
import {
  buildChartModel,
  custodySegments,
  downsample,
  formatAge,
  formatDuration,
  markerLanes,
  matchesFilter,
  shipmentRow,
  sortRows,
  sparklinePoints,
  statusBadge,
} from "../../app/src/data/shaping.js";

const SHIPPER = "0x1111111111111111111111111111111111111111";
const CARRIER = "0x2222222222222222222222222222222222222222";
const RECEIVER = "0x3333333333333333333333333333333333333333";
const ZERO = "0x0000000000000000000000000000000000000000";
const TX = (n: number) => "0x" + n.toString(16).padStart(64, "0");

const PROFILE: TemperatureProfile = {
  minCentiC: 200,
  maxCentiC: 800,
  absoluteMinCentiC: -500,
  absoluteMaxCentiC: 2500,
  freezeCentiC: -50,
  maxFreezeSeconds: 3600,
  maxSingleExcursionSeconds: 3600,
  maxCumulativeExcursionSeconds: 36000,
  adaptationSeconds: 0,
  maxGapIntervals: 3,
  faultFlagMask: 5,
  mktLimitCentiC: 800,
  mktMinCoverageSeconds: 86400,
  mktEnabled: true,
};

const T0 = 1_000_000;
const ref = (n: number) => ({ blockNumber: n, blockTime: T0 + n, transactionHash: TX(n), logIndex: 0 });

function reading(deviceId: bigint, sequence: number, observedAt: number, tempC: number): HistoryReading {
  return {
    ...ref(10),
    deviceId,
    sequence,
    observedAt,
    tempCentiC: Math.round(tempC * 100),
    tempC,
    flags: 0,
    source: "readings",
  };
}

/** Device 1 every 300 s from T0 with a gap (3 slots missing) and an excursion; device 2 offset by 150 s. */
function fixture(): { history: ShipmentHistory; state: ShipmentState } {
  const readings: HistoryReading[] = [];
  for (let i = 0; i < 20; i++) {
    if (i >= 8 && i < 12) continue; // 5 intervals without readings: a gap > 3 x 300 s
    readings.push(reading(1n, i + 1, T0 + i * 300, i >= 14 && i < 17 ? 9.5 : 5));
  }
  for (let i = 0; i < 10; i++) readings.push(reading(2n, i + 1, T0 + 150 + i * 300, 4));
  readings.sort((a, b) => a.observedAt - b.observedAt);
  const history: ShipmentHistory = {
    shipmentId: 7n,
    chainId: 31337,
    coldChain: ZERO,
    fromBlock: 0,
    toBlock: 50,
    shipper: SHIPPER,
    receiver: RECEIVER,
    owner: RECEIVER,
    profileId: 1,
    profile: PROFILE,
    externalRef: TX(0),
    devices: [
      { deviceId: 1n, intervalSeconds: 300 },
      { deviceId: 2n, intervalSeconds: 300 },
    ],
    createdAt: T0 - 100,
    startedAt: T0 - 50,
    deliveredAt: 0,
    lifecycle: [{ ...ref(1), kind: "created", at: T0 - 100, by: SHIPPER }],
    custody: [
      { ...ref(1), periodIndex: 0, from: ZERO, to: SHIPPER, since: T0 - 100 },
      { ...ref(5), periodIndex: 1, from: SHIPPER, to: CARRIER, since: T0 + 3000 },
    ],
    readings,
    skipped: [],
    unauthenticatedSkips: [],
    breaches: [
      {
        ...ref(20),
        reason: "SingleExcursion",
        custodian: CARRIER,
        periodIndex: 1,
        deviceId: 1n,
        sequence: 17,
        observedAt: T0 + 16 * 300,
      },
    ],
    deviceKeyEvents: [],
    runShares: [],
    excursions: [
      {
        deviceId: 1n,
        direction: "high",
        startedAt: T0 + 14 * 300,
        endedAt: T0 + 17 * 300,
        durationSeconds: 900,
        ongoing: false,
        peakCentiC: 950,
        readings: 3,
      },
    ],
  };
  const state = {
    shipmentId: 7n,
    blockNumber: 50,
    status: "InTransit",
    shipper: SHIPPER,
    receiver: RECEIVER,
    owner: RECEIVER,
    custodian: CARRIER,
    profileId: 1,
    profile: PROFILE,
    createdAt: T0 - 100,
    plannedStartAt: 0,
    startedAt: T0 - 50,
    deliveredAt: 0,
    decidedAt: 0,
    externalRef: TX(0),
    rejectionCode: TX(0),
    devices: [],
    condition: {
      readingCount: readings.length,
      hasTemperature: true,
      minCentiC: 400,
      maxCentiC: 950,
      lastObservedAt: T0 + 19 * 300,
      cumulativeExcursionSeconds: 900,
      longestExcursionSeconds: 900,
      excursionActive: false,
      freezeActive: false,
      excursionDevices: 0,
      freezeDevices: 0,
      mktAboveLimit: false,
      statusFlags: 1,
      breachFlags: 4,
      breaches: ["SingleExcursion"],
      firstBreach: "SingleExcursion",
      firstBreachAt: T0 + 16 * 300,
      mktCentiC: 520,
      mktSeconds: 5700,
    },
    custody: [
      {
        index: 0,
        custodian: SHIPPER,
        since: T0 - 100,
        until: T0 + 3000,
        excursionSeconds: 0,
        breachFlags: 0,
        breaches: [],
      },
      {
        index: 1,
        custodian: CARRIER,
        since: T0 + 3000,
        until: undefined,
        excursionSeconds: 900,
        breachFlags: 4,
        breaches: ["SingleExcursion"],
      },
    ],
    liability: [],
    pendingOffer: undefined,
  } satisfies ShipmentState;
  return { history, state };
}

describe("app data shaping", function () {
  describe("buildChartModel", function () {
    it("aligns the devices on one time axis: undefined where a device has no reading, null inside a gap", function () {
      const { history } = fixture();
      const m = buildChartModel(history, temperatureTimeline(history), T0 + 20 * 300);
      expect(m.series.map((s) => s.label)).to.deep.equal(["Device 1", "Device 2"]);
      expect(m.x).to.deep.equal([...m.x].sort((a, b) => a - b));
      expect(new Set(m.x).size).to.equal(m.x.length);
      const [d1, d2] = m.series;
      // device 2 has no reading at T0 (device 1's first time), device 1 none at T0 + 150
      expect(d2?.values[m.x.indexOf(T0)]).to.equal(undefined);
      expect(d1?.values[m.x.indexOf(T0)]).to.equal(5);
      expect(d2?.values[m.x.indexOf(T0 + 150)]).to.equal(4);
      // the gap of device 1 (after the reading at slot 7) breaks its line with a null
      const gapAt = m.x.indexOf(T0 + 7 * 300 + 1);
      expect(gapAt).to.be.greaterThan(0);
      expect(d1?.values[gapAt]).to.equal(null);
      expect(m.gaps).to.deep.equal([{ from: T0 + 7 * 300, to: T0 + 12 * 300, seconds: 1500, deviceId: 1n }]);
      expect(m.readingCount).to.equal(26);
    });

    it("carries the profile's range and limits as bands, excursions as shaded spans, breaches as markers", function () {
      const { history } = fixture();
      const m = buildChartModel(history, temperatureTimeline(history), T0 + 20 * 300);
      expect([m.minC, m.maxC, m.absoluteMinC, m.absoluteMaxC]).to.deep.equal([2, 8, -5, 25]);
      expect(m.excursions).to.deep.equal([
        { from: T0 + 4200, to: T0 + 5100, deviceId: 1n, direction: "high", ongoing: false, peakC: 9.5 },
      ]);
      expect(m.breaches).to.have.length(1);
      expect(m.breaches[0]?.at).to.equal(T0 + 4800);
      expect(m.breaches[0]?.label).to.match(/^Single excursion: outside 2 °C to 8 °C/);
      expect(m.breaches[0]?.custodian).to.equal(CARRIER);
      expect(m.yMin).to.be.at.most(2 - 1);
      expect(m.yMax).to.be.at.least(9.5 + 1);
      // open shipment: the domain runs from creation to now
      expect(m.xMin).to.equal(T0 - 100);
      expect(m.xMax).to.equal(T0 + 6000);
    });

    it("ends the domain at delivery and handles a shipment without readings", function () {
      const { history } = fixture();
      const delivered = { ...history, deliveredAt: T0 + 7000, readings: [], excursions: [], breaches: [] };
      const m = buildChartModel(delivered, temperatureTimeline(delivered), T0 + 99_999);
      expect(m.x).to.deep.equal([]);
      expect(m.series.every((s) => s.values.length === 0)).to.equal(true);
      expect(m.xMax).to.equal(T0 + 7000);
      expect([m.yMin, m.yMax]).to.deep.equal([1, 9]);
    });
  });

  describe("custodySegments", function () {
    it("lays the custody periods on the chart's axis with liability and handover transactions", function () {
      const { history, state } = fixture();
      const segs = custodySegments(state, history, T0 - 100, T0 + 5900);
      expect(segs.map((s) => [s.custodian, s.liable, s.current])).to.deep.equal([
        [SHIPPER, false, false],
        [CARRIER, true, true],
      ]);
      expect(segs[0]?.transactionHash).to.equal(TX(1));
      expect(segs[1]?.transactionHash).to.equal(TX(5));
      expect(segs[0]?.left).to.equal(0);
      // Plain arithmetic: hardhat's chai matchers replace closeTo with a bigint-only version.
      expect(Math.abs((segs[1]?.left ?? 0) - 3100 / 6000)).to.be.lessThan(1e-9);
      expect(Math.abs((segs[0]?.width ?? 0) + (segs[1]?.width ?? 0) - 1)).to.be.lessThan(1e-9);
      expect(segs[1]?.breaches).to.deep.equal(["SingleExcursion"]);
    });

    it("closes the last period at delivery", function () {
      const { history, state } = fixture();
      const delivered = { ...state, status: "Delivered" as const, deliveredAt: T0 + 5000 };
      const segs = custodySegments(delivered, history, T0 - 100, T0 + 5000);
      expect(segs[1]?.current).to.equal(false);
      expect(segs[1]?.to).to.equal(T0 + 5000);
    });
  });

  describe("list rows", function () {
    it("badges, breached flag, filters by status and party", function () {
      const { history, state } = fixture();
      const row = shipmentRow(state, temperatureTimeline(history));
      expect(row.badge).to.equal("in transit");
      expect(row.breached).to.equal(true);
      expect(row.custodians).to.deep.equal([SHIPPER, CARRIER]);
      expect(row.spark.length).to.be.at.most(48);
      expect(matchesFilter(row, "all", "")).to.equal(true);
      expect(matchesFilter(row, "breached", "")).to.equal(true);
      expect(matchesFilter(row, "in transit", CARRIER.toUpperCase().replace("0X", "0x"))).to.equal(true);
      expect(matchesFilter(row, "delivered", "")).to.equal(false);
      expect(matchesFilter(row, "all", "0x4444")).to.equal(false);
      const clean = shipmentRow({ ...state, condition: { ...state.condition, breaches: [] } }, undefined);
      expect(matchesFilter(clean, "breached", "")).to.equal(false);
      expect(clean.spark).to.deep.equal([]);
      expect(statusBadge("Released")).to.equal("released");
      expect(statusBadge("Rejected")).to.equal("rejected");
    });

    it("carries reference, verdict, liable party and decision; filters by verdict and name, sorts by them", function () {
      const { history, state } = fixture();
      const withRef = {
        ...state,
        externalRef: encodeBytes32String("SSCC 2"),
        liability: [
          { custodian: SHIPPER, periods: [0], excursionSeconds: 0, breaches: [], heldSeconds: 3000 },
          {
            custodian: CARRIER,
            periods: [1],
            excursionSeconds: 4000,
            breaches: ["SingleExcursion" as const],
            heldSeconds: 5000,
          },
        ],
      };
      const rejected = {
        blockNumber: 9,
        logIndex: 0,
        transactionHash: TX(9),
        blockTime: T0 + 9000,
        at: T0 + 9000,
        by: RECEIVER,
        kind: "rejected" as const,
        reasonCode: encodeBytes32String("TEMPERATURE_BREACH"),
      };
      const decided = {
        ...withRef,
        status: "Rejected" as const,
        decidedAt: T0 + 9000,
        rejectionCode: encodeBytes32String("TEMPERATURE_BREACH"),
      };
      const breached = shipmentRow(decided, temperatureTimeline(history), {
        ...history,
        lifecycle: [...history.lifecycle, rejected],
      });
      expect(breached.reference).to.equal("SSCC 2");
      expect(breached.range).to.equal("2 °C to 8 °C");
      expect(breached.verdict).to.equal("breached");
      expect(breached.summary).to.match(/^Rejected — breached: Single excursion — liable: 0x2222…2222/);
      expect(breached.liable).to.deep.equal([CARRIER]);
      expect(breached.decision).to.include({ outcome: "rejected", by: RECEIVER });
      expect(breached.decision?.reason?.code).to.equal("TEMPERATURE_BREACH");
      const clean = {
        ...shipmentRow(
          { ...state, shipmentId: 9n, liability: [], condition: { ...state.condition, breaches: [] } },
          undefined,
        ),
        breached: false,
      };
      const names = (a: string) => (a === CARRIER ? "carrier" : "");
      expect(matchesFilter(breached, "all", "", "compliant")).to.equal(false);
      expect(matchesFilter(clean, "all", "", "compliant")).to.equal(true);
      expect(matchesFilter(breached, "all", "CARR", "all", names)).to.equal(true);
      expect(sortRows([breached, clean], "newest").map((r) => r.shipmentId)).to.deep.equal([9n, state.shipmentId]);
      expect(sortRows([clean, breached], "verdict").map((r) => r.shipmentId)).to.deep.equal([state.shipmentId, 9n]);
      expect(sortRows([clean, breached], "reference").map((r) => r.reference)).to.deep.equal(["SSCC 2", undefined]);
      expect(sortRows([clean, breached], "liable", names)[0]).to.equal(breached);
    });

    it("downsamples 10,000 values to bucket means and draws sparkline points in the box", function () {
      const values = Array.from({ length: 10_000 }, (_, i) => (i < 5000 ? 4 : 6));
      const d = downsample(values, 50);
      expect(d).to.have.length(50);
      expect(d[0]).to.equal(4);
      expect(d[49]).to.equal(6);
      const pts = sparklinePoints([2, 8], 100, 20).split(" ");
      expect(pts).to.deep.equal(["0.0,20.0", "100.0,0.0"]);
      expect(sparklinePoints([], 100, 20)).to.equal("");
    });

    it("formats ages and durations", function () {
      expect(formatAge(0, 100)).to.equal("no readings");
      expect(formatAge(100, 102)).to.equal("just now");
      expect(formatAge(100, 400)).to.equal("5 min ago");
      expect(formatAge(100, 100 + 7200)).to.equal("2 h ago");
      expect(formatDuration(4200)).to.equal("1 h 10 min");
      expect(formatDuration(30)).to.equal("30 s");
    });
  });

  describe("words (the SDK's, adapted to the page)", function () {
    it("writes ranges with a true minus sign and 'to', times as dates to the minute", function () {
      expect(formatRange(-5000, -1500)).to.equal("\u221250 °C to \u221215 °C");
      expect(formatDate(1767225600)).to.equal("2026-01-01 00:00 UTC");
      expect(formatDate(0)).to.equal("—");
    });

    it("rounds durations to the minute, so a period of 10 h minus a second reads 10 h", function () {
      expect(formatDuration(35_999)).to.equal("10 h");
      expect(formatDuration(35_940)).to.equal("9 h 59 min");
    });

    it("says 'off' for a rule that is off and gives the rule in words when it is on", function () {
      const rules = Object.fromEntries(
        profileRules({ ...PROFILE, maxCumulativeExcursionSeconds: 0, mktEnabled: false }).map((r) => [r.rule, r.value]),
      );
      expect(rules["Cumulative excursion"]).to.equal("off");
      expect(rules["MKT exceeded"]).to.equal("off");
      expect(rules["Single excursion"]).to.match(/^outside 2 °C to 8 °C for \d+ (h|min)/);
      expect(rules["Allowed range"]).to.equal("2 °C to 8 °C");
    });

    it("reads a reference stored as text; a hash is said to be one", function () {
      expect(referenceText(encodeBytes32String("SSCC 106141411234567897"))).to.equal("SSCC 106141411234567897");
      expect(referenceText(keccak256(toUtf8Bytes("SSCC 1")))).to.equal(undefined);
    });
  });

  describe("breach markers", function () {
    it("puts markers that would overlap into separate lanes, and far apart ones in one lane", function () {
      const text = "⚠ Excursion too long";
      expect(
        markerLanes([
          { x: 100, text },
          { x: 110, text },
          { x: 120, text },
        ]),
      ).to.deep.equal([0, 1, 2]);
      expect(
        markerLanes([
          { x: 100, text },
          { x: 600, text },
        ]),
      ).to.deep.equal([0, 0]);
      expect(
        markerLanes([
          { x: 600, text },
          { x: 100, text },
          { x: 105, text },
        ]),
      ).to.deep.equal([0, 0, 1]);
    });
  });

  describe("signed handover text (one format with the CLI)", function () {
    const COLDCHAIN = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
    const deploymentOf = (chainId: number, coldChain: string): HandoverTarget => ({
      chainId,
      contracts: { ColdChain: { address: coldChain } },
    });
    const h = {
      domain: { chainId: 31337n, verifyingContract: COLDCHAIN },
      acceptance: { shipmentId: 3n, custodian: CARRIER, nonce: 2n, deadline: 99n },
      signature: "0x" + "ab".repeat(65),
    };

    it("reads what the CLI writes (the protocol's vector) and round-trips its own text", function () {
      const local = deploymentOf(31337, COLDCHAIN);
      const vector = readHandover(TEST_HANDOVER_TEXT, local);
      expect(vector.acceptance.shipmentId).to.equal(7n);
      expect(vector.domain.chainId).to.equal(31337n);
      const text = encodeHandover(h);
      expect(text).to.match(/^coldchain:handover:v1:[A-Za-z0-9_-]{174}$/);
      expect(readHandover(text, local)).to.deep.equal(h);
      // a line break from a mail client does not matter
      expect(readHandover(`${text.slice(0, 60)}\n  ${text.slice(60)}`, local)).to.deep.equal(h);
    });

    it("refuses another chain or contract, the old JSON and malformed text with a clear message", function () {
      const text = encodeHandover(h);
      expect(() => readHandover(text, deploymentOf(11155111, COLDCHAIN)))
        .to.throw(HandoverError, /signed for chain 31337, ColdChain 0x5FbDB.*not for chain 11155111/)
        .with.property("code", "HANDOVER_WRONG_DOMAIN");
      expect(() => readHandover(text, deploymentOf(31337, "0x" + "c0".repeat(20))))
        .to.throw(HandoverError, /check the network/)
        .with.property("code", "HANDOVER_WRONG_DOMAIN");
      const legacy = JSON.stringify({ format: "coldchain-handover/1", shipmentId: "3", custodian: CARRIER });
      expect(() => readHandover(legacy, deploymentOf(31337, COLDCHAIN)))
        .to.throw(HandoverError, /old handover text .* ask the next custodian to sign again/)
        .with.property("code", "HANDOVER_LEGACY_FORMAT");
      expect(() => readHandover("hello", deploymentOf(31337, COLDCHAIN))).to.throw(
        /must start with "coldchain:handover:v1:"/,
      );
      expect(() => readHandover(text.slice(0, -10), deploymentOf(31337, COLDCHAIN))).to.throw(/cut off\?/);
      expect(() => readHandover(text.slice(0, -3) + "!!!", deploymentOf(31337, COLDCHAIN))).to.throw(/not base64url/);
    });
  });

  describe("config", function () {
    it("takes config.json and lets ?network= and ?rpc= override it", function () {
      const c = resolveConfig({ network: "sepolia", rpcUrl: "rpc", labels: { [CARRIER]: "carrier" } }, "");
      expect(c.network).to.equal("sepolia");
      expect(c.labels[CARRIER.toLowerCase()]).to.equal("carrier");
      const o = resolveConfig({ network: "sepolia" }, "?network=localhost&rpc=http://127.0.0.1:8545");
      expect([o.network, o.rpcUrl]).to.deep.equal(["localhost", "http://127.0.0.1:8545"]);
      expect(() => resolveConfig({ network: 5 }, "")).to.throw(/"network" must be a string/);
    });
  });
});
