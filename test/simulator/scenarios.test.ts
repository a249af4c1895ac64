/**
 * The simulator's output alone (no broker: the in-memory DryRunTransport records what would be published):
 * determinism per seed, strictly increasing sequences, each device's readings chained by their predecessor
 * (protocol v2: `previousObservedAt`), and that each scenario produces what it says.
 */
import { expect } from "chai";
import { hexlify } from "ethers";

import { decodeMqttPayload, verifySignedItem, windowReadings } from "../../sdk/protocol/index.js";
import type { DeviceVerificationKey, SignedItem } from "../../sdk/protocol/index.js";
import { ManualClock, ScaledClock } from "../../simulator/clock.js";
import { CRT_BAND, FROZEN_BAND, VACCINE_BAND, VirtualDevice } from "../../simulator/device.js";
import type { DevicePublicIdentity, TemperatureBand } from "../../simulator/device.js";
import { DryRunTransport, FleetRunner, createFleet, ledgerTotals } from "../../simulator/fleet.js";
import type { DeviceLedger, Fleet, FleetLedger } from "../../simulator/fleet.js";
import { formatDuration, parseDuration, parseSpeed } from "../../simulator/parse.js";
import { TAMPER_DROP_REASON, TAMPER_KINDS, buildScenario } from "../../simulator/scenarios.js";
import type { DeviceScenario, ScenarioName } from "../../simulator/scenarios.js";
import { DOMAIN, FROM, INTERVAL, fleetOf } from "./support.js";

const DAY = 86_400;

interface Played {
  readonly ledger: FleetLedger;
  readonly sent: { topic: string; payload: Uint8Array }[][];
  readonly scenarios: DeviceScenario[];
}

/** Plays `fleet` in memory from FROM for `seconds`, stepping the clock by `step`. */
async function play(
  fleet: Fleet,
  scenario: ScenarioName | ((index: number) => DeviceScenario),
  o: { seconds?: number; mode?: "reading" | "window"; format?: "json" | "binary"; step?: number; seed?: number } = {},
): Promise<Played> {
  const seconds = o.seconds ?? DAY;
  const to = FROM + seconds;
  const sent: { topic: string; payload: Uint8Array }[][] = fleet.devices.map(() => []);
  const scenarios: DeviceScenario[] = [];
  const runner = new FleetRunner({
    fleet,
    scenarioByDevice: (d) => {
      const s =
        typeof scenario === "function"
          ? scenario(d.index)
          : buildScenario(scenario, {
              seed: o.seed ?? 1,
              deviceIndex: d.index,
              from: FROM,
              to,
              intervalSeconds: INTERVAL,
            });
      scenarios[d.index] = s;
      return s;
    },
    transport: (clientId) => new DryRunTransport(sent[Number(clientId.split("-").at(-1)) - 1_000_001]),
    format: o.format ?? "binary",
    mode: o.mode ?? "reading",
    from: FROM,
  });
  const clock = new ManualClock(FROM);
  const step = o.step ?? 900;
  while (clock.now() < to) {
    clock.set(Math.min(to, clock.now() + step));
    await runner.advanceTo(clock.now());
  }
  await runner.flush(to);
  await runner.stop();
  return { ledger: runner.ledger(), sent, scenarios };
}

function keyOf(identity: DevicePublicIdentity): DeviceVerificationKey {
  return identity.keyType === "secp256k1"
    ? { keyType: "secp256k1", address: identity.address }
    : { keyType: "p256", x: identity.x, y: identity.y };
}

function device(ledger: FleetLedger, index: number): DeviceLedger {
  const d = ledger.devices[index];
  if (d === undefined) throw new Error(`no device ${index}`);
  return d;
}

function decoded(payload: Uint8Array): SignedItem {
  return decodeMqttPayload(payload).item;
}

describe("simulator: generated data (seeded, no broker)", function () {
  this.timeout(60_000);

  describe("reproducibility", function () {
    it("the same seed gives identical keys, readings and signed payloads; another seed differs", async function () {
      const a = await play(fleetOf(7, 3), "tamper");
      const b = await play(fleetOf(7, 3), "tamper");
      const c = await play(fleetOf(8, 3), "tamper");
      expect(fleetOf(7, 3).identities).to.deep.equal(fleetOf(7, 3).identities);
      expect(fleetOf(8, 3).identities).to.not.deep.equal(fleetOf(7, 3).identities);
      expect(b.ledger).to.deep.equal(a.ledger);
      expect(b.sent.map((s) => s.map((m) => hexlify(m.payload)))).to.deep.equal(
        a.sent.map((s) => s.map((m) => hexlify(m.payload))),
      );
      const temps = (p: Played): number[] => device(p.ledger, 0).readings.map((r) => r.tempCentiC);
      expect(temps(c)).to.not.deep.equal(temps(a));
    });

    it("a fleet can be played twice from its initial state, and the step size does not change the data", async function () {
      const fleet = fleetOf(3, 2);
      const coarse = await play(fleet, "compliant", { step: 6 * 3600 });
      const fine = await play(fleet, "compliant", { step: 60 });
      const strip = (l: FleetLedger): unknown => l.devices.map((d) => d.readings.map(({ publishedAt: _, ...r }) => r));
      expect(strip(fine.ledger)).to.deep.equal(strip(coarse.ledger));
    });

    it("window mode carries exactly the readings of reading mode, and JSON the same items as binary", async function () {
      const fleet = fleetOf(11, 2);
      const readings = await play(fleet, "compliant", { mode: "reading", format: "binary" });
      const windows = await play(fleet, "compliant", { mode: "window", format: "json" });
      const strip = (l: FleetLedger): unknown => l.devices.map((d) => d.readings.map(({ publishedAt: _, ...r }) => r));
      expect(strip(windows.ledger)).to.deep.equal(strip(readings.ledger));
      const fromWindows = windows.sent[0]?.flatMap((m) => {
        const item = decoded(m.payload);
        expect(item.kind).to.equal("window");
        return item.kind === "window" ? windowReadings(item.window) : [];
      });
      expect(fromWindows?.map((r) => r.sequence)).to.deep.equal(
        device(readings.ledger, 0).readings.map((r) => r.sequence),
      );
      expect(windows.sent[0]?.length).to.equal(Math.ceil(DAY / INTERVAL / 12));
    });

    it("sequences strictly increase per device across every message it sends", async function () {
      const fleet = fleetOf(5, 6);
      const { sent } = await play(fleet, (i) =>
        buildScenario((["tamper", "late-upload", "offline-gap"] as const)[i % 3] ?? "tamper", {
          seed: 5,
          deviceIndex: i,
          from: FROM,
          to: FROM + DAY,
          intervalSeconds: INTERVAL,
        }),
      );
      fleet.devices.forEach((d, i) => {
        const own = (sent[i] ?? []).map((m) => decoded(m.payload)).filter((item) => deviceIdOf(item) === d.deviceId);
        const firsts = own.map((item) => (item.kind === "reading" ? item.reading.sequence : item.window.firstSequence));
        // A replay repeats an earlier message byte for byte; every other message moves forward.
        // A bad signature or an altered payload stands in for the genuine reading sent right after it (same
        // sequence): they do not move the device's counter either.
        const fresh = firsts.filter((s, k) => !firsts.slice(0, k).includes(s));
        expect(fresh.length).to.be.greaterThan(250);
        for (let k = 1; k < fresh.length; k++) expect(fresh[k]).to.be.greaterThan(fresh[k - 1] ?? -1);
      });
    });

    for (const mode of ["reading", "window"] as const) {
      it(`every valid message names the device's previous reading as its predecessor, across gaps and backlogs (${mode} mode)`, async function () {
        const fleet = fleetOf(5, 3);
        const { sent, ledger } = await play(
          fleet,
          (i) =>
            buildScenario((["tamper", "late-upload", "offline-gap"] as const)[i % 3] ?? "tamper", {
              seed: 5,
              deviceIndex: i,
              from: FROM,
              to: FROM + DAY,
              intervalSeconds: INTERVAL,
            }),
          { mode },
        );
        fleet.devices.forEach((d, i) => {
          const identity = fleet.identities[i];
          if (identity === undefined) throw new Error("identity");
          // The device's genuine items, in the order it sent them (replays and bad messages left out).
          const seen = new Set<string>();
          const genuine = (sent[i] ?? []).flatMap((m) => {
            const hex = hexlify(m.payload);
            const item = decoded(m.payload);
            if (seen.has(hex) || !verifySignedItem(DOMAIN, item, keyOf(identity))) return [];
            seen.add(hex);
            return item.kind === "reading" ? [item.reading] : windowReadings(item.window);
          });
          expect(genuine.length).to.be.greaterThan(200);
          expect(genuine[0]?.previousObservedAt, "the device's first reading names none").to.equal(0);
          for (let k = 1; k < genuine.length; k++) {
            expect(genuine[k]?.previousObservedAt).to.equal(genuine[k - 1]?.observedAt);
          }
          // The ledger keeps the same chain.
          const own = device(ledger, i).readings;
          expect(own.map((r) => r.previousObservedAt)).to.deep.equal(genuine.map((r) => r.previousObservedAt));
        });
      });
    }

    it("a device names the reading it produced last, sent or not, and 0 before its first", function () {
      const d = new VirtualDevice({ seed: 1, index: 0, deviceId: 7n, keyType: "secp256k1", intervalSeconds: INTERVAL });
      expect(d.previousObservedAt).to.equal(0);
      const first = d.produce(FROM, { tempCentiC: 500, flags: 0 });
      d.produce(FROM + INTERVAL, { tempCentiC: 510, flags: 0 }); // never sent
      const third = d.produce(FROM + 3 * INTERVAL, { tempCentiC: 520, flags: 0 });
      expect([first.sequence, first.previousObservedAt]).to.deep.equal([1, 0]);
      expect([third.sequence, third.previousObservedAt]).to.deep.equal([3, FROM + INTERVAL]);
      expect(d.previousObservedAt).to.equal(FROM + 3 * INTERVAL);
      expect(() => d.produce(FROM + 3 * INTERVAL, { tempCentiC: 520, flags: 0 })).to.throw(/not after its previous/);
      // A fresh copy starts its chain again (a new run of the same device).
      expect(d.fresh().produce(FROM, { tempCentiC: 500, flags: 0 }).previousObservedAt).to.equal(0);
    });
  });

  describe("scenarios", function () {
    const bands: [string, TemperatureBand][] = [
      ["2–8 °C", VACCINE_BAND],
      ["15–25 °C", CRT_BAND],
      ["−25…−15 °C", FROZEN_BAND],
    ];

    for (const [label, band] of bands) {
      it(`compliant (${label}): three days, every reading inside the band`, async function () {
        const fleet = createFleet({ seed: 9, devices: 3, intervalSeconds: INTERVAL, domain: DOMAIN, band });
        const { ledger } = await play(fleet, "compliant", { seconds: 3 * DAY, step: 3 * 3600 });
        for (const d of ledger.devices) {
          expect(d.readings).to.have.length(3 * 288);
          for (const r of d.readings) expect(r.tempCentiC).to.be.within(band.minCentiC, band.maxCentiC);
          const temps = d.readings.map((r) => r.tempCentiC);
          expect(Math.max(...temps) - Math.min(...temps)).to.be.greaterThan(50); // not a flat line
        }
      });

      it(`heat-excursion (${label}): above the max only inside the given span, and well above`, async function () {
        const fleet = createFleet({ seed: 4, devices: 2, intervalSeconds: INTERVAL, domain: DOMAIN, band });
        const span = { from: FROM + 8 * 3600, to: FROM + 12 * 3600 };
        const { ledger } = await play(fleet, (i) =>
          buildScenario("heat-excursion", {
            seed: 4,
            deviceIndex: i,
            from: FROM,
            to: FROM + DAY,
            intervalSeconds: INTERVAL,
            span,
          }),
        );
        for (const d of ledger.devices) {
          const hot = d.readings.filter((r) => r.tempCentiC > band.maxCentiC);
          expect(hot.length).to.be.greaterThan(12);
          for (const r of hot) expect(r.observedAt).to.be.within(span.from, span.to - 1);
          expect(Math.max(...hot.map((r) => r.tempCentiC))).to.be.greaterThan(band.maxCentiC + 500);
          for (const r of d.readings) expect(r.tempCentiC).to.be.at.least(band.minCentiC);
        }
      });

      it(`freeze (${label}): below the min only inside the given span`, async function () {
        const fleet = createFleet({ seed: 4, devices: 2, intervalSeconds: INTERVAL, domain: DOMAIN, band });
        const span = { from: FROM + 3 * 3600, to: FROM + 6 * 3600 };
        const { ledger } = await play(fleet, (i) =>
          buildScenario("freeze", {
            seed: 4,
            deviceIndex: i,
            from: FROM,
            to: FROM + DAY,
            intervalSeconds: INTERVAL,
            span,
          }),
        );
        for (const d of ledger.devices) {
          const cold = d.readings.filter((r) => r.tempCentiC < band.minCentiC);
          expect(cold.length).to.be.greaterThan(6);
          for (const r of cold) expect(r.observedAt).to.be.within(span.from, span.to - 1);
          for (const r of d.readings) expect(r.tempCentiC).to.be.at.most(band.maxCentiC);
        }
      });
    }

    it("a heat or freeze span shorter than failure + recovery is refused", function () {
      expect(() =>
        buildScenario("heat-excursion", {
          seed: 1,
          deviceIndex: 0,
          from: FROM,
          to: FROM + DAY,
          intervalSeconds: INTERVAL,
          span: { from: FROM, to: FROM + 3600 },
        }),
      ).to.throw(/at least 2 h/);
    });

    it("offline-gap: a hole longer than 12 intervals, nothing recorded inside it and no backlog", async function () {
      const { ledger, scenarios } = await play(fleetOf(2, 3), "offline-gap");
      ledger.devices.forEach((d, i) => {
        const span = scenarios[i]?.spans[0];
        expect(span?.kind).to.equal("silent");
        const times = d.readings.map((r) => r.observedAt);
        const holes = times.slice(1).map((t, k) => t - (times[k] ?? t));
        expect(Math.max(...holes)).to.be.greaterThan(12 * INTERVAL);
        expect(holes.filter((h) => h > INTERVAL)).to.have.length(1);
        for (const r of d.readings) {
          expect(r.observedAt < (span?.from ?? 0) || r.observedAt >= (span?.to ?? 0)).to.equal(true);
          expect(r.publishedAt - r.observedAt).to.be.lessThan(900); // published at the next step, no backlog
        }
        // Sequences have no hole: the device was off, it did not lose readings it had taken; the first reading
        // after the hole names the last one before it, so the chain goes on (the gap is judged as missing data).
        d.readings.forEach((r, k) => expect(r.sequence).to.equal(k + 1));
        d.readings.forEach((r, k) => expect(r.previousObservedAt).to.equal(d.readings[k - 1]?.observedAt ?? 0));
      });
    });

    it("late-upload: readings of the offline span are published at its end, in order, none lost", async function () {
      const span = { from: FROM + 5 * 3600, to: FROM + 9 * 3600 };
      const { ledger, sent } = await play(fleetOf(6, 2), (i) =>
        buildScenario("late-upload", {
          seed: 6,
          deviceIndex: i,
          from: FROM,
          to: FROM + DAY,
          intervalSeconds: INTERVAL,
          span,
        }),
      );
      ledger.devices.forEach((d, i) => {
        expect(d.readings).to.have.length(288);
        const late = d.readings.filter((r) => r.observedAt >= span.from && r.observedAt < span.to);
        expect(late).to.have.length(48);
        for (const r of late) expect(r.publishedAt).to.be.at.least(span.to);
        const first = late[0];
        expect(first !== undefined && first.publishedAt - first.observedAt).to.be.at.least(4 * 3600 - INTERVAL);
        const seqs = (sent[i] ?? []).map((m) => {
          const item = decoded(m.payload);
          return item.kind === "reading" ? item.reading.sequence : -1;
        });
        expect(seqs).to.deep.equal([...seqs].sort((x, y) => x - y));
      });
    });

    it("tamper: every bad message fails verification, replays an earlier message or names an unknown device, with its reason", async function () {
      const fleet = fleetOf(12, 4);
      const { ledger, sent } = await play(fleet, "tamper", { seed: 12 });
      const ids = new Set(fleet.identities.map((d) => d.deviceId));
      expect(ledgerTotals(ledger).tampered).to.equal(4 * 2 * TAMPER_KINDS.length);
      ledger.devices.forEach((d, i) => {
        const identity = fleet.identities[i];
        if (identity === undefined) throw new Error("identity");
        const valid = new Set<string>();
        const published = (sent[i] ?? []).map((m) => hexlify(m.payload));
        expect(published).to.have.length(d.messages);
        expect(d.tampered.map((t) => t.kind).sort()).to.deep.equal(TAMPER_KINDS.flatMap((k) => [k, k]).sort());
        let replays = 0;
        for (const hex of published) {
          const item = decoded(Buffer.from(hex.slice(2), "hex"));
          if (valid.has(hex)) {
            // Byte for byte an earlier valid message: a replay the oracle drops as a duplicate.
            replays++;
            expect(
              d.tampered.some((t) => t.kind === "replay" && t.payload === hex && t.reason === "duplicate"),
            ).to.equal(true);
            continue;
          }
          const bad = d.tampered.find((t) => t.payload === hex && t.kind !== "replay");
          if (bad === undefined) {
            valid.add(hex);
            expect(verifySignedItem(DOMAIN, item, keyOf(identity))).to.equal(true);
            continue;
          }
          expect(bad.reason).to.equal(TAMPER_DROP_REASON[bad.kind]);
          switch (bad.kind) {
            case "bad-signature":
            case "altered-payload":
              expect(bad.reason).to.equal("bad_signature");
              expect(deviceIdOf(item)).to.equal(identity.deviceId);
              expect(verifySignedItem(DOMAIN, item, keyOf(identity))).to.equal(false);
              // It stands in for the genuine reading of its time, which the device publishes too: the
              // device's chain keeps every reading.
              if (item.kind === "reading") {
                const { sequence, observedAt, previousObservedAt } = item.reading;
                expect(d.readings.find((r) => r.sequence === sequence)).to.include({ observedAt, previousObservedAt });
              }
              break;
            case "unknown-device":
              expect(bad.reason).to.equal("unknown_device");
              expect(ids.has(deviceIdOf(item))).to.equal(false);
              expect(bad.deviceId).to.equal(deviceIdOf(item));
              expect(verifySignedItem(DOMAIN, item, keyOf(identity))).to.equal(false);
              break;
            case "replay":
              throw new Error("unreachable");
          }
        }
        expect(replays).to.equal(2);
        // Tampering does not cost valid readings: one every interval.
        expect(d.readings).to.have.length(288);
      });
    });
  });

  describe("units and clocks", function () {
    it("parses durations and speeds, and refuses bad ones with what to type", function () {
      expect(parseDuration("5m")).to.equal(300);
      expect(parseDuration("1h30m")).to.equal(5400);
      expect(parseDuration("3d")).to.equal(259_200);
      expect(parseDuration("90")).to.equal(90);
      expect(formatDuration(93_600)).to.equal("1d2h");
      expect(parseSpeed("300x")).to.equal(300);
      expect(parseSpeed("0.5x")).to.equal(0.5);
      expect(() => parseDuration("5 minutes")).to.throw(/e\.g\. 5m, 1h30m, 3d/);
      expect(() => parseDuration("0m")).to.throw(/at least 1 second/);
      expect(() => parseSpeed("fast")).to.throw(/e\.g\. 300x/);
      expect(() => parseSpeed("0x")).to.throw(/positive/);
    });

    it("ScaledClock runs at speed × real time; ManualClock moves only forward", function () {
      let real = 1_000_000;
      const clock = new ScaledClock(FROM, 300, () => real);
      real += 3000;
      expect(clock.now()).to.equal(FROM + 900);
      expect(clock.realMsUntil(FROM + 1200)).to.equal(1000);
      const manual = new ManualClock(FROM);
      manual.advance(60);
      expect(manual.now()).to.equal(FROM + 60);
      expect(() => manual.set(FROM)).to.throw(/cannot go back/);
    });
  });
});

function deviceIdOf(item: SignedItem): bigint {
  return item.kind === "reading" ? item.reading.deviceId : item.window.deviceId;
}
