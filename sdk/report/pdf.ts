/**
 * The shipment temperature report as a PDF (A4): the verdict, the chart with the allowed band and limits, the
 * breach, excursion, custody and liability tables, MKT per logger, devices with key fingerprints, the profile in
 * words, and the on-chain references with the commands that re-check them. One module for the CLI (Node) and the
 * dashboard (browser, loaded lazily): it only draws a {@link ShipmentReport} (sdk/report/model.ts).
 *
 * Library: pdf-lib (MIT), pure TypeScript with no native code and no Node built-ins, the same ESM build in Node and
 * in browsers, about 200 kB gzipped in the dashboard's lazy chunk. The alternatives: pdfkit needs a separate
 * browser build with Buffer/fs shims; jsPDF is browser-first and pulls html2canvas, canvg, DOMPurify and core-js
 * as optional dependencies (26 MB installed). pdf-lib's API has been stable since 1.17 and the maintained fork
 * `@cantoo/pdf-lib` is API-compatible should we need a fix it lacks.
 *
 * Fonts: the PDF standard fonts (Helvetica, Courier), not embedded, so a report stays small. They encode
 * WinAnsi only: "°", "·", "…" print as themselves; the minus sign (U+2212) prints as "-", "≤" as "<=", "≥" as ">=",
 * "→" as "->" ({@link toWinAnsi}); anything else not in WinAnsi as "?".
 */
import { PDFDocument, StandardFonts, rgb } from "pdf-lib";
import type { Color, PDFFont, PDFPage } from "pdf-lib";

import { formatCelsius } from "../format.js";
import type { ReportChart, ReportTable, ShipmentReport } from "./model.js";

const A4 = { width: 595.28, height: 841.89 } as const;
const MARGIN = 42;
const CONTENT_WIDTH = A4.width - 2 * MARGIN;
const FOOTER = 30;

const INK = rgb(0.1, 0.1, 0.12);
const MUTED = rgb(0.38, 0.4, 0.44);
const RULE = rgb(0.8, 0.82, 0.85);
const HEADER_FILL = rgb(0.92, 0.93, 0.95);
const BAND = rgb(0.84, 0.94, 0.85);
const LIMIT = rgb(0.75, 0.1, 0.1);
const FREEZE = rgb(0.1, 0.35, 0.75);
const GOOD = rgb(0.1, 0.45, 0.2);
const BAD = rgb(0.7, 0.08, 0.08);
/** Logger lines: colour and dash differ, so print in grey keeps them apart. */
const SERIES_STYLES: readonly { color: Color; dash: number[] | undefined; name: string }[] = [
  { color: rgb(0.05, 0.2, 0.55), dash: undefined, name: "solid" },
  { color: rgb(0.85, 0.45, 0.0), dash: [5, 2.5], name: "dashed" },
  { color: rgb(0.1, 0.5, 0.25), dash: [1.2, 2], name: "dotted" },
  { color: rgb(0.45, 0.1, 0.5), dash: [7, 2, 1.5, 2], name: "dash-dot" },
];

/** Replaces what the standard fonts cannot encode (see the module comment). */
const REPLACEMENTS: Readonly<Record<string, string>> = {
  "\u2212": "-",
  "\u2264": "<=",
  "\u2265": ">=",
  "\u2192": "->",
  "\u2016": "||",
  "\u2013": "\u2013",
  "\u2026": "\u2026",
  "\u2011": "-",
  "\u00a0": " ",
  "\u2009": " ",
  "\u202f": " ",
};

/** `text` with every character the font cannot encode replaced (see the module comment). */
export function toWinAnsi(text: string, font: PDFFont): string {
  const supported = charSet(font);
  let out = "";
  for (const ch of text) {
    const mapped = REPLACEMENTS[ch] ?? ch;
    for (const m of mapped) out += supported.has(m.codePointAt(0) ?? 0) ? m : "?";
  }
  return out;
}

const charSets = new WeakMap<PDFFont, Set<number>>();
function charSet(font: PDFFont): Set<number> {
  let set = charSets.get(font);
  if (set === undefined) {
    set = new Set(font.getCharacterSet());
    charSets.set(font, set);
  }
  return set;
}

interface Fonts {
  regular: PDFFont;
  bold: PDFFont;
  mono: PDFFont;
}

/** Lays out text top-down over pages, starting a new page when the next block does not fit. */
class Layout {
  page!: PDFPage;
  /** Top of the free space on the page (PDF y, from the bottom). */
  y = 0;
  readonly pages: PDFPage[] = [];

  constructor(
    readonly doc: PDFDocument,
    readonly fonts: Fonts,
  ) {
    this.newPage();
  }

  newPage(): void {
    this.page = this.doc.addPage([A4.width, A4.height]);
    this.pages.push(this.page);
    this.y = A4.height - MARGIN;
  }

  /** Starts a new page unless `height` points fit above the footer. */
  ensure(height: number): void {
    if (this.y - height < MARGIN + FOOTER) this.newPage();
  }

  text(text: string, x: number, y: number, size: number, font: PDFFont = this.fonts.regular, color: Color = INK): void {
    this.page.drawText(toWinAnsi(text, font), { x, y, size, font, color });
  }

  width(text: string, size: number, font: PDFFont = this.fonts.regular): number {
    return font.widthOfTextAtSize(toWinAnsi(text, font), size);
  }

  /** Lines of `text` no wider than `width` (words kept whole unless one alone is too wide). */
  wrap(text: string, width: number, size: number, font: PDFFont = this.fonts.regular): string[] {
    const lines: string[] = [];
    let line = "";
    for (const word of text.split(/ +/)) {
      const candidate = line === "" ? word : `${line} ${word}`;
      if (this.width(candidate, size, font) <= width) {
        line = candidate;
        continue;
      }
      if (line !== "") lines.push(line);
      line = word;
      while (this.width(line, size, font) > width && line.length > 1) {
        let cut = line.length - 1;
        while (cut > 1 && this.width(line.slice(0, cut), size, font) > width) cut--;
        lines.push(line.slice(0, cut));
        line = line.slice(cut);
      }
    }
    if (line !== "") lines.push(line);
    return lines.length === 0 ? [""] : lines;
  }

  heading(text: string): void {
    this.ensure(40);
    this.y -= 14;
    this.text(text, MARGIN, this.y, 11.5, this.fonts.bold);
    this.y -= 5;
    this.page.drawLine({
      start: { x: MARGIN, y: this.y },
      end: { x: MARGIN + CONTENT_WIDTH, y: this.y },
      thickness: 0.6,
      color: RULE,
    });
    this.y -= 10;
  }

  paragraph(text: string, options: { size?: number; font?: PDFFont; color?: Color; indent?: number } = {}): void {
    const size = options.size ?? 8.5;
    const font = options.font ?? this.fonts.regular;
    const indent = options.indent ?? 0;
    const lineHeight = size * 1.3;
    for (const line of this.wrap(text, CONTENT_WIDTH - indent, size, font)) {
      this.ensure(lineHeight);
      this.y -= lineHeight;
      this.text(line, MARGIN + indent, this.y + 2, size, font, options.color ?? INK);
    }
  }

  /** A table; `fractions` share the content width among the columns. Rows never split across pages. */
  table(table: ReportTable, fractions: readonly number[], empty: string): void {
    if (table.rows.length === 0) {
      this.paragraph(empty, { color: MUTED });
      this.y -= 4;
      return;
    }
    const size = 7.5;
    const lineHeight = size * 1.25;
    const total = fractions.reduce((a, b) => a + b, 0);
    const widths = fractions.map((f) => (f / total) * CONTENT_WIDTH);
    const xs = widths.map((_, i) => MARGIN + widths.slice(0, i).reduce((a, b) => a + b, 0));
    const drawHeader = (): void => {
      const lines = table.header.map((h, i) => this.wrap(h, (widths[i] ?? 0) - 4, size, this.fonts.bold));
      const height = Math.max(...lines.map((l) => l.length)) * lineHeight + 4;
      this.ensure(height + lineHeight * 2);
      this.page.drawRectangle({ x: MARGIN, y: this.y - height, width: CONTENT_WIDTH, height, color: HEADER_FILL });
      lines.forEach((cell, i) =>
        cell.forEach((l, k) =>
          this.text(l, (xs[i] ?? 0) + 2, this.y - 2 - (k + 1) * lineHeight + 2.5, size, this.fonts.bold),
        ),
      );
      this.y -= height;
    };
    drawHeader();
    table.rows.forEach((row, r) => {
      const cells = row.map((cell, i) => this.wrap(cell, (widths[i] ?? 0) - 4, size));
      const detail = table.details?.[r];
      const height = Math.max(...cells.map((c) => c.length)) * lineHeight + (detail === undefined ? 0 : lineHeight) + 4;
      if (this.y - height < MARGIN + FOOTER) {
        this.newPage();
        drawHeader();
      }
      cells.forEach((cell, i) =>
        cell.forEach((l, k) => this.text(l, (xs[i] ?? 0) + 2, this.y - 2 - (k + 1) * lineHeight + 2.5, size)),
      );
      if (detail !== undefined) {
        this.text(detail, MARGIN + 12, this.y - height + 4.5, 6.8, this.fonts.mono, MUTED);
      }
      this.y -= height;
      this.page.drawLine({
        start: { x: MARGIN, y: this.y },
        end: { x: MARGIN + CONTENT_WIDTH, y: this.y },
        thickness: 0.4,
        color: RULE,
      });
    });
    this.y -= 6;
  }
}

/** The PDF of `report` (A4, one or more pages), as bytes. */
export async function renderReportPdf(report: ShipmentReport): Promise<Uint8Array> {
  const doc = await PDFDocument.create();
  const when = new Date(report.blockTime * 1000);
  doc.setTitle(report.title);
  doc.setSubject(`Shipment ${report.shipmentId} on chain ${report.chainId}, read at block ${report.blockNumber}`);
  doc.setKeywords(["cold chain", "temperature report", `shipment ${report.shipmentId}`, report.digest]);
  doc.setProducer("coldchain");
  doc.setCreator("coldchain report");
  doc.setCreationDate(when);
  doc.setModificationDate(when);
  const fonts: Fonts = {
    regular: await doc.embedFont(StandardFonts.Helvetica),
    bold: await doc.embedFont(StandardFonts.HelveticaBold),
    mono: await doc.embedFont(StandardFonts.Courier),
  };
  const out = new Layout(doc, fonts);

  // Title block and verdict.
  out.y -= 16;
  out.text("Shipment temperature report", MARGIN, out.y, 17, fonts.bold);
  out.y -= 15;
  out.text(
    `Shipment ${report.shipmentId} · reference ${report.reference} · ${report.network} (chain ${report.chainId})`,
    MARGIN,
    out.y,
    9,
    fonts.regular,
    MUTED,
  );
  out.y -= 10;
  const verdictLines = report.verdictLines.flatMap((l) => out.wrap(l, CONTENT_WIDTH - 20, 8.8));
  const boxHeight = 30 + verdictLines.length * 11.5;
  const tone = report.compliant ? GOOD : BAD;
  out.page.drawRectangle({
    x: MARGIN,
    y: out.y - boxHeight,
    width: CONTENT_WIDTH,
    height: boxHeight,
    borderColor: tone,
    borderWidth: 1.5,
    color: report.compliant ? rgb(0.93, 0.98, 0.93) : rgb(0.99, 0.93, 0.93),
  });
  out.text(`Verdict: ${report.verdict}`, MARGIN + 10, out.y - 19, 13, fonts.bold, tone);
  verdictLines.forEach((line, i) => out.text(line, MARGIN + 10, out.y - 34 - i * 11.5, 8.8));
  out.y -= boxHeight + 8;

  // Summary: two columns of label and value (values wrap; the left column holds the parties' addresses).
  const leftWidth = CONTENT_WIDTH * 0.56;
  const columns = [
    { x: MARGIN, label: 78, width: leftWidth - 6 },
    { x: MARGIN + leftWidth, label: 76, width: CONTENT_WIDTH - leftWidth },
  ];
  const rows = Math.ceil(report.summary.length / 2);
  for (let row = 0; row < rows; row++) {
    const cells = [report.summary[row], report.summary[row + rows]].map((entry, col) => {
      const column = columns[col] ?? columns[0];
      return entry === undefined || column === undefined
        ? undefined
        : { entry, column, lines: out.wrap(entry[1], column.width - column.label, 7.8) };
    });
    const height = Math.max(...cells.map((c) => c?.lines.length ?? 1)) * 10 + 1.5;
    for (const cell of cells) {
      if (cell === undefined) continue;
      out.text(cell.entry[0], cell.column.x, out.y - 9, 7.8, fonts.bold, MUTED);
      cell.lines.forEach((line, k) => out.text(line, cell.column.x + cell.column.label, out.y - 9 - k * 10, 7.8));
    }
    out.y -= height;
  }
  out.y -= 4;

  out.heading("Temperature over time");
  drawChart(out, report.chart);

  out.heading("Breaches");
  out.table(
    report.breaches,
    [0.3, 2.3, 1.75, 0.6, 0.45, 2.2, 0.65],
    "No breach recorded. Each breach would be listed with its time, logger, liable custodian and transaction.",
  );
  out.heading("Excursions (readings outside the allowed range)");
  out.table(report.excursions, [0.7, 1, 1.5, 1.8, 0.9, 0.9], "No reading outside the allowed range.");
  out.heading("Custody and liability");
  out.table(report.custody, [0.3, 3.8, 1.2, 1.2, 0.85, 0.85, 1.8], "No custody period recorded.");
  out.paragraph("Liability per party, over all its custody periods:", { size: 8 });
  out.y -= 3;
  out.table(report.liability, [2.6, 0.6, 0.9, 0.9, 2], "No custodian.");
  out.heading("Mean kinetic temperature per logger");
  out.table(report.loggers, [0.8, 1, 1, 1, 1.2, 0.8], "No logger.");
  out.paragraph(
    "Each logger's MKT is computed on chain from its own readings (activation energy 83.144 kJ/mol); readings of " +
      "loggers that travelled together are not pooled.",
    { size: 7.5, color: MUTED },
  );
  out.heading("Devices and keys");
  out.table(report.devices, [0.8, 0.8, 0.8, 3, 1.4], "No device.");
  out.paragraph(
    "Key fingerprint: the secp256k1 key's Ethereum address, or for a P-256 key the first 20 bytes of " +
      "keccak256(qx ‖ qy). Every reading on chain was verified against this key by the contract.",
    { size: 7.5, color: MUTED },
  );
  out.heading("Temperature profile");
  for (const line of report.profile) out.paragraph(`• ${line}`, { size: 8.3 });

  out.heading("On-chain references");
  out.paragraph(
    `Chain ${report.chainId} (${report.network}); ColdChain ${report.contracts.ColdChain}; DeviceRegistry ` +
      `${report.contracts.DeviceRegistry}; ColdChainLens ${report.contracts.ColdChainLens}. Read at block ` +
      `${report.blockNumber}.`,
    { size: 8 },
  );
  out.table(
    {
      header: ["event (its transaction below)", "block"],
      rows: report.references.map((r) => [r.what, String(r.blockNumber)]),
      details: report.references.map((r) => `tx ${r.transactionHash}`),
    },
    [5, 1],
    "No event.",
  );
  out.heading("How to verify this report");
  out.paragraph(
    "Every figure above was read from the contracts at the block named. To re-check it, point the CLI at a node " +
      "of the same chain (any RPC endpoint; the contracts' addresses are above):",
    { size: 8.3 },
  );
  report.verify.forEach((command, i) => {
    out.paragraph(command, { size: 7.2, font: fonts.mono, indent: 10 });
    out.paragraph(
      [
        "rebuilds this report from the chain at the same block: its digest must equal the one in the footer.",
        "lists the custody chain, each logger's MKT and the breaches with their transaction hashes.",
        "exports every event (custody, readings, breaches) as GS1 EPCIS 2.0 for other systems.",
      ][i] ?? "",
      { size: 7.5, color: MUTED, indent: 20 },
    );
  });
  out.paragraph(
    "Each transaction hash can also be opened in a block explorer of the chain: the breach's BreachRecorded event " +
      "names the shipment, the logger, the custodian charged and the reading's time.",
    { size: 8.3 },
  );

  // Footers, once the page count is known.
  const pages = out.pages;
  pages.forEach((page, i) => {
    const footer =
      `Shipment ${report.shipmentId} · chain ${report.chainId} · block ${report.blockNumber} · ` +
      `page ${i + 1} of ${pages.length}`;
    page.drawLine({
      start: { x: MARGIN, y: MARGIN + 14 },
      end: { x: MARGIN + CONTENT_WIDTH, y: MARGIN + 14 },
      thickness: 0.5,
      color: RULE,
    });
    page.drawText(toWinAnsi(footer, fonts.regular), {
      x: MARGIN,
      y: MARGIN + 4,
      size: 7,
      font: fonts.regular,
      color: MUTED,
    });
    page.drawText(`report digest ${report.digest}`, {
      x: MARGIN,
      y: MARGIN - 5,
      size: 6.5,
      font: fonts.mono,
      color: MUTED,
    });
  });
  return await doc.save({ useObjectStreams: false });
}

/** A round step for about `count` ticks over `span`. */
function niceStep(span: number, count: number): number {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = [1, 2, 2.5, 5, 10].find((u) => u * power >= raw) ?? 10;
  return unit * power;
}

function axisTime(seconds: number, withDate: boolean): string {
  const iso = new Date(seconds * 1000).toISOString();
  return withDate ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(11, 16);
}

/**
 * The chart: logger lines over the allowed band, absolute limits and freeze threshold as labelled lines,
 * numbered breach markers (staggered when close), and below it the custody periods, numbered as in the custody
 * table and marked "liable" in words where a breach was charged.
 */
function drawChart(out: Layout, chart: ReportChart): void {
  const height = 250;
  out.ensure(height + 10);
  const page = out.page;
  const left = MARGIN + 34;
  const right = MARGIN + CONTENT_WIDTH - 78;
  const plotTop = out.y - 16;
  const plotBottom = out.y - 178;
  const plotWidth = right - left;
  const plotHeight = plotTop - plotBottom;

  const temps = chart.series.flatMap((s) => s.tempsC);
  const dataLo = Math.min(chart.minC, ...temps);
  const dataHi = Math.max(chart.maxC, ...temps);
  const reach = Math.max(5, (dataHi - dataLo) * 0.5);
  const showAbsMin = chart.absoluteMinC >= dataLo - reach;
  const showAbsMax = chart.absoluteMaxC <= dataHi + reach;
  const showFreeze = chart.freezeC !== undefined && chart.freezeC >= dataLo - reach && chart.freezeC <= dataHi + reach;
  let lo = Math.min(dataLo, showAbsMin ? chart.absoluteMinC : dataLo, showFreeze ? (chart.freezeC ?? dataLo) : dataLo);
  let hi = Math.max(dataHi, showAbsMax ? chart.absoluteMaxC : dataHi);
  const step = niceStep(hi - lo + 2, 6);
  lo = Math.floor((lo - 0.5) / step) * step;
  hi = Math.ceil((hi + 0.5) / step) * step;
  const span = Math.max(1, chart.xMax - chart.xMin);
  const xOf = (t: number): number => left + ((t - chart.xMin) / span) * plotWidth;
  const yOf = (c: number): number => plotBottom + ((c - lo) / (hi - lo)) * plotHeight;
  const f = out.fonts;

  // Allowed band, grid and axes.
  page.drawRectangle({
    x: left,
    y: yOf(chart.minC),
    width: plotWidth,
    height: yOf(chart.maxC) - yOf(chart.minC),
    color: BAND,
  });
  for (let c = lo; c <= hi + 1e-9; c += step) {
    const y = yOf(c);
    page.drawLine({ start: { x: left, y }, end: { x: right, y }, thickness: 0.3, color: RULE });
    const label = `${c < 0 ? "\u2212" : ""}${Math.abs(c).toFixed(step < 1 ? 1 : 0)}`;
    out.text(label, left - 4 - out.width(label, 7), y - 2.5, 7, f.regular, MUTED);
  }
  out.text("°C", left - 24, plotTop + 6, 7, f.bold, MUTED);
  const days = span > 86_400 || new Date(chart.xMin * 1000).getUTCDate() !== new Date(chart.xMax * 1000).getUTCDate();
  const tStep = [600, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800].find((s) => span / s <= 7) ?? 604_800;
  for (let t = Math.ceil(chart.xMin / tStep) * tStep; t <= chart.xMax; t += tStep) {
    const x = xOf(t);
    page.drawLine({ start: { x, y: plotBottom }, end: { x, y: plotBottom - 3 }, thickness: 0.5, color: MUTED });
    const label = axisTime(t, days);
    out.text(label, x - out.width(label, 6.8) / 2, plotBottom - 11, 6.8, f.regular, MUTED);
  }
  out.text("time (UTC)", right - out.width("time (UTC)", 6.8), plotBottom - 20, 6.8, f.regular, MUTED);
  page.drawRectangle({
    x: left,
    y: plotBottom,
    width: plotWidth,
    height: plotHeight,
    borderColor: MUTED,
    borderWidth: 0.6,
  });

  // Limits, labelled at the right edge (in words: colour never carries the meaning alone).
  const limitLabel = (c: number, text: string, color: Color): void => {
    out.text(text, right + 4, yOf(c) - 2.5, 6.6, f.regular, color);
  };
  const degrees = (c: number): string => formatCelsius(Math.round(c * 100));
  limitLabel(chart.maxC, `max ${degrees(chart.maxC)}`, GOOD);
  limitLabel(chart.minC, `min ${degrees(chart.minC)}`, GOOD);
  const hline = (c: number, color: Color, dash: number[]): void =>
    page.drawLine({
      start: { x: left, y: yOf(c) },
      end: { x: right, y: yOf(c) },
      thickness: 0.9,
      color,
      dashArray: dash,
    });
  if (showAbsMax) {
    hline(chart.absoluteMaxC, LIMIT, [4, 2]);
    limitLabel(chart.absoluteMaxC, `abs. max ${degrees(chart.absoluteMaxC)}`, LIMIT);
  }
  if (showAbsMin) {
    hline(chart.absoluteMinC, LIMIT, [4, 2]);
    limitLabel(chart.absoluteMinC, `abs. min ${degrees(chart.absoluteMinC)}`, LIMIT);
  }
  if (showFreeze && chart.freezeC !== undefined) {
    hline(chart.freezeC, FREEZE, [1, 1.5]);
    limitLabel(chart.freezeC, `freeze ${degrees(chart.freezeC)}`, FREEZE);
  }

  // Logger lines (min/max per horizontal point when there are more readings than points).
  chart.series.forEach((s, i) => {
    const style = SERIES_STYLES[i % SERIES_STYLES.length] ?? SERIES_STYLES[0];
    if (style === undefined || s.times.length === 0) return;
    const breaks = new Set(s.breaksAfter);
    const buckets = Math.max(1, Math.floor(plotWidth * 2));
    let path = "";
    let penDown = false;
    let bucket = -1;
    let bucketLo = 0;
    let bucketHi = 0;
    const flush = (t: number): void => {
      if (bucket < 0) return;
      const x = (xOf(t) - left).toFixed(2);
      const points = bucketLo === bucketHi ? [bucketLo] : [bucketLo, bucketHi];
      for (const c of points) {
        path += `${penDown ? "L" : "M"}${x} ${(plotTop - yOf(c)).toFixed(2)} `;
        penDown = true;
      }
    };
    for (let k = 0; k < s.times.length; k++) {
      const t = s.times[k] ?? 0;
      const c = s.tempsC[k] ?? 0;
      const b = Math.floor(((t - chart.xMin) / span) * buckets);
      if (b !== bucket) {
        flush(s.times[k - 1] ?? t);
        bucket = b;
        bucketLo = c;
        bucketHi = c;
      } else {
        bucketLo = Math.min(bucketLo, c);
        bucketHi = Math.max(bucketHi, c);
      }
      if (breaks.has(t)) {
        flush(t);
        bucket = -1;
        penDown = false;
      }
    }
    flush(s.times.at(-1) ?? 0);
    if (path !== "") {
      page.drawSvgPath(path, {
        x: left,
        y: plotTop,
        borderColor: style.color,
        borderWidth: 1.1,
        ...(style.dash === undefined ? {} : { borderDashArray: style.dash }),
      });
    }
  });

  // Breach markers: a vertical line and the breach's number above the plot; numbers of breaches close together
  // move right along the top edge (with a leader to their time) instead of drawing over each other.
  let nextFree = -Infinity;
  for (const b of chart.breaches) {
    const x = xOf(b.at);
    const labelX = Math.max(x, nextFree);
    nextFree = labelX + 11;
    page.drawLine({
      start: { x, y: plotBottom },
      end: { x, y: plotTop },
      thickness: 0.7,
      color: BAD,
      dashArray: [2, 2],
    });
    if (labelX !== x) {
      page.drawLine({ start: { x, y: plotTop }, end: { x: labelX, y: plotTop + 6 }, thickness: 0.5, color: BAD });
    }
    const label = String(b.number);
    page.drawCircle({ x: labelX, y: plotTop + 7, size: 5, color: BAD });
    out.text(label, labelX - out.width(label, 6.5, f.bold) / 2, plotTop + 4.7, 6.5, f.bold, rgb(1, 1, 1));
  }

  // Custody strip.
  const stripTop = plotBottom - 26;
  const stripHeight = 14;
  chart.custody.forEach((c, i) => {
    if (c.to <= c.from) return;
    const x0 = xOf(c.from);
    const x1 = xOf(c.to);
    page.drawRectangle({
      x: x0,
      y: stripTop - stripHeight,
      width: x1 - x0,
      height: stripHeight,
      color: c.liable ? rgb(0.98, 0.85, 0.85) : i % 2 === 0 ? rgb(0.9, 0.91, 0.93) : rgb(0.95, 0.96, 0.97),
      borderColor: c.liable ? BAD : MUTED,
      borderWidth: c.liable ? 1 : 0.4,
    });
    const long = `${c.number}${c.liable ? " liable" : ""}`;
    const label = out.width(long, 7, f.bold) + 4 <= x1 - x0 ? long : `${c.number}${c.liable ? "!" : ""}`;
    if (out.width(label, 7, f.bold) + 2 <= x1 - x0) {
      out.text(label, (x0 + x1) / 2 - out.width(label, 7, f.bold) / 2, stripTop - 10, 7, f.bold, c.liable ? BAD : INK);
    }
  });
  out.text("custody", left - 33, stripTop - 10, 7, f.bold, MUTED);

  // Legend.
  let lx = left;
  const ly = stripTop - stripHeight - 14;
  const legend = (draw: (x: number) => void, text: string): void => {
    draw(lx);
    out.text(text, lx + 20, ly - 2.5, 7);
    lx += 26 + out.width(text, 7);
  };
  chart.series.forEach((s, i) => {
    const style = SERIES_STYLES[i % SERIES_STYLES.length] ?? SERIES_STYLES[0];
    if (style === undefined) return;
    legend(
      (x) =>
        page.drawLine({
          start: { x, y: ly },
          end: { x: x + 16, y: ly },
          thickness: 1.2,
          color: style.color,
          ...(style.dash === undefined ? {} : { dashArray: style.dash }),
        }),
      `logger ${s.deviceId} (${style.name})`,
    );
  });
  legend((x) => page.drawRectangle({ x, y: ly - 3, width: 16, height: 6, color: BAND }), "allowed range");
  if (chart.breaches.length > 0) {
    legend((x) => page.drawCircle({ x: x + 8, y: ly, size: 4, color: BAD }), "breach (number as in the table)");
  }
  const notes: string[] = [];
  if (!showAbsMin) notes.push(`absolute min ${degrees(chart.absoluteMinC)} below the chart`);
  if (!showAbsMax) notes.push(`absolute max ${degrees(chart.absoluteMaxC)} above the chart`);
  if (chart.freezeC !== undefined && !showFreeze) notes.push(`freeze ${degrees(chart.freezeC)} outside the chart`);
  const caption =
    'Custody periods are numbered as in the custody table; "liable" marks a period a breach was charged to.' +
    (notes.length > 0 ? ` Not drawn: ${notes.join(", ")}.` : "");
  out.y = ly - 8;
  out.paragraph(caption, { size: 7, color: MUTED });
  out.y -= 4;
}
