// The shipment page: summary, temperature chart with the custody timeline, liability, breaches, gaps, devices.
import { useMemo } from "preact/hooks";

import type { ChainReader, ShipmentView } from "../data/chain.js";
import { buildChartModel, custodySegments, statusBadge } from "../data/shaping.js";
import { breachText, decisionText, decodeDecisionReason, shipmentVerdict, STAGE_WORDS } from "../../../sdk/index.js";
import { breachKinds, formatCelsius, formatDuration, formatRange, profileRules, referenceText } from "../data/words.js";
import { Actions } from "./actions.js";
import { TemperatureChart } from "./chart.js";
import { Badge, formatTime, Party, partyName, TxLink } from "./format.js";
import type { Labels } from "./format.js";
import { productOf } from "./list.js";
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
  const names = (address: string) => partyName(address, ctx);
  const verdict = useMemo(() => shipmentVerdict(state, history, names), [state, history, ctx]);
  const decision = verdict.decision;
  const reference = referenceText(state.externalRef);
  const firstBreach = verdict.breaches[0];
  const reasonOf = (code: string | undefined) => {
    const r = code === undefined ? undefined : decodeDecisionReason(code);
    return r === undefined ? "no reason given" : `${r.text} (${r.code})`;
  };
  const events = [
    ...history.lifecycle.map((e) => ({
      ...e,
      text:
        `${LIFECYCLE_TEXT[e.kind] ?? e.kind}${e.to !== undefined ? ` to ${partyName(e.to, ctx)}` : ""}` +
        (e.deadline !== undefined && e.deadline > 0 ? ` (valid until ${formatTime(e.deadline)})` : "") +
        (e.kind === "released" || e.kind === "rejected" ? ` by ${partyName(e.by, ctx)}` : "") +
        (e.kind === "rejected" ? `: ${reasonOf(e.reasonCode)}` : ""),
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
        <span class={verdict.condition === "breached" ? "bad" : undefined} data-testid="summary">
          {verdict.summary}.
        </span>
        {firstBreach === undefined ? null : (
          <span data-testid="first-breach"> First breach: {breachText(firstBreach, names)}.</span>
        )}
        {verdict.liable.length === 0 ? null : (
          <span data-testid="liable">
            {" "}
            Liable:{" "}
            {verdict.liable
              .map(
                (l) =>
                  `${names(l.party)} for ${breachKinds(l.breaches)} (held it ${formatDuration(l.heldSeconds)}, ` +
                  `${formatDuration(l.excursionSeconds)} out of range)`,
              )
              .join("; ")}
            .
          </span>
        )}
      </p>
      <div
        class={`decision-box${decision === undefined ? "" : ` ${decision.outcome}`}`}
        data-testid="decision"
        role="status"
      >
        <strong>QA decision: </strong>
        {decision === undefined ? `none yet (${STAGE_WORDS[verdict.stage]}).` : `${decisionText(decision, names)}.`}
      </div>
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
          <dt>Product, reference</dt>
          <dd data-testid="product">
            {productOf({ reference, range: formatRange(p.minCentiC, p.maxCentiC), profileId: state.profileId }, ctx)}
            {", "}
            {reference ?? (
              <span class="muted" title={state.externalRef}>
                {/^0x0+$/.test(state.externalRef) ? "no reference" : "hashed reference"}
              </span>
            )}
          </dd>
        </div>
        <div>
          <dt>Readings</dt>
          <dd>
            {c.readingCount}
            {c.hasTemperature
              ? `, lowest ${formatCelsius(c.minCentiC ?? 0)}, highest ${formatCelsius(c.maxCentiC ?? 0)}`
              : ""}
          </dd>
        </div>
        <div>
          <dt>Times</dt>
          <dd>
            created {formatTime(state.createdAt)}, started {formatTime(state.startedAt)}, delivered{" "}
            {formatTime(state.deliveredAt)}
            {state.startedAt > 0 ? (
              <>
                {" "}
                (trip {formatDuration((state.deliveredAt > 0 ? state.deliveredAt : now) - state.startedAt)}
                {state.deliveredAt > 0 ? "" : " so far"})
              </>
            ) : null}
          </dd>
        </div>
      </dl>

      <ReportButton reader={reader} state={state} ctx={ctx} />

      <section aria-labelledby="profile-title">
        <h2 id="profile-title">Rules (profile #{state.profileId})</h2>
        <div class="table-wrap">
          <table data-testid="profile">
            <tbody>
              {profileRules(p).map((r) => (
                <tr key={r.rule}>
                  <th scope="row">{r.rule}</th>
                  <td>{r.value}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <h3>Per logger</h3>
        <div class="table-wrap">
          {/* Each logger's own MKT over its own readings: pooled over loggers that travelled together it would count
              logger-time ("over 52 h" for two loggers on a 26 h trip). */}
          <table data-testid="loggers">
            <thead>
              <tr>
                <th scope="col">Logger</th>
                <th scope="col">Mean kinetic temperature</th>
                <th scope="col">Time out of range</th>
                <th scope="col">Breaches</th>
              </tr>
            </thead>
            <tbody>
              {state.devices.map((d) => (
                <tr key={d.deviceId.toString()} data-testid={`logger-${d.deviceId}`}>
                  <th scope="row">Device {d.deviceId.toString()}</th>
                  <td data-testid="mkt">
                    {d.evidence.mktCentiC === undefined
                      ? "not yet known"
                      : `${formatCelsius(d.evidence.mktCentiC)} over ${formatDuration(d.evidence.mktSeconds)}`}
                    {!p.mktEnabled
                      ? " (no MKT rule)"
                      : d.evidence.mktSeconds < p.mktMinCoverageSeconds
                        ? ` (limit ${formatCelsius(p.mktLimitCentiC)}, judged once ${formatDuration(
                            p.mktMinCoverageSeconds,
                          )} are covered)`
                        : ` (limit ${formatCelsius(p.mktLimitCentiC)})`}
                  </td>
                  <td>
                    {formatDuration(d.evidence.cumulativeExcursionSeconds)}
                    {p.maxCumulativeExcursionSeconds > 0
                      ? ` (a breach at ${formatDuration(p.maxCumulativeExcursionSeconds)})`
                      : ""}
                  </td>
                  <td>{d.evidence.breaches.length === 0 ? "none" : breachKinds(d.evidence.breaches)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <p class="small">
          Longest excursion so far: {formatDuration(c.longestExcursionSeconds)}
          {c.excursionDevices > 0
            ? `; ${c.excursionDevices} logger${c.excursionDevices === 1 ? " is" : "s are"} out of range now`
            : ""}
          .
        </p>
      </section>

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
                <th scope="col">Held</th>
                <th scope="col">Excursion</th>
                <th scope="col">Breaches (liable)</th>
                <th scope="col">Handover transaction</th>
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
                  <td>{formatDuration(Math.max(0, s.to - s.from))}</td>
                  <td>{formatDuration(s.excursionSeconds)}</td>
                  <td>{s.breaches.length === 0 ? "none" : `⚠ liable: ${breachKinds(s.breaches)}`}</td>
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
              {l.breaches.length > 0 ? <strong class="bad"> — ⚠ liable for: {breachKinds(l.breaches)}</strong> : null}
            </li>
          ))}
        </ul>
      </section>

      <section aria-labelledby="breaches-title">
        <h2 id="breaches-title">Breaches</h2>
        {verdict.breaches.length === 0 ? (
          <p>None.</p>
        ) : (
          <ul data-testid="breaches">
            {verdict.breaches.map((b, i) => (
              <li key={i}>
                {breachText(b, names)}
                {b.transactionHash === undefined ? null : (
                  <>
                    {" "}
                    (<TxLink hash={b.transactionHash} ctx={ctx} />)
                  </>
                )}
              </li>
            ))}
          </ul>
        )}
        <h3>Missing data</h3>
        {gaps.length === 0 ? (
          <p>
            {p.maxGapIntervals === 0
              ? "No gap drawn (the missing-readings rule is off)."
              : `No gap longer than the profile allows (${p.maxGapIntervals} intervals).`}
          </p>
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
                  — breaches: {breachKinds(d.evidence.breaches)} (custody period {d.evidence.breachPeriod})
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
              {formatTime(e.at)} — {e.text} (block {e.blockNumber}, <TxLink hash={e.transactionHash} ctx={ctx} />)
            </li>
          ))}
        </ul>
      </section>
    </article>
  );
}
