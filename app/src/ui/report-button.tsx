// "Download PDF report" on the shipment page: the shipment temperature report (@coldchain/sdk/report) read at the
// block the page shows, so it matches `npm run cli -- report --block <n>` digest for digest. The report module and
// the PDF library load on the first click (a separate chunk): the dashboard's main bundle does not carry them.
import { useState } from "preact/hooks";

import type { ShipmentState } from "../../../sdk/index.js";
import type { ChainReader } from "../data/chain.js";
import type { Labels } from "./format.js";

export interface ReportButtonProps {
  readonly reader: ChainReader;
  readonly state: ShipmentState;
  readonly ctx: Labels;
}

export function ReportButton({ reader, state, ctx }: ReportButtonProps) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const download = async (): Promise<void> => {
    setBusy(true);
    setError(undefined);
    try {
      const { readShipmentReport, renderReportPdf } = await import("../../../sdk/report/index.js");
      const report = await readShipmentReport(reader.suite, state.shipmentId, {
        blockNumber: state.blockNumber,
        labels: ctx.labels,
      });
      const pdf = await renderReportPdf(report);
      const url = URL.createObjectURL(new Blob([pdf as Uint8Array<ArrayBuffer>], { type: "application/pdf" }));
      const link = document.createElement("a");
      link.href = url;
      link.download = `shipment-${state.shipmentId}-block-${state.blockNumber}-report.pdf`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (e) {
      setError(`The report could not be made: ${(e as Error).message}. Reload the page and try again.`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <p class="report-download">
      <button
        type="button"
        class="secondary"
        disabled={busy}
        data-testid="report-download"
        onClick={() => void download()}
      >
        Download PDF report
      </button>{" "}
      {busy ? <span aria-live="polite">Preparing the report (block {state.blockNumber})…</span> : null}
      {error !== undefined ? (
        <span class="error" role="alert">
          {error}
        </span>
      ) : null}
    </p>
  );
}
