/**
 * Composition root of one oracle instance: wires the store, the RPC pool, the device cache, intake, the
 * MQTT ingest, the relay and the HTTP endpoints, and owns their start and stop. `main.ts` is the CLI around it;
 * tests run instances in-process through it.
 *
 * Faults (docs/operations.md, "Faults and what the oracle does"):
 * - the store cannot write (disk full, I/O error, …; oracle/store/health.ts): intake is paused (disconnected from
 *   the broker: nothing acknowledged that is not stored), `/healthz` is 503 and says why, the store is tried again
 *   with a back-off and intake resumes by itself; at start the oracle waits for the store before connecting;
 * - stop ({@link Oracle.stop}): each part is stopped on its own, with its own time limit, so a part that fails or
 *   hangs (a broker gone at the same moment, an RPC node that does not answer) cannot keep the others running;
 *   the relay starts no tick from the first line of the stop, and intake reconnects no more.
 */
import { EventEmitter, once } from "node:events";

import { Wallet, getAddress } from "ethers";

import { Alerts } from "./alerts/alerts.js";
import { RpcPool } from "./chain.js";
import type { OracleConfig, OracleSecrets } from "./config/index.js";
import { messageOf } from "./errors.js";
import { HttpServer } from "./health/http.js";
import type { Health, HealthCheck, HealthCheckName } from "./health/http.js";
import { anchorHoldMs } from "./intake/anchor.js";
import { Ingest, STOP_DRAIN_MS, STOP_END_MS, STOP_STATUS_MS } from "./intake/mqtt.js";
import type { MessageContext } from "./intake/mqtt.js";
import { Intake, isSetAside } from "./verification/judge.js";
import type { IntakeResult, SetAsideResult, SignatureCheck } from "./verification/judge.js";
import type { Logger } from "./log.js";
import { RateLimitedLog } from "./log-limit.js";
import { createMetrics } from "./health/metrics.js";
import type { OracleMetrics } from "./health/metrics.js";
import { DeviceCache } from "./verification/registry.js";
import type { Clock } from "./verification/registry.js";
import { AnchorClaims } from "./relay/anchor-claims.js";
import { Relay } from "./relay/relay.js";
import { isRetainedClear, isStoredReplay } from "./intake/retained.js";
import { SetAsideRetrier } from "./verification/set-aside.js";
import { Store } from "./store/store.js";
import { StoreHealth } from "./store/health.js";
import { StoreWriter } from "./store/writer.js";
import { FastVerifier, SECP256K1_BACKEND } from "./verification/signature.js";
import { VerifyPool, defaultVerifyWorkers } from "./verification/pool.js";

export interface OracleDeps {
  readonly log: Logger;
  readonly clock?: Clock;
  /**
   * What "now" is for the future-timestamp check of readings, when it is not `clock`: `npm start` plays days of
   * simulated time in minutes, while batch ages, back-off and health stay on the wall clock.
   */
  readonly observationClock?: Clock;
  /** Collect Node process metrics too (the CLI does; in-process test instances do not). */
  readonly processMetrics?: boolean;
  readonly signatureCheck?: SignatureCheck;
}

export interface OracleEvents {
  /** A message's verdict: when it came, or, for a message set aside, when the set-aside retrier judged it. */
  intake: [IntakeResult];
  /** A message set aside (stored, acknowledged) to be judged later; its verdict comes as an `intake` event. */
  "set-aside": [SetAsideResult];
}

/** Time limits of the parts' stops (each on its own; the CLI exits after {@link SHUTDOWN_DEADLINE_MS} at most). */
export const STOP_LIMITS_MS = {
  /** MQTT intake: drain, offline status, disconnect (oracle/intake/mqtt.ts), and a margin. */
  mqtt: STOP_DRAIN_MS + STOP_STATUS_MS + STOP_END_MS + 500,
  /** The relay's step in progress (its state is in the store before any effect: stopping mid-step is safe). */
  relay: 5_000,
  /** After this long, RPC calls still in flight (a node that does not answer) are abandoned. */
  rpcGrace: 2_000,
  /** The signature workers and the store writer thread (stopped together). */
  threads: 1_500,
  http: 500,
  /** The alerts' evaluator and deliveries in flight (abandoned after 1 s: they stay due in the outbox). */
  alerts: 1_500,
} as const;

/**
 * Longest time from a stop signal to the process's exit (the CLI exits then even if a part has not stopped; the
 * store makes that as safe as a crash). The parts' limits add up to less: mqtt, then threads, then http, with the
 * relay stopping alongside.
 */
export const SHUTDOWN_DEADLINE_MS = 10_000;

export class Oracle {
  readonly events = new EventEmitter<OracleEvents>();
  readonly store: Store;
  readonly metrics: OracleMetrics;
  readonly rpc: RpcPool;
  readonly devices: DeviceCache;
  readonly intake: Intake;
  readonly ingest: Ingest;
  readonly relay: Relay;
  readonly setAside: SetAsideRetrier;
  /** Whether the store can write (pauses intake while it cannot). */
  readonly storeHealth: StoreHealth;
  readonly wallet: Wallet;
  /** Real-time alerts (`alerts.enabled`; oracle/alerts/). */
  readonly alerts: Alerts | undefined;
  private readonly http: HttpServer;
  private readonly verifyPool: VerifyPool | undefined;
  private readonly storeWriter: StoreWriter | undefined;
  private readonly log: Logger;
  private readonly clock: Clock;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  /** Parts that did not stop cleanly (failed, or not within their limit), after {@link stop}. */
  readonly stopFailures: string[] = [];
  /** Bound port of the HTTP server (after start; undefined when disabled). */
  httpPort: number | undefined;

  constructor(
    readonly config: OracleConfig,
    secrets: OracleSecrets,
    deps: OracleDeps,
  ) {
    const clock = deps.clock ?? Date.now;
    this.clock = clock;
    this.log = deps.log.child({ oracle: config.oracleId });
    this.store = new Store(config.store.path, config.store.synchronous, config.store.maxSizeMb);
    this.metrics = createMetrics(
      config.oracleId,
      () => this.store.pendingReadings(),
      deps.processMetrics ?? false,
      () => this.store.countsByState().unrelayable,
      {
        setAsideMessages: () => this.store.setAsideCount(),
        unknownDevices: () => this.devices.unknownDevices,
        oldestPendingAgeSeconds: () => {
          const oldest = this.store.oldestUnrecordedAt();
          return oldest === undefined ? 0 : Math.max(0, (clock() - oldest) / 1000);
        },
      },
    );
    this.rpc = new RpcPool(
      config.chain.rpcUrls,
      config.chain.chainId,
      config.chain.rpcTimeoutMs,
      this.log.child({ module: "rpc" }),
      this.metrics,
    );
    this.devices = new DeviceCache(
      this.rpc,
      this.store,
      getAddress(config.chain.coldChain),
      config.chain.registryFromBlock,
      {
        unknownCacheSize: config.verify.unknownDeviceCacheSize,
        unknownTtlMs: config.verify.unknownDeviceRetryMs,
        lookupRatePerSecond: config.verify.lookupRatePerSecond,
        lookupBurst: config.verify.lookupBurst,
        lookupWaitMs: config.verify.lookupWaitMs,
        lookupWaitMsPerSecond: config.verify.lookupWaitMsPerSecond,
        lookupTimeoutMs: config.verify.lookupTimeoutMs,
        retryMinMs: config.verify.setAsideRetryMinMs,
        retryMaxMs: config.verify.setAsideRetryMaxMs,
      },
      clock,
      this.log.child({ module: "registry" }),
      undefined,
      this.metrics,
    );
    this.wallet = new Wallet(secrets.privateKey);
    // Several instances in one share group: anchor copies wait before they are relayed (oracle/intake/anchor.ts).
    const holdMs = anchorHoldMs(config.oracleId, config.mqtt.anchorHoldMs);
    if (holdMs > 0) {
      this.log.info(
        { anchorHoldMs: holdMs, spreadMs: holdMs - config.mqtt.anchorHoldMs },
        "readings only the anchor session stored wait %d ms before they are relayed (mqtt.anchorHoldMs and this " +
          "instance's spread)",
        holdMs,
      );
    }
    // They are claimed before they are relayed, so that one instance relays each (oracle/relay/anchor-claims.ts).
    const anchorClaims =
      holdMs > 0
        ? new AnchorClaims({
            oracleId: config.oracleId,
            holdMs: config.mqtt.anchorHoldMs,
            store: this.store,
            publish: (payload) => this.ingest.publishAnchorClaim(payload),
            metrics: this.metrics,
            log: this.log.child({ module: "relay" }),
          })
        : undefined;
    this.relay = new Relay({
      config,
      rpc: this.rpc,
      store: this.store,
      devices: this.devices,
      wallet: this.wallet,
      metrics: this.metrics,
      log: this.log.child({ module: "relay" }),
      clock,
      ...(anchorClaims === undefined ? {} : { anchorClaims }),
    });
    const domain = { chainId: BigInt(config.chain.chainId), verifyingContract: getAddress(config.chain.coldChain) };
    let signatureCheck = deps.signatureCheck;
    if (signatureCheck === undefined) {
      const workers = config.verify.workers === "auto" ? defaultVerifyWorkers() : config.verify.workers;
      if (workers > 0) {
        this.verifyPool = new VerifyPool(
          domain,
          workers,
          config.verify.keyCacheSize,
          this.log.child({ module: "verify" }),
        );
        signatureCheck = this.verifyPool.check;
      } else {
        const verifier = new FastVerifier(domain, config.verify.keyCacheSize);
        signatureCheck = (item, key) => Promise.resolve(verifier.verify(item, key));
      }
    }
    if (config.store.intakeWriter === "thread") {
      this.storeWriter = new StoreWriter(
        config.store.path,
        config.store.synchronous,
        this.store,
        this.log.child({ module: "store" }),
        config.store.maxSizeMb,
      );
    }
    this.intake = new Intake({
      domain,
      maxPayloadBytes: config.mqtt.maxPayloadBytes,
      maxFutureSkewSeconds: config.verify.maxFutureSkewSeconds,
      store: this.store,
      devices: this.devices,
      metrics: this.metrics,
      log: this.log.child({ module: "intake" }),
      clock,
      onStored: () => {
        this.relay.notify();
        this.alerts?.notify();
      },
      ...(deps.observationClock === undefined ? {} : { observationClock: deps.observationClock }),
      signatureCheck,
      ...(this.storeWriter === undefined ? {} : { insertItems: this.storeWriter.insertItems }),
      setAsideMaxMessages: config.verify.setAsideMaxMessages,
      onSetAside: () => this.setAside.notify(),
      ...(holdMs > 0 ? { anchorHold: (receivedAt: number) => receivedAt + holdMs } : {}),
    });
    // The registry answered again after an outage: the RPC is back, so the relay need not wait out its back-off.
    this.devices.events.on("available", () => this.relay.poke());
    this.setAside = new SetAsideRetrier({
      store: this.store,
      intake: this.intake,
      devices: this.devices,
      log: this.log.child({ module: "set-aside" }),
      clock,
    });
    this.setAside.events.on("judged", ({ result }) => this.events.emit("intake", result));
    this.ingest = new Ingest(
      config,
      secrets.mqttPassword,
      (topic, payload, context) => this.onMessage(topic, payload, context),
      this.metrics,
      this.log.child({ module: "mqtt" }),
      anchorClaims === undefined ? undefined : (payload) => anchorClaims.received(payload, clock()),
    );
    const storeLog = this.log.child({ module: "store" });
    this.storeHealth = new StoreHealth({
      store: this.store,
      metrics: this.metrics,
      log: storeLog,
      limited: new RateLimitedLog(storeLog),
      clock,
    });
    // The store cannot write: take nothing more from the broker until it can (nothing unstored is acknowledged).
    this.storeHealth.events.on("unwritable", () => this.ingest.pause("the store can write again"));
    this.storeHealth.events.on("writable", () => {
      this.ingest.resume();
      this.relay.poke();
    });
    this.relay.events.on("tick", (tick) => {
      if (!tick.ok) this.storeHealth.failed(tick.error, "relay");
    });
    if (config.alerts.enabled) {
      this.alerts = new Alerts({
        config,
        webhookSecrets: secrets.webhookSecrets ?? [],
        store: this.store,
        rpc: this.rpc,
        registry: this.metrics.registry,
        publish: (topic, payload) => this.ingest.publish(topic, payload),
        log: this.log.child({ module: "alerts" }),
        clock,
      });
    }
    const alerts = this.alerts;
    this.http = new HttpServer(
      this.metrics,
      () => this.health(),
      this.log.child({ module: "http" }),
      alerts === undefined ? undefined : (req, res) => alerts.handleHttp(req, res),
    );
  }

  /** Starts the relay (resuming from the store), the HTTP endpoints, then MQTT intake. */
  async start(): Promise<void> {
    this.log.info(
      {
        signer: this.wallet.address,
        coldChain: this.config.chain.coldChain,
        rpcUrls: this.config.chain.rpcUrls.length,
        pending: this.store.pendingReadings(),
        unrelayable: this.store.countsByState().unrelayable,
        secp256k1: SECP256K1_BACKEND,
      },
      "oracle starting",
    );
    if (SECP256K1_BACKEND === "wasm") {
      this.log.warn(
        "the secp256k1 package's native binding did not load on this platform: secp256k1 signature checks run in " +
          "WebAssembly (tiny-secp256k1), about 5 times slower; see docs/operations.md, Throughput",
      );
    }
    void this.rpc.checkChains(); // every endpoint's chain id, so a misconfigured one is reported at once
    this.relay.start();
    this.setAside.start();
    this.alerts?.start();
    if (this.config.http.enabled) this.httpPort = await this.http.start(this.config.http.host, this.config.http.port);
    if (!this.storeHealth.check()) {
      // Restarted on a full disk (or another store failure): say why nothing happens, and wait for the store.
      this.log.error(
        { path: this.config.store.path, err: this.storeHealth.error?.message },
        "waiting for the store to write again before connecting to the broker (messages wait there meanwhile)",
      );
      await this.storeHealth.whenWritable();
      if (this.stopping) return;
    }
    await this.ingest.start();
    this.log.info({ httpPort: this.httpPort, protocolVersion: this.ingest.protocolVersion }, "oracle running");
  }

  /**
   * Clean stop, each part on its own with its own time limit ({@link STOP_LIMITS_MS}): a part that fails or does
   * not stop in time is logged and the others go on. The relay is told first (no tick starts after this line; the
   * step in progress ends) and stops alongside MQTT intake (no reconnect from here on; each message in progress is
   * stored and acknowledged, or left unacknowledged); then the worker threads, the HTTP server, the RPC pool, and
   * last the store. Nothing is acknowledged after the store's last commit: the connections are closed before it.
   * The parts that did not stop cleanly (none normally) are then in {@link stopFailures}.
   */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      const startedAt = Date.now();
      this.stopping = true;
      this.storeHealth.stop(); // releases a start waiting for the store
      this.relay.events.emit("tick", { ok: true }); // releases an intake waiting on back-pressure
      const failed = this.stopFailures;
      const part = async (name: string, stop: () => unknown, limitMs: number, onTimeout?: () => void) => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<"timeout">((resolve) => {
          timer = setTimeout(() => resolve("timeout"), limitMs);
        });
        try {
          const outcome = await Promise.race([Promise.resolve().then(stop), timeout]);
          if (outcome === "timeout") {
            failed.push(name);
            this.log.error({ part: name, limitMs }, "stopping: %s did not stop within %d ms; going on", name, limitMs);
            onTimeout?.();
          }
        } catch (error) {
          failed.push(name);
          this.log.error({ part: name, err: messageOf(error) }, "stopping: %s failed; going on", name);
        } finally {
          clearTimeout(timer);
        }
      };
      this.intake.close(); // releases messages waiting for the registry or the set-aside table
      this.devices.close();
      const relay = part("relay", () => this.relay.stop(), STOP_LIMITS_MS.relay);
      // A relay step waiting for a node that does not answer: abandon its RPC calls after a grace period (the step's
      // state is in the store; the next start resumes it), so the relay stops well within its limit.
      const rpcGrace = setTimeout(() => {
        this.log.warn({ graceMs: STOP_LIMITS_MS.rpcGrace }, "stopping: abandoning RPC calls still in flight");
        this.rpc.abort();
      }, STOP_LIMITS_MS.rpcGrace);
      void relay.then(() => clearTimeout(rpcGrace));
      // Alerts first (their MQTT sink needs the connection): deliveries in flight end or are abandoned, kept due.
      await part("alerts", () => this.alerts?.stop(), STOP_LIMITS_MS.alerts);
      await part("mqtt", () => this.ingest.stop(), STOP_LIMITS_MS.mqtt);
      await part("set-aside retrier", () => this.setAside.stop(), STOP_LIMITS_MS.threads);
      await Promise.all([
        part("verify workers", () => this.verifyPool?.close(), STOP_LIMITS_MS.threads),
        part(
          "store writer",
          () => this.storeWriter?.close(),
          STOP_LIMITS_MS.threads,
          () => this.storeWriter?.terminate(),
        ),
      ]);
      await relay;
      await part("http", () => this.http.stop(), STOP_LIMITS_MS.http);
      await part("rpc", () => this.rpc.destroy(), STOP_LIMITS_MS.http);
      await part("store", () => this.store.close(), STOP_LIMITS_MS.http);
      this.log.info(
        { intakeCommits: this.intake.commits.stats, stopMs: Date.now() - startedAt, failed },
        "oracle stopped",
      );
    })();
    return this.stopped;
  }

  /**
   * /healthz: every check with its verdict and, for a failed one, why (docs/operations.md section 7). The relay's
   * checks: a stuck nonce, the oldest reading not yet on chain, no confirmation while readings wait, the fee ceiling
   * below the base fee.
   */
  health(): Health {
    const now = this.clock();
    const { health: limits, chain } = this.config;
    const relayLastSuccessAt = this.relay.lastSuccessAt;
    const tickLimitMs = Math.max(30_000, 5 * chain.pollIntervalMs);
    const storeWritable = this.storeHealth.writable;
    const tx = this.relay.tx;
    const pendingReadings = this.store.pendingReadings();
    const oldest = this.store.oldestUnrecordedAt();
    const seconds = (ms: number): string => `${Math.round(ms / 1000)} s`;
    const pass: HealthCheck = { ok: true };
    const fail = (reason: string): HealthCheck => ({ ok: false, reason });
    const stuckForMs = tx.lowestUnminedSince === undefined ? 0 : now - tx.lowestUnminedSince;
    const quietForMs = now - tx.lastConfirmationAt;
    const waiting = pendingReadings > 0 || tx.inFlight > 0;
    const ceiling = tx.feeCeilingBelowBaseFee;
    const checks: Record<HealthCheckName, HealthCheck> = {
      broker: this.ingest.connected ? pass : fail("not connected to the MQTT broker"),
      store: storeWritable ? pass : fail(`the store cannot write: ${this.storeHealth.error?.message ?? "unknown"}`),
      relayTick:
        now - relayLastSuccessAt < tickLimitMs
          ? pass
          : fail(
              relayLastSuccessAt === 0
                ? "the relay has not completed a tick yet"
                : `the relay's last successful tick was ${seconds(now - relayLastSuccessAt)} ago (limit ${seconds(tickLimitMs)})`,
            ),
      stuckNonce:
        tx.lowestUnminedNonce !== undefined && stuckForMs >= limits.stuckNonceAfterMs
          ? fail(
              `our lowest unmined nonce ${tx.lowestUnminedNonce} has not been mined for ${seconds(stuckForMs)} ` +
                `(health.stuckNonceAfterMs ${seconds(limits.stuckNonceAfterMs)}; chain nonce ${tx.chainNonce ?? "?"})`,
            )
          : pass,
      pendingAge:
        oldest !== undefined && now - oldest >= limits.maxPendingAgeMs
          ? fail(
              `the oldest reading not yet on chain was received ${seconds(now - oldest)} ago ` +
                `(health.maxPendingAgeMs ${seconds(limits.maxPendingAgeMs)})`,
            )
          : pass,
      confirmations:
        waiting && quietForMs >= limits.noConfirmationAfterMs
          ? fail(
              `no batch confirmed for ${seconds(quietForMs)} while ${pendingReadings} readings are pending and ` +
                `${tx.inFlight} batches in flight (health.noConfirmationAfterMs ${seconds(limits.noConfirmationAfterMs)})`,
            )
          : pass,
      feeCeiling:
        ceiling === undefined
          ? pass
          : fail(
              `fees.maxFeePerGasGwei (${ceiling.ceilingGwei} gwei) is below the chain's base fee ` +
                `(${ceiling.baseFeeGwei} gwei) since ${new Date(ceiling.since).toISOString()}: nothing can be mined`,
            ),
    };
    const failed = (Object.keys(checks) as HealthCheckName[]).filter((k) => !checks[k].ok);
    return {
      ok: failed.length === 0,
      failed,
      checks,
      relay: {
        ...tx,
        oldestUnrecordedAgeSeconds: oldest === undefined ? 0 : Math.round((now - oldest) / 1000),
      },
      mqttConnected: this.ingest.connected,
      relayLastSuccessAt,
      pendingReadings,
      setAsideMessages: this.store.setAsideCount(),
      ...this.setAsideWaiting(),
      storeWritable,
      ...(storeWritable
        ? {}
        : {
            storeError: this.storeHealth.error?.message ?? "unknown",
            storeUnwritableSince: this.storeHealth.unwritableSince,
          }),
    };
  }

  private setAsideWaiting(): { waitingFor?: string } {
    const waitingFor = this.setAside.waitingFor();
    return waitingFor === undefined ? {} : { waitingFor };
  }

  private async onMessage(topic: string, payload: Uint8Array, context: MessageContext): Promise<void> {
    if (isRetainedClear(payload)) {
      // A retained message cleared: nothing to store, nothing malformed (oracle/intake/retained.ts).
      this.metrics.received.inc();
      this.metrics.retainedClears.inc();
      this.log.debug({ topic, retain: context.retain }, "empty message (a retained message cleared): ignored");
      return;
    }
    // Back-pressure: with too much on disk, hold this message (unacknowledged; the broker queues the rest).
    while (!this.stopping && this.store.pendingReadings() >= this.config.backpressure.maxPendingReadings) {
      await once(this.relay.events, "tick");
    }
    if (this.stopping) throw new Error("oracle stopping: message left for redelivery");
    if (!this.storeHealth.writable) throw new Error("the store cannot write: message left for redelivery");
    if (context.anchor === true && isStoredReplay(this.store, payload)) {
      // The anchor catching up (oracle/intake/anchor.ts): a share member stored this reading first. Found before any
      // registry look-up (a device not cached would set the copy aside) or signature check.
      this.metrics.received.inc();
      this.metrics.anchorDuplicates.inc();
      return;
    }
    if (context.retain && isStoredReplay(this.store, payload)) {
      // A retained message sent again to a new subscription (a restart): its reading is stored already.
      this.metrics.received.inc();
      this.metrics.retainedReplays.inc();
      this.log.debug({ topic }, "retained message delivered again: its reading is stored already");
      return;
    }
    let outcome: IntakeResult | SetAsideResult;
    try {
      outcome = await this.intake.handle(topic, payload, context.anchor === true ? "anchor" : undefined);
    } catch (error) {
      // A store failure pauses intake (StoreHealth's `unwritable`); the message stays unacknowledged either way.
      this.storeHealth.failed(error, "intake");
      throw error;
    }
    if (isSetAside(outcome)) {
      this.storeHealth.succeeded();
      this.events.emit("set-aside", outcome);
      return;
    }
    if (outcome.ok) this.storeHealth.succeeded();
    this.events.emit("intake", outcome);
  }
}
