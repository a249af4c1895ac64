/**
 * The SDK against a real chain (in-process EDR): readShipment and shipmentHistory of a shipment driven through
 * its whole life (test/sdk/scenario.ts), the temperature timeline, and the GS1 EPCIS 2.0 export validated with
 * ajv against GS1's JSON schema (test/fixtures/epcis).
 */
import { readFileSync } from "node:fs";

import { Ajv } from "ajv";
import { expect } from "chai";
import { network } from "hardhat";
import addFormatsModule from "ajv-formats";

import {
  connectSuite,
  deriveExcursions,
  ethereumPartyUri,
  isEvaluatedReading,
  readShipment,
  shipmentHistory,
  temperatureTimeline,
  toEpcisDocument,
  ShipmentHistoryError,
  ShipmentNotFoundError,
} from "../../sdk/index.js";
import type { ColdChainSuite, EpcisEvent, ShipmentHistory, ShipmentState } from "../../sdk/index.js";
import { deploySuite } from "../support/deploy.js";
import type { Suite } from "../support/deploy.js";
import { INTERVAL, K1_DEVICE, P256_DEVICE, REJECTION_CODE, deploymentOf, driveShipment } from "./scenario.js";
import type { Scenario } from "./scenario.js";

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const SCHEMA_PATH = new URL("../fixtures/epcis/EPCIS-JSON-Schema.json", import.meta.url);

describe("SDK: state, history and EPCIS export of a shipment on a real chain", function () {
  this.timeout(120_000);
  let s: Suite;
  let scenario: Scenario;
  let suite: ColdChainSuite;
  let state: ShipmentState;
  let history: ShipmentHistory;

  before(async () => {
    const connection = await network.create();
    s = await deploySuite(connection);
    scenario = await driveShipment(s, connection.networkHelpers);
    suite = connectSuite(await deploymentOf(s), connection.ethers.provider);
    state = await readShipment(suite, scenario.shipmentId);
    history = await shipmentHistory(suite, scenario.shipmentId, { maxRange: 7 });
  });

  describe("readShipment", () => {
    it("reads status, parties, profile and devices", () => {
      expect(state.status).to.equal("Rejected");
      expect(state.shipper).to.equal(s.shipper.address);
      expect(state.receiver).to.equal(s.receiver.address);
      expect(state.owner).to.equal(s.owner.address);
      expect(state.custodian).to.equal(s.receiver.address);
      expect(state.rejectionCode).to.equal(REJECTION_CODE);
      expect(state.profile.minCentiC).to.equal(200);
      expect(state.profile.maxCentiC).to.equal(800);
      expect(state.devices.map((d) => [d.deviceId, d.keyType, d.intervalSeconds])).to.deep.equal([
        [K1_DEVICE, "Secp256k1", INTERVAL],
        [P256_DEVICE, "P256", INTERVAL],
      ]);
      expect(state.startedAt).to.equal(scenario.startedAt);
      expect(state.deliveredAt).to.be.greaterThan(state.startedAt);
    });

    it("reads the condition with the lens's MKT", () => {
      const c = state.condition;
      expect(c.readingCount).to.equal(scenario.accepted.k1 + scenario.accepted.p256);
      expect(c.hasTemperature).to.equal(true);
      expect(c.minCentiC).to.equal(450);
      expect(c.maxCentiC).to.equal(3000);
      expect(c.breaches).to.include.members(["AbsoluteLimit", "SingleExcursion"]);
      expect(c.firstBreach).to.be.oneOf(["AbsoluteLimit", "SingleExcursion"]);
      expect(c.cumulativeExcursionSeconds).to.be.greaterThan(3600);
      expect(c.mktCentiC).to.be.a("number").within(450, 3000);
      expect(c.mktSeconds).to.be.greaterThan(0);
    });

    it("reads the custody chain and charges the excursion to the carrier only", () => {
      expect(state.custody.map((p) => p.custodian)).to.deep.equal(scenario.custodians);
      expect(state.custody[0]?.since).to.equal(state.createdAt);
      for (let i = 1; i < state.custody.length; i++) {
        expect(state.custody[i]?.since).to.be.at.least(state.custody[i - 1]?.since ?? Infinity);
        expect(state.custody[i - 1]?.until).to.equal(state.custody[i]?.since);
      }
      const byParty = new Map(state.liability.map((l) => [l.custodian, l]));
      const carrier = byParty.get(s.carrier.address);
      expect(carrier?.excursionSeconds).to.equal(state.condition.cumulativeExcursionSeconds);
      expect(carrier?.breaches).to.include.members(["AbsoluteLimit", "SingleExcursion"]);
      expect(carrier?.periods).to.deep.equal([1]);
      for (const party of [s.shipper.address, s.hub.address]) {
        expect(byParty.get(party)?.excursionSeconds).to.equal(0);
        expect(byParty.get(party)?.breaches).to.deep.equal([]);
      }
      expect(state.pendingOffer).to.equal(undefined);
    });

    it("throws ShipmentNotFoundError for an unknown shipment", async () => {
      let error: unknown;
      try {
        await readShipment(suite, 999n);
      } catch (e) {
        error = e;
      }
      expect(error).to.be.instanceOf(ShipmentNotFoundError);
      expect((error as Error).message).to.match(/shipment 999 does not exist/);
    });
  });

  describe("shipmentHistory", () => {
    it("rebuilds the lifecycle and the custody handovers with tx hashes and block times", () => {
      expect(history.lifecycle.map((e) => e.kind)).to.deep.equal([
        "created",
        "started",
        "custodyOffered",
        "custodyOffered",
        "delivered",
        "rejected",
      ]);
      expect(history.lifecycle.at(-1)?.reasonCode).to.equal(REJECTION_CODE);
      expect(history.custody.map((h) => [h.from, h.to])).to.deep.equal([
        ["0x0000000000000000000000000000000000000000", s.shipper.address],
        [s.shipper.address, s.carrier.address],
        [s.carrier.address, s.hub.address],
        [s.hub.address, s.receiver.address],
      ]);
      // A period begins at the boundary its handover agreed (the offer's time, or after the latest reading), at or
      // before the block that opened it.
      for (const [i, h] of history.custody.entries()) {
        expect(h.transactionHash).to.match(/^0x[0-9a-f]{64}$/);
        expect(h.since).to.be.at.most(h.blockTime);
        expect(h.since).to.equal(state.custody[i]?.since);
      }
      const offers = history.lifecycle.filter((e) => e.kind === "custodyOffered");
      expect(history.custody[1]?.since, "shipper → carrier: from the offer").to.be.at.least(offers[0]?.blockTime ?? 0);
    });

    it("expands every reading recorded on chain, from single readings and windows", () => {
      expect(history.readings).to.have.length(state.condition.readingCount);
      const k1 = history.readings.filter((r) => r.deviceId === K1_DEVICE);
      const p256 = history.readings.filter((r) => r.deviceId === P256_DEVICE);
      expect(k1).to.have.length(scenario.accepted.k1);
      expect(p256).to.have.length(scenario.accepted.p256);
      expect(k1.every((r) => r.source === "readings")).to.equal(true);
      expect(p256.every((r) => r.source === "window" && r.tempC === 4.5)).to.equal(true);
      expect(k1.map((r) => r.sequence)).to.deep.equal(Array.from({ length: 30 }, (_, i) => i + 1));
      const spike = k1.find((r) => r.sequence === 15);
      expect(spike?.tempC).to.equal(30);
      expect(spike?.observedAt).to.equal(scenario.startedAt + 15 * INTERVAL);
      const times = history.readings.map((r) => r.observedAt);
      expect(times).to.deep.equal([...times].sort((a, b) => a - b));
    });

    it("reads the readings' block times only when asked (one request per batch block)", async () => {
      // Known only where the block also holds another event of the history (a breach, a skip).
      const timedBlocks = new Set(
        [
          ...history.lifecycle,
          ...history.custody,
          ...history.breaches,
          ...history.skipped,
          ...history.unauthenticatedSkips,
        ].map((e) => e.blockNumber),
      );
      expect(history.readings.some((r) => r.blockTime === undefined)).to.equal(true);
      for (const r of history.readings) expect(r.blockTime !== undefined).to.equal(timedBlocks.has(r.blockNumber));
      const timed = await shipmentHistory(suite, scenario.shipmentId, { readingBlockTimes: true });
      for (const r of timed.readings) {
        expect(r.blockTime).to.be.a("number");
        expect(r.blockTime).to.be.at.least(r.observedAt - 300);
      }
    });

    it("lists the skip the device signed as evidence and keeps the forged one apart as relay noise", () => {
      expect(history.skipped.map((x) => [x.deviceId, x.sequence, x.count, x.reason])).to.deep.equal([
        [K1_DEVICE, 8, 1, "DuplicateSequence"],
      ]);
      expect(history.unauthenticatedSkips.map((x) => [x.deviceId, x.sequence, x.count, x.reason])).to.deep.equal([
        [K1_DEVICE, 999, 1, "BadSignature"],
      ]);
    });

    it("lists breaches charged to the carrier and derives the excursion", () => {
      const reasons = history.breaches.map((b) => b.reason);
      expect(reasons).to.include.members(["AbsoluteLimit", "SingleExcursion"]);
      for (const b of history.breaches) {
        expect(b.custodian).to.equal(s.carrier.address);
        expect(b.periodIndex).to.equal(1);
        expect(b.deviceId).to.equal(K1_DEVICE);
      }
      expect(history.breaches.find((b) => b.reason === "AbsoluteLimit")?.sequence).to.equal(15);
      expect(history.excursions).to.deep.equal([
        {
          deviceId: K1_DEVICE,
          direction: "high",
          startedAt: scenario.excursion.from,
          endedAt: scenario.excursion.to + INTERVAL,
          durationSeconds: scenario.excursion.to + INTERVAL - scenario.excursion.from,
          ongoing: false,
          peakCentiC: 3000,
          readings: 14,
        },
      ]);
    });

    it("pages through small block ranges with progress, and fails clearly for an unknown shipment", async () => {
      const progress: { done: number; total: number }[] = [];
      const again = await shipmentHistory(suite, scenario.shipmentId, {
        maxRange: 3,
        onProgress: (p) => progress.push({ done: p.blocksDone, total: p.blocksTotal }),
      });
      expect(again.readings).to.deep.equal(history.readings);
      expect(again.breaches).to.deep.equal(history.breaches);
      // The shipment's events first (all blocks, 3 at a time), then the devices' skips from its creation on.
      const end = progress.findIndex((p) => p.done === p.total);
      const first = progress.slice(0, end + 1).map((p) => p.done);
      expect(first.length).to.equal(Math.ceil((progress[0]?.total ?? 0) / 3));
      expect(first).to.deep.equal([...first].sort((a, b) => a - b));
      let error: unknown;
      try {
        await shipmentHistory(suite, 42n);
      } catch (e) {
        error = e;
      }
      expect(error).to.be.instanceOf(ShipmentHistoryError);
      expect((error as Error).message).to.match(/no ShipmentCreated event for shipment 42/);
    });
  });

  describe("temperatureTimeline", () => {
    it("gives one sorted series per device and no gap for a complete record", () => {
      const timeline = temperatureTimeline(history);
      expect(timeline.minC).to.equal(2);
      expect(timeline.maxC).to.equal(8);
      expect(timeline.devices.map((d) => d.deviceId)).to.deep.equal([K1_DEVICE, P256_DEVICE]);
      const k1 = timeline.devices[0];
      expect(k1?.times).to.have.length(30);
      expect(k1?.times[0]).to.equal(scenario.startedAt + INTERVAL);
      expect(k1?.tempsC[14]).to.equal(30);
      expect(k1?.gaps).to.deep.equal([]);
    });

    it("reports a gap longer than maxGapIntervals x interval", () => {
      const holed = {
        ...history,
        readings: history.readings.filter((r) => !(r.deviceId === K1_DEVICE && r.sequence >= 5 && r.sequence <= 8)),
      };
      const k1 = temperatureTimeline(holed).devices[0];
      expect(k1?.gaps).to.deep.equal([
        { from: scenario.startedAt + 4 * INTERVAL, to: scenario.startedAt + 9 * INTERVAL, seconds: 5 * INTERVAL },
      ]);
    });
  });

  describe("toEpcisDocument", () => {
    const did = (address: string): string => ethereumPartyUri(31337, address);

    it("validates against the GS1 EPCIS 2.0 JSON schema", () => {
      const schema = JSON.parse(readFileSync(SCHEMA_PATH, "utf8")) as object;
      const ajv = addFormats(new Ajv({ strict: false, allErrors: true }));
      const validate = ajv.compile(schema);
      const doc = toEpcisDocument(history, state, { creationDate: new Date("2026-11-24T00:00:00Z") });
      const valid = validate(doc);
      expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).to.deep.equal([]);
      expect(valid).to.equal(true);
      // The schema does reject a broken document (the test can fail).
      const broken = JSON.parse(JSON.stringify(doc)) as { epcisBody: { eventList: Record<string, unknown>[] } };
      const first = broken.epcisBody.eventList[0];
      if (first !== undefined) first.action = "MOVE";
      expect(validate(broken)).to.equal(false);
    });

    it("exports a shipment in transit, read at an earlier block, with the open leg as sensor_reporting", async () => {
      const offerToReceiver = history.lifecycle.filter((e) => e.kind === "custodyOffered").at(-1);
      const block = offerToReceiver?.blockNumber ?? 0;
      const [earlierState, earlierHistory] = await Promise.all([
        readShipment(suite, scenario.shipmentId, { blockTag: block }),
        shipmentHistory(suite, scenario.shipmentId, { toBlock: block }),
      ]);
      expect(earlierState.status).to.equal("InTransit");
      expect(earlierState.custodian).to.equal(s.hub.address);
      expect(earlierState.pendingOffer?.to).to.equal(s.receiver.address);
      const doc = toEpcisDocument(earlierHistory, earlierState);
      const validate = addFormats(new Ajv({ strict: false })).compile(
        JSON.parse(readFileSync(SCHEMA_PATH, "utf8")) as object,
      );
      expect(validate(doc), JSON.stringify(validate.errors)).to.equal(true);
      const steps = doc.epcisBody.eventList.map((e) => e.bizStep);
      expect(steps).to.deep.equal(["commissioning", "shipping", "transporting", "transporting", "sensor_reporting"]);
      const open = doc.epcisBody.eventList.at(-1);
      const hubReadings = (open?.sensorElementList ?? []).flatMap((x) => x.sensorReport);
      expect(hubReadings.map((r) => [r.minValue, r.maxValue])).to.deep.equal([
        [5, 5],
        [4.5, 4.5],
      ]);
    });

    it("follows custody with possessing_party sources and destinations", () => {
      const doc = toEpcisDocument(history, state);
      expect(doc["@context"][0]).to.equal("https://ref.gs1.org/standards/epcis/epcis-context.jsonld");
      expect(doc.type).to.equal("EPCISDocument");
      expect(doc.schemaVersion).to.equal("2.0");
      const events = doc.epcisBody.eventList;
      expect(events.map((e) => e.bizStep)).to.deep.equal([
        "commissioning",
        "shipping",
        "transporting",
        "transporting",
        "receiving",
        "inspecting",
      ]);
      const moves = events.filter((e) => e.bizStep === "transporting" || e.bizStep === "receiving");
      const possessing = (list: unknown, key: "source" | "destination"): string[] =>
        (list as Record<string, string>[]).filter((x) => x.type === "possessing_party").map((x) => x[key] ?? "");
      const chain = [
        possessing(moves[0]?.sourceList, "source")[0],
        ...moves.map((e) => possessing(e.destinationList, "destination")[0]),
      ];
      expect(chain).to.deep.equal(scenario.custodians.map(did));
      for (let i = 1; i < moves.length; i++) {
        expect(possessing(moves[i]?.sourceList, "source")).to.deep.equal(
          possessing(moves[i - 1]?.destinationList, "destination"),
        );
      }
      expect(events.at(-1)?.disposition).to.equal("non_conformant");
      expect(events[1]?.disposition).to.equal("in_transit");
    });

    it("reports sensor min/max/mean per leg and the breaches as alarm conditions of the carrier's leg", () => {
      const events = toEpcisDocument(history, state).epcisBody.eventList;
      const reportsOf = (e: EpcisEvent | undefined) => (e?.sensorElementList ?? []).flatMap((x) => x.sensorReport);
      const carrierLeg = events.find((e) => e.sourceList?.[0]?.source === did(s.carrier.address));
      const reports = reportsOf(carrierLeg);
      const k1Summary = reports.find((r) => r.exception === undefined && String(r.deviceID).endsWith(":device:21"));
      expect(k1Summary).to.include({ type: "gs1:Temperature", uom: "CEL", minValue: 5, maxValue: 30 });
      expect(k1Summary?.meanValue).to.be.within(12, 14);
      const alarms = reports.filter((r) => r.exception === "ALARM_CONDITION");
      expect(alarms.map((r) => r["coldchain:breachReason"])).to.include.members(["AbsoluteLimit", "SingleExcursion"]);
      expect(alarms.every((r) => r["coldchain:liableParty"] === did(s.carrier.address))).to.equal(true);
      expect(alarms.find((r) => r["coldchain:breachReason"] === "AbsoluteLimit")?.value).to.equal(30);
      // Other legs have sensor reports but no alarms.
      const others = events.filter((e) => e !== carrierLeg).flatMap(reportsOf);
      expect(others.length).to.be.greaterThan(0);
      expect(others.some((r) => r.exception !== undefined)).to.equal(false);
    });

    it("leaves adaptation-period and sensor-fault readings out of the summaries and excursions, as the contract does", () => {
      const k1 = history.readings.find((r) => r.deviceId === BigInt(K1_DEVICE));
      if (k1 === undefined) throw new Error("the scenario has K1 readings");
      const carrierAt = scenario.startedAt + 15 * INTERVAL + 1; // inside the carrier's leg, after adaptation
      const extra = [
        // Warm reading during the adaptation period (startedAt + 600 s): recorded, not evaluated.
        { ...k1, sequence: 5000, observedAt: scenario.startedAt + 1, tempCentiC: 4000, tempC: 40, flags: 0 },
        // Sensor-fault flagged reading (0x01): recorded, not evaluated.
        { ...k1, sequence: 5001, observedAt: carrierAt, tempCentiC: -2000, tempC: -20, flags: 0x01 },
      ];
      const readings = [...history.readings, ...extra].sort((a, b) => a.observedAt - b.observedAt);
      const patched: ShipmentHistory = { ...history, readings };
      expect(isEvaluatedReading(extra[0]!, history.startedAt, history.profile.adaptationSeconds)).to.equal(false);
      expect(isEvaluatedReading(extra[1]!, history.startedAt, history.profile.adaptationSeconds)).to.equal(false);
      expect(isEvaluatedReading({ ...extra[1]!, flags: 0x02 }, history.startedAt, 600)).to.equal(true);

      const summaries = toEpcisDocument(patched, state)
        .epcisBody.eventList.flatMap((e) => (e.sensorElementList ?? []).flatMap((x) => x.sensorReport))
        .filter((r) => r.exception === undefined && String(r.deviceID).endsWith(":device:21"));
      expect(summaries.length).to.be.greaterThan(0);
      for (const r of summaries) {
        expect(r.maxValue, JSON.stringify(r)).to.be.at.most(30);
        expect(r.minValue, JSON.stringify(r)).to.be.at.least(5);
      }
      expect(deriveExcursions(readings, history.profile, history.startedAt, history.deliveredAt)).to.deep.equal(
        history.excursions,
      );
      // Without the filter the fault reading would open a low excursion in the carrier's leg.
      expect(
        deriveExcursions(
          readings.map((r) => (r.sequence === 5001 ? { ...r, flags: 0 } : r)),
          history.profile,
          history.startedAt,
          history.deliveredAt,
        ),
      ).not.to.deep.equal(history.excursions);
    });
  });
});
