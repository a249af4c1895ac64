/**
 * The embedded broker for development: aedes (MQTT 3.1.1, in-memory persistence) on 127.0.0.1:1883 or
 * `--port N`. `npm run oracle:broker`. For production use Mosquitto or an MQTT cluster (docs/operations.md).
 */
import { createServer } from "node:net";
import { parseArgs } from "node:util";

const USAGE = `usage: npm run oracle:broker -- [--port <n>] [--host <address>]

An embedded MQTT broker for development (aedes: MQTT 3.1.1, messages in memory only, lost on exit).
For production use Mosquitto or an MQTT cluster (docs/operations.md).

  --port <n>          TCP port to listen on (default 1883; 0: any free port, printed at start)
  --host <address>    address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)
  -h, --help          this help

Ctrl-C stops it.`;

function parseOptions(argv: string[]): { port: number; host: string } | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string", default: "1883" },
      host: { type: "string", default: "127.0.0.1" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) return undefined;
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port) || port > 65_535) throw new Error(`--port must be 0..65535, got "${values.port}"`);
  return { port, host: values.host };
}

let options: { port: number; host: string } | undefined;
try {
  options = parseOptions(process.argv.slice(2));
} catch (error) {
  const message = ((error as Error).message.split("\n")[0] ?? "").replace(/\. To specify.*$/, "");
  console.error(`oracle:broker: ${message}; see --help`);
  process.exit(2);
}
if (options === undefined) {
  console.log(USAGE);
  process.exit(0);
}
const { host } = options;

const { Aedes } = await import("aedes");
const { createLogger } = await import("../log.js");
const log = createLogger("info").child({ module: "dev-broker" });
const broker = new Aedes();
await broker.listen();
const server = createServer((socket) => broker.handle(socket));
server.once("error", (error: NodeJS.ErrnoException) => {
  log.fatal({ host, port: options.port, code: error.code }, `cannot listen: ${error.message}`);
  process.exit(1);
});
server.listen(options.port, host, () => {
  const address = server.address();
  log.info(
    { host, port: typeof address === "object" && address !== null ? address.port : options.port },
    "aedes listening",
  );
});
const stop = (): void => {
  server.close();
  broker.close(() => process.exit(0));
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
