/**
 * The text of the `npm start` report (scripts/stack/report.ts `formatReport`) for reports made up here: each
 * logger's own MKT instead of a pooled one, and how the attempts to bend a verdict read — refused with an error,
 * answered with skips (the reordered relay) and a verdict the cross-check confirms or not, or a defect.
 */
import { expect } from "chai";

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
  breaches: [],
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

describe("npm start's report text", function () {
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
