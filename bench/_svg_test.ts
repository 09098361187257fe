/**
 * bench/_svg.ts: the chart is well-formed XML (checked by a small strict parser here: no
 * dependencies), has the SVG namespace, and carries exactly the points it was given, drawn where
 * the axes say.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type ChartSeries, escapeXml, lineChartSvg, niceTicks } from "./_svg.ts";

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const NAME = /^[A-Za-z_:][A-Za-z0-9_:.-]*/;
const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function decode(text: string, where: number): string {
  if (text.includes("<")) throw new Error(`"<" in text or attribute near ${where}`);
  return text.replace(/&([^;]*);?/g, (m, e: string) => {
    if (!m.endsWith(";")) throw new Error(`unterminated entity near ${where}`);
    if (e in ENTITIES) return ENTITIES[e];
    const n = /^#x([0-9a-fA-F]+)$/.exec(e)?.[1] ?? /^#([0-9]+)$/.exec(e)?.[1];
    if (n === undefined) throw new Error(`unknown entity &${e}; near ${where}`);
    return String.fromCodePoint(parseInt(n, e.startsWith("#x") ? 16 : 10));
  });
}

/** Parses a whole document strictly (well-formedness only); throws on the first error. */
function parseXml(doc: string): XmlElement {
  let i = 0;
  const skip = (re: RegExp) => {
    const m = re.exec(doc.slice(i));
    if (m) i += m[0].length;
    return m;
  };
  skip(/^<\?xml[^?]*\?>/);
  const misc = () => {
    while (skip(/^\s+/) || skip(/^<!--[\s\S]*?-->/));
  };
  misc();
  const element = (): XmlElement => {
    if (doc[i] !== "<") throw new Error(`expected an element at ${i}`);
    i++;
    const name = skip(NAME)?.[0];
    if (!name) throw new Error(`bad element name at ${i}`);
    const el: XmlElement = { name, attrs: {}, children: [], text: "" };
    for (;;) {
      const ws = skip(/^\s+/);
      if (skip(/^\/>/)) return el;
      if (skip(/^>/)) break;
      if (!ws) throw new Error(`expected whitespace before an attribute at ${i}`);
      const a = skip(NAME)?.[0];
      if (!a) throw new Error(`bad attribute name at ${i}`);
      const v = skip(/^\s*=\s*("([^"]*)"|'([^']*)')/);
      if (!v) throw new Error(`attribute ${a} without a quoted value at ${i}`);
      if (a in el.attrs) throw new Error(`duplicate attribute ${a} at ${i}`);
      el.attrs[a] = decode(v[2] ?? v[3], i);
    }
    for (;;) {
      const t = skip(/^[^<]+/);
      if (t) el.text += decode(t[0], i);
      if (skip(/^<!--[\s\S]*?-->/)) continue;
      if (doc.startsWith("</", i)) {
        i += 2;
        const end = skip(NAME)?.[0];
        if (end !== name) throw new Error(`</${end}> closes <${name}> at ${i}`);
        if (!skip(/^\s*>/)) throw new Error(`bad end tag at ${i}`);
        return el;
      }
      if (i >= doc.length) throw new Error(`<${name}> not closed`);
      el.children.push(element());
    }
  };
  const root = element();
  misc();
  if (i !== doc.length) throw new Error(`content after the root element at ${i}`);
  return root;
}

function all(el: XmlElement, name: string): XmlElement[] {
  return [
    ...(el.name === name ? [el] : []),
    ...el.children.flatMap((c) => all(c, name)),
  ];
}

Deno.test("the XML checker itself rejects what is not well-formed", () => {
  for (
    const bad of [
      "<a><b></a></b>",
      "<a x=1/>",
      '<a x="1" x="2"/>',
      "<a>1 < 2</a>",
      "<a>&nbsp;</a>",
      "<a/><b/>",
      "<a>",
    ]
  ) {
    let threw = false;
    try {
      parseXml(bad);
    } catch {
      threw = true;
    }
    assert(threw, bad);
  }
  assert.deepEqual(parseXml('<a x="&lt;&amp;">t&gt;<b/></a>').attrs.x, "<&");
});

Deno.test("niceTicks: steps of 1, 2 or 5 × 10^k covering the range", () => {
  assert.deepEqual(niceTicks(0, 40), [0, 10, 20, 30, 40]);
  assert.deepEqual(niceTicks(0, 1.37), [0, 0.5, 1, 1.5]);
  assert.deepEqual(niceTicks(0, 0), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  const t = niceTicks(0.13, 2.71);
  assert(t[0] <= 0.13 && t[t.length - 1] >= 2.71, String(t));
});

Deno.test("lineChartSvg: valid XML with every point given, placed by the axes", () => {
  const series: ChartSeries[] = [
    { name: "port-forward, laptop → pod", points: [{ x: 0, y: 2.41 }, { x: 10, y: 2.2 }] },
    {
      name: 'kconnect <default> & "friends"',
      dashed: true,
      points: [{ x: 40, y: 0.61 }, { x: 0, y: 1.25 }, { x: 20, y: 0.9 }, { x: 10, y: NaN }],
    },
  ];
  const svg = lineChartSvg({
    title: "Throughput vs added RTT",
    xLabel: "added round trip (ms)",
    yLabel: "throughput (Gbit/s)",
    series,
    caption: ["2026-01-01, 2 cores, commit abc1234", "a < b & c"],
  });
  const root = parseXml(svg);
  assert.deepEqual(root.name, "svg");
  assert.deepEqual(root.attrs.xmlns, "http://www.w3.org/2000/svg");

  const markers = all(root, "circle").filter((c) => c.attrs["data-series"] !== undefined);
  for (const s of series) {
    const want = s.points.filter((p) => Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
    const got = markers.filter((m) => m.attrs["data-series"] === s.name);
    assert.deepEqual(
      got.map((m) => ({ x: Number(m.attrs["data-x"]), y: Number(m.attrs["data-y"]) })),
      want,
    );
    // The polyline goes through the markers, left to right.
    const group = all(root, "g").find((g) =>
      g.attrs.class === "series" && g.attrs["data-series"] === s.name
    )!;
    const line = all(group, "polyline")[0];
    const pts = line.attrs.points.split(" ").map((p) => p.split(",").map(Number));
    assert.deepEqual(pts, got.map((m) => [Number(m.attrs.cx), Number(m.attrs.cy)]));
    for (let k = 1; k < pts.length; k++) assert(pts[k][0] > pts[k - 1][0]);
    assert.deepEqual(line.attrs["stroke-dasharray"] !== undefined, s.dashed === true);
  }
  // Higher values are drawn higher; equal ones at the same height across series.
  const cy = (name: string, x: number) =>
    Number(
      markers.find((m) => m.attrs["data-series"] === name && m.attrs["data-x"] === String(x))!
        .attrs.cy,
    );
  assert(cy(series[0].name, 0) < cy(series[1].name, 0));
  assert(cy(series[1].name, 0) < cy(series[1].name, 20));

  // Axis titles, legend and caption come through unmangled.
  const texts = all(root, "text").map((t) => t.text);
  for (
    const want of [
      "added round trip (ms)",
      "throughput (Gbit/s)",
      series[1].name,
      "a < b & c",
      "2026-01-01, 2 cores, commit abc1234",
    ]
  ) {
    assert(texts.includes(want), `no text ${JSON.stringify(want)} in ${JSON.stringify(texts)}`);
  }
  // Tick labels cover the data: x up to 40, y up to at least 2.41.
  const yTicks = all(all(root, "g").find((g) => g.attrs.class === "y-ticks")!, "text")
    .map((t) => Number(t.text));
  assert(Math.max(...yTicks) >= 2.41 && Math.min(...yTicks) === 0, String(yTicks));
  const xTicks = all(all(root, "g").find((g) => g.attrs.class === "x-ticks")!, "text")
    .map((t) => Number(t.text));
  assert.deepEqual([Math.min(...xTicks), Math.max(...xTicks)], [0, 40]);
});

Deno.test("lineChartSvg: no series or one point still makes a valid document", () => {
  parseXml(lineChartSvg({ title: "t", xLabel: "x", yLabel: "y", series: [] }));
  const root = parseXml(lineChartSvg({
    title: "t",
    xLabel: "x",
    yLabel: "y",
    series: [{ name: "one", points: [{ x: 5, y: 5 }] }],
  }));
  assert.deepEqual(all(root, "polyline").length, 0);
  assert.deepEqual(all(root, "circle").filter((c) => c.attrs["data-x"] === "5").length, 1);
});

Deno.test("escapeXml", () => {
  assert.deepEqual(escapeXml(`<a href="x">&'`), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;");
});
