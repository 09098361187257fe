/**
 * A port-forward WebSocket client for fixture tests, run inside the laptop namespace: opens
 * `pods/{name}/portforward?ports=N` with Deno's WebSocket (`v4.channel.k8s.io`, bearer token,
 * the test CA through `Deno.createHttpClient`), sends a text on the data channel, and prints
 * one JSON object: the negotiated protocol, every message received (channel and text or
 * bytes) and the close code.
 *
 * ```sh
 * deno run -A tests/cluster/pf_probe.ts <url> <token> <ca-file> <send-text> [wait-ms] [bytes]
 * ```
 *
 * With `bytes`, it instead streams that many bytes (64 KiB messages, keeping
 * `bufferedAmount` under 4 MiB) to an echo server, closes once all came back, and reports
 * the count and the time; only the first few messages are kept.
 *
 * @module
 */
// deno-lint-ignore-file no-console -- prints its result for the test that runs it

/** What the probe prints. */
export interface ProbeResult {
  protocol: string;
  messages: { channel: number; bytes: number[]; text: string }[];
  closeCode: number | null;
  error?: string;
  /** Data-channel bytes received after the port header (bulk mode). */
  echoedBytes?: number;
  seconds?: number;
}

if (import.meta.main) {
  const [url, token, caFile, send, waitMs, bulk] = Deno.args;
  const total = Number(bulk ?? 0);
  let echoed = 0;
  const t0 = performance.now();
  const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(caFile)] });
  const result: ProbeResult = { protocol: "", messages: [], closeCode: null };
  const ws = new WebSocket(url, {
    protocols: ["v4.channel.k8s.io"],
    headers: { Authorization: `Bearer ${token}` },
    client,
  });
  ws.binaryType = "arraybuffer";
  const done = Promise.withResolvers<void>();
  let headers = 0;
  ws.onopen = () => {
    result.protocol = ws.protocol;
  };
  const stream = () => {
    const chunk = new Uint8Array(65537);
    let sent = 0;
    const pump = () => {
      while (sent < total && ws.readyState === WebSocket.OPEN && ws.bufferedAmount < 4 << 20) {
        const n = Math.min(65536, total - sent);
        ws.send(n === 65536 ? chunk : chunk.subarray(0, n + 1));
        sent += n;
      }
      if (sent < total && ws.readyState === WebSocket.OPEN) setTimeout(pump, 1);
    };
    pump();
  };
  ws.onmessage = (e) => {
    const d = new Uint8Array(e.data as ArrayBuffer);
    if (total && headers >= 2 && d[0] === 0) {
      echoed += d.length - 1;
      if (echoed >= total) {
        result.seconds = (performance.now() - t0) / 1000;
        ws.close();
      }
      return;
    }
    if (result.messages.length < 16) {
      result.messages.push({
        channel: d[0],
        bytes: Array.from(d.subarray(1, 9)),
        text: new TextDecoder().decode(d.subarray(1)),
      });
    }
    // After both port headers, send the payload once.
    if (++headers === 2) {
      if (total) stream();
      else if (send) ws.send(new Uint8Array([0, ...new TextEncoder().encode(send)]));
    }
  };
  ws.onerror = (e) => {
    result.error = (e as ErrorEvent).message;
  };
  ws.onclose = (e) => {
    result.closeCode = e.code;
    if (total) result.echoedBytes = echoed;
    done.resolve();
  };
  const timer = setTimeout(() => ws.close(), Number(waitMs || 1500));
  await done.promise;
  clearTimeout(timer);
  console.log(JSON.stringify(result));
  client.close();
}
