import assert from "node:assert/strict";
import { makePki } from "../../tests/cluster/pki.ts";
import type { ClusterAccess } from "./access.ts";
import {
  FLUSH_NUDGE_DELAYS_MS,
  MAX_ERROR_TEXT,
  openPortForward,
  PortForwardDemux,
  portForwardUrl,
} from "./portforward.ts";

Deno.test("PortForwardDemux drops each channel's port header and splits data from errors", () => {
  const d = new PortForwardDemux();
  assert.deepEqual(d.message(new Uint8Array([0, 0x91, 0x1f])), { type: "none" });
  assert.deepEqual(d.message(new Uint8Array([1, 0x91, 0x1f])), { type: "none" });
  assert.deepEqual(d.message(new Uint8Array([0, 1, 2, 3])), {
    type: "data",
    data: new Uint8Array([1, 2, 3]),
  });
  const err = d.message(new Uint8Array([1, ...new TextEncoder().encode("connection refused")]));
  assert.deepEqual(err, { type: "error", text: "connection refused" });
});

Deno.test("PortForwardDemux copes with a port header split over messages and data after it", () => {
  const d = new PortForwardDemux();
  assert.deepEqual(d.message(new Uint8Array([0, 0x91])), { type: "none" });
  assert.deepEqual(d.message(new Uint8Array([0, 0x1f, 9])), {
    type: "data",
    data: new Uint8Array([9]),
  });
  assert.deepEqual(d.message(new Uint8Array([])), { type: "none" });
  assert.throws(() => d.message(new Uint8Array([2, 0])), TypeError);
});

Deno.test("portForwardUrl() builds the WebSocket URL of the subresource", () => {
  assert.equal(
    portForwardUrl("https://10.0.0.1:6443/prefix", {
      namespace: "kconnect",
      pod: "tm-1",
      port: 8081,
    }),
    "wss://10.0.0.1:6443/prefix/api/v1/namespaces/kconnect/pods/tm-1/portforward?ports=8081",
  );
});

/**
 * A TLS WebSocket sink for port-forward, in Python so its receive buffer can be small
 * (`SO_RCVBUF` 64 KiB, which Deno's listeners cannot set) and full most of the time: the
 * handshake, the two port headers, then reading 16 KiB per millisecond, echoing every data
 * frame back from a second thread. For each connection it prints how many data-channel bytes
 * had come when the client, once it had started sending, had been quiet for 1.5 s.
 */
const SLOW_SINK = `
import base64, hashlib, queue, socket, ssl, struct, sys, threading, time
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
ls.bind(("127.0.0.1", 0))
ls.listen(8)
print(ls.getsockname()[1], flush=True)
out = threading.Lock()
def serve(raw):
    s = ctx.wrap_socket(raw, server_side=True)
    head = b""
    while b"\\r\\n\\r\\n" not in head:
        head += s.recv(4096)
    key = [l.split(b":", 1)[1].strip() for l in head.split(b"\\r\\n")
           if l.lower().startswith(b"sec-websocket-key:")][0]
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    s.sendall(b"HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n"
              b"Sec-WebSocket-Accept: " + accept + b"\\r\\nSec-WebSocket-Protocol: v4.channel.k8s.io\\r\\n\\r\\n")
    s.sendall(bytes([0x82, 3, 0, 0x91, 0x1F, 0x82, 3, 1, 0x91, 0x1F]))
    echo = queue.Queue()
    def writer():
        while True:
            frame = echo.get()
            try:
                s.sendall(frame)
            except OSError:
                return
    threading.Thread(target=writer, daemon=True).start()
    buf, got = b"", 0
    s.settimeout(30)
    while True:
        try:
            data = s.recv(16384)
        except socket.timeout:
            break
        if not data:
            break
        buf += data
        while len(buf) >= 2:
            n, h = buf[1] & 0x7F, 2
            if n == 126:
                if len(buf) < 4: break
                n, h = struct.unpack(">H", buf[2:4])[0], 4
            elif n == 127:
                if len(buf) < 10: break
                n, h = struct.unpack(">Q", buf[2:10])[0], 10
            if len(buf) < h + 4 + n: break
            mask, body = buf[h:h + 4], buf[h + 4:h + 4 + n]
            if buf[0] & 0x0F == 2 and n > 1 and body[0] ^ mask[0] == 0:
                got += n - 1
                s.settimeout(1.5)
                echo.put(bytes([0x82, 127]) + struct.pack(">Q", n) + bytes(n))
            buf = buf[h + 4 + n:]
        time.sleep(0.001)
    with out:
        print(got, flush=True)
while True:
    raw, _ = ls.accept()
    threading.Thread(target=serve, args=(raw,), daemon=True).start()
`;

Deno.test({
  name: "openPortForward() gets every written byte to the server once writes stop (Deno's wss " +
    "WebSocket keeps the end of a send in its TLS buffer until something is sent again)",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "kc-pf-flush-" });
  const pki = await makePki(dir, { serverIps: ["127.0.0.1"] });
  const sink = new Deno.Command("python3", {
    args: ["-c", SLOW_SINK, pki.serverCertFile, pki.serverKeyFile],
    stdout: "piped",
  }).spawn();
  const lines = sink.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  const nextLine = async (): Promise<string> => {
    while (!pending.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error("the sink exited");
      pending += value;
    }
    const i = pending.indexOf("\n");
    const line = pending.slice(0, i);
    pending = pending.slice(i + 1);
    return line;
  };
  const httpClient = Deno.createHttpClient({ caCerts: [pki.caPem] });
  try {
    const port = Number(await nextLine());
    const access: ClusterAccess = {
      server: `https://127.0.0.1:${port}`,
      context: "test",
      clusterName: "test",
      userName: "test",
      namespace: "default",
      source: "test",
      headers: () => Promise.resolve({}),
      httpClient,
    };
    const total = 64 * 65536;
    const short: number[] = [];
    const attempt = async () => {
      const pf = await openPortForward(access, { namespace: "ns", pod: "pod", port: 8081 });
      const reading = (async () => {
        const buf = new Uint8Array(65536);
        while (await pf.read(buf) !== null) { /* the echo is not what is measured */ }
      })().catch(() => {});
      const chunk = new Uint8Array(65536);
      for (let sent = 0; sent < total; sent += chunk.length) await pf.write(chunk);
      return { pf, reading };
    };
    // Without the fix about one connection in eight lost its last 64 KiB message here, so this
    // test failed in about half of its runs (6 of 12); the fake WebSocket test below fails every
    // time. Four at a time, three times.
    for (let round = 0; round < 3; round++) {
      const conns = await Promise.all([0, 1, 2, 3].map(attempt));
      for (const _ of conns) {
        const got = Number(await nextLine());
        if (got !== total) short.push(total - got);
      }
      for (const { pf, reading } of conns) {
        pf.close();
        await reading;
      }
    }
    assert.deepEqual(short, [], "bytes that never reached the server, per attempt");
  } finally {
    sink.kill();
    await sink.status;
    httpClient.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A stand-in for the global `WebSocket` that records what is sent and lets a test decide when the
 * transport has taken it (`bufferedAmount`). */
class FakeWebSocket {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  static last: FakeWebSocket | null = null;
  readyState = FakeWebSocket.CONNECTING;
  protocol = "";
  binaryType = "blob";
  bufferedAmount = 0;
  readonly sent: Uint8Array[] = [];
  onopen: ((e: Event) => void) | null = null;
  onmessage: ((e: MessageEvent) => void) | null = null;
  onclose: ((e: CloseEvent) => void) | null = null;
  onerror: ((e: Event) => void) | null = null;
  constructor() {
    FakeWebSocket.last = this;
    setTimeout(() => {
      this.readyState = FakeWebSocket.OPEN;
      this.protocol = "v4.channel.k8s.io";
      this.onopen?.(new Event("open"));
    }, 0);
  }
  send(data: Uint8Array): void {
    this.sent.push(data.slice());
    this.bufferedAmount += data.length;
  }
  close(): void {
    this.readyState = FakeWebSocket.CLOSED;
    this.onclose?.(new CloseEvent("close", { code: 1000 }));
  }
  /** Messages sent that were empty. */
  get empties(): number {
    return this.sent.filter((m) => m.length === 0).length;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` with the global `WebSocket` replaced by {@linkcode FakeWebSocket}, on one port-forward. */
async function withFakeWebSocket(
  fn: (pf: Awaited<ReturnType<typeof openPortForward>>, ws: FakeWebSocket) => Promise<void>,
): Promise<void> {
  const real = globalThis.WebSocket;
  globalThis.WebSocket = FakeWebSocket as unknown as typeof WebSocket;
  try {
    const access = {
      server: "https://127.0.0.1:1",
      headers: () => Promise.resolve({}),
      httpClient: {} as Deno.HttpClient,
    } as ClusterAccess;
    const pf = await openPortForward(access, { namespace: "ns", pod: "pod", port: 8081 });
    await fn(pf, FakeWebSocket.last!);
  } finally {
    globalThis.WebSocket = real;
  }
}

Deno.test("openPortForward() sends an empty message once writes go quiet and the queue has drained, again later, and never while busy or after close", async () => {
  await withFakeWebSocket(async (pf, ws) => {
    await pf.write(new Uint8Array([1, 2, 3]));
    assert.deepEqual(ws.sent, [new Uint8Array([0, 1, 2, 3])]);
    // The transport has not taken the frame yet: nothing else is sent.
    await sleep(80);
    assert.equal(ws.empties, 0, "an empty message while the write was still queued");
    // Taken: the first one follows within a few milliseconds, then the later ones.
    ws.bufferedAmount = 0;
    await sleep(30);
    assert.equal(ws.empties, 1);
    await sleep(700);
    assert.equal(ws.empties, FLUSH_NUDGE_DELAYS_MS.length);
    await sleep(700);
    assert.equal(ws.empties, FLUSH_NUDGE_DELAYS_MS.length, "more than one round per quiet spell");
    // A new write starts a new round; close ends it.
    await pf.write(new Uint8Array([4]));
    ws.bufferedAmount = 0;
    await sleep(30);
    assert.equal(ws.empties, FLUSH_NUDGE_DELAYS_MS.length + 1);
    pf.close();
    await sleep(100);
    assert.equal(ws.empties, FLUSH_NUDGE_DELAYS_MS.length + 1);
    assert.deepEqual(ws.sent.filter((m) => m.length > 0), [
      new Uint8Array([0, 1, 2, 3]),
      new Uint8Array([0, 4]),
    ]);
  });
});

Deno.test("openPortForward() keeps at most MAX_ERROR_TEXT of error-channel text however much comes", async () => {
  await withFakeWebSocket(async (pf, ws) => {
    const msg = (bytes: number[]) =>
      ws.onmessage?.(new MessageEvent("message", { data: new Uint8Array(bytes).buffer }));
    msg([1, 0x91, 0x1f]); // the error channel's port header
    const line = new TextEncoder().encode("x".repeat(1000));
    for (let i = 0; i < 1000; i++) msg([1, ...line]); // 1 MB of error text
    ws.close();
    const text = await pf.closed;
    assert.ok(text !== null && text.length <= MAX_ERROR_TEXT + 1, `kept ${text?.length} chars`);
    assert.ok(text.startsWith("xxxx"));
  });
});

Deno.test("openPortForward() readChunk() hands out each message's own bytes, at most max at a time, then end of stream", async () => {
  await withFakeWebSocket(async (pf, ws) => {
    const msg = (bytes: number[]) =>
      ws.onmessage?.(new MessageEvent("message", { data: new Uint8Array(bytes).buffer }));
    msg([0, 0x91, 0x1f]); // the data channel's port header
    msg([0, 1, 2, 3, 4, 5]);
    msg([0, 6]);
    const first = await pf.readChunk!(4);
    assert.deepEqual(first, new Uint8Array([1, 2, 3, 4]));
    const second = await pf.readChunk!(100);
    assert.deepEqual(second, new Uint8Array([5]));
    // Each chunk is a view of its own message: the one handed out first is still intact.
    assert.notEqual(first!.buffer, (await pf.readChunk!(100))!.buffer);
    assert.deepEqual(first, new Uint8Array([1, 2, 3, 4]));
    ws.close();
    assert.equal(await pf.readChunk!(100), null);
  });
});
