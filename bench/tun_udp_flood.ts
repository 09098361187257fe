// deno-lint-ignore-file no-console
/**
 * Benchmark helper for bench/tun_io.ts: sends UDP datagrams as fast as one core allows, with
 * synchronous FFI `send(2)` on a connected socket, so they are routed into the TUN under test.
 *
 * Usage: `deno run -A bench/tun_udp_flood.ts <ipv4> <port> <payload-bytes> <seconds>`; prints
 * `{"sent":…,"errors":…,"seconds":…}`.
 *
 * @module
 */

const libc = Deno.dlopen("libc.so.6", {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
}).symbols;

const [host, port, size, seconds] = Deno.args;
const fd = libc.socket(2, 2, 0); // AF_INET, SOCK_DGRAM
if (fd < 0) throw new Error("socket failed");
const addr = new Uint8Array(16);
const view = new DataView(addr.buffer);
view.setUint16(0, 2, true);
view.setUint16(2, Number(port), false);
addr.set(host.split(".").map(Number), 4);
if (libc.connect(fd, addr, 16) < 0) throw new Error(`connect to ${host}:${port} failed`);

const payload = new Uint8Array(Number(size)).fill(0x6b);
const length = BigInt(payload.length);
const deadline = performance.now() + Number(seconds) * 1000;
let sent = 0;
let errors = 0;
const started = performance.now();
while (true) {
  for (let i = 0; i < 1024; i++) {
    if (libc.send(fd, payload, length, 0) < 0n) errors++;
    else sent++;
  }
  if (performance.now() >= deadline) break;
}
libc.close(fd);
console.log(JSON.stringify({ sent, errors, seconds: (performance.now() - started) / 1000 }));
