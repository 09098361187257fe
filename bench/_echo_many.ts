// deno-lint-ignore-file no-console -- a bench helper: its output is its interface
/**
 * A TCP echo server for many idle connections (bench/vs_portforward.ts `--scale`, run in the
 * cluster namespace on a pod's address): a 256-byte buffer per connection (netprobe's
 * `echo-server` reads into 64 KiB, 640 MB at 10,000 connections), accept errors (EMFILE, …)
 * reported on stderr and survived. Prints `listening` when ready.
 *
 *   deno run -A bench/_echo_many.ts 10.244.0.12 7300
 *
 * @module
 */

const [hostname, port] = [Deno.args[0], Number(Deno.args[1])];
const listener = Deno.listen({ hostname, port });
console.log("listening");

async function echo(c: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(256);
  try {
    for (;;) {
      const n = await c.read(buf);
      if (n === null) break;
      for (let o = 0; o < n;) o += await c.write(buf.subarray(o, n));
    }
  } catch { /* reset by the peer */ }
  try {
    c.close();
  } catch { /* closed */ }
}

let lastError = "";
for (;;) {
  let c: Deno.Conn;
  try {
    c = await listener.accept();
  } catch (err) {
    const msg = (err as Error).message;
    if (msg !== lastError) console.error(`accept: ${msg}`);
    lastError = msg;
    await new Promise((r) => setTimeout(r, 50));
    continue;
  }
  echo(c);
}
