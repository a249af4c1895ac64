// The shipments list: what a QA manager needs without opening a shipment — product and reference, the verdict in
// words with the first breach's time, the liable party, the status and QA decision, the custodian, the last reading
// and a sparkline; filter by status, verdict and party (address or name), sort by verdict, liable party, status or
// reference.
import { useState } from "preact/hooks";

import { formatAge, matchesFilter, sortRows, sparklinePoints } from "../data/shaping.js";
import type { ShipmentRow, SortKey, StatusFilter, VerdictFilter } from "../data/shaping.js";
import { BREACH_KIND_WORDS, formatDate } from "../data/words.js";
import { Badge, Party, partyName } from "./format.js";
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

const SORTS: readonly { key: SortKey; label: string }[] = [
  { key: "newest", label: "newest first" },
  { key: "verdict", label: "verdict (breached first)" },
  { key: "liable", label: "liable party" },
  { key: "status", label: "status (awaiting decision first)" },
  { key: "reference", label: "reference" },
];

export function Sparkline({ row }: { row: ShipmentRow }) {
  if (row.spark.length < 2) return <span class="muted">no readings</span>;
  const w = 120;
  const h = 28;
  const lo = Math.min(...row.spark, row.minC);
  const hi = Math.max(...row.spark, row.maxC);
  const y = (v: number) => h - ((v - lo) / (hi - lo || 1)) * h;
  return (
    <svg
      class="spark"
      width={w}
      height={h}
      viewBox={`0 0 ${w} ${h}`}
      role="img"
      aria-label={`temperature trend against ${row.range}`}
    >
      <rect x="0" y={y(row.maxC)} width={w} height={Math.max(1, y(row.minC) - y(row.maxC))} class="spark-band" />
      <polyline points={sparklinePoints(row.spark, w, h, { minC: row.minC, maxC: row.maxC })} class="spark-line" />
    </svg>
  );
}

/** "Vaccine X" from config.json's products, else what the chain knows: the rule profile's range. */
export function productOf(row: Pick<ShipmentRow, "reference" | "range" | "profileId">, ctx: Labels): string {
  const named = row.reference === undefined ? undefined : ctx.products?.[row.reference];
  return named ?? `${row.range} goods (profile #${row.profileId})`;
}

function Decision({ row, ctx }: { row: ShipmentRow; ctx: Labels }) {
  const d = row.decision;
  if (d === undefined) return row.badge === "delivered" ? <span class="muted">awaiting the QA decision</span> : null;
  return (
    <span class="decision">
      {d.outcome}
      {d.by === undefined ? "" : ` by ${partyName(d.by, ctx)}`}, {formatDate(d.at.unix)}
      {d.reason === undefined ? "" : `: ${d.reason.text} (${d.reason.code})`}
      {d.note === undefined ? "" : `; note: "${d.note}"`}
    </span>
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
  const [verdict, setVerdict] = useState<VerdictFilter>("all");
  const [party, setParty] = useState("");
  const [sort, setSort] = useState<SortKey>("newest");
  const names = (a: string) => ctx.labels[a.toLowerCase()] ?? "";
  const shown = sortRows(rows?.filter((r) => matchesFilter(r, status, party, verdict, names)) ?? [], sort, (a) =>
    partyName(a, ctx),
  );
  return (
    <section aria-labelledby="list-title">
      <h1 id="list-title">Shipments</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <span class="field">
          <label for="filter-status">Status</label>
          <select
            id="filter-status"
            value={status}
            onChange={(e) => setStatus((e.target as HTMLSelectElement).value as StatusFilter)}
          >
            {STATUS_FILTERS.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </span>
        <span class="field">
          <label for="filter-verdict">Verdict</label>
          <select
            id="filter-verdict"
            value={verdict}
            onChange={(e) => setVerdict((e.target as HTMLSelectElement).value as VerdictFilter)}
          >
            <option value="all">all</option>
            <option value="breached">breached</option>
            <option value="compliant">compliant</option>
          </select>
        </span>
        <span class="field">
          <label for="filter-party">Party (name or address)</label>
          <input
            id="filter-party"
            type="search"
            value={party}
            placeholder="carrier, 0x…"
            onInput={(e) => setParty((e.target as HTMLInputElement).value)}
          />
        </span>
        {account !== undefined ? (
          <button type="button" class="secondary" onClick={() => setParty(account)}>
            Mine
          </button>
        ) : null}
        <span class="field">
          <label for="sort-by">Sort by</label>
          <select id="sort-by" value={sort} onChange={(e) => setSort((e.target as HTMLSelectElement).value as SortKey)}>
            {SORTS.map((s) => (
              <option key={s.key} value={s.key}>
                {s.label}
              </option>
            ))}
          </select>
        </span>
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
            <caption class="sr-only">Shipments</caption>
            <thead>
              <tr>
                <th scope="col">Shipment, reference</th>
                <th scope="col">Product</th>
                <th scope="col">Verdict</th>
                <th scope="col">Liable</th>
                <th scope="col">Status, QA decision</th>
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
                    <div class="ref" data-testid="reference">
                      {r.reference ?? (
                        <span class="muted" title={r.externalRef}>
                          {/^0x0+$/.test(r.externalRef) ? "no reference" : "hashed reference"}
                        </span>
                      )}
                    </div>
                  </th>
                  <td data-testid="product">{productOf(r, ctx)}</td>
                  <td data-testid="verdict">
                    <strong class={r.breached ? "bad" : "good"}>
                      {r.verdict.charAt(0).toUpperCase() + r.verdict.slice(1)}
                    </strong>
                    {r.firstBreach !== undefined ? (
                      <div class="small">
                        first: {BREACH_KIND_WORDS[r.firstBreach]}, {formatDate(r.firstBreachAt)}
                        {r.breaches
                          .filter((b) => b !== r.firstBreach)
                          .map((b) => `; also ${BREACH_KIND_WORDS[b]}`)
                          .join("")}
                      </div>
                    ) : null}
                  </td>
                  <td data-testid="liable">
                    {r.liable.length === 0 ? (
                      <span class="muted">none</span>
                    ) : (
                      r.liable.map((a) => <Party key={a} address={a} ctx={ctx} />)
                    )}
                  </td>
                  <td data-testid="status">
                    <Badge badge={r.badge} />
                    <div class="small">
                      <Decision row={r} ctx={ctx} />
                    </div>
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
