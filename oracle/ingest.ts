/**
 * MQTT ingest (mqtt.js): QoS 1, a persistent session (clean: false, a stable client id, MQTT 5 session
 * expiry), MQTT 5 when the broker speaks it and 3.1.1 otherwise, subscribing again on every connect (some
 * brokers lose durable subscriptions). mqtt.js sends a QoS 1 PUBACK only after `handleMessage` calls back,
 * and processes one message at a time: the handler calls back after the durable commit, so a crash before
 * the commit makes the broker deliver the message again, and a slow store slows intake instead of
 * buffering in memory.
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
  private client: MqttClient | undefined;
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

  /** Whether the client is connected now. */
  get connected(): boolean {
    return this.client?.connected === true;
  }

  /** The protocol version in use (after a fallback, 4). */
  get protocolVersion(): 4 | 5 {
    return this.version;
  }

  /** Connects (and keeps reconnecting); resolves on the first CONNACK. */
  start(): Promise<void> {
    return new Promise((resolve) => {
      const onConnected = (): void => {
        this.events.off("connected", onConnected);
        resolve();
      };
      this.events.on("connected", onConnected);
      this.open();
    });
  }

  /** Publishes "offline", disconnects cleanly, and waits for the message in progress to be handled. */
  async stop(): Promise<void> {
    this.stopped = true;
    const client = this.client;
    if (client === undefined) return;
    if (client.connected) {
      await client
        .publishAsync(this.statusTopic, Buffer.from(encodeOracleStatus(this.status("offline"))), {
          qos: 1,
          retain: true,
        })
        .catch((error: unknown) => this.log.warn({ err: messageOf(error) }, "could not publish offline status"));
    }
    await client.endAsync(false);
    this.metrics.mqttConnected.set(0);
  }

  /** Drops the connection without a clean disconnect (the broker redelivers unacknowledged messages). */
  reconnect(): void {
    this.client?.stream.destroy();
  }

  private status(state: "online" | "offline"): { state: "online" | "offline"; oracleId: string; at: number } {
    return { state, oracleId: this.config.oracleId, at: Date.now() };
  }

  private open(): void {
    const m = this.config.mqtt;
    const options: IClientOptions = {
      clientId: m.clientId ?? `coldchain-oracle-${this.config.oracleId}`,
      clean: false,
      protocolVersion: this.version,
      keepalive: m.keepaliveSeconds,
      reconnectPeriod: m.reconnectPeriodMs,
      connectTimeout: 10_000,
      resubscribe: false,
      username: m.username,
      password: this.password,
      will: {
        topic: this.statusTopic,
        payload: Buffer.from(encodeOracleStatus({ state: "offline", oracleId: this.config.oracleId })),
        qos: 1,
        retain: true,
      },
      ...(this.version === 5 ? { properties: { sessionExpiryInterval: m.sessionExpirySeconds } } : {}),
    };
    const client = connect(m.url, options);
    this.client = client;
    client.handleMessage = (packet: IPublishPacket, done: (error?: Error) => void): void => {
      const payload =
        typeof packet.payload === "string" ? new TextEncoder().encode(packet.payload) : new Uint8Array(packet.payload);
      this.handler(packet.topic, payload).then(
        () => done(),
        (error: unknown) => {
          // Not stored: do not acknowledge. Dropping the connection makes the broker deliver it again.
          this.log.error({ topic: packet.topic, err: messageOf(error) }, "message not stored; reconnecting");
          done(error instanceof Error ? error : new Error(String(error)));
          this.reconnect();
        },
      );
    };
    client.on("connect", (connack) => {
      this.metrics.mqttConnected.set(1);
      this.log.info(
        { url: m.url, protocolVersion: this.version, sessionPresent: connack.sessionPresent },
        "connected to the MQTT broker",
      );
      const filter =
        m.shareGroup === undefined ? MQTT_READINGS_FILTER : `$share/${m.shareGroup}/${MQTT_READINGS_FILTER}`;
      client.subscribe(filter, { qos: 1 }, (error) => {
        if (error !== null && error !== undefined) {
          this.log.error({ filter, err: messageOf(error) }, "subscribe failed; reconnecting");
          this.reconnect();
          return;
        }
        client.publish(this.statusTopic, Buffer.from(encodeOracleStatus(this.status("online"))), {
          qos: 1,
          retain: true,
        });
        this.events.emit("connected", { protocolVersion: this.version, sessionPresent: connack.sessionPresent });
      });
    });
    client.on("offline", () => {
      this.metrics.mqttConnected.set(0);
      if (!this.stopped) this.log.warn("MQTT connection lost; reconnecting");
      this.events.emit("offline");
    });
    client.on("error", (error: Error & { code?: number }) => {
      if (
        this.version === 5 &&
        this.config.mqtt.protocolVersion === "auto" &&
        error.code !== undefined &&
        UNSUPPORTED_PROTOCOL.has(error.code)
      ) {
        this.log.warn("the broker refused MQTT 5; falling back to MQTT 3.1.1");
        this.version = 4;
        client.end(true);
        this.open();
        return;
      }
      this.log.error({ err: error.message, code: error.code }, "MQTT error");
    });
  }
}
