/**
 * The SDK's browser entry (sdk/index.ts) bundles for the browser: Vite's `build` API (ssr: false) over its whole
 * module graph, failing on any Node built-in (`node:*`, `fs`, `crypto`, …) it would pull in.
 */
import { isBuiltin } from "node:module";
import { fileURLToPath } from "node:url";

import { expect } from "chai";
import { build } from "vite";
import type { Plugin } from "vite";

const ENTRY = fileURLToPath(new URL("../../sdk/index.ts", import.meta.url));
const NODE_ENTRY = fileURLToPath(new URL("../../sdk/node/index.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Bundles `entry` for the browser; returns the Node built-ins its graph imports and the bundle's code. */
async function bundle(entry: string): Promise<{ builtins: string[]; code: string }> {
  const builtins: string[] = [];
  const guard: Plugin = {
    name: "no-node-builtins",
    enforce: "pre",
    resolveId(source, importer) {
      if (source.startsWith("node:") || isBuiltin(source)) builtins.push(`${source} (from ${importer ?? "?"})`);
      return null;
    },
  };
  const output = await build({
    root: ROOT,
    configFile: false,
    logLevel: "silent",
    plugins: [guard],
    build: {
      ssr: false,
      write: false,
      minify: false,
      lib: { entry, formats: ["es"], fileName: "sdk" },
    },
  }).catch((error: unknown) => {
    // A Node built-in the browser build cannot resolve may also fail the build: the guard saw it first.
    if (builtins.length === 0) throw error;
    return [];
  });
  const outputs = (Array.isArray(output) ? output : [output]) as { output: { type: string; code?: string }[] }[];
  const code = outputs.flatMap((o) => o.output).find((c) => c.type === "chunk")?.code ?? "";
  return { builtins, code };
}

describe("SDK browser entry", function () {
  this.timeout(60_000);

  it("bundles for the browser without a Node built-in", async () => {
    const { builtins, code } = await bundle(ENTRY);
    expect(builtins, builtins.join("\n")).to.deep.equal([]);
    // The bundle holds the SDK (not an empty shell).
    for (const name of ["getLogsPaged", "readShipment", "shipmentHistory", "toEpcisDocument", "connectSuite"]) {
      expect(code).to.contain(name);
    }
  });

  it("flags the Node entry, which reads files (the check can fail)", async () => {
    const { builtins } = await bundle(NODE_ENTRY);
    expect(builtins.some((b) => b.startsWith("node:fs"))).to.equal(true);
  });
});
