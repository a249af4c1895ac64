/**
 * The text of the `npm start` report (scripts/stack/report.ts `formatReport`) for reports made up here: each
 * logger's own MKT instead of a pooled one, how the attempts to bend a verdict read — refused with an error,
 * answered with skips (the reordered relay) and a verdict the cross-check confirms or not, or a defect —, the
 * verdict in words with each breach's time, logger and liable party and the decision's reason in words, and the
 * oracle's drops counted as the progress line counts them.
 */
import { expect } from "chai";

import { formatProgress, totalDropped } from "../../scripts/stack/progress.js";
import { formatReport } from "../../scripts/stack/report.js";
import type { ShipmentReport, StackReport } from "../../scripts/stack/report.js";

const shipment: ShipmentReport = {
  id: "2",
  title: "Tablets at controlled room temperature, 15–25 °C",
  status: "Released",
  readingsOnChain: 624,
  minCentiC: 1923,
  maxCentiC: 2143,
  mktByLogger: [
    { deviceId: "201", mktCentiC: 2001, mktSeconds: 92_700 },
    { deviceId: "202", mktCentiC: null, mktSeconds: 0 },
  ],
  mktLimitCentiC: 2500,
  verdict: "Released — compliant",
  breaches: [],
  liable: [],
  excursionSecondsByCustodian: {},
  custody: [],
  gasUsed: "1000",
  gasPerReading: 10,
  decision: null,
};

const CANCEL = {
  attempt: "the shipper cancels shipment 1 while Polar Freight (carrier) holds it (to drop its readings)",
  refusedWith: "CustodyNotCustodian",
};
const REORDER = {
  attempt: "a rogue relayer submits logger 201's backlog (+10:00 to +14:00) newest first (48 readings)",
  refusedWith: "SequenceGap",
  outcome: "47 waited for their predecessor (SequenceGap)",
};

function report(overrides: Partial<StackReport>): StackReport {
  return {
    chainId: 31337,
    coldChain: "0x0000000000000000000000000000000000000001",
    shipments: [shipment],
    readingsPublished: 624,
    readingsOnChain: 624,
    readingsByOtherRelayers: 1,
    readingsRejected: {},
    readingsWaited: { "contract:SequenceGap": 47 },
    messagesRejected: {},
    batches: 1,
    gasUsed: "1000",
    gasPerReading: 10,
    cost: {
      prices: { l1Gwei: 1, l2Gwei: 0.01, ethUsd: 3000 },
      l1Eth: 0,
      l1Usd: 0,
      l2Eth: 0,
      l2Usd: 0,
      note: "execution gas of the oracle's relay transactions only",
    },
    attempts: [CANCEL, REORDER],
    crossCheck: { ok: true, problems: [] },
    ...overrides,
  };
}

/** Shipment 3 of the plan: a logger's uplink gap while Polar Freight held it, at −20 °C (no temperature breach). */
const missingData: ShipmentReport = {
  ...shipment,
  id: "3",
  title: "Frozen plasma, −25 °C to −15 °C",
  status: "Rejected",
  minCentiC: -2050,
  maxCentiC: -1980,
  verdict:
    "Rejected — breached: Missing data — liable: Polar Freight (carrier) — reason: Temperature record incomplete (readings missing)",
  breaches: [
    {
      reason: "MissingData",
      custodian: "carrierA",
      custodianAddress: "0x00000000000000000000000000000000000000ca",
      at: "2026-12-07T09:15:00Z",
      deviceId: "301",
      text:
        "Missing data: a gap of more than 4 reading intervals — at 2026-12-07 09:15:00 UTC — on logger 301 — " +
        "liable: Polar Freight (carrier) (custody period 1)",
    },
  ],
  liable: [{ custodian: "carrierA", heldSeconds: 36_000, excursionSeconds: 0, breaches: ["MissingData"] }],
  excursionSecondsByCustodian: { shipper: 0, carrierA: 0 },
  custody: [
    { custodian: "shipper", address: "0x00000000000000000000000000000000000000aa", since: "2026-12-07T00:00:00.000Z" },
    { custodian: "carrierA", address: "0x00000000000000000000000000000000000000ca", since: "2026-12-07T02:00:00.000Z" },
    { custodian: "receiver", address: "0x00000000000000000000000000000000000000ee", since: "2026-12-08T02:00:00.000Z" },
  ],
  decision: {
    kind: "rejected",
    by: "0x00000000000000000000000000000000000000ee",
    at: "2026-12-08T02:10:00Z",
    reasonCode: "MISSING_DATA",
    reason: "Temperature record incomplete (readings missing)",
    note: "first breach: Missing data at 2026-12-07 09:15:00 UTC",
  },
};

describe("npm start's report text", function () {
  it("gives the verdict in words: each breach with time, logger and liable party, the decision's reason in words", function () {
    const lines = formatReport(report({ shipments: [missingData] })).split("\n");
    expect(lines).to.include(`verdict           ${missingData.verdict}`);
    expect(lines).to.include(
      "decision          rejected by St. Mary's Hospital (receiver) at 2026-12-08 02:10:00 UTC — reason MISSING_DATA: " +
        'Temperature record incomplete (readings missing) — note: "first breach: Missing data at 2026-12-07 09:15:00 UTC"',
    );
    expect(lines).to.include(`breaches          ${missingData.breaches[0]?.text}`);
    expect(lines).to.include("liable            Polar Freight (carrier): held 10 h, excursion 0 s, Missing data");
    const carrier = lines.find((l) => l.startsWith("  Polar Freight (carrier)"));
    expect(carrier).to.match(/since 2026-12-07 02:00:00 UTC .* breaches: Missing data \(liable\)$/);
    expect(lines.find((l) => l.startsWith("  Northwind Pharma (shipper)"))).to.match(/breaches: none$/);
    expect(lines.join("\n")).to.not.match(/TEMPERATURE_BREACH|-20\.|MissingData/);
    expect(lines).to.include(`min / max         \u221220.50 °C / \u221219.80 °C`);
  });

  it("counts the oracle's dropped messages once, as the progress line does, with the readings they carried", function () {
    const messagesRejected = { bad_signature: 4, unknown_device: 2, duplicate: 2 };
    const text = formatReport(
      report({
        messagesRejected,
        readingsRejected: { bad_signature: 4, unknown_device: 2, duplicate: 17, "contract:StaleSequence": 1 },
      }),
    );
    expect(text).to.include(
      "\ndropped           8 messages by the oracle: bad_signature 4, unknown_device 2, duplicate 2 " +
        "(23 readings in them: bad_signature 4, unknown_device 2, duplicate 17)\n",
    );
    expect(text).to.include("\nrefused           contract:StaleSequence 1 (readings, by the contract)\n");
    const progress = formatProgress({
      simSeconds: 3600,
      totalSimSeconds: 3600,
      published: 10,
      onChain: 10,
      dropped: totalDropped(messagesRejected),
      batches: 1,
      gasUsed: 100n,
    });
    expect(progress).to.include("dropped 8 messages");
    expect(formatReport(report({}))).to.include("\ndropped           0 messages by the oracle\n");
  });

  it("shows each logger's own MKT over its own time and the profile's limit, no pooled MKT", function () {
    const text = formatReport(report({}));
    expect(text).to.include("\nmin / max         19.23 °C / 21.43 °C\n");
    expect(text).to.include("\nMKT per logger    201: 20.01 °C over 25 h 45 min, 202: n/a (limit 25.00 °C)\n");
    expect(text).to.not.include("min / max / MKT");
    const off = formatReport(report({ shipments: [{ ...shipment, mktLimitCentiC: null }] }));
    expect(off).to.include("(no MKT limit)");
  });

  it("says how many readings another relayer recorded", function () {
    expect(formatReport(report({}))).to.include(
      "readings          624 published, 624 on-chain (1 recorded by another relayer)",
    );
    expect(formatReport(report({ readingsByOtherRelayers: 0 }))).to.include(
      "readings          624 published, 624 on-chain\n",
    );
  });

  it("reads a reordered relay as waiting readings and the verdict the cross-check confirms", function () {
    const lines = formatReport(report({})).split("\n");
    expect(lines).to.include(`bend attempts     ${CANCEL.attempt}: refused by the contract (CustodyNotCustodian)`);
    expect(lines).to.include(
      `                  ${REORDER.attempt}: 47 waited for their predecessor (SequenceGap), verdict unchanged (cross-check)`,
    );
  });

  it("does not call the verdict unchanged when the cross-check fails, and calls an out-of-order record a defect", function () {
    const failed = formatReport(
      report({ crossCheck: { ok: false, problems: ["device 201: 1 valid readings not on chain"] } }),
    );
    expect(failed).to.include(
      `${REORDER.attempt}: 47 waited for their predecessor (SequenceGap), verdict not confirmed`,
    );
    expect(failed).to.not.include("verdict unchanged");
    expect(failed).to.include("cross-check       FAILED:\n  - device 201: 1 valid readings not on chain");
    const defect = formatReport(
      report({
        attempts: [
          { ...REORDER, refusedWith: null, outcome: "0 waited for their predecessor (SequenceGap), 48 recorded" },
        ],
      }),
    );
    expect(defect).to.include(
      `${REORDER.attempt}: 0 waited for their predecessor (SequenceGap), 48 recorded (a defect)`,
    );
    expect(formatReport(report({ attempts: [{ ...CANCEL, refusedWith: null }] }))).to.include(
      `${CANCEL.attempt}: ALLOWED (a defect)`,
    );
  });
});
