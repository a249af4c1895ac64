/**
 * `report --id <shipmentId> --out <file.pdf>`: the shipment temperature report as a PDF (sdk/report): verdict,
 * chart, breaches, excursions, custody and liability, MKT per logger, devices and key fingerprints, the profile in
 * words and the on-chain references, all read at one block. `--block <n>` rebuilds the report of an earlier block
 * (same block, same report digest: how an auditor re-checks a PDF); `--json` prints the report's data.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";

import { isAddress } from "ethers";

import { ShipmentNotFoundError } from "../../sdk/state.js";
import { CliError, optionalString, parseUint } from "../command.js";
import type { Command } from "../command.js";
import { shipmentId } from "./shipment.js";

/** `--labels <file.json>`: `{ "<address>": "<name>" }`, validated. */
function readLabels(path: string | undefined): Record<string, string> | undefined {
  if (path === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(resolve(path), "utf8"));
  } catch (error) {
    throw new CliError(`cannot read --labels ${path}: ${(error as Error).message.split("\n")[0]}`, 2);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new CliError(`--labels ${path} must be a JSON object of "<address>": "<name>"`, 2);
  }
  for (const [address, name] of Object.entries(json)) {
    if (!isAddress(address) || typeof name !== "string" || name.trim() === "") {
      throw new CliError(`--labels ${path}: "${address}" must be an address mapped to a non-empty name`, 2);
    }
  }
  return json as Record<string, string>;
}

export const reportCommand: Command = {
  name: ["report"],
  summary: "write a shipment's temperature report as PDF (verdict, chart, breaches, custody, MKT, on-chain references)",
  usage: `--id <shipmentId> [--out <file.pdf>] [--block <n>] [--labels <file.json>] [--from-block <n>] [--max-range <blocks>]

Writes the report QA attaches to a batch release record to --out (default shipment-<id>-report.pdf): the verdict
in words, the temperature chart with the allowed band and limits, breaches with their time, logger and liable
custodian, excursions, custody periods and liability, MKT per logger, devices with key fingerprints, the profile
in words, and the block and transaction of every breach, handover and the QA decision, with the commands that
re-check them. Everything is read at one block (the latest, or --block): the report of a block is the same
whenever it is made, and its digest (printed, and in the PDF's footer) proves it. --labels names parties
({"0x…": "Polar Freight (carrier)"}). With --json, prints { file, blockNumber, digest, report } (the report's
data) and writes the PDF only when --out is given. See docs/operations.md, "Temperature report".`,
  options: {
    id: { type: "string" },
    out: { type: "string" },
    block: { type: "string" },
    labels: { type: "string" },
    "from-block": { type: "string" },
    "max-range": { type: "string" },
  },
  async run(ctx, args) {
    const id = shipmentId(args);
    const blockText = optionalString(args, "block");
    const blockNumber = blockText === undefined ? undefined : Number(parseUint(blockText, "block", 2n ** 53n - 1n));
    const fromText = optionalString(args, "from-block");
    const fromBlock = fromText === undefined ? undefined : Number(parseUint(fromText, "from-block", 2n ** 53n - 1n));
    const rangeText = optionalString(args, "max-range");
    const maxRange = rangeText === undefined ? undefined : Number(parseUint(rangeText, "max-range", 2n ** 53n - 1n));
    if (maxRange === 0) throw new CliError("--max-range must be at least 1", 2);
    const labels = readLabels(optionalString(args, "labels"));
    if (blockNumber !== undefined) {
      const latest = await ctx.provider.getBlockNumber();
      if (blockNumber > latest) {
        throw new CliError(`--block ${blockNumber} is ahead of the chain (latest block ${latest})`, 2);
      }
    }

    // Loaded here, not at start: the PDF library is needed by this command only (`--help` stays instant).
    const [{ connectSuite }, { readShipmentReport, renderReportPdf }] = await Promise.all([
      import("../../sdk/contracts.js"),
      import("../../sdk/report/index.js"),
    ]);
    const suite = connectSuite(ctx.deployment, ctx.provider);
    let report;
    try {
      report = await readShipmentReport(suite, id, {
        ...(blockNumber === undefined ? {} : { blockNumber }),
        ...(labels === undefined ? {} : { labels }),
        ...(fromBlock === undefined ? {} : { fromBlock }),
        ...(maxRange === undefined ? {} : { maxRange }),
      });
    } catch (error) {
      if (error instanceof ShipmentNotFoundError) {
        const at = blockNumber === undefined ? "" : ` at block ${blockNumber}`;
        throw new CliError(`shipment ${id} does not exist on ${ctx.network}${at}; check --id`);
      }
      throw error;
    }

    const outOption = optionalString(args, "out");
    let file: string | undefined;
    if (outOption !== undefined || !ctx.json) {
      file = resolve(outOption ?? `shipment-${id}-report.pdf`);
      const pdf = await renderReportPdf(report);
      try {
        writeFileSync(file, pdf);
      } catch (error) {
        throw new CliError(`cannot write ${file}: ${(error as Error).message}; choose another --out path`);
      }
      ctx.out.line(
        `wrote the temperature report of shipment ${id} (${report.verdict}) to ${file}: ` +
          `${(pdf.length / 1024).toFixed(0)} KiB, read at block ${report.blockNumber}, digest ${report.digest}`,
      );
    }
    if (ctx.json) ctx.out.result({ file, blockNumber: report.blockNumber, digest: report.digest, report });
  },
};
