/**
 * The temperature chart (uPlot): one line per device, the allowed range as a green band, the absolute limits as
 * red bands, excursions shaded, missing-data gaps hatched, and each breach marked with its reason (a DOM marker
 * over the plot, focusable and labelled for screen readers). Also draws the custody timeline under the plot on the
 * same time axis.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

import type { ChartModel, CustodySegment } from "../data/shaping.js";
import { formatDuration } from "../data/shaping.js";
import { formatTime, partyName, TxLink } from "./format.js";
import type { Labels } from "./format.js";

const COLORS = ["#1f5fbf", "#8a3ffc", "#00726b", "#a2191f"];

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
  markers: { x: number; key: string; label: string; title: string }[];
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
      axes: [{}, { label: "°C", values: (_u, vals) => vals.map((v) => `${v} °C`), size: 60 }],
      series: [
        { label: "time" },
        ...model.series.map((s, i) => ({
          label: s.label,
          stroke: COLORS[i % COLORS.length],
          width: 1.5,
          spanGaps: false,
          value: (_u: uPlot, v: number | null) => (v == null ? "—" : `${v.toFixed(2)} °C`),
        })),
      ],
      legend: { live: true },
      plugins: [bandsPlugin(model)],
    };
    let drawn = false;
    const place = (u: uPlot) => {
      const plotWidth = u.over.clientWidth;
      setBox({
        left: u.over.offsetLeft,
        width: plotWidth,
        markers: model.breaches.map((b, i) => ({
          // keep the label inside the plot
          x: Math.min(Math.max(u.valToPos(b.at, "x"), 48), Math.max(48, plotWidth - 48)),
          key: `${b.transactionHash}-${i}`,
          label: b.label,
          title: `${b.label} — ${formatTime(b.at)}, device ${b.deviceId}, custodian ${partyName(b.custodian, ctx)}`,
        })),
      });
    };
    opts.hooks = {
      ready: [place],
      setSize: [place],
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

  return (
    <figure class="chart" aria-labelledby="chart-caption">
      <figcaption id="chart-caption">
        Temperature over time: green band {model.minC}–{model.maxC} °C allowed; red beyond the absolute limits (
        {model.absoluteMinC} / {model.absoluteMaxC} °C); orange shading = excursion; hatched = missing data; dashed red
        line = breach. {model.readingCount.toLocaleString("en")} readings.
      </figcaption>
      <div class="plot-wrap">
        <div ref={host} class="plot" data-testid="chart" data-readings={model.readingCount} />
        {box?.markers.map((m) => (
          <span
            key={m.key}
            class="breach-marker"
            data-testid="breach-marker"
            style={{ left: `${box.left + m.x}px` }}
            tabIndex={0}
            role="img"
            aria-label={m.title}
            title={m.title}
          >
            ⚠ {m.label.split(":")[0]}
          </span>
        ))}
      </div>
      <div
        class="custody-timeline"
        data-testid="custody-timeline"
        style={box === undefined ? undefined : { marginLeft: `${box.left}px`, width: `${box.width}px` }}
        role="list"
        aria-label="Custody timeline (same time axis as the chart)"
      >
        {segments.map((s) => (
          <div
            key={s.index}
            role="listitem"
            class={`segment${s.liable ? " liable" : ""}${s.current ? " current" : ""}`}
            style={{ left: `${(s.left * 100).toFixed(3)}%`, width: `${(s.width * 100).toFixed(3)}%` }}
            title={`${partyName(s.custodian, ctx)}: ${formatTime(s.from)} – ${s.current ? "now" : formatTime(s.to)}; excursion ${formatDuration(s.excursionSeconds)}${s.liable ? `; liable for ${s.breaches.join(", ")}` : ""}`}
          >
            <span class="segment-name">{partyName(s.custodian, ctx)}</span>
            {s.liable ? <span class="segment-liable"> liable</span> : null}
            {s.transactionHash !== undefined ? (
              <span class="sr-only">
                {" "}
                handover <TxLink hash={s.transactionHash} ctx={ctx} />
              </span>
            ) : null}
          </div>
        ))}
      </div>
    </figure>
  );
}
