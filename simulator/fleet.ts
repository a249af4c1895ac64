/**
 * The fleet: library API for the demo orchestrator and the CLI.
 *
 * - {@link createFleet} makes N virtual devices (ids, keys, intervals) from a seed and returns their public
 *   identities for on-chain registration.
 * - {@link FleetRunner} plays scenarios against a broker: {@link FleetRunner.advanceTo} records every reading due
 *   up to a simulated time, publishes what is due (QoS 1, one connection per device) and keeps a **ledger** of
 *   what was actually published (acknowledged by the broker): every valid reading and every tampered message
 *   with the reason the oracle should drop it.
 * - {@link runFleet} drives a runner with a clock from `from` to `to` and returns the ledger.
 */
import { encodeMqttPayload, mqttReadingsTopic, signReading } from "../sdk/protocol/index.js";
import type { ColdChainDomain, DeviceKeyType, MqttPayloadFormat, Reading, SignedItem } from "../sdk/protocol/index.js";
import type { DropReason } from "../oracle/health/metrics.js";
import type { SimClock } from "./clock.js";
import { VirtualDevice, VACCINE_BAND, deriveDeviceKey } from "./device.js";
import type { DevicePublicIdentity, TemperatureBand } from "./device.js";
import { DevicePublisher } from "./publisher.js";
import { conditionAt } from "./scenarios.js";
import type { DeviceScenario, ScenarioName, TamperEvent, TamperKind } from "./scenarios.js";

/** Offset of the unregistered ids the tamper scenario uses: `firstDeviceId + UNKNOWN_DEVICE_OFFSET + index`. */
export const UNKNOWN_DEVICE_OFFSET = 1_000_000_000n;
/** Default id of the first device. */
export const DEFAULT_FIRST_DEVICE_ID = 1_000_001n;

export interface FleetOptions {
  readonly seed: number | string;
  /** Number of devices. */
  readonly devices: number;
  /** Key types, cycled over the devices (default secp256k1 only). */
  readonly keyTypes?: readonly DeviceKeyType[];
  readonly intervalSeconds: number;
  readonly domain: ColdChainDomain;
  /** Id of device 0; device i gets firstDeviceId + i (default {@link DEFAULT_FIRST_DEVICE_ID}). */
  readonly firstDeviceId?: bigint;
  /** Temperature band each device's container holds (default 2–8 °C), or one per device index. */
  readonly band?: TemperatureBand | ((index: number) => TemperatureBand);
}

export interface Fleet {
  readonly seed: number | string;
  readonly domain: ColdChainDomain;
  /** The devices in their initial state (each {@link FleetRunner} plays fresh copies, so a fleet can be run again). */
  readonly devices: readonly VirtualDevice[];
  /** Public identities for registration, in device order. */
  readonly identities: readonly DevicePublicIdentity[];
}

/** Creates the fleet's devices; the same options give the same ids, keys and readings. */
export function createFleet(o: FleetOptions): Fleet {
  if (!Number.isSafeInteger(o.devices) || o.devices < 1) {
    throw new RangeError(`devices must be a positive integer, got ${o.devices}`);
  }
  const keyTypes = o.keyTypes === undefined || o.keyTypes.length === 0 ? ["secp256k1" as const] : o.keyTypes;
  const first = o.firstDeviceId ?? DEFAULT_FIRST_DEVICE_ID;
  if (first < 1n) throw new RangeError("firstDeviceId must be at least 1");
  const devices = Array.from({ length: o.devices }, (_, index) => {
    const band = typeof o.band === "function" ? o.band(index) : (o.band ?? VACCINE_BAND);
    return new VirtualDevice({
      seed: o.seed,
      index,
      deviceId: first + BigInt(index),
      keyType: keyTypes[index % keyTypes.length] ?? "secp256k1",
      intervalSeconds: o.intervalSeconds,
      band,
    });
  });
  return { seed: o.seed, domain: o.domain, devices, identities: devices.map((d) => d.identity) };
}

/** The fleet's public identities as JSON-safe data (`--fleet-out`): ids as decimal strings, no private keys. */
export function fleetToJson(fleet: Fleet): Record<string, unknown> {
  return {
    seed: String(fleet.seed),
    domain: { chainId: fleet.domain.chainId.toString(), verifyingContract: fleet.domain.verifyingContract },
    devices: fleet.identities.map((d) => ({ ...d, deviceId: d.deviceId.toString() })),
  };
}

// ---------------------------------------------------------------------------------------------
// The ledger
// ---------------------------------------------------------------------------------------------

/** A valid reading the broker acknowledged. */
export interface LedgerReading {
  readonly sequence: number;
  readonly observedAt: number;
  readonly tempCentiC: number;
  readonly flags: number;
  /** The reading the device produced before this one (0: none), as signed. */
  readonly previousObservedAt: number;
  /** Simulated time at which it was published (later than observedAt for a backlog). */
  readonly publishedAt: number;
}

/** A bad message the broker acknowledged, and why the oracle should drop it. */
export interface LedgerTamper {
  readonly kind: TamperKind;
  readonly reason: DropReason;
  /** The device id of the topic and payload (an unregistered id for `unknown-device`). */
  readonly deviceId: bigint;
  /**
   * Sequence of the first reading the message carries. A bad signature or an altered payload stands in for the
   * device's genuine reading of that time (same sequence, time and predecessor), which is published right after it.
   */
  readonly sequence: number;
  readonly observedAt: number;
  readonly publishedAt: number;
  /** The payload as published (hex). */
  readonly payload: string;
}

export interface DeviceLedger {
  readonly deviceId: bigint;
  readonly scenario: ScenarioName;
  readonly readings: LedgerReading[];
  readonly tampered: LedgerTamper[];
  /** Messages the broker acknowledged (valid and tampered). */
  messages: number;
  /** Messages recorded but not yet published (offline backlog, open window). */
  unpublished: number;
}

export interface FleetLedger {
  readonly devices: DeviceLedger[];
}

/** The ledger as JSON-safe data (ids as decimal strings). */
export function ledgerToJson(ledger: FleetLedger): Record<string, unknown> {
  return {
    devices: ledger.devices.map((d) => ({
      ...d,
      deviceId: d.deviceId.toString(),
      tampered: d.tampered.map((t) => ({ ...t, deviceId: t.deviceId.toString() })),
    })),
  };
}

/** Totals of a ledger. */
export function ledgerTotals(ledger: FleetLedger): {
  messages: number;
  readings: number;
  tampered: number;
  unpublished: number;
} {
  let messages = 0;
  let readings = 0;
  let tampered = 0;
  let unpublished = 0;
  for (const d of ledger.devices) {
    messages += d.messages;
    readings += d.readings.length;
    tampered += d.tampered.length;
    unpublished += d.unpublished;
  }
  return { messages, readings, tampered, unpublished };
}

// ---------------------------------------------------------------------------------------------
// The runner
// ---------------------------------------------------------------------------------------------

/** What {@link FleetRunOptions.onPublish} receives for every acknowledged message. */
export interface PublishEvent {
  readonly deviceId: bigint;
  readonly topic: string;
  readonly payload: Uint8Array;
  /** The signed item (as published, i.e. altered for `altered-payload`). */
  readonly item: SignedItem;
  /** Valid readings the message carries (0 for a tampered message). */
  readonly readings: number;
  readonly tamper?: { readonly kind: TamperKind; readonly reason: DropReason };
  /** Simulated time of the publish. */
  readonly at: number;
}

export interface FleetRunOptions {
  readonly fleet: Fleet;
  /** The scenario of each device (by index). */
  readonly scenarioByDevice: (device: VirtualDevice) => DeviceScenario;
  /** MQTT broker URL, e.g. mqtt://127.0.0.1:1883 (ignored when `transport` is given). */
  readonly brokerUrl?: string;
  /**
   * Makes each device's connection; default an MQTT {@link DevicePublisher} to `brokerUrl`. A
   * {@link DryRunTransport} records messages in memory instead (dry runs, tests of the generated data).
   */
  readonly transport?: (clientId: string) => DeviceTransport;
  readonly format: MqttPayloadFormat;
  /** One message per reading, or device windows of up to `windowSize` readings signed once. */
  readonly mode: "reading" | "window";
  /** Readings per window (1..256, default 12). */
  readonly windowSize?: number;
  /** Simulated start (unix seconds); each device records at from + phase + k × interval. */
  readonly from: number;
  /** Prefix of the MQTT client ids (default `coldchain-sim-<seed>`). */
  readonly clientIdPrefix?: string;
  /** Called after each acknowledged message. */
  readonly onPublish?: (event: PublishEvent) => void;
  /** Milliseconds between reconnection attempts (default 500). */
  readonly reconnectPeriodMs?: number;
}

/** One device's connection: what {@link FleetRunner} needs of an MQTT client. */
export interface DeviceTransport {
  readonly connected: boolean;
  /** Connects; `failFast: false` (a device back from an offline span) resolves even if the broker is away. */
  connect(options?: { readonly failFast?: boolean }): Promise<void>;
  /** Resolves once the message is acknowledged (QoS 1 PUBACK). */
  publish(topic: string, payload: Uint8Array): Promise<void>;
  disconnect(): Promise<void>;
}

/** A transport that keeps every message in memory, in publish order: for dry runs and generated-data tests. */
export class DryRunTransport implements DeviceTransport {
  connected = false;

  constructor(readonly sent: { topic: string; payload: Uint8Array }[] = []) {}

  connect(): Promise<void> {
    this.connected = true;
    return Promise.resolve();
  }

  publish(topic: string, payload: Uint8Array): Promise<void> {
    if (!this.connected) return Promise.reject(new Error("dry-run transport is disconnected"));
    this.sent.push({ topic, payload });
    return Promise.resolve();
  }

  disconnect(): Promise<void> {
    this.connected = false;
    return Promise.resolve();
  }
}

interface OutMessage {
  readonly order: number;
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly item: SignedItem;
  readonly availableAt: number;
  readonly readings: readonly Reading[];
  readonly tamper?: { readonly kind: TamperKind; readonly reason: DropReason; readonly deviceId: bigint };
}

interface DeviceRun {
  readonly device: VirtualDevice;
  readonly scenario: DeviceScenario;
  readonly publisher: DeviceTransport;
  readonly ledger: DeviceLedger;
  nextSampleAt: number;
  /** Open window (window mode): consecutive readings, all recorded online or all in one offline span. */
  window: Reading[];
  /** End of the offline span the open window was recorded in (its upload time), if any. */
  windowHeldUntil: number | undefined;
  outbox: OutMessage[];
  tamperQueue: TamperEvent[];
  lastValid: OutMessage | undefined;
  unknownSequence: number;
  /** observedAt of the unknown device's last reading (its chain; 0: none yet). */
  unknownLastObservedAt: number;
  /** Messages sent and not yet acknowledged. */
  inflight: number;
  /** Order number of the next message (keeps the backlog in order when a message comes back). */
  nextOrder: number;
  /** Disconnected on purpose (an `offline` span). */
  scriptedOffline: boolean;
}

/** Plays a fleet's scenarios against a broker; see the module comment. */
export class FleetRunner {
  private readonly runs: DeviceRun[];
  private readonly windowSize: number;
  private started = false;

  constructor(private readonly o: FleetRunOptions) {
    this.windowSize = o.windowSize ?? 12;
    if (!Number.isSafeInteger(this.windowSize) || this.windowSize < 1 || this.windowSize > 256) {
      throw new RangeError(`windowSize must be in 1..256, got ${this.windowSize}`);
    }
    const prefix = o.clientIdPrefix ?? `coldchain-sim-${String(o.fleet.seed)}`;
    const url = o.brokerUrl;
    const transport =
      o.transport ??
      ((clientId: string): DeviceTransport => {
        if (url === undefined) throw new RangeError("give brokerUrl or transport");
        return new DevicePublisher({ url, clientId, reconnectPeriodMs: o.reconnectPeriodMs });
      });
    // Fresh copies: a fleet describes devices; each run starts them from their initial state.
    this.runs = o.fleet.devices.map((template) => {
      const device = template.fresh();
      const scenario = o.scenarioByDevice(template);
      return {
        device,
        scenario,
        publisher: transport(`${prefix}-${device.deviceId}`),
        ledger: {
          deviceId: device.deviceId,
          scenario: scenario.name,
          readings: [],
          tampered: [],
          messages: 0,
          unpublished: 0,
        },
        nextSampleAt: o.from + device.phaseSeconds,
        window: [],
        windowHeldUntil: undefined,
        outbox: [],
        tamperQueue: [...scenario.tamper],
        lastValid: undefined,
        unknownSequence: 1,
        unknownLastObservedAt: 0,
        inflight: 0,
        nextOrder: 0,
        scriptedOffline: false,
      };
    });
  }

  /** Connects every device (those in an offline span at `from` stay disconnected). */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await Promise.all(
      this.runs.map(async (run) => {
        if (offlineSpanAt(run.scenario, this.o.from) !== undefined) run.scriptedOffline = true;
        else await run.publisher.connect();
      }),
    );
  }

  /** The ledger so far (live object; copy it with `structuredClone` to keep a snapshot). */
  ledger(): FleetLedger {
    for (const run of this.runs) {
      run.ledger.unpublished = run.outbox.length + run.inflight + (run.window.length > 0 ? 1 : 0);
    }
    return { devices: this.runs.map((r) => r.ledger) };
  }

  /** Records every reading due up to `t` and publishes every message due; resolves after the PUBACKs. */
  async advanceTo(t: number): Promise<void> {
    if (!this.started) await this.start();
    await Promise.all(
      this.runs.map(async (run) => {
        this.record(run, t);
        await this.publishDue(run, t);
      }),
    );
  }

  /**
   * The valid signed items each device has recorded by `t` and not yet handed to the broker (an offline backlog,
   * messages not yet due), in the device's order, each with the simulated time it is due for upload. Records
   * what is due up to `t` first, as {@link advanceTo} does (so a later `advanceTo(t)` publishes exactly these),
   * and publishes nothing. An open window is not included: it is not signed yet.
   */
  unpublished(t: number): { deviceId: bigint; item: SignedItem; availableAt: number }[] {
    const out: { deviceId: bigint; item: SignedItem; availableAt: number }[] = [];
    for (const run of this.runs) {
      this.record(run, t);
      for (const m of run.outbox) {
        if (m.tamper === undefined)
          out.push({ deviceId: run.device.deviceId, item: m.item, availableAt: m.availableAt });
      }
    }
    return out;
  }

  /** Closes every open window (window mode), then publishes what is due at `t`. Call at the end of a run. */
  async flush(t: number): Promise<void> {
    for (const run of this.runs) this.closeWindow(run);
    await this.advanceTo(t);
  }

  /** Disconnects every device cleanly. */
  async stop(): Promise<void> {
    await Promise.all(this.runs.map((run) => run.publisher.disconnect()));
  }

  private record(run: DeviceRun, t: number): void {
    const { device } = run;
    const domain = this.o.fleet.domain;
    while (run.nextSampleAt <= t) {
      const at = run.nextSampleAt;
      run.nextSampleAt += device.intervalSeconds;
      const span = conditionAt(run.scenario, at);
      const sample = device.sense(at, span);
      if (span?.kind === "silent") {
        // Switched off: the device takes no reading, so its next one names the last it took before the span.
        this.closeWindow(run);
        continue;
      }
      const heldUntil = span?.kind === "offline" ? span.to : undefined;
      const availableAt = heldUntil ?? at;
      // The device takes its reading (and moves its chain on) whatever the bad messages of this time are.
      const reading = device.produce(at, sample);
      while (run.tamperQueue.length > 0 && (run.tamperQueue[0]?.at ?? Infinity) <= at) {
        const event = run.tamperQueue[0];
        if (event === undefined) break;
        if (event.kind === "replay" && run.lastValid === undefined) break; // nothing to replay yet
        run.tamperQueue.shift();
        this.closeWindow(run);
        this.tamper(run, event, reading, availableAt);
      }
      if (this.o.mode === "reading") {
        this.push(run, device.signReading(domain, reading), availableAt, [reading]);
        continue;
      }
      const last = run.window.at(-1);
      if (
        last !== undefined &&
        (last.sequence + 1 !== reading.sequence ||
          last.observedAt + device.intervalSeconds !== at ||
          reading.previousObservedAt !== last.observedAt ||
          run.windowHeldUntil !== heldUntil)
      ) {
        this.closeWindow(run);
      }
      run.window.push(reading);
      run.windowHeldUntil = heldUntil;
      if (run.window.length >= this.windowSize) this.closeWindow(run);
    }
  }

  private closeWindow(run: DeviceRun): void {
    const readings = run.window;
    const first = readings[0];
    if (first === undefined) return;
    run.window = [];
    const item = run.device.signWindow(this.o.fleet.domain, {
      deviceId: run.device.deviceId,
      firstSequence: first.sequence,
      firstObservedAt: first.observedAt,
      intervalSeconds: run.device.intervalSeconds,
      samples: readings.map((r) => ({ tempCentiC: r.tempCentiC, flags: r.flags })),
      previousObservedAt: first.previousObservedAt,
    });
    this.push(run, item, run.windowHeldUntil ?? readings.at(-1)?.observedAt ?? first.observedAt, readings);
  }

  private push(run: DeviceRun, item: SignedItem, availableAt: number, readings: readonly Reading[]): void {
    const message: OutMessage = {
      order: run.nextOrder++,
      topic: mqttReadingsTopic(run.device.deviceId),
      payload: encodeMqttPayload(item, this.o.format),
      item,
      availableAt,
      readings,
    };
    run.outbox.push(message);
    run.lastValid = message;
  }

  /**
   * Queues one bad message (always a single reading; replays repeat the last valid message byte for byte), ahead
   * of `genuine`, the device's own reading of this time. A bad signature or an altered payload takes the genuine
   * reading's place in the device's chain (same sequence, time and predecessor) without moving the chain on: the
   * device itself signs only `genuine`, which is published too, so no reading of the chain goes missing.
   */
  private tamper(run: DeviceRun, event: TamperEvent, genuine: Reading, availableAt: number): void {
    const { device } = run;
    const domain = this.o.fleet.domain;
    const meta = (deviceId: bigint): { kind: TamperKind; reason: DropReason; deviceId: bigint } => ({
      kind: event.kind,
      reason: event.reason,
      deviceId,
    });
    const queue = (item: SignedItem, deviceId: bigint): void => {
      run.outbox.push({
        order: run.nextOrder++,
        topic: mqttReadingsTopic(deviceId),
        payload: encodeMqttPayload(item, this.o.format),
        item,
        availableAt,
        readings: [],
        tamper: meta(deviceId),
      });
    };
    switch (event.kind) {
      case "bad-signature": {
        // Signed by a key the registry does not hold for this device (an impostor).
        const impostor = deriveDeviceKey(this.o.fleet.seed, `impostor/${device.index}`, device.key.keyType);
        queue(signReading(domain, genuine, impostor), device.deviceId);
        return;
      }
      case "altered-payload": {
        // The device's reading (signed by the device), its temperature changed in transit.
        const signed = device.signReading(domain, genuine);
        const t = genuine.tempCentiC;
        const mid = (device.band.minCentiC + device.band.maxCentiC) / 2;
        const altered = { ...genuine, tempCentiC: t > mid ? t - 250 : t + 250 };
        queue({ kind: "reading", reading: altered, signature: signed.signature }, device.deviceId);
        return;
      }
      case "replay": {
        const original = run.lastValid;
        if (original === undefined) return;
        run.outbox.push({
          ...original,
          order: run.nextOrder++,
          availableAt,
          readings: [],
          tamper: meta(device.deviceId),
        });
        return;
      }
      case "unknown-device": {
        const deviceId = unknownDeviceId(this.o.fleet, device.index);
        const key = deriveDeviceKey(this.o.fleet.seed, `unknown/${device.index}`, device.key.keyType);
        const reading = {
          deviceId,
          sequence: run.unknownSequence++,
          observedAt: genuine.observedAt,
          tempCentiC: genuine.tempCentiC,
          flags: 0,
          previousObservedAt: run.unknownLastObservedAt,
        };
        run.unknownLastObservedAt = genuine.observedAt;
        queue(signReading(domain, reading, key), deviceId);
        return;
      }
    }
  }

  /**
   * Publishes every due message in order, pipelined (mqtt.js keeps them in order on the wire), and waits for the
   * PUBACKs or for the connection to drop. Messages in flight when it drops stay in mqtt.js's outgoing store and
   * are sent again after the reconnect; they enter the ledger when their PUBACK arrives.
   */
  private async publishDue(run: DeviceRun, t: number): Promise<void> {
    const offline = offlineSpanAt(run.scenario, t);
    if (offline === undefined && run.scriptedOffline) {
      run.scriptedOffline = false;
      await run.publisher.connect({ failFast: false }); // a broker outage now only delays the backlog
    }
    const batch: Promise<void>[] = [];
    while (run.publisher.connected) {
      const message = run.outbox[0];
      if (message === undefined || message.availableAt > t) break;
      run.outbox.shift();
      run.inflight++;
      batch.push(
        run.publisher.publish(message.topic, message.payload).then(
          () => {
            run.inflight--;
            this.account(run, message, t);
          },
          () => {
            // Closed before the PUBACK (stop): back into the backlog, in order.
            run.inflight--;
            const at = run.outbox.findIndex((m) => m.order > message.order);
            run.outbox.splice(at === -1 ? run.outbox.length : at, 0, message);
          },
        ),
      );
    }
    if (batch.length > 0) await settledOrDisconnected(batch, run.publisher);
    if (
      offline !== undefined &&
      !run.scriptedOffline &&
      run.inflight === 0 &&
      run.outbox.every((m) => m.availableAt > t)
    ) {
      run.scriptedOffline = true;
      await run.publisher.disconnect();
    }
  }

  private account(run: DeviceRun, message: OutMessage, t: number): void {
    run.ledger.messages++;
    if (message.tamper !== undefined) {
      const item = message.item;
      const sequence = item.kind === "reading" ? item.reading.sequence : item.window.firstSequence;
      const observedAt = item.kind === "reading" ? item.reading.observedAt : item.window.firstObservedAt;
      run.ledger.tampered.push({
        kind: message.tamper.kind,
        reason: message.tamper.reason,
        deviceId: message.tamper.deviceId,
        sequence,
        observedAt,
        publishedAt: t,
        payload: `0x${Buffer.from(message.payload).toString("hex")}`,
      });
    } else {
      for (const r of message.readings) {
        run.ledger.readings.push({
          sequence: r.sequence,
          observedAt: r.observedAt,
          tempCentiC: r.tempCentiC,
          flags: r.flags,
          previousObservedAt: r.previousObservedAt,
          publishedAt: t,
        });
      }
    }
    this.o.onPublish?.({
      deviceId: run.device.deviceId,
      topic: message.topic,
      payload: message.payload,
      item: message.item,
      readings: message.tamper === undefined ? message.readings.length : 0,
      ...(message.tamper === undefined ? {} : { tamper: { kind: message.tamper.kind, reason: message.tamper.reason } }),
      at: t,
    });
  }
}

/** The unregistered id the tamper scenario uses for device `index`. */
export function unknownDeviceId(fleet: Fleet, index: number): bigint {
  const first = fleet.devices[0]?.deviceId ?? DEFAULT_FIRST_DEVICE_ID;
  return first + UNKNOWN_DEVICE_OFFSET + BigInt(index);
}

/** Resolves when every publish settled or the connection is down (in-flight messages then wait for the reconnect). */
async function settledOrDisconnected(batch: Promise<void>[], transport: DeviceTransport): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const down = new Promise<void>((resolve) => {
    timer = setInterval(() => {
      if (!transport.connected) resolve();
    }, 50);
  });
  try {
    await Promise.race([Promise.all(batch), down]);
  } finally {
    clearInterval(timer);
  }
}

function offlineSpanAt(scenario: DeviceScenario, t: number): { from: number; to: number } | undefined {
  return scenario.spans.find((s) => s.kind === "offline" && t >= s.from && t < s.to);
}

// ---------------------------------------------------------------------------------------------
// runFleet
// ---------------------------------------------------------------------------------------------

export interface RunFleetOptions extends FleetRunOptions {
  readonly clock: SimClock;
  /** Simulated end (unix seconds): readings are recorded up to and including it. */
  readonly to: number;
  /** Real milliseconds between steps (default 50). */
  readonly tickMs?: number;
  /** Stops the run early (Ctrl-C); the ledger holds what was published until then. */
  readonly signal?: AbortSignal;
  /** Called before each step with the simulated time about to be played (e.g. to move a dev chain's clock). */
  readonly onTick?: (t: number) => Promise<void> | void;
}

/**
 * Plays the fleet from `from` to `to` following `clock`, flushes open windows at the end, disconnects, and
 * returns the ledger. With a manual clock, step the clock from elsewhere (or use {@link FleetRunner} directly).
 */
export async function runFleet(o: RunFleetOptions): Promise<FleetLedger> {
  const runner = new FleetRunner(o);
  // On abort, close the connections at once: a publish waiting for a PUBACK then fails instead of hanging.
  const onAbort = (): void => void runner.stop();
  o.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await runner.start();
    for (;;) {
      if (o.signal?.aborted === true) break;
      const t = Math.min(o.clock.now(), o.to);
      await o.onTick?.(t);
      await runner.advanceTo(t);
      if (t >= o.to) {
        await runner.flush(t);
        break;
      }
      await sleep(o.tickMs ?? 50, o.signal);
    }
  } finally {
    o.signal?.removeEventListener("abort", onAbort);
    await runner.stop();
  }
  return runner.ledger();
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
