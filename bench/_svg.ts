/**
 * A line chart as a standalone SVG document, written by hand (no dependencies): axes with tick
 * labels and titles, one polyline per series with a marker at each point, a legend, and caption
 * lines under the plot. Pure: data in, text out. Each marker carries its point's values
 * (`data-series`, `data-x`, `data-y`) and a `<title>` tooltip, so the numbers can be read back.
 *
 * @example
 * ```ts
 * import { lineChartSvg } from "./_svg.ts";
 * const svg = lineChartSvg({
 *   title: "throughput",
 *   xLabel: "added round trip (ms)",
 *   yLabel: "Gbit/s",
 *   series: [{ name: "a", points: [{ x: 0, y: 1.2 }, { x: 10, y: 0.9 }] }],
 *   caption: ["one run"],
 * });
 * if (!svg.startsWith("<?xml")) throw new Error("unexpected");
 * ```
 *
 * @module
 */

/** One point of a series. */
export interface ChartPoint {
  x: number;
  y: number;
}

/** One line of the chart. */
export interface ChartSeries {
  /** Shown in the legend and the markers' tooltips. */
  name: string;
  /** Points in any order (drawn sorted by x); points with a non-finite coordinate are left out. */
  points: ChartPoint[];
  /** Stroke colour (any SVG colour). Default: the next of {@linkcode PALETTE}. */
  color?: string;
  /** Draw the line dashed. Default false. */
  dashed?: boolean;
}

/** What {@linkcode lineChartSvg} draws. */
export interface LineChart {
  title: string;
  /** Title of the x axis, with its unit. */
  xLabel: string;
  /** Title of the y axis, with its unit. */
  yLabel: string;
  series: ChartSeries[];
  /** Lines of small text under the chart (date, machine, commit, method). */
  caption?: string[];
  /** Width of the whole image, px. Default 900. */
  width?: number;
  /** Height of the plot area, px (title, axis labels and caption come on top). Default 320. */
  plotHeight?: number;
  /** Format of the tick labels and tooltips. Default: up to 3 significant decimals. */
  formatX?: (x: number) => string;
  formatY?: (y: number) => string;
  /** Y axis starts at 0 (default true); otherwise at the data's nice lower bound. */
  yFromZero?: boolean;
}

/** Colours given to series without their own, in order. */
export const PALETTE: readonly string[] = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#9467bd",
  "#ff7f0e",
  "#17becf",
  "#8c564b",
  "#e377c2",
];

/** Escapes text for XML character data and attribute values (double-quoted). */
export function escapeXml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!,
  );
}

/** Up to 3 decimals, trailing zeros dropped. */
function defaultFormat(v: number): string {
  return String(Number(v.toFixed(3)));
}

/** A number rounded for an attribute (two decimals are plenty for pixels). */
function px(v: number): string {
  return String(Math.round(v * 100) / 100);
}

/**
 * Ticks covering [lo, hi] at a step of 1, 2 or 5 × 10^k, about `target` of them; the first
 * tick is ≤ lo and the last ≥ hi.
 */
export function niceTicks(lo: number, hi: number, target = 5): number[] {
  if (!(hi > lo)) {
    const pad = lo === 0 ? 1 : Math.abs(lo) / 2;
    return niceTicks(lo - (lo === 0 ? 0 : pad), hi + pad, target);
  }
  const raw = (hi - lo) / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const first = Math.floor(lo / step + 1e-9) * step;
  const out: number[] = [];
  for (let v = first; v < hi + step - 1e-9 * step; v += step) {
    out.push(Number(v.toPrecision(12)));
    if (out[out.length - 1] >= hi - 1e-9 * step) break;
  }
  return out;
}

/** The chart as an SVG document (UTF-8 text, XML declaration first). */
export function lineChartSvg(chart: LineChart): string {
  const fx = chart.formatX ?? defaultFormat;
  const fy = chart.formatY ?? defaultFormat;
  const width = chart.width ?? 900;
  const plotH = chart.plotHeight ?? 320;
  const caption = chart.caption ?? [];
  const series = chart.series.map((s, i) => ({
    ...s,
    color: s.color ?? PALETTE[i % PALETTE.length],
    points: s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y))
      .sort((a, b) => a.x - b.x),
  }));

  // Layout: title on top, legend on the right, axis titles and caption below and left.
  const legendW = Math.min(300, 44 + 7.5 * Math.max(0, ...series.map((s) => s.name.length)));
  const left = 72, top = 44;
  const plotW = Math.max(120, width - left - 24 - legendW);
  const bottomAxis = top + plotH;
  const height = bottomAxis + 56 + 16 * caption.length + 8;

  const all = series.flatMap((s) => s.points);
  const xs = all.map((p) => p.x), ys = all.map((p) => p.y);
  const xTicks = niceTicks(xs.length ? Math.min(...xs) : 0, xs.length ? Math.max(...xs) : 1);
  const yMin = (chart.yFromZero ?? true) ? Math.min(0, ...ys) : (ys.length ? Math.min(...ys) : 0);
  const yTicks = niceTicks(yMin, ys.length ? Math.max(...ys) : 1);
  const [x0, x1] = [xTicks[0], xTicks[xTicks.length - 1]];
  const [y0, y1] = [yTicks[0], yTicks[yTicks.length - 1]];
  const sx = (x: number) => left + (x1 === x0 ? plotW / 2 : (x - x0) / (x1 - x0) * plotW);
  const sy = (y: number) => bottomAxis - (y1 === y0 ? plotH / 2 : (y - y0) / (y1 - y0) * plotH);

  const o: string[] = [];
  o.push('<?xml version="1.0" encoding="UTF-8"?>');
  o.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${px(height)}" ` +
      `viewBox="0 0 ${width} ${px(height)}" font-family="Helvetica, Arial, sans-serif" ` +
      `font-size="12">`,
  );
  o.push(`<title>${escapeXml(chart.title)}</title>`);
  o.push(`<rect x="0" y="0" width="${width}" height="${px(height)}" fill="#ffffff"/>`);
  o.push(
    `<text x="${px(width / 2)}" y="24" text-anchor="middle" font-size="15" ` +
      `font-weight="bold">${escapeXml(chart.title)}</text>`,
  );

  // Grid and ticks.
  o.push('<g class="grid" stroke="#e3e3e3" stroke-width="1">');
  for (const t of yTicks) {
    o.push(`<line x1="${left}" y1="${px(sy(t))}" x2="${px(left + plotW)}" y2="${px(sy(t))}"/>`);
  }
  for (const t of xTicks) {
    o.push(`<line x1="${px(sx(t))}" y1="${top}" x2="${px(sx(t))}" y2="${bottomAxis}"/>`);
  }
  o.push("</g>");
  o.push('<g class="axes" stroke="#333333" stroke-width="1">');
  o.push(`<line x1="${left}" y1="${bottomAxis}" x2="${px(left + plotW)}" y2="${bottomAxis}"/>`);
  o.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${bottomAxis}"/>`);
  o.push("</g>");
  o.push('<g class="x-ticks" text-anchor="middle" fill="#333333">');
  for (const t of xTicks) {
    o.push(`<text x="${px(sx(t))}" y="${bottomAxis + 17}">${escapeXml(fx(t))}</text>`);
  }
  o.push("</g>");
  o.push('<g class="y-ticks" text-anchor="end" fill="#333333">');
  for (const t of yTicks) {
    o.push(`<text x="${left - 7}" y="${px(sy(t) + 4)}">${escapeXml(fy(t))}</text>`);
  }
  o.push("</g>");
  o.push(
    `<text class="x-label" x="${px(left + plotW / 2)}" y="${bottomAxis + 38}" ` +
      `text-anchor="middle">${escapeXml(chart.xLabel)}</text>`,
  );
  const yMid = px(top + plotH / 2);
  o.push(
    `<text class="y-label" x="18" y="${yMid}" text-anchor="middle" ` +
      `transform="rotate(-90 18 ${yMid})">${escapeXml(chart.yLabel)}</text>`,
  );

  // Series.
  for (const s of series) {
    const name = escapeXml(s.name);
    o.push(`<g class="series" data-series="${name}">`);
    if (s.points.length > 1) {
      const pts = s.points.map((p) => `${px(sx(p.x))},${px(sy(p.y))}`).join(" ");
      o.push(
        `<polyline points="${pts}" fill="none" stroke="${escapeXml(s.color)}" ` +
          `stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ""}/>`,
      );
    }
    for (const p of s.points) {
      o.push(
        `<circle cx="${px(sx(p.x))}" cy="${px(sy(p.y))}" r="3.5" fill="${escapeXml(s.color)}" ` +
          `data-series="${name}" data-x="${p.x}" data-y="${p.y}">` +
          `<title>${name}: ${escapeXml(fx(p.x))}, ${escapeXml(fy(p.y))}</title></circle>`,
      );
    }
    o.push("</g>");
  }

  // Legend.
  const lx = left + plotW + 20;
  o.push('<g class="legend">');
  series.forEach((s, i) => {
    const y = top + 8 + i * 20;
    o.push(
      `<line x1="${lx}" y1="${y}" x2="${lx + 26}" y2="${y}" stroke="${escapeXml(s.color)}" ` +
        `stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ""}/>`,
    );
    o.push(`<circle cx="${lx + 13}" cy="${y}" r="3.5" fill="${escapeXml(s.color)}"/>`);
    o.push(`<text x="${lx + 34}" y="${y + 4}">${escapeXml(s.name)}</text>`);
  });
  o.push("</g>");

  // Caption.
  o.push('<g class="caption" fill="#555555" font-size="11">');
  caption.forEach((line, i) => {
    o.push(`<text x="${left}" y="${bottomAxis + 60 + i * 16}">${escapeXml(line)}</text>`);
  });
  o.push("</g>");
  o.push("</svg>");
  return o.join("\n") + "\n";
}
