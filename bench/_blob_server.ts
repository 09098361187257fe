// deno-lint-ignore-file no-console
/**
 * HTTP server for bench/vs_portforward.ts, run in the cluster's namespace at a pod's IP:
 * `GET /blob` answers `size` bytes, anything else 64 bytes (keep-alive).
 *
 *   deno run -A bench/_blob_server.ts HOST PORT SIZE
 *
 * @module
 */
const [host, port, size] = Deno.args;
const blob = new Uint8Array(Number(size)).fill(0x61);
const small = new Uint8Array(64).fill(0x62);
Deno.serve(
  { hostname: host, port: Number(port), onListen: () => console.log("listening") },
  (req) => new Response(new URL(req.url).pathname === "/blob" ? blob : small),
);
