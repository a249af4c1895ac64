/**
 * A JSON-RPC endpoint on 127.0.0.1 in front of a real node, for the fault drills: it forwards every request, and
 * can answer `eth_chainId` with another chain (an endpoint misconfigured to another network) or stop answering
 * (`hang`: connections accepted, requests never answered, as a wedged node or a network dropping packets).
 */
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface RpcFront {
  readonly url: string;
  /** Requests received, by JSON-RPC method. */
  readonly calls: Map<string, number>;
  /** Stops answering (requests are held, never answered) until {@link answer}. */
  hang(): void;
  answer(): void;
  stop(): Promise<void>;
}

interface Request {
  readonly id?: unknown;
  readonly method?: string;
}

/** Forwards to `target`; with `chainId`, answers `eth_chainId` with that chain instead of the node's. */
export async function startRpcFront(target: string, options: { chainId?: number } = {}): Promise<RpcFront> {
  const calls = new Map<string, number>();
  const sockets = new Set<Socket>();
  let hanging = false;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      let request: Request | Request[] = {};
      try {
        request = JSON.parse(body) as Request | Request[];
      } catch {
        // forwarded as is
      }
      for (const r of Array.isArray(request) ? request : [request]) {
        calls.set(r.method ?? "?", (calls.get(r.method ?? "?") ?? 0) + 1);
      }
      if (hanging) return; // never answered
      if (!Array.isArray(request) && request.method === "eth_chainId" && options.chainId !== undefined) {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(
          JSON.stringify({ jsonrpc: "2.0", id: request.id ?? null, result: `0x${options.chainId.toString(16)}` }),
        );
        return;
      }
      fetch(target, { method: "POST", headers: { "content-type": "application/json" }, body }).then(
        async (reply) => {
          res.writeHead(reply.status, { "content-type": "application/json" });
          res.end(await reply.text());
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
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    hang() {
      hanging = true;
    },
    answer() {
      hanging = false;
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, "close").catch(() => undefined);
    },
  };
}
