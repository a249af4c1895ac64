// The shipment page: summary, temperature chart with the custody timeline, liability, breaches, gaps, devices.
import { useMemo } from "preact/hooks";

import type { ChainReader, ShipmentView } from "../data/chain.js";
import { BREACH_TEXT, buildChartModel, custodySegments, formatDuration, statusBadge } from "../data/shaping.js";
import { Actions } from "./actions.js";
import { TemperatureChart } from "./chart.js";
import { Badge, formatTime, Party, partyName, TxLink } from "./format.js";
import type { Labels } from "./format.js";
import { ReportButton } from "./report-button.js";
import type { WalletConnection } from "./wallet.js";

export interface ShipmentPageProps {
  readonly view: ShipmentView;
  readonly now: number;
  readonly reader: ChainReader;
  readonly wallet: WalletConnection | undefined;
  readonly ctx: Labels;
  readonly onChanged: () => void;
  readonly onDrawn?: () => void;
}

const LIFECYCLE_TEXT: Record<string, string> = {
  created: "created",
  started: "started",
  custodyOffered: "custody offered",
  custodyOfferCancelled: "custody offer withdrawn",
  delivered: "delivered",
  released: "released",
  rejected: "rejected",
  cancelled: "cancelled",
};

export function ShipmentPage({ view, now, reader, wallet, ctx, onChanged, onDrawn }: ShipmentPageProps) {
  const { state, history, timeline } = view;
  const model = useMemo(() => buildChartModel(history, timeline, now), [history, timeline, now]);
  const segments = useMemo(() => custodySegments(state, history, model.xMin, model.xMax), [state, history, model]);
  const c = state.condition;
  const p = state.profile;
  const gaps = model.gaps;
  const liable = state.liability.filter((l) => l.breaches.length > 0);
  const events = [
    ...history.lifecycle.map((e) => ({
      ...e,
      text: `${LIFECYCLE_TEXT[e.kind] ?? e.kind}${e.to !== undefined ? ` to ${partyName(e.to, ctx)}` : ""}`,
    })),
    ...history.custody.map((h) => ({
      ...h,
      at: h.since,
      text:
        h.periodIndex === 0
          ? `custody with ${partyName(h.to, ctx)}`
          : `custody ${partyName(h.from, ctx)} → ${partyName(h.to, ctx)}`,
    })),
  ].sort((a, b) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex);
  return (
    <article aria-labelledby="shipment-title">
      <p>
        <a href="#/">← All shipments</a>
      </p>
      <h1 id="shipment-title">
        Shipment #{state.shipmentId.toString()} <Badge badge={statusBadge(state.status)} />{" "}
        {c.breaches.length > 0 ? <Badge badge="breached" /> : null}
      </h1>
      <p class="verdict" data-testid="verdict">
        {c.breaches.length === 0
          ? `Compliant so far: ${c.readingCount} readings, all rules met.`
          : `Breached: ${c.breaches.map((b) => `${b} (${BREACH_TEXT[b]})`).join("; ")}. ${
              c.firstBreach === undefined ? "" : `First: ${c.firstBreach} at ${formatTime(c.firstBreachAt)}. `
            }Liable: ${liable.map((l) => partyName(l.custodian, ctx)).join(", ") || "—"}.`}
      </p>
      <dl class="facts">
        <div>
          <dt>Shipper</dt>
          <dd>
            <Party address={state.shipper} ctx={ctx} />
          </dd>
        </div>
        <div>
          <dt>Receiver</dt>
          <dd>
            <Party address={state.receiver} ctx={ctx} />
          </dd>
        </div>
        <div>
          <dt>Custodian</dt>
          <dd>
            <Party address={state.custodian} ctx={ctx} />
          </dd>
        </div>
        <div>
          <dt>Profile</dt>
          <dd>
            #{state.profileId}: {p.minCentiC / 100}–{p.maxCentiC / 100} °C, limits {p.absoluteMinCentiC / 100} /{" "}
            {p.absoluteMaxCentiC / 100} °C, single excursion ≤ {formatDuration(p.maxSingleExcursionSeconds)}, total ≤{" "}
            {formatDuration(p.maxCumulativeExcursionSeconds)}
          </dd>
        </div>
        <div>
          <dt>Readings</dt>
          <dd>
            {c.readingCount}
            {c.hasTemperature ? `, min ${(c.minCentiC ?? 0) / 100} °C, max ${(c.maxCentiC ?? 0) / 100} °C` : ""}
          </dd>
        </div>
        <div>
          <dt>MKT per logger</dt>
          <dd data-testid="mkt">
            {/* Each logger's own MKT: pooled over loggers that travelled together it would count logger-time. */}
            {state.devices.every((d) => d.evidence.mktCentiC === undefined)
              ? "not yet known"
              : state.devices
                  .map((d) =>
                    d.evidence.mktCentiC === undefined
                      ? `device ${d.deviceId}: not yet known`
                      : `device ${d.deviceId}: ${(d.evidence.mktCentiC / 100).toFixed(2)} °C over ${formatDuration(
                          d.evidence.mktSeconds,
                        )}`,
                  )
                  .join("; ")}
            {p.mktEnabled ? ` (limit ${p.mktLimitCentiC / 100} °C each)` : ""}
          </dd>
        </div>
        <div>
          <dt>Excursion time per logger</dt>
          <dd data-testid="excursion">
            {state.devices
              .map((d) => `device ${d.deviceId}: ${formatDuration(d.evidence.cumulativeExcursionSeconds)}`)
              .join("; ")}
            {` (total allowed ${formatDuration(p.maxCumulativeExcursionSeconds)} each); longest run ${formatDuration(
              c.longestExcursionSeconds,
            )}`}
            {c.excursionDevices > 0
              ? `; ${c.excursionDevices} logger${c.excursionDevices === 1 ? "" : "s"} out of range now`
              : ""}
          </dd>
        </div>
        <div>
          <dt>Times</dt>
          <dd>
            created {formatTime(state.createdAt)}, started {formatTime(state.startedAt)}, delivered{" "}
            {formatTime(state.deliveredAt)}
          </dd>
        </div>
      </dl>

      <ReportButton reader={reader} state={state} ctx={ctx} />
      <TemperatureChart model={model} segments={segments} ctx={ctx} onDrawn={onDrawn} />

      <section aria-labelledby="liability-title">
        <h2 id="liability-title">Custody and liability</h2>
        <div class="table-wrap">
          <table data-testid="custody-table">
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">Custodian</th>
                <th scope="col">From</th>
                <th scope="col">Until</th>
                <th scope="col">Excursion</th>
                <th scope="col">Breaches (liable)</th>
                <th scope="col">Handover tx</th>
              </tr>
            </thead>
            <tbody>
              {segments.map((s) => (
                <tr key={s.index} class={s.liable ? "liable" : undefined}>
                  <td>{s.index}</td>
                  <td>
                    <Party address={s.custodian} ctx={ctx} />
                  </td>
                  <td>{formatTime(s.from)}</td>
                  <td>{s.current ? "now" : formatTime(s.to)}</td>
                  <td>{formatDuration(s.excursionSeconds)}</td>
                  <td>{s.breaches.length === 0 ? "none" : s.breaches.join(", ")}</td>
                  <td>{s.transactionHash === undefined ? "—" : <TxLink hash={s.transactionHash} ctx={ctx} />}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <h3>Per party</h3>
        <ul>
          {state.liability.map((l) => (
            <li key={l.custodian}>
              <Party address={l.custodian} ctx={ctx} />: held {formatDuration(l.heldSeconds)}, excursion{" "}
              {formatDuration(l.excursionSeconds)}
              {l.breaches.length > 0 ? <strong class="bad"> — liable for {l.breaches.join(", ")}</strong> : null}
            </li>
          ))}
        </ul>
      </section>

      <section aria-labelledby="breaches-title">
        <h2 id="breaches-title">Breaches</h2>
        {model.breaches.length === 0 ? (
          <p>None.</p>
        ) : (
          <ul data-testid="breaches">
            {model.breaches.map((b, i) => (
              <li key={i}>
                <strong>{b.reason}</strong>: {BREACH_TEXT[b.reason]} — at {formatTime(b.at)}, device{" "}
                {b.deviceId.toString()}, custodian {partyName(b.custodian, ctx)} (period {b.periodIndex}),{" "}
                <TxLink hash={b.transactionHash} ctx={ctx}>
                  tx
                </TxLink>
              </li>
            ))}
          </ul>
        )}
        <h3>Missing data</h3>
        {gaps.length === 0 ? (
          <p>No gap longer than the profile allows ({p.maxGapIntervals} intervals).</p>
        ) : (
          <ul>
            {gaps.map((g, i) => (
              <li key={i}>
                Device {g.deviceId.toString()}: {formatDuration(g.seconds)} without readings from {formatTime(g.from)}
              </li>
            ))}
          </ul>
        )}
      </section>

      <Actions view={view} reader={reader} wallet={wallet} ctx={ctx} onDone={onChanged} />

      <section aria-labelledby="devices-title">
        <h2 id="devices-title">Devices</h2>
        <ul>
          {state.devices.map((d) => (
            <li key={d.deviceId.toString()}>
              Device {d.deviceId.toString()}: {d.keyType} key, a reading every {formatDuration(d.intervalSeconds)},
              owner <Party address={d.owner} ctx={ctx} />
              {d.evidence.breaches.length > 0 ? (
                <strong class="bad">
                  {" "}
                  — breaches {d.evidence.breaches.join(", ")} (period {d.evidence.breachPeriod})
                </strong>
              ) : null}
              {d.revokedAtBlock > 0 ? <strong class="bad"> — revoked at block {d.revokedAtBlock}</strong> : null}
            </li>
          ))}
        </ul>
      </section>

      <section aria-labelledby="events-title">
        <h2 id="events-title">Events</h2>
        <ul class="events">
          {events.map((e) => (
            <li key={`${e.blockNumber}-${e.logIndex}`}>
              {formatTime(e.at)} — {e.text} (block {e.blockNumber},{" "}
              <TxLink hash={e.transactionHash} ctx={ctx}>
                tx
              </TxLink>
              )
            </li>
          ))}
        </ul>
      </section>
    </article>
  );
}
