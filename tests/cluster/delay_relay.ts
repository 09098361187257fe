// deno-lint-ignore-file no-console
/**
 * A TCP relay that adds a fixed one-way delay in each direction, standing in for a distant API
 * server (tc netem is not available on these machines). Data is pipelined, not stop-and-wait:
 * each chunk leaves `delay` ms after it arrived, in order, and a bounded queue per direction
 * holds the sender back like a real path's buffers would.
 *
 *   deno run -A tests/cluster/delay_relay.ts --listen 0.0.0.0:7443 --to 127.0.0.1:6443 --delay 10
 *
 * Prints `listening` when ready.
 *
 * @module
 */

function arg(name: string, fallback?: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  const v = i >= 0 ? Deno.args[i + 1] : fallback;
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
}

function hostPort(text: string): { hostname: string; port: number } {
  const i = text.lastIndexOf(":");
  return { hostname: text.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(text.slice(i + 1)) };
}

const listen = hostPort(arg("listen"));
const to = hostPort(arg("to"));
const delay = Number(arg("delay", "10"));
/** Bytes in flight per direction before the reader waits: ample for gigabit × 10 ms. */
const QUEUE_BYTES = 32 << 20;

async function pump(from: Deno.Conn, dst: Deno.Conn): Promise<void> {
  const queue: { at: number; data: Uint8Array }[] = [];
  let queued = 0;
  let readerDone = false;
  const wake: { writer?: () => void; reader?: () => void } = {};
  const writer = (async () => {
    try {
      await writeQueued();
    } catch {
      // The far side went away: stop reading, drop what is queued.
      readerDone = true;
      queue.length = 0;
      wake.reader?.();
      try {
        from.close();
      } catch { /* closed */ }
    }
    await dst.closeWrite().catch(() => {});
  })();
  async function writeQueued(): Promise<void> {
    for (;;) {
      if (queue.length === 0) {
        if (readerDone) break;
        await new Promise<void>((r) => wake.writer = r);
        continue;
      }
      const head = queue[0];
      const wait = head.at - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      queue.shift();
      let off = 0;
      while (off < head.data.length) off += await dst.write(head.data.subarray(off));
      queued -= head.data.length;
      wake.reader?.();
    }
  }
  try {
    while (!readerDone) {
      while (queued > QUEUE_BYTES && !readerDone) await new Promise<void>((r) => wake.reader = r);
      const buf = new Uint8Array(65536);
      const n = await from.read(buf);
      if (n === null) break;
      queue.push({ at: performance.now() + delay, data: buf.subarray(0, n) });
      queued += n;
      wake.writer?.();
    }
  } catch { /* reset */ }
  readerDone = true;
  wake.writer?.();
  await writer.catch(() => {});
}

const listener = Deno.listen(listen);
console.log("listening");
for await (const client of listener) {
  (async () => {
    let server: Deno.Conn;
    try {
      server = await Deno.connect(to);
    } catch {
      client.close();
      return;
    }
    client.setNoDelay(true);
    (server as Deno.TcpConn).setNoDelay(true);
    await Promise.all([pump(client, server), pump(server, client)]);
    for (const c of [client, server]) {
      try {
        c.close();
      } catch { /* closed */ }
    }
  })();
}
