/**
 * The folders of src/ form layers that point one way (README, "Layout"): no folder imports,
 * directly or through others, a folder that imports it back. A cycle would mean a contract
 * lives in one user's room; this test names the imports that close it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ROOT } from "./_dataplane.ts";

const SRC = `${ROOT}src/`;
const IMPORT = /(?:^|\n)\s*(?:(?:import|export)\b[^;]*?\bfrom\s+|import\s+)"(\.{1,2}\/[^"]+)"/g;

/** Folder → folders it imports, with one file-to-file import that shows each edge. */
async function folderGraph(): Promise<Map<string, Map<string, string>>> {
  const graph = new Map<string, Map<string, string>>();
  const walk = async (dir: string): Promise<void> => {
    for await (const e of Deno.readDir(dir)) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) {
        const from = path.slice(SRC.length).split("/")[0];
        const text = await Deno.readTextFile(path);
        for (const m of text.matchAll(IMPORT)) {
          const target = new URL(m[1], `file://${path}`).pathname;
          if (!target.startsWith(SRC)) continue;
          const to = target.slice(SRC.length).split("/")[0];
          if (to === from || to.endsWith(".ts")) continue; // same folder, or src/log.ts etc.
          if (!graph.has(from)) graph.set(from, new Map());
          const edges = graph.get(from)!;
          if (!edges.has(to)) edges.set(to, `${path.slice(SRC.length)} -> ${m[1]}`);
        }
      }
    }
  };
  await walk(SRC.replace(/\/$/, ""));
  return graph;
}

/** Some cycle through `start`, as the list of edges' example imports, or null. */
function cycleThrough(graph: Map<string, Map<string, string>>, start: string): string[] | null {
  const seen = new Set<string>();
  const path: string[] = [];
  const visit = (node: string): boolean => {
    for (const [next, example] of graph.get(node) ?? []) {
      path.push(example);
      if (next === start) return true;
      if (!seen.has(next)) {
        seen.add(next);
        if (visit(next)) return true;
      }
      path.pop();
    }
    return false;
  };
  return visit(start) ? path : null;
}

Deno.test("src/ folders import one way: no folder reaches itself through its imports", async () => {
  const graph = await folderGraph();
  assert.ok(graph.size > 5, "the import scan found the folders");
  const cycles: string[] = [];
  for (const folder of [...graph.keys()].sort()) {
    const c = cycleThrough(graph, folder);
    if (c !== null) cycles.push(`${folder}: ${c.join(", ")}`);
  }
  assert.deepEqual(cycles, []);
});
