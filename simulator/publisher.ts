/**
 * One device's MQTT connection (mqtt.js): QoS 1 publishes that resolve at the PUBACK, automatic reconnection,
 * and a clean disconnect. The fleet keeps its own backlog and publishes only while connected, so a broker outage
 * or a scripted offline period buffers readings in the device, as a real logger does, and the backlog goes out
 * in order after the reconnect.
 */
import { connect } from "mqtt";
import type { MqttClient } from "mqtt";

export interface DevicePublisherOptions {
  readonly url: string;
  readonly clientId: string;
  /** Milliseconds between reconnection attempts (default 500). */
  readonly reconnectPeriodMs?: number;
  /** Milliseconds to wait for the first connection before {@link DevicePublisher.connect} fails (default 10 s). */
  readonly connectTimeoutMs?: number;
}

/** The broker could not be reached; the message names the URL and what to check. */
export class BrokerUnreachableError extends Error {
  readonly code = "BROKER_UNREACHABLE";

  constructor(url: string, detail: string) {
    super(`cannot connect to the MQTT broker at ${url} (${detail}); check --broker and that the broker runs`);
    this.name = "BrokerUnreachableError";
  }
}

export class DevicePublisher {
  private client: MqttClient | undefined;
  /** Ends a {@link connect} still waiting (a disconnect while connecting). */
  private cancelConnect: (() => void) | undefined;

  constructor(private readonly o: DevicePublisherOptions) {}

  /** Whether the connection is up now. */
  get connected(): boolean {
    return this.client?.connected === true;
  }

  /** Whether {@link connect} was called and {@link disconnect} not since. */
  get open(): boolean {
    return this.client !== undefined;
  }

  /**
   * Connects, and keeps reconnecting after a loss. Resolves on the CONNACK. With `failFast` (the default, for a
   * first connection) the first connection error or the connect timeout rejects with a
   * {@link BrokerUnreachableError} and closes the client; without it (a device coming back from an offline
   * period) it resolves at the timeout anyway and the client goes on trying in the background.
   */
  async connect(options: { readonly failFast?: boolean } = {}): Promise<void> {
    const failFast = options.failFast ?? true;
    let client = this.client;
    if (client?.connected === true) return;
    if (client === undefined) {
      client = connect(this.o.url, {
        clientId: this.o.clientId,
        clean: true,
        protocolVersion: 4,
        keepalive: 30,
        reconnectPeriod: this.o.reconnectPeriodMs ?? 500,
        connectTimeout: this.o.connectTimeoutMs ?? 10_000,
      });
      this.client = client;
      client.on("error", () => undefined); // it reconnects by itself; connect() reports a first failure
    }
    const c = client;
    const timeoutMs = this.o.connectTimeoutMs ?? 10_000;
    await new Promise<void>((resolve, reject) => {
      let lastError = "no answer";
      const done = (error?: Error): void => {
        clearTimeout(timer);
        c.off("connect", onConnect);
        c.off("error", onError);
        if (error === undefined) {
          resolve();
          return;
        }
        if (this.client === c) this.client = undefined;
        c.end(true);
        reject(error);
      };
      const onError = (error: Error): void => {
        lastError = error.message;
        if (failFast) done(new BrokerUnreachableError(this.o.url, lastError));
      };
      const onConnect = (): void => done();
      const timer = setTimeout(
        () => (failFast ? done(new BrokerUnreachableError(this.o.url, lastError)) : done()),
        timeoutMs,
      );
      this.cancelConnect = () => done(new Error(`publisher ${this.o.clientId} was disconnected while connecting`));
      c.once("connect", onConnect);
      c.on("error", onError);
    }).finally(() => {
      this.cancelConnect = undefined;
    });
  }

  /** Publishes with QoS 1; resolves when the broker acknowledged (PUBACK). */
  async publish(topic: string, payload: Uint8Array): Promise<void> {
    const client = this.client;
    if (client === undefined) throw new Error(`publisher ${this.o.clientId} is not connected`);
    await client.publishAsync(topic, Buffer.from(payload), { qos: 1 });
  }

  /** Disconnects cleanly (DISCONNECT after in-flight messages); a later {@link connect} opens a new session. */
  async disconnect(): Promise<void> {
    this.cancelConnect?.();
    const client = this.client;
    this.client = undefined;
    if (client === undefined) return;
    if (client.connected) await client.endAsync(false);
    else await client.endAsync(true);
  }
}
