// The shipments list: status badges, current custodian, last reading age, sparkline; filter by party and status.
import { useState } from "preact/hooks";

import { formatAge, matchesFilter, sparklinePoints } from "../data/shaping.js";
import type { ShipmentRow, StatusFilter } from "../data/shaping.js";
import { Badge, Party } from "./format.js";
import type { Labels } from "./format.js";

const STATUS_FILTERS: readonly StatusFilter[] = [
  "all",
  "in transit",
  "breached",
  "delivered",
  "released",
  "rejected",
  "created",
  "cancelled",
];

export function Sparkline({ row }: { row: ShipmentRow }) {
  if (row.spark.length < 2) return <span class="muted">—</span>;
  const w = 120;
  const h = 28;
  const lo = Math.min(...row.spark, row.minC);
  const hi = Math.max(...row.spark, row.maxC);
  const y = (v: number) => h - ((v - lo) / (hi - lo || 1)) * h;
  return (
    <svg class="spark" width={w} height={h} viewBox={`0 0 ${w} ${h}`} role="img" aria-label="temperature trend">
      <rect x="0" y={y(row.maxC)} width={w} height={Math.max(1, y(row.minC) - y(row.maxC))} class="spark-band" />
      <polyline points={sparklinePoints(row.spark, w, h, { minC: row.minC, maxC: row.maxC })} class="spark-line" />
    </svg>
  );
}

export interface ShipmentListProps {
  readonly rows: readonly ShipmentRow[] | undefined;
  readonly error: string | undefined;
  readonly now: number;
  readonly ctx: Labels;
  readonly account: string | undefined;
}

export function ShipmentList({ rows, error, now, ctx, account }: ShipmentListProps) {
  const [status, setStatus] = useState<StatusFilter>("all");
  const [party, setParty] = useState("");
  const shown = rows?.filter((r) => matchesFilter(r, status, party)) ?? [];
  return (
    <section aria-labelledby="list-title">
      <h1 id="list-title">Shipments</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Status{" "}
          <select value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value as StatusFilter)}>
            {STATUS_FILTERS.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Party (address){" "}
          <input
            type="search"
            value={party}
            placeholder="0x…"
            onInput={(e) => setParty((e.target as HTMLInputElement).value)}
          />
        </label>
        {account !== undefined ? (
          <button type="button" class="secondary" onClick={() => setParty(account)}>
            Mine
          </button>
        ) : null}
      </form>
      {error !== undefined ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      {rows === undefined ? (
        <p role="status">Loading shipments…</p>
      ) : shown.length === 0 ? (
        <p role="status">{rows.length === 0 ? "No shipments yet." : "No shipment matches the filter."}</p>
      ) : (
        <div class="table-wrap">
          <table class="shipments" data-testid="shipments">
            <caption class="sr-only">Shipments, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Shipment</th>
                <th scope="col">Status</th>
                <th scope="col">Custodian</th>
                <th scope="col">Last reading</th>
                <th scope="col">Temperature</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((r) => (
                <tr key={r.shipmentId.toString()} data-testid={`shipment-row-${r.shipmentId}`}>
                  <th scope="row">
                    <a href={`#/shipment/${r.shipmentId}`}>#{r.shipmentId.toString()}</a>
                  </th>
                  <td>
                    <Badge badge={r.badge} /> {r.breached ? <Badge badge="breached" /> : null}
                  </td>
                  <td data-testid="custodian">
                    <Party address={r.custodian} ctx={ctx} />
                  </td>
                  <td>
                    {formatAge(r.lastObservedAt, now)}
                    <span class="muted"> · {r.readingCount} readings</span>
                  </td>
                  <td>
                    <Sparkline row={r} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
