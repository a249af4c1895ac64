/**
 * The embedded broker for development: aedes (MQTT 3.1.1, in-memory persistence) on 127.0.0.1:1883 or
 * `--port N`. `npm run oracle:broker`. For production use Mosquitto or an MQTT cluster (docs/operations.md).
 */
import { createServer } from "node:net";
import { parseArgs } from "node:util";

import { Aedes } from "aedes";

import { createLogger } from "../log.js";

const { values } = parseArgs({
  options: { port: { type: "string", default: "1883" }, host: { type: "string", default: "127.0.0.1" } },
});
const log = createLogger("info").child({ module: "dev-broker" });
const broker = new Aedes();
await broker.listen();
const server = createServer((socket) => broker.handle(socket));
server.listen(Number(values.port), values.host, () =>
  log.info({ host: values.host, port: values.port }, "aedes listening"),
);
const stop = (): void => {
  server.close();
  broker.close(() => process.exit(0));
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
