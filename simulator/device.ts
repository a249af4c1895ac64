/**
 * A virtual temperature logger: its own key (derived from the seed), a registry id, a strictly increasing
 * sequence counter and the observation time of the last reading it produced (the pair a real logger persists
 * together before signing: protocol v2 chains each reading to its predecessor), a recording interval, and a
 * temperature model of a cooled container. Everything random comes from seeded streams (random.ts), so the same
 * seed gives the same keys, readings and signatures.
 */
import { concat, keccak256, toUtf8Bytes, zeroPadValue, toBeHex } from "ethers";

import { p256PublicKey, secp256k1Address, signReading, signWindow } from "../sdk/protocol/index.js";
import type {
  ColdChainDomain,
  DeviceKeyType,
  DevicePrivateKey,
  Reading,
  ReadingWindow,
  Sample,
  SignedReading,
  SignedWindow,
} from "../sdk/protocol/index.js";
import { createRandom } from "./random.js";
import type { Random } from "./random.js";
import { RECOVERY_SECONDS } from "./scenarios.js";
import type { ConditionSpan } from "./scenarios.js";

/** The temperature band a container is meant to hold, in °C × 100 (a profile's min and max). */
export interface TemperatureBand {
  readonly minCentiC: number;
  readonly maxCentiC: number;
}

/** 2–8 °C: vaccines and most biologics (the default). */
export const VACCINE_BAND: TemperatureBand = { minCentiC: 200, maxCentiC: 800 };
/** 15–25 °C: controlled room temperature (tablets). */
export const CRT_BAND: TemperatureBand = { minCentiC: 1500, maxCentiC: 2500 };
/** −25…−15 °C: frozen goods. */
export const FROZEN_BAND: TemperatureBand = { minCentiC: -2500, maxCentiC: -1500 };

/** What an operator registers on chain for a device (no private key). */
export type DevicePublicIdentity = {
  readonly index: number;
  readonly deviceId: bigint;
  readonly intervalSeconds: number;
} & (
  | { readonly keyType: "secp256k1"; readonly address: string }
  | { readonly keyType: "p256"; readonly x: string; readonly y: string }
);

/**
 * The device key of `label` under `seed`: keccak256 of a tagged string, re-hashed in the (negligible) case it is
 * not a valid scalar. Deterministic; for simulation only, never for real devices.
 */
export function deriveDeviceKey(seed: number | string, label: string, keyType: DeviceKeyType): DevicePrivateKey {
  let digest = keccak256(toUtf8Bytes(`coldchain-simulator/${String(seed)}/${label}/${keyType}`));
  for (let i = 0; ; i++) {
    try {
      if (keyType === "secp256k1") secp256k1Address(digest);
      else p256PublicKey(digest);
      return { keyType, privateKey: digest };
    } catch (error) {
      if (i > 8) throw error;
      digest = keccak256(concat([digest, zeroPadValue(toBeHex(i), 32)]));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Temperature model
// ---------------------------------------------------------------------------------------------

/** Time constant of the container following its setpoint (controller on), seconds. */
const TAU_CONTROL_SECONDS = 1800;
/** Time constant of the recovery at the end of a failure (full cooling / heating power), seconds. */
const TAU_RECOVERY_SECONDS = 900;
/** Time constant of the warm-up after a compressor failure, seconds. */
const TAU_WARMUP_SECONDS = 2700;
/** Time constant of the cold spike when the thermostat sticks on, seconds. */
const TAU_FREEZE_SECONDS = 1800;
/** Where a failed compressor lets the container go: this far above the band's max (a hot truck or dock). */
const HEAT_ABOVE_MAX_CENTIC = 1200;
/** Where a stuck thermostat drives the container: this far below the band's min. */
const FREEZE_BELOW_MIN_CENTIC = 800;
/** Door openings per hour in normal operation. */
const DOOR_OPENINGS_PER_HOUR = 0.15;
/** Decay time constant of a door opening's warm bump, seconds. */
const TAU_DOOR_SECONDS = 600;
const DAY_SECONDS = 86_400;

/** The thermal regime at one instant. */
export type ThermalRegime = "normal" | "heat" | "freeze" | "recovery";

/** The thermal regime of a condition span (or none) at time `t`. */
export function thermalRegimeAt(span: ConditionSpan | undefined, t: number): ThermalRegime {
  if (span === undefined || (span.kind !== "heat" && span.kind !== "freeze")) return "normal";
  return t < span.to - RECOVERY_SECONDS ? span.kind : "recovery";
}

/**
 * A cooled container: the temperature relaxes exponentially towards a target that depends on the regime.
 *
 * - normal: setpoint (band middle) + a slow daily ambient swing + a bounded mean-reverting drift; door openings
 *   add a warm bump that decays; uniform noise. The parts are bounded (drift ≤ 15 %, door ≤ min(1.5 °C, 50 %),
 *   noise ≤ 5 % of the half-band) so a normal reading always stays inside the band.
 * - heat: target = band max + 12 °C (compressor failure, warm-up curve with τ = 45 min).
 * - freeze: target = band min − 8 °C (cold spike, τ = 30 min).
 * - recovery (the last hour of a heat or freeze span): back to the setpoint with τ = 15 min, which brings the
 *   container within 0.5 °C of it before the span ends, so out-of-band readings fall only inside the span.
 */
export class TemperatureModel {
  private readonly setpoint: number;
  private readonly halfBand: number;
  private temp: number;
  private drift = 0;
  private door = 0;
  private lastT: number | undefined;

  constructor(
    private readonly band: TemperatureBand,
    private readonly rng: Random,
  ) {
    if (band.maxCentiC - band.minCentiC < 100) {
      throw new RangeError(`the band must be at least 1 °C wide, got ${band.minCentiC}..${band.maxCentiC}`);
    }
    this.setpoint = (band.minCentiC + band.maxCentiC) / 2;
    this.halfBand = (band.maxCentiC - band.minCentiC) / 2;
    this.temp = this.setpoint;
  }

  /** Advances the model to `t` (unix seconds, non-decreasing) and reads the sensor (°C × 100, rounded). */
  step(t: number, regime: ThermalRegime): number {
    const dt = this.lastT === undefined ? 0 : Math.max(0, t - this.lastT);
    this.lastT = t;
    const hb = this.halfBand;
    // Drift: mean-reverting random walk, clamped to ±5 % of the half-band; ambient swing ±10 %.
    this.drift = clamp(this.drift * Math.exp(-dt / 21_600) + this.rng.uniform(-0.01, 0.01) * hb, -0.05 * hb, 0.05 * hb);
    const ambient = 0.1 * hb * Math.sin((2 * Math.PI * t) / DAY_SECONDS);
    let target: number;
    let tau: number;
    switch (regime) {
      case "normal":
        target = this.setpoint + this.drift + ambient;
        tau = TAU_CONTROL_SECONDS;
        break;
      case "heat":
        target = this.band.maxCentiC + HEAT_ABOVE_MAX_CENTIC;
        tau = TAU_WARMUP_SECONDS;
        break;
      case "freeze":
        target = this.band.minCentiC - FREEZE_BELOW_MIN_CENTIC;
        tau = TAU_FREEZE_SECONDS;
        break;
      case "recovery":
        target = this.setpoint;
        tau = TAU_RECOVERY_SECONDS;
        break;
    }
    this.temp = target + (this.temp - target) * Math.exp(-dt / tau);
    // Door openings only in normal operation; the bump decays and is capped.
    const doorCap = Math.min(150, 0.5 * hb);
    this.door *= Math.exp(-dt / TAU_DOOR_SECONDS);
    const pOpen = 1 - Math.exp((-DOOR_OPENINGS_PER_HOUR * dt) / 3600);
    const opens = this.rng.chance(pOpen);
    const bump = this.rng.uniform(0.3, 1) * doorCap;
    if (regime === "normal" && opens) this.door = Math.min(doorCap, this.door + bump);
    if (regime !== "normal") this.door = 0;
    const noise = ((this.rng.next() + this.rng.next()) / 2 - 0.5) * 0.1 * hb;
    return Math.round(clamp(this.temp + this.door + noise, -0x8000, 0x7fff));
  }
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

// ---------------------------------------------------------------------------------------------
// The device
// ---------------------------------------------------------------------------------------------

export interface VirtualDeviceOptions {
  readonly seed: number | string;
  readonly index: number;
  readonly deviceId: bigint;
  readonly keyType: DeviceKeyType;
  readonly intervalSeconds: number;
  readonly band?: TemperatureBand;
  /** First sequence number (default 1). */
  readonly firstSequence?: number;
}

/** One virtual logger. */
export class VirtualDevice {
  readonly deviceId: bigint;
  readonly index: number;
  readonly intervalSeconds: number;
  readonly band: TemperatureBand;
  readonly key: DevicePrivateKey;
  /** Offset of the first recording after the run's start, in [0, interval): loggers are not in lockstep. */
  readonly phaseSeconds: number;
  private readonly model: TemperatureModel;
  private sequence: number;
  /** observedAt of the last reading this device produced (0: none yet), sent or not. */
  private lastObservedAt = 0;

  constructor(private readonly options: VirtualDeviceOptions) {
    const o = options;
    if (!Number.isSafeInteger(o.intervalSeconds) || o.intervalSeconds <= 0) {
      throw new RangeError(`intervalSeconds must be a positive integer, got ${o.intervalSeconds}`);
    }
    this.deviceId = o.deviceId;
    this.index = o.index;
    this.intervalSeconds = o.intervalSeconds;
    this.band = o.band ?? VACCINE_BAND;
    this.key = deriveDeviceKey(o.seed, `device/${o.index}`, o.keyType);
    this.phaseSeconds = createRandom(`${String(o.seed)}/phase/${o.index}`).int(0, o.intervalSeconds - 1);
    this.model = new TemperatureModel(this.band, createRandom(`${String(o.seed)}/model/${o.index}`));
    this.sequence = o.firstSequence ?? 1;
  }

  /** A new device with the same options in its initial state (sequence, temperature): for another run. */
  fresh(): VirtualDevice {
    return new VirtualDevice(this.options);
  }

  /** The identity to register on chain. */
  get identity(): DevicePublicIdentity {
    const base = { index: this.index, deviceId: this.deviceId, intervalSeconds: this.intervalSeconds };
    if (this.key.keyType === "secp256k1") {
      return { ...base, keyType: "secp256k1", address: secp256k1Address(this.key.privateKey) };
    }
    const { x, y } = p256PublicKey(this.key.privateKey);
    return { ...base, keyType: "p256", x, y };
  }

  /** The next sequence number this device will use (it never reuses one). */
  get nextSequence(): number {
    return this.sequence;
  }

  /**
   * The observation time of the last reading this device produced, whether it was sent or not (0 before its
   * first): the `previousObservedAt` its next reading will name.
   */
  get previousObservedAt(): number {
    return this.lastObservedAt;
  }

  /**
   * Produces the device's next reading, observed at `t` (after its previous one): it takes the next sequence and
   * names the previous reading the device produced as its predecessor (0 for its first), then remembers `t` — both
   * at once, as a real device persists them before signing. Every reading the device takes goes through here,
   * including those it never sends, so the chain it signs has no hole.
   */
  produce(t: number, sample: Sample): Reading {
    if (!Number.isSafeInteger(t) || t <= this.lastObservedAt) {
      throw new RangeError(
        `device ${this.deviceId}: a reading at ${t} is not after its previous one (${this.lastObservedAt})`,
      );
    }
    const reading: Reading = {
      deviceId: this.deviceId,
      sequence: this.sequence,
      observedAt: t,
      tempCentiC: sample.tempCentiC,
      flags: sample.flags,
      previousObservedAt: this.lastObservedAt,
    };
    this.sequence++;
    this.lastObservedAt = t;
    return reading;
  }

  /** Reads the sensor at `t` under the condition in force (the model must be stepped at every recording time). */
  sense(t: number, span: ConditionSpan | undefined): Sample {
    return { tempCentiC: this.model.step(t, thermalRegimeAt(span, t)), flags: 0 };
  }

  /** Signs a reading of this device. */
  signReading(domain: ColdChainDomain, reading: Reading): SignedReading {
    return signReading(domain, reading, this.key);
  }

  /** Signs a window of this device. */
  signWindow(domain: ColdChainDomain, window: ReadingWindow): SignedWindow {
    return signWindow(domain, window, this.key);
  }
}
