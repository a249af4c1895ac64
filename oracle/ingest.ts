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
 */
import { EventEmitter } from "node:events";

import { connect } from "mqtt";
import type { IClientOptions, IPublishPacket, MqttClient } from "mqtt";

import { MQTT_READINGS_FILTER, encodeOracleStatus, mqttStatusTopic } from "../sdk/protocol/index.js";
import type { OracleConfig } from "./config.js";
import { messageOf } from "./errors.js";
import type { Logger } from "./log.js";
import type { OracleMetrics } from "./metrics.js";

/** CONNACK codes meaning "this protocol version is not supported" (3.1.1: 1, MQTT 5: 0x84). */
const UNSUPPORTED_PROTOCOL = new Set([1, 0x84]);

export interface IngestEvents {
  connected: [{ protocolVersion: 4 | 5; sessionPresent: boolean }];
  offline: [];
}

export type MessageHandler = (topic: string, payload: Uint8Array) => Promise<void>;

export class Ingest {
  readonly events = new EventEmitter<IngestEvents>();
  /** Connection 0 carries the status topic and its last will; the others only share the stream. */
  private readonly clients: MqttClient[] = [];
  private version: 4 | 5;
  private stopped = false;
  private readonly statusTopic: string;

  constructor(
    private readonly config: OracleConfig,
    private readonly password: string | undefined,
    private readonly handler: MessageHandler,
    private readonly metrics: OracleMetrics,
    private readonly log: Logger,
  ) {
    this.version = config.mqtt.protocolVersion === 4 ? 4 : 5;
    this.statusTopic = mqttStatusTopic(config.oracleId);
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

  /** Publishes "offline", disconnects cleanly, and waits for the messages in progress to be handled. */
  async stop(): Promise<void> {
    this.stopped = true;
    const [first, ...rest] = this.clients;
    if (first === undefined) return;
    if (first.connected) {
      await first
        .publishAsync(this.statusTopic, Buffer.from(encodeOracleStatus(this.status("offline"))), {
          qos: 1,
          retain: true,
        })
        .catch((error: unknown) => this.log.warn({ err: messageOf(error) }, "could not publish offline status"));
    }
    await Promise.all([first, ...rest].map((c) => c.endAsync(false)));
    this.metrics.mqttConnected.set(0);
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
      this.handler(packet.topic, payload).then(
        () => done(),
        (error: unknown) => {
          // Not stored: do not acknowledge. Dropping the connection makes the broker deliver it again.
          this.log.error(
            { topic: packet.topic, err: messageOf(error), connection: index },
            "message not stored; reconnecting",
          );
          done(error instanceof Error ? error : new Error(String(error)));
          client.stream.destroy();
        },
      );
    };
    client.on("connect", (connack) => {
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
      client.subscribe(filter, { qos: 1 }, (error) => {
        if (error !== null && error !== undefined) {
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
      if (!this.stopped) this.log.warn({ connection: index }, "MQTT connection lost; reconnecting");
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
      this.log.error({ err: error.message, code: error.code, connection: index }, "MQTT error");
    });
  }
}
