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
 * A shared subscription is backed by an anchor session (`<clientId>-anchor`, a plain persistent subscription;
 * oracle/intake/anchor.ts), because a broker may not restore a shared subscription after its restart (Mosquitto
 * 2.0.11 does not) while devices publish again before the oracle has subscribed again. With one connection and no
 * share group, or on MQTT 3.1.1, the oracle's own subscription is plain and restored with its session: no anchor;
 * a session an earlier configuration's anchor left on an MQTT 5 broker is removed then (it would queue every
 * reading for ever).
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
import { ANCHOR_FENCE_TOPIC, AnchorFence, anchorClientId, isFenceTopic } from "./anchor.js";

/** CONNACK codes meaning "this protocol version is not supported" (3.1.1: 1, MQTT 5: 0x84). */
const UNSUPPORTED_PROTOCOL = new Set([1, 0x84]);
/** At stop: longest wait for the messages being handled (stored and acknowledged, or left unacknowledged). */
export const STOP_DRAIN_MS = 2_000;
/** At stop: longest wait for the broker to acknowledge the "offline" status (else the last will says it). */
export const STOP_STATUS_MS = 1_000;
/** At stop: longest wait for a clean disconnect before the connections are closed forcibly. */
export const STOP_END_MS = 1_000;
/**
 * At start: longest wait for the anchor's first catch-up (its fence back) before start resolves; a backlog queued
 * while the oracle was away can take longer (it goes on: start only stops waiting).
 */
export const START_ANCHOR_WAIT_MS = 10_000;

export interface IngestEvents {
  connected: [{ protocolVersion: 4 | 5; sessionPresent: boolean }];
  offline: [];
}

/** What the broker says of a message besides its topic and payload. */
export interface MessageContext {
  /** The retain flag: a retained message (sent on subscribing, or kept by the broker for the topic). */
  readonly retain: boolean;
  /** A copy from the anchor session catching up (oracle/intake/anchor.ts): its reading may be stored already. */
  readonly anchor?: boolean;
}

export type MessageHandler = (topic: string, payload: Uint8Array, context: MessageContext) => Promise<void>;

export class Ingest {
  readonly events = new EventEmitter<IngestEvents>();
  /** Connection 0 carries the status topic and its last will; the others only share the stream. */
  private readonly clients: MqttClient[] = [];
  /** The anchor session's connection (a shared subscription on MQTT 5 only) and its mode. */
  private anchorClient: MqttClient | undefined;
  private fence: AnchorFence | undefined;
  /** A connection removing an anchor session left by an earlier configuration (no anchor now). */
  private retiring: MqttClient | undefined;
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
    /** Another fence-topic message the anchor received: a claim of anchor copies (oracle/relay/anchor-claims.ts). */
    private readonly onAnchorClaim?: (payload: Uint8Array) => void,
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

  /** Whether an anchor session backs the shared subscription (oracle/intake/anchor.ts). */
  get anchored(): boolean {
    return this.anchorClient !== undefined;
  }

  /** Whether the anchor session catches up now (judges what it receives); undefined without an anchor. */
  get anchorCatchingUp(): boolean | undefined {
    return this.fence?.catchingUp;
  }

  /** Every connection: the shared (or single) ones, then the anchor's. */
  private get all(): MqttClient[] {
    return this.anchorClient === undefined ? [...this.clients] : [...this.clients, this.anchorClient];
  }

  /** Whether the connections subscribe through a shared subscription. */
  private get shared(): boolean {
    return this.config.mqtt.shareGroup !== undefined || (this.config.mqtt.connections > 1 && this.version === 5);
  }

  /** Resolves {@link stopping} (declared first: the promise's executor sets it). */
  private onStop: () => void = () => undefined;
  /** Resolves when {@link stop} begins (ends the waits of start). */
  private readonly stopping = new Promise<void>((resolve) => {
    this.onStop = resolve;
  });

  /**
   * Connects (and keeps reconnecting); resolves on the first SUBACK of connection 0, after opening the other
   * connections, and with an anchor once it caught up (its fence came back: the share group is subscribed and
   * nothing published before is left to judge), at most {@link START_ANCHOR_WAIT_MS} later. A caller that publishes
   * after start thus meets the steady state, not a catch-up (which would judge its messages twice, once per
   * instance of a share group).
   */
  async start(): Promise<void> {
    await this.connectFirst();
    const fence = this.fence;
    if (fence === undefined || this.stopped) return;
    const startedAt = Date.now();
    if (await fence.whenCaughtUp(START_ANCHOR_WAIT_MS, this.stopping)) {
      this.log.info({ ms: Date.now() - startedAt }, "anchor session caught up at start");
    } else if (!this.stopped) {
      this.log.warn(
        { waitedMs: START_ANCHOR_WAIT_MS },
        "the anchor session is still catching up (a backlog queued while the oracle was away, or its fence is not " +
          "coming back); intake goes on",
      );
    }
  }

  private connectFirst(): Promise<void> {
    return new Promise((resolve) => {
      const onConnected = (): void => {
        this.events.off("connected", onConnected);
        if (this.stopped) return;
        if (this.version === 5) {
          if (this.shared && this.config.mqtt.anchor) {
            this.fence = new AnchorFence(
              this.config.mqtt.connections,
              anchorClientId(this.baseId),
              (payload) => this.publishFence(payload),
              this.metrics,
              this.log,
            );
            this.fence.subscribed(0); // this runs on connection 0's SUBACK
          } else {
            this.retireAnchor();
          }
          for (let i = 1; i < this.config.mqtt.connections; i++) this.open(i);
          if (this.fence !== undefined) this.openAnchor();
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
    this.onStop();
    // A connection down now (the broker gone) would keep trying: end it at once. ended, mqtt.js never reconnects.
    for (const c of this.all) if (!c.connected) c.end(true);
    this.retiring?.end(true);
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
    const all = this.all;
    const ended = await within(Promise.allSettled(all.map((c) => c.endAsync(!c.connected))), STOP_END_MS);
    if (ended === undefined) {
      // end() was called (no reconnect); a broker gone mid-disconnect leaves it waiting: close the sockets.
      for (const c of all) c.stream.destroy();
    }
    this.metrics.mqttConnected.set(0);
    this.limited.flush();
    this.log.info(
      { connections: this.clients.length, anchor: this.anchored, forced: ended === undefined },
      "MQTT intake stopped",
    );
  }

  /**
   * Closes every connection and stays away from the broker until {@link resume}: nothing more is delivered or
   * acknowledged (the broker keeps the messages for the persistent sessions). The messages in progress are
   * stored or left unacknowledged. For a store that cannot write.
   */
  pause(reason: string): void {
    if (this.paused || this.stopped) return;
    this.paused = true;
    // The anchor too: it would acknowledge messages (caught up: after a commit that cannot happen now; discarded:
    // the share members, closed, would not take them before the broker redelivers them).
    for (const c of this.all) c.end(true);
    this.metrics.mqttConnected.set(0);
    this.log.warn({ reason, connections: this.clients.length }, "MQTT intake paused: disconnected until %s", reason);
  }

  /** Connects again after {@link pause}. */
  resume(): void {
    if (!this.paused || this.stopped) return;
    this.paused = false;
    this.log.info({ connections: this.clients.length }, "MQTT intake resumed: connecting again");
    for (const c of this.all) c.reconnect();
  }

  /** Whether intake is paused ({@link pause}). */
  get isPaused(): boolean {
    return this.paused;
  }

  /** Drops the connections without a clean disconnect (the broker redelivers unacknowledged messages). */
  reconnect(): void {
    for (const c of this.all) c.stream.destroy();
  }

  private status(state: "online" | "offline"): { state: "online" | "offline"; oracleId: string; at: number } {
    return { state, oracleId: this.config.oracleId, at: Date.now() };
  }

  /** The client id of connection 0 (the others add `-<index>`, the anchor `-anchor`). */
  private get baseId(): string {
    return this.config.mqtt.clientId ?? `coldchain-oracle-${this.config.oracleId}`;
  }

  /** Options of a persistent-session connection. */
  private options(clientId: string): IClientOptions {
    const m = this.config.mqtt;
    return {
      clientId,
      clean: false,
      protocolVersion: this.version,
      keepalive: m.keepaliveSeconds,
      reconnectPeriod: m.reconnectPeriodMs,
      connectTimeout: 10_000,
      resubscribe: false,
      username: m.username,
      password: this.password,
      ...(this.version === 5 ? { properties: { sessionExpiryInterval: m.sessionExpirySeconds } } : {}),
    };
  }

  private open(index: number): void {
    const m = this.config.mqtt;
    const baseId = this.baseId;
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
      const payload = bytesOf(packet);
      if (isFenceTopic(packet.topic)) {
        done(); // an anchor's fence (oracle/intake/anchor.ts): nothing to store
        return;
      }
      if (this.stopped || this.paused) {
        // Delivered while stopping or pausing: left unacknowledged (the broker delivers it again).
        done(new Error("intake stopping or paused: message left for redelivery"));
        return;
      }
      this.judge(client, packet, payload, done, index);
    };
    client.on("connect", (connack) => {
      if (this.stopped || this.paused) {
        client.end(true); // connected as the stop or the pause began
        return;
      }
      if (index === 0) this.metrics.mqttConnected.set(1);
      this.fence?.reset(index, "connected");
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
      client.subscribe(filter, this.version === 5 ? { qos: 1, rh: 1 } : { qos: 1 }, (error, granted) => {
        const refused = refusal(error, granted);
        if (refused !== undefined) {
          if (this.stopped || this.paused) return; // the connection was closed on purpose
          this.log.error({ filter, err: refused }, "subscribe failed; reconnecting");
          client.stream.destroy();
          return;
        }
        this.fence?.subscribed(index);
        if (index !== 0) return;
        client.publish(this.statusTopic, Buffer.from(encodeOracleStatus(this.status("online"))), {
          qos: 1,
          retain: true,
        });
        this.events.emit("connected", { protocolVersion: this.version, sessionPresent: connack.sessionPresent });
      });
    });
    // Down, the connection's share of the stream waits in its session; the anchor judges again meanwhile.
    client.on("close", () => {
      if (!this.stopped) this.fence?.reset(index, "down");
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

  /**
   * Hands a message of a connection (a shared or single one, or the anchor's) to intake and acknowledges it after its
   * commit. Not stored: left unacknowledged; unless the stop or a pause closes the connection anyway, the connection is
   * dropped so that the broker delivers the message again.
   */
  private judge(
    client: MqttClient,
    packet: IPublishPacket,
    payload: Uint8Array,
    done: (error?: Error) => void,
    connection: number | "anchor",
  ): void {
    const anchor = connection === "anchor";
    const handled = this.handler(packet.topic, payload, { retain: packet.retain, ...(anchor ? { anchor } : {}) }).then(
      () => done(),
      (error: unknown) => {
        done(error instanceof Error ? error : new Error(String(error)));
        if (this.stopped || this.paused) {
          // The stop or the pause closes the connection; the broker delivers the message again afterwards.
          this.log.debug({ topic: packet.topic, err: messageOf(error), connection }, "message left unacknowledged");
          return;
        }
        this.limited.error(
          `not-stored:${connection}`,
          { topic: packet.topic, err: messageOf(error), connection },
          anchor ? "message of the anchor session not stored; reconnecting it" : "message not stored; reconnecting",
        );
        client.stream.destroy();
      },
    );
    this.inFlight.add(handled);
    void handled.finally(() => this.inFlight.delete(handled));
  }

  /**
   * Opens the anchor session's connection (oracle/intake/anchor.ts): persistent, a plain subscription to the
   * readings topics. Catching up, it hands each message to intake and acknowledges it after its commit; after its
   * fence, it acknowledges them unjudged.
   */
  private openAnchor(): void {
    const fence = this.fence;
    if (fence === undefined) return;
    const client = connect(this.config.mqtt.url, this.options(anchorClientId(this.baseId)));
    this.anchorClient = client;
    client.handleMessage = (packet: IPublishPacket, done: (error?: Error) => void): void => {
      const payload = bytesOf(packet);
      if (isFenceTopic(packet.topic)) {
        // mqtt.js calls this only after every earlier message of the connection was handled (committed).
        fence.received(payload);
        this.onAnchorClaim?.(payload); // every instance's anchor receives each instance's claims
        done();
        return;
      }
      if (this.stopped || this.paused) {
        done(new Error("intake stopping or paused: message left for redelivery"));
        return;
      }
      if (!fence.catchingUp) {
        fence.discarded(); // the share group has it
        done();
        return;
      }
      fence.handedOver();
      this.judge(client, packet, payload, done, "anchor");
    };
    client.on("connect", (connack) => {
      if (this.stopped || this.paused) {
        client.end(true);
        return;
      }
      fence.reset("anchor", "connected");
      this.log.info(
        { clientId: anchorClientId(this.baseId), sessionPresent: connack.sessionPresent },
        "anchor session connected: catching up",
      );
      client.subscribe(MQTT_READINGS_FILTER, { qos: 1, rh: 1 }, (error, granted) => {
        const refused = refusal(error, granted);
        if (refused !== undefined) {
          if (this.stopped || this.paused) return;
          this.log.error({ filter: MQTT_READINGS_FILTER, err: refused }, "anchor subscribe failed; reconnecting it");
          client.stream.destroy();
          return;
        }
        fence.subscribed("anchor");
      });
    });
    client.on("close", () => {
      if (!this.stopped) fence.reset("anchor", "down");
    });
    client.on("offline", () => {
      if (!this.stopped && !this.paused) {
        this.limited.warn("offline:anchor", { connection: "anchor" }, "MQTT anchor connection lost; reconnecting");
      }
    });
    client.on("error", (error: Error & { code?: number }) => {
      if (this.stopped || this.paused) return;
      this.limited.error(
        `error:anchor:${String(error.code ?? error.message)}`,
        { err: error.message, code: error.code, connection: "anchor" },
        "MQTT error (anchor connection)",
      );
    });
  }

  /**
   * Publishes a message on the first intake connection, QoS 1, not retained (the alerts' MQTT sink,
   * oracle/alerts/delivery.ts); resolves on the broker's PUBACK. Rejects at once when not connected (the outbox
   * retries later), so that nothing waits in mqtt.js's queue across a stop.
   */
  async publish(topic: string, payload: string): Promise<void> {
    const client = this.clients[0];
    if (client === undefined || !client.connected || this.stopped) throw new Error("not connected to the MQTT broker");
    await client.publishAsync(topic, payload, { qos: 1, retain: false });
  }

  /**
   * Publishes a claim of anchor copies (oracle/relay/anchor-claims.ts) on the fence topic, where every instance's anchor
   * receives it. Not published (no anchor, or the broker refuses it): the claim window passes all the same.
   */
  publishAnchorClaim(payload: string): void {
    const client = this.anchorClient;
    if (client === undefined || this.stopped) return;
    client.publish(ANCHOR_FENCE_TOPIC, payload, { qos: 1 }, (error) => {
      if (error === null || error === undefined || this.stopped || this.paused) return;
      this.limited.warn(
        "claim-refused",
        { topic: ANCHOR_FENCE_TOPIC, err: messageOf(error) },
        `a claim of anchor copies was not published (${messageOf(error)}): another instance may relay the same ` +
          `copies (the chain skips the second); allow the oracle to publish to ${ANCHOR_FENCE_TOPIC}`,
      );
    });
  }

  private publishFence(payload: string): void {
    const client = this.anchorClient;
    if (client === undefined) return;
    client.publish(ANCHOR_FENCE_TOPIC, payload, { qos: 1 }, (error) => {
      if (error === null || error === undefined || this.stopped || this.paused) return;
      // The anchor then stays in catch-up (it judges every message: correct, slower) until its next reconnect.
      this.limited.error(
        "fence-refused",
        { topic: ANCHOR_FENCE_TOPIC, err: messageOf(error) },
        `the anchor's fence was not published (${messageOf(error)}): the anchor session keeps judging every ` +
          `message; allow the oracle to publish to ${ANCHOR_FENCE_TOPIC}`,
      );
    });
  }

  /**
   * No anchor in this configuration: removes a session an earlier configuration's anchor left on the broker (its
   * plain subscription would queue every reading for ever). A clean start with session expiry 0, then a disconnect;
   * best effort (logged), never retried.
   */
  private retireAnchor(): void {
    const m = this.config.mqtt;
    const client = connect(m.url, {
      clientId: anchorClientId(this.baseId),
      clean: true,
      protocolVersion: 5,
      properties: { sessionExpiryInterval: 0 },
      reconnectPeriod: 0,
      connectTimeout: 5_000,
      username: m.username,
      password: this.password,
    });
    this.retiring = client;
    client.on("connect", () => {
      this.log.debug({ clientId: anchorClientId(this.baseId) }, "no anchor session in this configuration: none kept");
      client.end();
    });
    client.on("error", (error) => {
      this.log.warn(
        { clientId: anchorClientId(this.baseId), err: error.message },
        "could not remove an earlier anchor session (the broker may keep queueing readings for it)",
      );
      client.end(true);
    });
  }
}

/** A packet's payload as bytes. */
function bytesOf(packet: IPublishPacket): Uint8Array {
  return typeof packet.payload === "string" ? new TextEncoder().encode(packet.payload) : new Uint8Array(packet.payload);
}

/** Why a SUBSCRIBE failed: the error, or a SUBACK reason code ≥ 0x80 (refused), else undefined. */
function refusal(error: Error | null | undefined, granted: readonly { qos: number }[] | undefined): string | undefined {
  if (error !== null && error !== undefined) return messageOf(error);
  const code = granted?.find((g) => g.qos >= 0x80)?.qos;
  return code === undefined
    ? undefined
    : `the broker refused the subscription (SUBACK reason code 0x${code.toString(16)})`;
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
