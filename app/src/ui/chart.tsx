/**
 * The temperature chart (uPlot): one line per device, the allowed range as a green band, the absolute limits as
 * red bands, excursions shaded, missing-data gaps hatched, and each breach marked with its reason (a DOM marker
 * over the plot, focusable and labelled for screen readers). Also draws the custody timeline under the plot on the
 * same time axis.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

import { markerLanes, markerWidth } from "../data/shaping.js";
import type { ChartModel, CustodySegment } from "../data/shaping.js";
import { BREACH_KIND_WORDS, breachKinds, formatCelsius, formatDuration, formatRange } from "../data/words.js";
import { formatTime, partyName, TxLink } from "./format.js";
import type { Labels } from "./format.js";

/**
 * Logger lines: colours of the Okabe–Ito colour-blind-safe palette with distinct hues (blue, vermillion, black,
 * reddish purple, sky blue, yellow-brown), each with its own dash pattern so no two loggers differ by colour alone.
 */
export const SERIES_STYLES: readonly { color: string; dash: number[]; name: string }[] = [
  { color: "#0072B2", dash: [], name: "solid" },
  { color: "#D55E00", dash: [8, 4], name: "dashed" },
  { color: "#000000", dash: [2, 3], name: "dotted" },
  { color: "#CC79A7", dash: [10, 3, 2, 3], name: "dash-dot" },
  { color: "#56B4E9", dash: [14, 5], name: "long dash" },
  { color: "#8C6D00", dash: [4, 2, 4, 6], name: "double dash" },
];

/** Time-axis labels in UTC like the rest of the page: "14:30", with the date under the first tick of each day. */
function utcTicks(splits: number[]): string[] {
  let lastDay = "";
  return splits.map((t) => {
    const iso = new Date(t * 1000).toISOString();
    const day = iso.slice(0, 10);
    const label = day === lastDay ? iso.slice(11, 16) : `${iso.slice(11, 16)}\n${day}`;
    lastDay = day;
    return label;
  });
}

export interface ChartProps {
  readonly model: ChartModel;
  readonly segments: readonly CustodySegment[];
  readonly ctx: Labels;
  /** Called once the first frame is drawn (performance measurement). */
  readonly onDrawn?: () => void;
}

interface PlotBox {
  left: number;
  width: number;
  lanes: number;
  markers: { x: number; lane: number; key: string; text: string; title: string }[];
}

function bandsPlugin(model: ChartModel): uPlot.Plugin {
  return {
    hooks: {
      drawClear: (u: uPlot) => {
        const ctx = u.ctx;
        const { left, top, width, height } = u.bbox;
        const y = (v: number) => u.valToPos(v, "y", true);
        const x = (v: number) => u.valToPos(v, "x", true);
        ctx.save();
        ctx.beginPath();
        ctx.rect(left, top, width, height);
        ctx.clip();
        // allowed range
        ctx.fillStyle = "rgba(36, 161, 72, 0.14)";
        ctx.fillRect(left, y(model.maxC), width, y(model.minC) - y(model.maxC));
        // beyond the absolute limits
        ctx.fillStyle = "rgba(218, 30, 40, 0.12)";
        ctx.fillRect(left, top, width, Math.max(0, y(model.absoluteMaxC) - top));
        const low = y(model.absoluteMinC);
        ctx.fillRect(left, low, width, Math.max(0, top + height - low));
        // excursions
        ctx.fillStyle = "rgba(241, 120, 0, 0.22)";
        for (const e of model.excursions) ctx.fillRect(x(e.from), top, Math.max(2, x(e.to) - x(e.from)), height);
        // gaps (hatched grey)
        ctx.strokeStyle = "rgba(90, 90, 90, 0.45)";
        ctx.lineWidth = 1;
        for (const g of model.gaps) {
          const gx = x(g.from);
          const gw = Math.max(2, x(g.to) - gx);
          ctx.fillStyle = "rgba(120, 120, 120, 0.12)";
          ctx.fillRect(gx, top, gw, height);
          for (let hx = gx - height; hx < gx + gw; hx += 8) {
            ctx.beginPath();
            ctx.moveTo(Math.max(gx, hx), top + height - Math.max(0, gx - hx));
            ctx.lineTo(Math.min(gx + gw, hx + height), top + Math.max(0, hx + height - (gx + gw)));
            ctx.stroke();
          }
        }
        ctx.restore();
      },
      draw: (u: uPlot) => {
        const ctx = u.ctx;
        const { top, height } = u.bbox;
        ctx.save();
        ctx.strokeStyle = "#da1e28";
        ctx.lineWidth = 2 * devicePixelRatio;
        ctx.setLineDash([6, 4]);
        for (const b of model.breaches) {
          const bx = u.valToPos(b.at, "x", true);
          ctx.beginPath();
          ctx.moveTo(bx, top);
          ctx.lineTo(bx, top + height);
          ctx.stroke();
        }
        ctx.restore();
      },
    },
  };
}

export function TemperatureChart({ model, segments, ctx, onDrawn }: ChartProps) {
  const host = useRef<HTMLDivElement>(null);
  const readout = useRef<HTMLParagraphElement>(null);
  const [box, setBox] = useState<PlotBox | undefined>(undefined);

  useEffect(() => {
    const el = host.current;
    if (el === null) return;
    const width = Math.max(280, el.clientWidth);
    const data: uPlot.AlignedData = [
      Float64Array.from(model.x),
      ...model.series.map((s) => s.values as (number | null)[]),
    ];
    const opts: uPlot.Options = {
      width,
      height: width < 600 ? 240 : 320,
      scales: { x: { time: true, min: model.xMin, max: model.xMax }, y: { range: [model.yMin, model.yMax] } },
      axes: [
        { label: "time (UTC)", values: (_u, splits) => utcTicks(splits), size: 56 },
        { label: "°C", values: (_u, vals) => vals.map((v) => formatCelsius(Math.round(v * 100))), size: 64 },
      ],
      series: [
        { label: "time" },
        ...model.series.map((s, i) => {
          const style = SERIES_STYLES[i % SERIES_STYLES.length]!;
          return { label: s.label, stroke: style.color, dash: style.dash, width: 1.75, spanGaps: false };
        }),
      ],
      // The legend is drawn by the page (below): uPlot's live legend is empty until the cursor is over the plot.
      legend: { show: false },
      plugins: [bandsPlugin(model)],
    };
    let drawn = false;
    const place = (u: uPlot) => {
      const plotWidth = u.over.clientWidth;
      const placed = model.breaches.map((b, i) => {
        const text = `⚠ ${BREACH_KIND_WORDS[b.reason]}`;
        const half = markerWidth(text) / 2;
        return {
          // keep the label inside the plot
          x: Math.min(Math.max(u.valToPos(b.at, "x"), half), Math.max(half, plotWidth - half)),
          key: `${b.transactionHash}-${i}`,
          text,
          title: `${b.label}; at ${formatTime(b.at)}, device ${b.deviceId}, custodian ${partyName(b.custodian, ctx)}`,
        };
      });
      const lanes = markerLanes(placed);
      setBox({
        left: u.over.offsetLeft,
        width: plotWidth,
        lanes: lanes.length === 0 ? 0 : Math.max(...lanes) + 1,
        markers: placed.map((m, i) => ({ ...m, lane: lanes[i] ?? 0 })),
      });
    };
    // The values under the cursor, written straight into the DOM (no re-render per mouse move); empty otherwise.
    const showCursor = (u: uPlot) => {
      const out = readout.current;
      if (out === null) return;
      const idx = u.cursor.idx;
      const t = idx == null ? undefined : model.x[idx];
      if (idx == null || t === undefined) {
        out.textContent = "";
        return;
      }
      const values = model.series
        .map((s) => {
          const v = s.values[idx];
          return typeof v === "number" ? `${s.label}: ${formatCelsius(Math.round(v * 100))}` : undefined;
        })
        .filter((v) => v !== undefined);
      out.textContent = values.length === 0 ? "" : `${formatTime(t)} — ${values.join(", ")}`;
    };
    opts.hooks = {
      ready: [place],
      setSize: [place],
      setCursor: [showCursor],
      draw: [
        () => {
          if (drawn) return;
          drawn = true;
          onDrawn?.();
        },
      ],
    };
    const plot = new uPlot(opts, data, el);
    const observer = new ResizeObserver(() => {
      const w = Math.max(280, el.clientWidth);
      if (Math.abs(w - plot.width) > 4) {
        plot.setSize({ width: w, height: w < 600 ? 240 : 320 });
      }
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      plot.destroy();
    };
  }, [model]);

  const px = (seg: CustodySegment) => (box === undefined ? Infinity : seg.width * box.width);
  return (
    <figure class="chart" aria-labelledby="chart-caption">
      <figcaption id="chart-caption">
        Temperature over time, {model.readingCount.toLocaleString("en")} readings; allowed{" "}
        {formatRange(Math.round(model.minC * 100), Math.round(model.maxC * 100))}; breaches are marked above the plot.
      </figcaption>
      <div
        class="marker-strip"
        data-testid="breach-markers"
        style={box === undefined ? undefined : { height: `${box.lanes * 1.6}rem` }}
      >
        {box?.markers.map((m) => (
          <span
            key={m.key}
            class="breach-marker"
            data-testid="breach-marker"
            data-lane={m.lane}
            style={{ left: `${box.left + m.x}px`, top: `${m.lane * 1.6}rem` }}
            tabIndex={0}
            role="img"
            aria-label={m.title}
            title={m.title}
          >
            {m.text}
          </span>
        ))}
      </div>
      <div class="plot-wrap">
        <div ref={host} class="plot" data-testid="chart" data-readings={model.readingCount} />
      </div>
      <p class="cursor-readout small" ref={readout} data-testid="cursor-readout" />
      <ul class="chart-legend" data-testid="chart-legend" aria-label="Chart legend">
        {model.series.map((s, i) => {
          const style = SERIES_STYLES[i % SERIES_STYLES.length]!;
          return (
            <li key={s.deviceId.toString()}>
              <svg width="34" height="10" aria-hidden="true">
                <line
                  x1="1"
                  y1="5"
                  x2="33"
                  y2="5"
                  stroke={style.color}
                  stroke-width="2.5"
                  stroke-dasharray={style.dash.join(" ")}
                />
              </svg>
              {s.label} ({style.name} line)
            </li>
          );
        })}
        <li>
          <span class="key key-band" aria-hidden="true" /> allowed range{" "}
          {formatRange(Math.round(model.minC * 100), Math.round(model.maxC * 100))}
        </li>
        <li>
          <span class="key key-limit" aria-hidden="true" /> beyond the absolute limits (
          {formatRange(Math.round(model.absoluteMinC * 100), Math.round(model.absoluteMaxC * 100))})
        </li>
        <li>
          <span class="key key-excursion" aria-hidden="true" /> excursion
        </li>
        <li>
          <span class="key key-gap" aria-hidden="true" /> missing data
        </li>
        <li>
          <span class="key key-breach" aria-hidden="true" /> breach (dashed line, labelled above)
        </li>
      </ul>
      <div
        class="custody-timeline"
        data-testid="custody-timeline"
        style={box === undefined ? undefined : { marginLeft: `${box.left}px`, width: `${box.width}px` }}
        role="list"
        aria-label="Custody timeline (same time axis as the chart); each period is listed in words below"
      >
        {segments.map((s) => (
          <div
            key={s.index}
            role="listitem"
            class={`segment${s.liable ? " liable" : ""}${s.current ? " current" : ""}${px(s) < 24 ? " tiny" : ""}`}
            style={{ left: `${(s.left * 100).toFixed(3)}%`, width: `${(s.width * 100).toFixed(3)}%` }}
            title={`period ${s.index}: ${partyName(s.custodian, ctx)}: ${formatTime(s.from)} to ${s.current ? "now" : formatTime(s.to)}; excursion ${formatDuration(s.excursionSeconds)}${s.liable ? `; liable for: ${breachKinds(s.breaches)}` : ""}`}
          >
            {/* Narrow periods show their number (the list under the timeline names them); "liable" comes first. */}
            {px(s) < 24 ? null : (
              <>
                {s.liable ? <span class="segment-liable">⚠ liable </span> : null}
                <span class="segment-number">{s.index}</span>
                {px(s) < 120 ? null : <span class="segment-name"> {partyName(s.custodian, ctx)}</span>}
              </>
            )}
            {s.transactionHash !== undefined ? (
              <span class="sr-only">
                {" "}
                handover <TxLink hash={s.transactionHash} ctx={ctx} />
              </span>
            ) : null}
          </div>
        ))}
      </div>
      <ul class="custody-legend" data-testid="custody-legend" aria-label="Custody periods">
        {segments.map((s) => (
          <li key={s.index} class={s.liable ? "liable" : undefined}>
            Period {s.index}: <strong>{partyName(s.custodian, ctx)}</strong>, {formatTime(s.from)} to{" "}
            {s.current ? "now" : formatTime(s.to)} ({formatDuration(Math.max(0, s.to - s.from))})
            {s.liable ? <strong class="bad"> — ⚠ liable for: {breachKinds(s.breaches)}</strong> : null}
          </li>
        ))}
      </ul>
    </figure>
  );
}
