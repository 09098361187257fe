/**
 * A raw port-forward WebSocket client for the stand-in's backpressure test, run inside the
 * laptop namespace: it opens `pods/{name}/portforward` (`v4.channel.k8s.io`) over its own TLS
 * connection, so it controls exactly when it reads and writes, then for `seconds`:
 *
 * - `upload`: writes data-channel messages (64 KiB, masked) as fast as the connection takes them
 *   and never reads: what it managed to write shows how much the path buffered for a pod that
 *   does not read;
 * - `download`: reads nothing at all: the pod's own count of what it sent shows how much the path
 *   buffered for a client that does not read.
 *
 * Prints one JSON line: `{ "status": <handshake status>, "written": <bytes> }`.
 *
 * ```sh
 * deno run -A tests/cluster/pf_stall.ts <host> <port> <path> <token> <ca-file> upload|download <seconds>
 * ```
 *
 * @module
 */
// deno-lint-ignore-file no-console -- prints its result for the test that runs it

if (import.meta.main) {
  const [hostname, port, path, token, caFile, mode, seconds] = Deno.args;
  const conn = await Deno.connectTls({
    hostname,
    port: Number(port),
    caCerts: [await Deno.readTextFile(caFile)],
  });
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  const request = [
    `GET ${path} HTTP/1.1`,
    `Host: ${hostname}:${port}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Key: ${key}`,
    "Sec-WebSocket-Version: 13",
    "Sec-WebSocket-Protocol: v4.channel.k8s.io",
    `Authorization: Bearer ${token}`,
    "",
    "",
  ].join("\r\n");
  await conn.write(new TextEncoder().encode(request));
  // The response head only (the port headers may follow in the same read; they are small).
  let head = "";
  const buf = new Uint8Array(4096);
  while (!head.includes("\r\n\r\n")) {
    const n = await conn.read(buf);
    if (n === null) break;
    head += new TextDecoder().decode(buf.subarray(0, n));
  }
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
  let written = 0;
  const deadline = Date.now() + Number(seconds) * 1000;
  if (status === 101 && mode === "upload") {
    // One binary frame: FIN + opcode 2, masked (zero mask: payload as is), 64-bit length;
    // payload = channel 0 + 64 KiB.
    const payload = 1 + 65536;
    const frame = new Uint8Array(2 + 8 + 4 + payload);
    frame[0] = 0x82;
    frame[1] = 0x80 | 127;
    new DataView(frame.buffer).setBigUint64(2, BigInt(payload));
    let stalled = false;
    while (!stalled && Date.now() < deadline) {
      let off = 0;
      while (off < frame.length) {
        const left = deadline - Date.now();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const n = await Promise.race([
          conn.write(frame.subarray(off)),
          new Promise<null>((r) => timer = setTimeout(() => r(null), Math.max(left, 0))),
        ]);
        clearTimeout(timer);
        if (n === null) {
          stalled = true;
          break;
        }
        off += n;
        written += n;
      }
    }
  } else if (status === 101) {
    await new Promise((r) => setTimeout(r, Math.max(deadline - Date.now(), 0)));
  }
  console.log(JSON.stringify({ status, written }));
  // A write may still be pending: exit without waiting for it.
  Deno.exit(0);
}
