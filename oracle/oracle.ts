/**
 * Composition root of one oracle instance: wires the store, the RPC pool, the device cache, intake, the
 * MQTT ingest, the relay and the HTTP endpoints, and owns their start and stop. `main.ts` is the CLI around it;
 * tests run instances in-process through it.
 */
import { EventEmitter, once } from "node:events";

import { Wallet, getAddress } from "ethers";

import { RpcPool } from "./chain.js";
import type { OracleConfig, OracleSecrets } from "./config.js";
import { HttpServer } from "./http.js";
import type { Health } from "./http.js";
import { Ingest } from "./ingest.js";
import { Intake, isSetAside } from "./intake.js";
import type { IntakeResult, SetAsideResult, SignatureCheck } from "./intake.js";
import type { Logger } from "./log.js";
import { createMetrics } from "./metrics.js";
import type { OracleMetrics } from "./metrics.js";
import { DeviceCache } from "./registry.js";
import type { Clock } from "./registry.js";
import { Relay } from "./relay.js";
import { SetAsideRetrier } from "./set-aside.js";
import { Store } from "./store.js";
import { StoreWriter } from "./store-writer.js";
import { FastVerifier, SECP256K1_BACKEND } from "./verify.js";
import { VerifyPool, defaultVerifyWorkers } from "./verify-pool.js";

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
  readonly wallet: Wallet;
  private readonly http: HttpServer;
  private readonly verifyPool: VerifyPool | undefined;
  private readonly storeWriter: StoreWriter | undefined;
  private readonly log: Logger;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  /** Bound port of the HTTP server (after start; undefined when disabled). */
  httpPort: number | undefined;

  constructor(
    readonly config: OracleConfig,
    secrets: OracleSecrets,
    deps: OracleDeps,
  ) {
    const clock = deps.clock ?? Date.now;
    this.log = deps.log.child({ oracle: config.oracleId });
    this.store = new Store(config.store.path, config.store.synchronous);
    this.metrics = createMetrics(
      config.oracleId,
      () => this.store.pendingReadings(),
      deps.processMetrics ?? false,
      () => this.store.countsByState().unrelayable,
      { setAsideMessages: () => this.store.setAsideCount(), unknownDevices: () => this.devices.unknownDevices },
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
    this.relay = new Relay({
      config,
      rpc: this.rpc,
      store: this.store,
      devices: this.devices,
      wallet: this.wallet,
      metrics: this.metrics,
      log: this.log.child({ module: "relay" }),
      clock,
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
      onStored: () => this.relay.notify(),
      ...(deps.observationClock === undefined ? {} : { observationClock: deps.observationClock }),
      signatureCheck,
      ...(this.storeWriter === undefined ? {} : { insertItems: this.storeWriter.insertItems }),
      setAsideMaxMessages: config.verify.setAsideMaxMessages,
      onSetAside: () => this.setAside.notify(),
    });
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
      (topic, payload) => this.onMessage(topic, payload),
      this.metrics,
      this.log.child({ module: "mqtt" }),
    );
    this.http = new HttpServer(this.metrics, () => this.health(), this.log.child({ module: "http" }));
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
    if (this.config.http.enabled) this.httpPort = await this.http.start(this.config.http.host, this.config.http.port);
    await this.ingest.start();
    this.log.info({ httpPort: this.httpPort, protocolVersion: this.ingest.protocolVersion }, "oracle running");
  }

  /** Clean stop: intake first (the message in progress is stored or left unacknowledged), then the relay. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      this.relay.events.emit("tick", { ok: true }); // releases an intake waiting on back-pressure
      this.intake.close();
      this.devices.close();
      await this.ingest.stop();
      await this.setAside.stop();
      await this.verifyPool?.close();
      await this.storeWriter?.close();
      await this.relay.stop();
      await this.http.stop();
      this.rpc.destroy();
      this.store.close();
      this.log.info({ intakeCommits: this.intake.commits.stats }, "oracle stopped");
    })();
    return this.stopped;
  }

  health(): Health {
    const relayLastSuccessAt = this.relay.lastSuccessAt;
    const fresh = Date.now() - relayLastSuccessAt < Math.max(30_000, 5 * this.config.chain.pollIntervalMs);
    return {
      ok: this.ingest.connected && fresh,
      mqttConnected: this.ingest.connected,
      relayLastSuccessAt,
      pendingReadings: this.store.pendingReadings(),
      setAsideMessages: this.store.setAsideCount(),
      ...this.setAsideWaiting(),
    };
  }

  private setAsideWaiting(): { waitingFor?: string } {
    const waitingFor = this.setAside.waitingFor();
    return waitingFor === undefined ? {} : { waitingFor };
  }

  private async onMessage(topic: string, payload: Uint8Array): Promise<void> {
    // Back-pressure: with too much on disk, hold this message (unacknowledged; the broker queues the rest).
    while (!this.stopping && this.store.pendingReadings() >= this.config.backpressure.maxPendingReadings) {
      await once(this.relay.events, "tick");
    }
    if (this.stopping) throw new Error("oracle stopping: message left for redelivery");
    const outcome = await this.intake.handle(topic, payload);
    if (isSetAside(outcome)) this.events.emit("set-aside", outcome);
    else this.events.emit("intake", outcome);
  }
}
