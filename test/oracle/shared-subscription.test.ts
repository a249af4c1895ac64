/**
 * Two oracles on ONE shared MQTT subscription (`$share/<group>/…` on a real Mosquitto over TCP), relaying to one
 * local chain, each getting a random part of the same loggers' readings: protocol v2 makes the verdict independent
 * of who relayed what and in which order. Four loggers travel together for 8 hours (one reading every 10 minutes):
 * an excursion that crosses a custody handover (the offer is pending while the oracles relay, so readings after
 * its boundary wait as CustodyPending), a second excursion over the cumulative budget, a freeze, a gap in one
 * logger's data (MissingData), a logger that sends windows, an absolute-limit spike and a sensor fault.
 *
 * Asserted: every reading recorded, nothing lost or skipped, readings the oracles could not relay yet held (never
 * dropped); and the final on-chain state (condition, custody periods, device tracks, per-device evidence, recorded
 * readings, the multiset of BreachRecorded and BreachRunShared events) equals the state one oracle produces
 * relaying the same signed readings in order (the chain reverted to the same starting point), and has the breaches
 * the scenario builds.
 */
import { expect } from "chai";

import type { Oracle } from "../../oracle/oracle.js";
import { BREACH_REASONS } from "../../sdk/names.js";
import { FLAG_SENSOR_FAULT, expandReadings, expandWindow, signReading, signWindow } from "../../sdk/protocol/index.js";
import type { DevicePrivateKey, SignedItem } from "../../sdk/protocol/index.js";
import { createShipment, registerDevice } from "../support/deploy.js";
import {
  Publisher,
  deployWorld,
  mosquittoAvailable,
  startAedes,
  startChain,
  startLoggedOracle,
  startMosquitto,
  waitFor,
} from "./support.js";
import type { AedesHandle, BrokerHandle, MosquittoHandle, NodeHandle, World } from "./support.js";

/** Seconds between a logger's readings (registered interval). */
const INTERVAL = 600;
/** Readings per logger: 8 hours. */
const SLOTS = 48;
/** The custody boundary: the shipper offers custody to the carrier 3 hours after the start (slot 18). */
const BOUNDARY_SLOT = 18;
/** Slots the gap logger takes no reading in (a silent span: it names its last reading before it afterwards). */
const GAP_SLOTS = { from: 24, to: 32 };

const PROFILE = {
  minCentiC: 200,
  maxCentiC: 800,
  absoluteMinCentiC: -1000,
  absoluteMaxCentiC: 2500,
  freezeCentiC: 0,
  maxFreezeSeconds: 1800,
  maxSingleExcursionSeconds: 3600,
  maxCumulativeExcursionSeconds: 7200,
  adaptationSeconds: 0,
  maxGapIntervals: 3,
  faultFlagMask: FLAG_SENSOR_FAULT,
  mktLimitCentiC: 800,
  mktMinCoverageSeconds: 3600,
  mktEnabled: true,
};

interface Logger {
  readonly id: bigint;
  readonly key: DevicePrivateKey;
  /** The logger's temperature and flags at slot k (1..SLOTS); undefined: no reading taken. */
  readonly sample: (k: number) => { tempCentiC: number; flags: number } | undefined;
  /** Slots whose readings it sends as windows (first slot → sample count); the others as single readings. */
  readonly windows?: ReadonlyMap<number, number>;
}

/** A small seeded PRNG (mulberry32), so a failing interleaving can be replayed with ORACLE_SHARE_SEED. */
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

const CONDITION_FIELDS = [
  "readingCount",
  "minCentiC",
  "maxCentiC",
  "lastObservedAt",
  "cumulativeExcursionSeconds",
  "longestExcursionSeconds",
  "statusFlags",
  "breachFlags",
  "firstBreach",
  "excursionDevices",
  "freezeDevices",
  "firstBreachAt",
  "mktWeightedSum",
  "mktSeconds",
] as const;
const PERIOD_FIELDS = ["custodian", "since", "excursionSeconds", "breachFlags"] as const;
const TRACK_FIELDS = ["shipmentId", "lastSequence", "lastObservedAt", "excursionStartedAt", "freezeStartedAt"] as const;
const EVIDENCE_FIELDS = [
  "mktWeightedSum",
  "mktSeconds",
  "cumulativeExcursionSeconds",
  "breachPeriod",
  "breachFlags",
] as const;

/** The named fields of a struct the contract returned, as strings (a plain object chai compares deeply). */
function pick<K extends string>(struct: { [key in K]: unknown }, keys: readonly K[]): Record<K, string> {
  return Object.fromEntries(keys.map((k) => [k, String(struct[k])])) as Record<K, string>;
}

/** The state a verdict is made of, read at the latest block. */
interface ChainVerdict {
  readonly condition: Record<(typeof CONDITION_FIELDS)[number], string>;
  readonly custody: Record<(typeof PERIOD_FIELDS)[number], string>[];
  readonly tracks: Record<(typeof TRACK_FIELDS)[number], string>[];
  readonly evidence: Record<(typeof EVIDENCE_FIELDS)[number], string>[];
  readonly readings: string[];
  readonly breaches: string[];
  readonly runShares: string[];
  readonly skips: string[];
}

describe("oracle: two instances on one shared subscription give the verdict of one in-order relay", function () {
  this.timeout(600_000);
  let node: NodeHandle;
  let mosquitto: MosquittoHandle;
  let aedes: AedesHandle;
  let w: World;
  let shipmentId: bigint;
  let startedAt: number;
  let createdAt: number;
  let boundary: number;
  let snapshot: string;
  let fromBlock: number;
  let loggers: Logger[];
  /** Every logger's signed items, each logger's in observation order. */
  let items: SignedItem[][];
  let total: number;
  /** Readings whose item lies wholly before the custody boundary (recordable while the offer is pending). */
  let beforeBoundary: number;
  const seed = Number(process.env.ORACLE_SHARE_SEED ?? Date.now() % 1_000_000);

  before(async function () {
    if (!mosquittoAvailable()) {
      console.warn("    SKIPPED: the `mosquitto` binary is not installed (apt-get install -y mosquitto)");
      this.skip();
    }
    [node, mosquitto, aedes] = await Promise.all([startChain(), startMosquitto(), startAedes()]);
    w = await deployWorld(node, 0, 8000n);
    const profileId = await w.coldChain.connect(w.qa).createProfile.staticCall(PROFILE);
    await (await w.coldChain.connect(w.qa).createProfile(PROFILE)).wait();

    const key = (i: number, keyType: "secp256k1" | "p256"): DevicePrivateKey => ({
      keyType,
      privateKey: `0x${(0x5eed00 + i).toString(16).padStart(64, "0")}`,
    });
    loggers = [
      {
        // An excursion at 9 °C from 2 h to 3 h 30 across the handover (it reaches the 1 h limit in the shipper's
        // period and goes on in the carrier's: breached in both, its run shared), then again from 5 h to 5 h 40
        // (over the 2 h cumulative budget).
        id: 8001n,
        key: key(1, "secp256k1"),
        sample: (k) => ({ tempCentiC: (k >= 12 && k <= 21) || (k >= 30 && k <= 34) ? 900 : 500, flags: 0 }),
      },
      {
        // A freeze: −1 °C from 4 h 20 to 5 h 10 (the freeze limit is 30 min).
        id: 8002n,
        key: key(2, "p256"),
        sample: (k) => ({ tempCentiC: k >= 26 && k <= 31 ? -100 : 600, flags: 0 }),
      },
      {
        // No readings from 4 h to 5 h 20 (MissingData: the gap limit is 3 intervals); sends windows.
        id: 8003n,
        key: key(3, "secp256k1"),
        sample: (k) => (k >= GAP_SLOTS.from && k <= GAP_SLOTS.to ? undefined : { tempCentiC: 400 + (k % 3), flags: 0 }),
        windows: new Map([
          [1, 6],
          [7, 6],
          [13, 6],
          [19, 5],
          [33, 6],
          [39, 6],
          [45, 4],
        ]),
      },
      {
        // A sensor fault at 1 h 40 (DeviceFault) and a 30 °C spike at 6 h 40 (AbsoluteLimit).
        id: 8004n,
        key: key(4, "p256"),
        sample: (k) =>
          k === 10 ? { tempCentiC: 0, flags: FLAG_SENSOR_FAULT } : { tempCentiC: k === 40 ? 3000 : 450, flags: 0 },
      },
    ];
    for (const l of loggers) await registerDevice(w, l.id, l.key, INTERVAL);
    shipmentId = await createShipment(
      w,
      loggers.map((l) => l.id),
      profileId,
    );
    await (await w.coldChain.connect(w.shipper).startShipment(shipmentId)).wait();
    const info = await w.coldChain.shipment(shipmentId);
    startedAt = Number(info.startedAt);
    createdAt = Number(info.createdAt);
    const at = (k: number): number => startedAt + k * INTERVAL;

    // The shipper offers custody to the carrier at 3 h: the boundary is fixed now (no reading is recorded yet).
    await node.provider.send("evm_setNextBlockTimestamp", [at(BOUNDARY_SLOT)]);
    await (await w.coldChain.connect(w.shipper).offerCustody(shipmentId, w.carrier.address, at(SLOTS) + 86_400)).wait();
    boundary = Number((await w.coldChain.custodyOffer(shipmentId)).handoverAt);
    expect(boundary).to.equal(at(BOUNDARY_SLOT));
    // The chain's clock past the last reading (8 h).
    await node.provider.send("evm_setNextBlockTimestamp", [at(SLOTS) + INTERVAL]);
    await node.provider.send("evm_mine", []);

    // Every logger's readings, signed once: each names the reading the logger took before it (the first one, a
    // reading taken before the start that was never sent).
    items = loggers.map((l) => {
      const out: SignedItem[] = [];
      let previous = startedAt - INTERVAL;
      for (let k = 1; k <= SLOTS;) {
        const windowCount = l.windows?.get(k);
        if (windowCount !== undefined) {
          const samples = Array.from({ length: windowCount }, (_, i) => l.sample(k + i));
          if (samples.some((s) => s === undefined)) throw new Error(`logger ${l.id}: a window over a silent slot`);
          out.push(
            signWindow(
              w.domain,
              {
                deviceId: l.id,
                firstSequence: k,
                firstObservedAt: at(k),
                intervalSeconds: INTERVAL,
                samples: samples as { tempCentiC: number; flags: number }[],
                previousObservedAt: previous,
              },
              l.key,
            ),
          );
          previous = at(k + windowCount - 1);
          k += windowCount;
          continue;
        }
        const s = l.sample(k);
        if (s !== undefined) {
          out.push(
            signReading(
              w.domain,
              { deviceId: l.id, sequence: k, observedAt: at(k), ...s, previousObservedAt: previous },
              l.key,
            ),
          );
          previous = at(k);
        }
        k++;
      }
      return out;
    });
    const readingsOf = (item: SignedItem): number => (item.kind === "reading" ? 1 : item.window.samples.length);
    const lastAt = (item: SignedItem): number =>
      item.kind === "reading"
        ? item.reading.observedAt
        : item.window.firstObservedAt + (item.window.samples.length - 1) * item.window.intervalSeconds;
    total = items.flat().reduce((n, item) => n + readingsOf(item), 0);
    beforeBoundary = items
      .flat()
      .filter((item) => lastAt(item) < boundary)
      .reduce((n, item) => n + readingsOf(item), 0);
    expect(total).to.equal(4 * SLOTS - (GAP_SLOTS.to - GAP_SLOTS.from + 1));

    fromBlock = (await node.provider.getBlockNumber()) + 1;
    snapshot = (await node.provider.send("evm_snapshot", [])) as string;
  });
  after(async () => {
    await Promise.all([node?.stop(), mosquitto?.stop(), aedes?.stop()]);
  });

  /** The oracles' config: the readings lie hours ahead of the wall clock (the chain's clock is past them). */
  const config = (extra: { oracleId: string; mqtt?: { shareGroup: string } }) => ({
    ...extra,
    verify: { maxFutureSkewSeconds: 7 * 24 * 3600 },
  });

  /**
   * Publishes every item, each logger's in the order it took them: `random` interleaves the loggers at random (and
   * mixes the payload forms); without it, every item in observation order (a fleet publishing in time).
   */
  const publishAll = async (broker: BrokerHandle, random?: () => number): Promise<void> => {
    const device = await Publisher.connect(broker.url);
    const firstAt = (item: SignedItem): number =>
      item.kind === "reading" ? item.reading.observedAt : item.window.firstObservedAt;
    try {
      const next = items.map(() => 0);
      for (;;) {
        const open = items.map((list, i) => ((next[i] ?? 0) < list.length ? i : -1)).filter((i) => i >= 0);
        if (open.length === 0) break;
        const head = (i: number): SignedItem => items[i]?.[next[i] ?? 0] as SignedItem;
        const i =
          random === undefined
            ? open.reduce((best, j) => (firstAt(head(j)) < firstAt(head(best)) ? j : best))
            : (open[Math.floor(random() * open.length)] ?? 0);
        const item = head(i);
        next[i] = (next[i] ?? 0) + 1;
        await device.publish(item, random !== undefined && random() < 0.5 ? "json" : "binary");
      }
    } finally {
      await device.close();
    }
  };

  /**
   * Relays everything through `oracles` (already started on `broker`): publishes, lets the readings before the
   * boundary be recorded while the offer is pending, has the carrier accept, and waits until every reading is
   * recorded.
   */
  const relay = async (oracles: Oracle[], broker: BrokerHandle, random?: () => number): Promise<void> => {
    await publishAll(broker, random);
    const readingCount = async (): Promise<number> => Number((await w.coldChain.condition(shipmentId)).readingCount);
    await waitFor(
      `the ${beforeBoundary} readings before the boundary recorded (seed ${seed})`,
      async () => (await readingCount()) >= beforeBoundary,
      240_000,
      100,
    );
    // None after the boundary could be recorded while the offer is pending.
    expect(await readingCount()).to.equal(beforeBoundary);
    await (await w.coldChain.connect(w.carrier).acceptCustody(shipmentId)).wait();
    await waitFor(
      `all ${total} readings recorded in the oracles' stores (seed ${seed})`,
      () =>
        oracles.reduce((n, o) => n + o.store.countsByState().recorded, 0) === total &&
        oracles.every((o) => o.store.countsByState().pending === 0),
      240_000,
      100,
    );
  };

  /** The verdict as the chain holds it now, with the events of the run (from the snapshot on). */
  const verdict = async (): Promise<ChainVerdict> => {
    const c = w.coldChain;
    const condition = pick(await c.condition(shipmentId), CONDITION_FIELDS);
    const custody = (await c.custodyHistory(shipmentId)).map((p) => pick(p, PERIOD_FIELDS));
    const tracks = await Promise.all(loggers.map(async (l) => pick(await c.deviceTrack(l.id), TRACK_FIELDS)));
    const evidence = await Promise.all(
      loggers.map(async (l) => pick(await c.deviceEvidence(shipmentId, l.id), EVIDENCE_FIELDS)),
    );
    const readings = [
      ...(await c.queryFilter(c.filters.ReadingsRecorded(shipmentId), fromBlock)).flatMap((e) =>
        expandReadings(e.args),
      ),
      ...(await c.queryFilter(c.filters.WindowRecorded(shipmentId), fromBlock)).flatMap((e) => expandWindow(e.args)),
    ]
      .map((r) => `${r.deviceId}/${r.sequence}@${r.observedAt}: ${r.tempCentiC} ${r.flags}`)
      .sort();
    const breaches = (await c.queryFilter(c.filters.BreachRecorded(shipmentId), fromBlock))
      .map(
        (e) =>
          `${BREACH_REASONS[Number(e.args.reason)]} device ${e.args.deviceId} #${e.args.sequence} ` +
          `@${e.args.observedAt} period ${e.args.periodIndex} ${e.args.custodian}`,
      )
      .sort();
    const runShares = (await c.queryFilter(c.filters.BreachRunShared(shipmentId), fromBlock))
      .map(
        (e) =>
          `${BREACH_REASONS[Number(e.args.reason)]} device ${e.args.deviceId} period ${e.args.periodIndex} ` +
          `${e.args.custodian} ${e.args.runSeconds} s`,
      )
      .sort();
    const skips = (await Promise.all(loggers.map((l) => c.queryFilter(c.filters.ReadingSkipped(l.id), fromBlock))))
      .flat()
      .map((e) => `${e.args.deviceId}/${e.args.sequence} x${e.args.count} reason ${e.args.reason}`)
      .sort();
    return {
      condition,
      custody,
      tracks,
      evidence,
      readings,
      breaches,
      runShares,
      skips,
    };
  };

  const metric = async (
    oracle: Oracle,
    which: "deferredReadings" | "skippedReadings",
    labels: Record<string, string>,
  ): Promise<number> =>
    (await oracle.metrics[which].get()).values
      .filter((v) => Object.entries(labels).every(([k, value]) => v.labels[k as keyof typeof v.labels] === value))
      .reduce((n, v) => n + v.value, 0);

  let shared: ChainVerdict;
  let reference: ChainVerdict;

  it(`two oracles on one $share subscription record every reading once, holding what they cannot relay yet (seed ${seed})`, async () => {
    const group = `share-${seed}`;
    const started = await Promise.all(
      ["a", "b"].map((name) =>
        startLoggedOracle(
          w,
          node,
          mosquitto.url,
          config({ oracleId: `shared-${name}-${seed}`, mqtt: { shareGroup: group } }),
        ),
      ),
    );
    const oracles = started.map((s) => s.oracle);
    try {
      await relay(oracles, mosquitto, prng(seed));
      const counts = oracles.map((o) => o.store.countsByState());
      for (const c of counts) {
        expect(c.recorded, `each oracle took a share (seed ${seed})`).to.be.greaterThan(0);
        expect(c).to.include({ pending: 0, batched: 0, skipped: 0, unrelayable: 0 });
      }
      expect(
        counts.reduce((n, c) => n + c.recorded, 0),
        "every reading stored once, by one oracle",
      ).to.equal(total);
      // The oracles held readings they could not relay yet, and never spent a transaction on a skip.
      let gapHolds = 0;
      let custodyHolds = 0;
      for (const o of oracles) {
        gapHolds += await metric(o, "deferredReadings", { reason: "SequenceGap" });
        custodyHolds += await metric(o, "deferredReadings", { reason: "CustodyPending" });
        expect(await metric(o, "skippedReadings", {}), "no skip at all").to.equal(0);
      }
      expect(custodyHolds, "readings after the boundary waited for the handover").to.be.greaterThan(0);
      expect(gapHolds, `readings waited for a predecessor the other oracle held (seed ${seed})`).to.be.greaterThan(0);
      shared = await verdict();
    } finally {
      await Promise.all(oracles.map((o) => o.stop()));
    }
    expect(shared.readings).to.have.length(total);
    for (const l of loggers) {
      for (const item of items[loggers.indexOf(l)] ?? []) {
        const t = item.kind === "reading" ? item.reading.observedAt : item.window.firstObservedAt;
        expect(await w.coldChain.isRecorded(l.id, t)).to.equal(true);
      }
    }
  });

  it("one oracle relaying the same signed readings in order produces the same state", async function () {
    if (shared === undefined) this.skip();
    await node.provider.send("evm_revert", [snapshot]);
    expect(Number((await w.coldChain.condition(shipmentId)).readingCount), "reverted to the start").to.equal(0);
    const { oracle } = await startLoggedOracle(w, node, aedes.url, config({ oracleId: `single-${seed}` }));
    try {
      // In order: every reading in the order of observation, the loggers one after the other at each slot.
      await relay([oracle], aedes);
      expect(oracle.store.countsByState()).to.deep.equal({
        pending: 0,
        batched: 0,
        recorded: total,
        skipped: 0,
        unrelayable: 0,
      });
      reference = await verdict();
    } finally {
      await oracle.stop();
    }

    expect(shared.skips, "no ReadingSkipped in either run").to.deep.equal([]);
    expect(reference.skips).to.deep.equal([]);
    expect(shared.readings).to.deep.equal(reference.readings);
    expect(shared.condition).to.deep.equal(reference.condition);
    expect(shared.custody).to.deep.equal(reference.custody);
    expect(shared.tracks).to.deep.equal(reference.tracks);
    expect(shared.evidence).to.deep.equal(reference.evidence);
    expect(shared.breaches).to.deep.equal(reference.breaches);
    expect(shared.runShares).to.deep.equal(reference.runShares);
  });

  it("and that state is the scenario's verdict", function () {
    if (reference === undefined) this.skip();
    const condition = reference.condition;
    const kinds = BREACH_REASONS.filter((_, i) => i > 0 && (Number(condition.breachFlags) & (1 << i)) !== 0);
    expect(kinds).to.have.members([
      "AbsoluteLimit",
      "SingleExcursion",
      "CumulativeExcursion",
      "Freeze",
      "MissingData",
      "DeviceFault",
    ]);
    expect(Number(condition.readingCount)).to.equal(total);
    expect(reference.custody.map((p) => [p.custodian, Number(p.since)])).to.deep.equal([
      [w.shipper.address, createdAt],
      [w.carrier.address, boundary],
    ]);
    // Per device, period and kind (BreachRecorded once each), as the scenario builds them: logger 1's first
    // excursion reaches 1 h at slot 17 (the shipper's period) and goes on into the carrier's (a breach there too, its
    // run shared: 1 h with the shipper, 10 min with the carrier); its second one spends the 2 h budget; logger 2's
    // freeze (−1 °C, also out of range) lasts 1 h: a freeze and a single excursion; logger 3's silence of 10
    // intervals is missing data, seen at its next reading; logger 4's fault and its 30 °C spike.
    const listed = `breaches:\n${reference.breaches.join("\n")}\nrun shares:\n${reference.runShares.join("\n")}`;
    const byPeriod = reference.breaches.map((b) => b.replace(/ #\d+ @\d+/, "").replace(/ 0x[0-9a-fA-F]{40}$/, ""));
    expect(byPeriod, listed).to.have.members([
      "AbsoluteLimit device 8004 period 1",
      "CumulativeExcursion device 8001 period 1",
      "DeviceFault device 8004 period 0",
      "Freeze device 8002 period 1",
      "MissingData device 8003 period 1",
      "SingleExcursion device 8001 period 0",
      "SingleExcursion device 8001 period 1",
      "SingleExcursion device 8002 period 1",
    ]);
    expect(
      reference.runShares.map((r) => r.replace(/ 0x[0-9a-fA-F]{40}/, "")),
      listed,
    ).to.have.members(["SingleExcursion device 8001 period 0 3600 s", "SingleExcursion device 8001 period 1 600 s"]);
  });
});
