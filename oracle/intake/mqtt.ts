/**
 * MQTT ingest (mqtt.js): QoS 1, a persistent session (clean: false, a stable client id, MQTT 5 session
 * expiry), MQTT 5 when the broker speaks it and 3.1.1 otherwise, subscribing again on every connect (some
 * brokers lose durable subscriptions). mqtt.js sends a QoS 1 PUBACK only after `handleMessage` calls back,
 * and processes one message at a time: the handler calls back after the durable commit, so a crash before
 * the commit makes the broker deliver the message again, and a slow store slows intake instead of
 * buffering in memory.
 *
 * More than one message in flight: with `mqtt.connections` N > 1 and an MQTT 5 broker, the oracle opens N
 * connections (client ids `<clientId>`, `<clientId>-1`, …) that share the stream through one MQTT 5 shared
 * subscription (`$share/<group>/…`; group `mqtt.shareGroup`, default `coldchain-<oracleId>`), so N messages
 * are handled at once and their commits are grouped. Each message is still acknowledged on its own connection
 * after its commit. On MQTT 3.1.1 (e.g. aedes, which has no `$share`) the oracle keeps one connection.
 *
 * A retained status message on `coldchain/v1/oracles/<id>/status` says "online"; the broker publishes the
 * last will ("offline") if the connection dies, and a clean stop publishes "offline" itself.
 *
 * Pause and stop. While the store cannot write, the oracle {@link Ingest.pause}s intake: every connection is
 * closed (no reconnect), so nothing more is delivered and nothing is acknowledged; the broker keeps the messages in
 * the persistent sessions, and {@link Ingest.resume} connects again. {@link Ingest.stop} is bounded whatever the
 * broker does: from its first line no connection reconnects; it waits at most {@link STOP_DRAIN_MS} for the
 * messages being handled (each is stored and acknowledged, or left unacknowledged), publishes "offline" if it can
 * within {@link STOP_STATUS_MS}, and ends the connections, forcibly after {@link STOP_END_MS}.
 *
 * Subscriptions on MQTT 5 ask the broker not to send retained messages again when the subscription exists already
 * (retain handling 1): a reconnect to a persistent session does not replay them. Each message's handler gets
 * its retain flag (a retained reading delivered again is a replay, not a new message).
 */
import { EventEmitter } from "node:events";

import { connect } from "mqtt";
import type { IClientOptions, IPublishPacket, MqttClient } from "mqtt";

import { MQTT_READINGS_FILTER, encodeOracleStatus, mqttStatusTopic } from "../../sdk/protocol/index.js";
import type { OracleConfig } from "../config/index.js";
import { messageOf } from "../errors.js";
import type { Logger } from "../log.js";
import { RateLimitedLog } from "../log-limit.js";
import type { OracleMetrics } from "../health/metrics.js";

/** CONNACK codes meaning "this protocol version is not supported" (3.1.1: 1, MQTT 5: 0x84). */
const UNSUPPORTED_PROTOCOL = new Set([1, 0x84]);
/** At stop: longest wait for the messages being handled (stored and acknowledged, or left unacknowledged). */
export const STOP_DRAIN_MS = 2_000;
/** At stop: longest wait for the broker to acknowledge the "offline" status (else the last will says it). */
export const STOP_STATUS_MS = 1_000;
/** At stop: longest wait for a clean disconnect before the connections are closed forcibly. */
export const STOP_END_MS = 1_000;

export interface IngestEvents {
  connected: [{ protocolVersion: 4 | 5; sessionPresent: boolean }];
  offline: [];
}

/** What the broker says of a message besides its topic and payload. */
export interface MessageContext {
  /** The retain flag: a retained message (sent on subscribing, or kept by the broker for the topic). */
  readonly retain: boolean;
}

export type MessageHandler = (topic: string, payload: Uint8Array, context: MessageContext) => Promise<void>;

export class Ingest {
  readonly events = new EventEmitter<IngestEvents>();
  /** Connection 0 carries the status topic and its last will; the others only share the stream. */
  private readonly clients: MqttClient[] = [];
  private version: 4 | 5;
  private stopped = false;
  private paused = false;
  private readonly statusTopic: string;
  /** Handlers of messages in progress (the ones stop waits for). */
  private readonly inFlight = new Set<Promise<void>>();
  /** Error lines that can come once per message or reconnect attempt: one per kind and interval, with counts. */
  private readonly limited: RateLimitedLog;

  constructor(
    private readonly config: OracleConfig,
    private readonly password: string | undefined,
    private readonly handler: MessageHandler,
    private readonly metrics: OracleMetrics,
    private readonly log: Logger,
  ) {
    this.version = config.mqtt.protocolVersion === 4 ? 4 : 5;
    this.statusTopic = mqttStatusTopic(config.oracleId);
    this.limited = new RateLimitedLog(log);
  }

  /** Whether the (first) client is connected now. */
  get connected(): boolean {
    return this.clients[0]?.connected === true;
  }

  /** The protocol version in use (after a fallback, 4). */
  get protocolVersion(): 4 | 5 {
    return this.version;
  }

  /** Connections open (1, or mqtt.connections on an MQTT 5 broker). */
  get connections(): number {
    return this.clients.length;
  }

  /** Whether the connections subscribe through a shared subscription. */
  private get shared(): boolean {
    return this.config.mqtt.shareGroup !== undefined || (this.config.mqtt.connections > 1 && this.version === 5);
  }

  /** Connects (and keeps reconnecting); resolves on the first CONNACK, after opening the other connections. */
  start(): Promise<void> {
    return new Promise((resolve) => {
      const onConnected = (): void => {
        this.events.off("connected", onConnected);
        if (this.stopped) return;
        if (this.version === 5) {
          for (let i = 1; i < this.config.mqtt.connections; i++) this.open(i);
        } else if (this.config.mqtt.connections > 1) {
          this.log.warn(
            { connections: this.config.mqtt.connections },
            "the broker speaks MQTT 3.1.1 only (no shared subscriptions assumed): using one connection",
          );
        }
        resolve();
      };
      this.events.on("connected", onConnected);
      this.open(0);
    });
  }

  /**
   * Stops within STOP_DRAIN_MS + STOP_STATUS_MS + STOP_END_MS whatever the broker does: no reconnect from here on;
   * waits (bounded) for the messages in progress to be handled, publishes "offline" if the broker takes it in time,
   * and ends the connections (forcibly if a clean disconnect does not complete in time).
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // A connection down now (the broker gone) would keep trying: end it at once. ended, mqtt.js never reconnects.
    for (const c of this.clients) if (!c.connected) c.end(true);
    if ((await within(Promise.allSettled([...this.inFlight]), STOP_DRAIN_MS)) === undefined) {
      this.log.warn(
        { messages: this.inFlight.size, waitedMs: STOP_DRAIN_MS },
        "stopping: messages still being handled are left unacknowledged (the broker delivers them again)",
      );
    }
    const [first] = this.clients;
    if (first?.connected === true) {
      // The broker going away meanwhile ends the wait at once (its last will says "offline" then).
      const gone = new Promise<string>((resolve) => first.once("close", () => resolve("the connection closed")));
      const status = first
        .publishAsync(this.statusTopic, Buffer.from(encodeOracleStatus(this.status("offline"))), {
          qos: 1,
          retain: true,
        })
        .then(
          () => undefined,
          (error: unknown) => messageOf(error),
        );
      const failure = await within(Promise.race([status, gone]), STOP_STATUS_MS, `no answer in ${STOP_STATUS_MS} ms`);
      if (failure !== undefined) {
        this.log.warn({ err: failure }, "could not publish the offline status (%s); the last will says it", failure);
      }
    }
    // A clean disconnect where the connection is up; one that is down is closed at once.
    const ended = await within(Promise.allSettled(this.clients.map((c) => c.endAsync(!c.connected))), STOP_END_MS);
    if (ended === undefined) {
      // end() was called (no reconnect); a broker gone mid-disconnect leaves it waiting: close the sockets.
      for (const c of this.clients) c.stream.destroy();
    }
    this.metrics.mqttConnected.set(0);
    this.limited.flush();
    this.log.info({ connections: this.clients.length, forced: ended === undefined }, "MQTT intake stopped");
  }

  /**
   * Closes every connection and stays away from the broker until {@link resume}: nothing more is delivered or
   * acknowledged (the broker keeps the messages for the persistent sessions). The messages in progress are
   * stored or left unacknowledged. For a store that cannot write.
   */
  pause(reason: string): void {
    if (this.paused || this.stopped) return;
    this.paused = true;
    for (const c of this.clients) c.end(true);
    this.metrics.mqttConnected.set(0);
    this.log.warn({ reason, connections: this.clients.length }, "MQTT intake paused: disconnected until %s", reason);
  }

  /** Connects again after {@link pause}. */
  resume(): void {
    if (!this.paused || this.stopped) return;
    this.paused = false;
    this.log.info({ connections: this.clients.length }, "MQTT intake resumed: connecting again");
    for (const c of this.clients) c.reconnect();
  }

  /** Whether intake is paused ({@link pause}). */
  get isPaused(): boolean {
    return this.paused;
  }

  /** Drops the connections without a clean disconnect (the broker redelivers unacknowledged messages). */
  reconnect(): void {
    for (const c of this.clients) c.stream.destroy();
  }

  private status(state: "online" | "offline"): { state: "online" | "offline"; oracleId: string; at: number } {
    return { state, oracleId: this.config.oracleId, at: Date.now() };
  }

  private open(index: number): void {
    const m = this.config.mqtt;
    const baseId = m.clientId ?? `coldchain-oracle-${this.config.oracleId}`;
    const options: IClientOptions = {
      clientId: index === 0 ? baseId : `${baseId}-${index}`,
      clean: false,
      protocolVersion: this.version,
      keepalive: m.keepaliveSeconds,
      reconnectPeriod: m.reconnectPeriodMs,
      connectTimeout: 10_000,
      resubscribe: false,
      username: m.username,
      password: this.password,
      ...(index === 0
        ? {
            will: {
              topic: this.statusTopic,
              payload: Buffer.from(encodeOracleStatus({ state: "offline", oracleId: this.config.oracleId })),
              qos: 1 as const,
              retain: true,
            },
          }
        : {}),
      ...(this.version === 5 ? { properties: { sessionExpiryInterval: m.sessionExpirySeconds } } : {}),
    };
    const client = connect(m.url, options);
    this.clients[index] = client;
    client.handleMessage = (packet: IPublishPacket, done: (error?: Error) => void): void => {
      const payload =
        typeof packet.payload === "string" ? new TextEncoder().encode(packet.payload) : new Uint8Array(packet.payload);
      if (this.stopped || this.paused) {
        // Delivered while stopping or pausing: left unacknowledged (the broker delivers it again).
        done(new Error("intake stopping or paused: message left for redelivery"));
        return;
      }
      const handled = this.handler(packet.topic, payload, { retain: packet.retain }).then(
        () => done(),
        (error: unknown) => {
          // Not stored: do not acknowledge.
          done(error instanceof Error ? error : new Error(String(error)));
          if (this.stopped || this.paused) {
            // The stop or the pause closes the connection; the broker delivers the message again afterwards.
            this.log.debug(
              { topic: packet.topic, err: messageOf(error), connection: index },
              "message left unacknowledged",
            );
            return;
          }
          // Dropping the connection makes the broker deliver it again.
          this.limited.error(
            `not-stored:${index}`,
            { topic: packet.topic, err: messageOf(error), connection: index },
            "message not stored; reconnecting",
          );
          client.stream.destroy();
        },
      );
      this.inFlight.add(handled);
      void handled.finally(() => this.inFlight.delete(handled));
    };
    client.on("connect", (connack) => {
      if (this.stopped || this.paused) {
        client.end(true); // connected as the stop or the pause began
        return;
      }
      if (index === 0) this.metrics.mqttConnected.set(1);
      this.log.info(
        { url: m.url, protocolVersion: this.version, sessionPresent: connack.sessionPresent, connection: index },
        "connected to the MQTT broker",
      );
      const group = m.shareGroup ?? `coldchain-${this.config.oracleId}`;
      const shared = this.shared;
      const filter = shared ? `$share/${group}/${MQTT_READINGS_FILTER}` : MQTT_READINGS_FILTER;
      // A persistent session may still hold the other form from an earlier run (it would deliver twice).
      const other = shared ? MQTT_READINGS_FILTER : undefined;
      if (other !== undefined && connack.sessionPresent) client.unsubscribe(other);
      // Retain handling 1 (MQTT 5): retained messages only when the subscription is new, not on every reconnect.
      client.subscribe(filter, this.version === 5 ? { qos: 1, rh: 1 } : { qos: 1 }, (error) => {
        if (error !== null && error !== undefined) {
          if (this.stopped || this.paused) return; // the connection was closed on purpose
          this.log.error({ filter, err: messageOf(error) }, "subscribe failed; reconnecting");
          client.stream.destroy();
          return;
        }
        if (index !== 0) return;
        client.publish(this.statusTopic, Buffer.from(encodeOracleStatus(this.status("online"))), {
          qos: 1,
          retain: true,
        });
        this.events.emit("connected", { protocolVersion: this.version, sessionPresent: connack.sessionPresent });
      });
    });
    client.on("offline", () => {
      if (index === 0) this.metrics.mqttConnected.set(0);
      if (!this.stopped && !this.paused) {
        this.limited.warn(`offline:${index}`, { connection: index }, "MQTT connection lost; reconnecting");
      }
      if (index === 0) this.events.emit("offline");
    });
    client.on("error", (error: Error & { code?: number }) => {
      if (
        index === 0 &&
        this.version === 5 &&
        this.config.mqtt.protocolVersion === "auto" &&
        error.code !== undefined &&
        UNSUPPORTED_PROTOCOL.has(error.code)
      ) {
        this.log.warn("the broker refused MQTT 5; falling back to MQTT 3.1.1");
        this.version = 4;
        client.end(true);
        this.open(0);
        return;
      }
      if (this.stopped || this.paused) return; // "client disconnecting" and the like, after end() on purpose
      // A broker that is down fails every reconnect attempt: one line per kind and interval, with the count.
      this.limited.error(
        `error:${String(error.code ?? error.message)}`,
        { err: error.message, code: error.code, connection: index },
        "MQTT error",
      );
    });
  }
}

/** `promise`'s value, or `late` if it does not settle within `ms` (the promise goes on unobserved). */
async function within<T, L = undefined>(promise: Promise<T>, ms: number, late?: L): Promise<T | L> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<L>((resolve) => {
    timer = setTimeout(() => resolve(late as L), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
