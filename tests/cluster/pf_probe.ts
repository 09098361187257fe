/**
 * A port-forward WebSocket client for fixture tests, run inside the laptop namespace: opens
 * `pods/{name}/portforward?ports=N` with Deno's WebSocket (`v4.channel.k8s.io`, bearer token,
 * the test CA through `Deno.createHttpClient`), sends a text on the data channel, and prints
 * one JSON object: the negotiated protocol, every message received (channel and text or
 * bytes) and the close code.
 *
 * ```sh
 * deno run -A tests/cluster/pf_probe.ts <url> <token> <ca-file> <send-text> [wait-ms]
 * ```
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
}

if (import.meta.main) {
  const [url, token, caFile, send, waitMs] = Deno.args;
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
  ws.onmessage = (e) => {
    const d = new Uint8Array(e.data as ArrayBuffer);
    result.messages.push({
      channel: d[0],
      bytes: Array.from(d.subarray(1, 9)),
      text: new TextDecoder().decode(d.subarray(1)),
    });
    // After both port headers, send the payload once.
    if (++headers === 2 && send) ws.send(new Uint8Array([0, ...new TextEncoder().encode(send)]));
  };
  ws.onerror = (e) => {
    result.error = (e as ErrorEvent).message;
  };
  ws.onclose = (e) => {
    result.closeCode = e.code;
    done.resolve();
  };
  const timer = setTimeout(() => ws.close(), Number(waitMs ?? 1500));
  await done.promise;
  clearTimeout(timer);
  console.log(JSON.stringify(result));
  client.close();
}
