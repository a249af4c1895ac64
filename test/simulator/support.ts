/**
 * Test support for the simulator: a real aedes broker on 127.0.0.1 (restartable on the same port), a subscriber
 * that collects every readings message, and a fleet factory.
 */
import { once } from "node:events";
import { createServer } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";

import { Aedes } from "aedes";
import { connectAsync } from "mqtt";
import type { MqttClient } from "mqtt";

import { MQTT_READINGS_FILTER } from "../../sdk/protocol/index.js";
import type { ColdChainDomain, DeviceKeyType } from "../../sdk/protocol/index.js";
import { createFleet } from "../../simulator/fleet.js";
import type { Fleet } from "../../simulator/fleet.js";

export const DOMAIN: ColdChainDomain = {
  chainId: 31337n,
  verifyingContract: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
};
/** 2026-01-01T00:00:00Z. */
export const FROM = 1_767_225_600;
export const INTERVAL = 300;

export function fleetOf(
  seed: number | string,
  devices: number,
  keyTypes: DeviceKeyType[] = ["secp256k1", "p256"],
): Fleet {
  return createFleet({ seed, devices, keyTypes, intervalSeconds: INTERVAL, domain: DOMAIN });
}

export interface TestBroker {
  readonly url: string;
  readonly port: number;
  /** Closes the broker and every connection (a broker outage). */
  stop(): Promise<void>;
  /** Starts a fresh broker on the same port. */
  restart(): Promise<void>;
}

/** aedes on a free port of 127.0.0.1. */
export async function startBroker(): Promise<TestBroker> {
  let broker: Aedes;
  let server: Server;
  let sockets = new Set<Socket>();
  let port = 0;
  const launch = async (): Promise<void> => {
    broker = new Aedes();
    await broker.listen();
    const b = broker;
    sockets = new Set();
    const live = sockets;
    server = createServer((socket) => {
      live.add(socket);
      socket.once("close", () => live.delete(socket));
      b.handle(socket);
    });
    server.listen(port, "127.0.0.1");
    await once(server, "listening");
    port = (server.address() as AddressInfo).port;
  };
  await launch();
  const stop = async (): Promise<void> => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await closed;
  };
  return {
    get url() {
      return `mqtt://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    stop,
    restart: launch,
  };
}

export interface Collector {
  readonly client: MqttClient;
  readonly messages: { topic: string; payload: Uint8Array }[];
  /** Resolves once at least `n` messages arrived (or rejects after `timeoutMs`). */
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** A QoS 1 subscriber to every device's readings topic. */
export async function collect(url: string): Promise<Collector> {
  const client = await connectAsync(url, { clean: true, reconnectPeriod: 100 });
  const messages: { topic: string; payload: Uint8Array }[] = [];
  client.on("message", (topic, payload) => messages.push({ topic, payload: new Uint8Array(payload) }));
  client.on("connect", () => void client.subscribeAsync(MQTT_READINGS_FILTER, { qos: 1 }));
  client.on("error", () => undefined);
  await client.subscribeAsync(MQTT_READINGS_FILTER, { qos: 1 });
  return {
    client,
    messages,
    async waitFor(n, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (messages.length < n) {
        if (Date.now() > deadline) throw new Error(`received ${messages.length} of ${n} messages in ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async close() {
      await client.endAsync(true);
    },
  };
}
