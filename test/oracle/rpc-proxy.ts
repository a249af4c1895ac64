/**
 * A JSON-RPC proxy on 127.0.0.1 in front of a real node, for fault drills: it forwards every request as is, counts
 * the calls by method (and `eth_call`s by target and selector), and can be cut two ways: `refuse` (the port closed:
 * connections refused, as a node that is down) or `hang` (connections accepted, never answered, as a node that is
 * wedged or a network that drops packets). `restore()` brings it back on the same port.
 */
import { once } from "node:events";
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export type CutMode = "refuse" | "hang";

export interface RpcProxy {
  readonly url: string;
  /** Requests forwarded, by JSON-RPC method. */
  readonly calls: Map<string, number>;
  /** `eth_call`s forwarded, by `<to lowercase>:<4-byte selector>`. */
  readonly ethCalls: Map<string, number>;
  /** Requests that arrived while cut (hang mode) or were refused (counted by the client only: not here). */
  readonly hung: number;
  cut(mode: CutMode): void;
  restore(): Promise<void>;
  stop(): Promise<void>;
}

interface JsonRpcRequest {
  readonly method?: string;
  readonly params?: readonly unknown[];
}

export async function startRpcProxy(target: string): Promise<RpcProxy> {
  const calls = new Map<string, number>();
  const ethCalls = new Map<string, number>();
  const sockets = new Set<Socket>();
  let mode: CutMode | undefined;
  let hung = 0;
  const count = (request: JsonRpcRequest): void => {
    const method = request.method ?? "?";
    calls.set(method, (calls.get(method) ?? 0) + 1);
    if (method === "eth_call") {
      const tx = request.params?.[0] as { to?: string; data?: string; input?: string } | undefined;
      const data = tx?.data ?? tx?.input ?? "";
      const key = `${(tx?.to ?? "").toLowerCase()}:${data.slice(0, 10)}`;
      ethCalls.set(key, (ethCalls.get(key) ?? 0) + 1);
    }
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      if (mode === "hang") {
        hung++;
        return; // never answered; the socket is destroyed on restore
      }
      const body = Buffer.concat(chunks);
      try {
        const parsed = JSON.parse(body.toString("utf8")) as JsonRpcRequest | JsonRpcRequest[];
        for (const r of Array.isArray(parsed) ? parsed : [parsed]) count(r);
      } catch {
        // forwarded as is; the node answers the parse error
      }
      fetch(target, { method: "POST", headers: { "content-type": "application/json" }, body }).then(
        async (reply) => {
          const text = await reply.text();
          res.writeHead(reply.status, { "content-type": "application/json" });
          res.end(text);
        },
        () => res.writeHead(502).end(),
      );
    });
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  const dropAll = (): void => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    ethCalls,
    get hung() {
      return hung;
    },
    cut(next) {
      mode = next;
      if (next === "refuse") {
        server.close();
        dropAll();
      }
    },
    async restore() {
      const was = mode;
      mode = undefined;
      dropAll();
      if (was === "refuse") {
        server.listen(port, "127.0.0.1");
        await once(server, "listening");
      }
    },
    async stop() {
      dropAll();
      if (server.listening) {
        server.close();
        await once(server, "close");
      }
    },
  };
}
