/**
 * The plan's loggers as simulator fleets (simulator/fleet.ts): one single-device fleet per planned logger, so
 * each keeps the id, key type, upload mode and temperature band the plan gives it, with keys derived from the
 * run's seed. The stack steps them with the simulated clock and reads their ledger for the cross-check.
 */
import { decodeMqttPayload } from "../../sdk/protocol/index.js";
import type {
  ColdChainDomain,
  DeviceVerificationKey,
  MqttPayloadFormat,
  SignedItem,
} from "../../sdk/protocol/index.js";
import { CRT_BAND, FROZEN_BAND, VACCINE_BAND } from "../../simulator/device.js";
import type { TemperatureBand } from "../../simulator/device.js";
import { FleetRunner, createFleet } from "../../simulator/fleet.js";
import type { Fleet } from "../../simulator/fleet.js";
import { buildScenario } from "../../simulator/scenarios.js";
import type { DeviceScenario, ScenarioName } from "../../simulator/scenarios.js";
import { SCENARIO_HOURS } from "./plan.js";
import type { Condition, DevicePlan, ShipmentPlan } from "./plan.js";
import type { Published, PublishedReading } from "./report.js";

const BANDS: Record<ShipmentPlan["preset"], TemperatureBand> = {
  "vaccine-2-8": VACCINE_BAND,
  "crt-15-25": CRT_BAND,
  "frozen-below-minus-15": FROZEN_BAND,
};

const SCENARIO_OF: Record<Condition["kind"], ScenarioName> = {
  heat: "heat-excursion",
  freeze: "freeze",
  "offline-gap": "offline-gap",
  "late-upload": "late-upload",
  tamper: "tamper",
};

export interface StackFleetOptions {
  readonly plan: readonly ShipmentPlan[];
  readonly seed: number;
  /** Unique per run: part of every logger's MQTT client id, so runs never share a broker session. */
  readonly runId: string;
  readonly intervalSeconds: number;
  readonly domain: ColdChainDomain;
  readonly brokerUrl: string;
  /** One form for every logger; default: binary and JSON alternately. */
  readonly format?: MqttPayloadFormat;
}

interface Member {
  readonly plan: DevicePlan;
  readonly fleet: Fleet;
  readonly format: MqttPayloadFormat;
  runner?: FleetRunner;
}

export class StackFleet {
  /** Verification key of every logger, for registration. */
  readonly keys = new Map<bigint, DeviceVerificationKey>();
  private readonly members: Member[] = [];
  private end = 0;

  constructor(private readonly o: StackFleetOptions) {
    let index = 0;
    for (const shipment of o.plan) {
      for (const device of shipment.devices) {
        const fleet = createFleet({
          seed: `${o.seed}/${device.deviceId}`,
          devices: 1,
          keyTypes: [device.keyType],
          intervalSeconds: o.intervalSeconds,
          domain: o.domain,
          firstDeviceId: device.deviceId,
          band: BANDS[shipment.preset],
        });
        const identity = fleet.identities[0];
        if (identity === undefined) throw new Error(`no identity for device ${device.deviceId}`);
        this.keys.set(
          device.deviceId,
          identity.keyType === "secp256k1"
            ? { keyType: "secp256k1", address: identity.address }
            : { keyType: "p256", x: identity.x, y: identity.y },
        );
        this.members.push({ plan: device, fleet, format: o.format ?? (index++ % 2 === 0 ? "binary" : "json") });
      }
    }
  }

  /** Starts every logger at `startedAt` (unix seconds, hour 0 of the plan) and connects it to the broker. */
  async begin(startedAt: number): Promise<void> {
    this.end = startedAt + SCENARIO_HOURS * 3600;
    for (const m of this.members) {
      if (m.plan.conditions.length > 1) {
        throw new Error(`device ${m.plan.deviceId}: the stack plays one condition per logger`);
      }
      const scenario = (): DeviceScenario => {
        const condition = m.plan.conditions[0];
        if (condition === undefined) {
          return buildScenario("compliant", this.scenarioOptions(startedAt));
        }
        const span = { from: startedAt + condition.fromHour * 3600, to: startedAt + condition.toHour * 3600 };
        return buildScenario(SCENARIO_OF[condition.kind], { ...this.scenarioOptions(startedAt), span });
      };
      m.runner = new FleetRunner({
        fleet: m.fleet,
        scenarioByDevice: scenario,
        brokerUrl: this.o.brokerUrl,
        format: m.format,
        mode: m.plan.mode,
        from: startedAt,
        clientIdPrefix: `coldchain-stack-${this.o.runId}`,
        reconnectPeriodMs: 200,
      });
      await m.runner.start();
    }
  }

  private scenarioOptions(startedAt: number) {
    return {
      seed: this.o.seed,
      deviceIndex: 0,
      from: startedAt,
      to: this.end,
      intervalSeconds: this.o.intervalSeconds,
    };
  }

  private runners(): FleetRunner[] {
    return this.members.flatMap((m) => (m.runner === undefined ? [] : [m.runner]));
  }

  /** Records and publishes everything due up to `t` (unix seconds). */
  async advanceTo(t: number): Promise<void> {
    await Promise.all(this.runners().map((r) => r.advanceTo(Math.min(t, this.end))));
  }

  /**
   * What logger `deviceId` will upload when the fleet is next advanced to `t` (unix seconds): its valid signed
   * items recorded by then and not yet published (an offline backlog ending at `t`), in the logger's order. Records
   * what is due up to `t`; publishes nothing (the next `advanceTo(t)` publishes them as usual).
   */
  dueUploads(deviceId: bigint, t: number): SignedItem[] {
    const at = Math.min(t, this.end);
    const runner = this.members.find((m) => m.plan.deviceId === deviceId)?.runner;
    if (runner === undefined) throw new Error(`no running logger ${deviceId}`);
    return runner
      .unpublished(at)
      .filter((u) => u.deviceId === deviceId && u.availableAt <= at)
      .map((u) => u.item);
  }

  /** The end of the scenario: open windows and offline backlogs are uploaded. */
  async flush(): Promise<void> {
    await Promise.all(this.runners().map((r) => r.flush(this.end)));
  }

  /** Valid readings published so far. */
  published(): number {
    let n = 0;
    for (const m of this.members) for (const d of m.runner?.ledger().devices ?? []) n += d.readings.length;
    return n;
  }

  /** Messages (valid and tampered) the broker has acknowledged. */
  messages(): number {
    let n = 0;
    for (const m of this.members) for (const d of m.runner?.ledger().devices ?? []) n += d.messages;
    return n;
  }

  /** What the loggers published, for the report's cross-check. */
  ledger(): Published {
    const validReadings = new Map<bigint, PublishedReading[]>();
    const tampered: { reason: string; readings: number }[] = [];
    for (const m of this.members) {
      for (const d of m.runner?.ledger().devices ?? []) {
        validReadings.set(
          d.deviceId,
          d.readings.map((r) => ({
            sequence: r.sequence,
            observedAt: r.observedAt,
            tempCentiC: r.tempCentiC,
            flags: r.flags,
          })),
        );
        for (const t of d.tampered) {
          const { item } = decodeMqttPayload(t.payload);
          tampered.push({ reason: t.reason, readings: item.kind === "reading" ? 1 : item.window.samples.length });
        }
      }
    }
    return { validReadings, tampered };
  }

  async close(): Promise<void> {
    await Promise.all(this.runners().map((r) => r.stop()));
  }
}
