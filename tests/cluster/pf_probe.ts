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
 * Deno's `WebSocket` over `wss:` (2.9.6) can keep the end of the last message it sent inside its
 * TLS layer: the send completes and `bufferedAmount` drops to 0 once rustls has taken the
 * bytes, but when the socket was full at that moment nothing writes them out until the next
 * send (denoland/deno#36862; `ServerWebSocket::write_frame` in ext/websocket never flushes,
 * tokio-rustls' `poll_write` returns with ciphertext still buffered). A probe that then only
 * waits never sees the echo of that message: it was the "exactly 64 KiB short" of issue 10. So
 * after its last message, and while it waits, the probe sends an empty message now and then:
 * that send pushes out whatever was held, and the kubelet skips empty messages
 * (`wsstream.Conn.handle`: `if len(data) == 0 { continue }`, as does the stand-in).
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
  /** Data-channel payload bytes sent (bulk mode). */
  sentBytes?: number;
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
  const EMPTY = new Uint8Array(0);
  let nudger: ReturnType<typeof setInterval> | undefined;
  /** Empty messages every 200 ms from now on: see the module doc. */
  const nudge = () => {
    nudger ??= setInterval(() => {
      if (ws.readyState === WebSocket.OPEN && ws.bufferedAmount === 0) ws.send(EMPTY);
    }, 200);
  };
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
        result.sentBytes = sent;
      }
      if (sent < total && ws.readyState === WebSocket.OPEN) setTimeout(pump, 1);
      else nudge();
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
      else if (send) {
        ws.send(new Uint8Array([0, ...new TextEncoder().encode(send)]));
        nudge();
      }
    }
  };
  ws.onerror = (e) => {
    result.error = (e as ErrorEvent).message;
  };
  ws.onclose = (e) => {
    clearInterval(nudger);
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
