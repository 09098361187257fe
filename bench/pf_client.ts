// deno-lint-ignore-file no-console
/**
 * A per-connection port-forward client written like `kubectl port-forward` (the baseline of
 * bench/vs_portforward.ts): it listens on a local port and, for each accepted TCP connection,
 * opens one `v4.channel.k8s.io` port-forward WebSocket to the pod through the API server
 * (src/k8s/portforward.ts's `openPortForward`, which stops writing while more than its high-water
 * mark is queued) and copies both ways with 32 KiB reads (Go's `io.Copy`, as kubectl does).
 * Port-forward has no half-close: when the local side ends first, the WebSocket is closed after
 * at most 1 s more of the other direction.
 *
 *   deno run -A bench/pf_client.ts --kubeconfig K --listen 127.0.0.1:15201 \
 *     --namespace default --pod echo-… --port 5201
 *
 * Prints `listening` when ready.
 *
 * @module
 */
import { loadKubeconfig } from "../src/k8s/access.ts";
import { openPortForward, type PortForwardConn } from "../src/k8s/portforward.ts";

function arg(name: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  const v = i >= 0 ? Deno.args[i + 1] : undefined;
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
}

const access = await loadKubeconfig({ kubeconfig: arg("kubeconfig") });
const listen = arg("listen");
const colon = listen.lastIndexOf(":");
const namespace = arg("namespace"), pod = arg("pod"), port = Number(arg("port"));
const BUF = 32 * 1024;

async function toPod(local: Deno.Conn, pf: PortForwardConn): Promise<void> {
  const buf = new Uint8Array(BUF);
  for (;;) {
    const n = await local.read(buf);
    if (n === null) return;
    await pf.write(buf.subarray(0, n));
  }
}

async function fromPod(local: Deno.Conn, pf: PortForwardConn): Promise<void> {
  const buf = new Uint8Array(BUF);
  for (;;) {
    const n = await pf.read(buf);
    if (n === null) return;
    let off = 0;
    while (off < n) off += await local.write(buf.subarray(off, n));
  }
}

async function serve(local: Deno.TcpConn): Promise<void> {
  local.setNoDelay(true);
  let pf: PortForwardConn;
  try {
    pf = await openPortForward(access, { namespace, pod, port });
  } catch (err) {
    console.error((err as Error).message);
    local.close();
    return;
  }
  const down = fromPod(local, pf).catch(() => {});
  const up = toPod(local, pf).catch(() => {});
  await Promise.race([
    down,
    up.then(() => Promise.race([down, new Promise((r) => setTimeout(r, 1000))])),
  ]);
  pf.close();
  try {
    local.close();
  } catch { /* closed */ }
  await Promise.all([up, down]);
}

const listener = Deno.listen({
  hostname: listen.slice(0, colon),
  port: Number(listen.slice(colon + 1)),
});
console.log("listening");
for await (const conn of listener) serve(conn);
