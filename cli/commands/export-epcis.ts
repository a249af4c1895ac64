/**
 * `export-epcis --id <shipmentId> [--out <file>]`: the shipment's history as a GS1 EPCIS 2.0 JSON-LD document
 * (sdk/epcis.ts), on stdout or written to a file.
 */
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";

import { toEpcisDocument } from "../../sdk/epcis.js";
import { CliError, optionalString } from "../command.js";
import type { Command } from "../command.js";
import { shipmentId } from "./shipment.js";
import { loadShipmentState, readHistory } from "./show.js";

export const exportEpcisCommand: Command = {
  name: ["export-epcis"],
  summary: "export a shipment's history as GS1 EPCIS 2.0 JSON-LD (shipping, transporting, receiving, sensor reports)",
  usage: `--id <shipmentId> [--out <file>] [--epc <uri>] [--from-block <n>] [--max-range <blocks>]

Writes the EPCISDocument to --out (else stdout). --epc sets the shipment's EPC, e.g. an SSCC as
urn:epc:id:sscc:0614141.1234567890 (default: a urn:coldchain:… URN naming chain, contract and shipment).
Parties appear as did:pkh:eip155:<chainId>:<address>; see docs/integration.md.`,
  options: {
    id: { type: "string" },
    out: { type: "string" },
    epc: { type: "string" },
    "from-block": { type: "string" },
    "max-range": { type: "string" },
  },
  async run(ctx, args) {
    const id = shipmentId(args);
    const epc = optionalString(args, "epc");
    if (epc !== undefined && !/^[a-z][a-z0-9+.-]*:\S+$/i.test(epc)) {
      throw new CliError(`--epc must be a URI such as urn:epc:id:sscc:0614141.1234567890, got "${epc}"`, 2);
    }
    const state = await loadShipmentState(ctx, id);
    const history = await readHistory(ctx, id, args.values, state.blockNumber);
    const doc = toEpcisDocument(history, state, epc === undefined ? {} : { epcList: [epc] });
    const text = `${JSON.stringify(doc, null, 2)}\n`;
    const out = optionalString(args, "out");
    if (out === undefined) {
      process.stdout.write(text);
      return;
    }
    const path = resolve(out);
    try {
      writeFileSync(path, text);
    } catch (error) {
      throw new CliError(`cannot write ${path}: ${(error as Error).message}; choose another --out path`);
    }
    ctx.out.line(`wrote ${doc.epcisBody.eventList.length} EPCIS events for shipment ${id} to ${path}`);
    if (ctx.json) ctx.out.result({ file: path, events: doc.epcisBody.eventList.length });
  },
};
