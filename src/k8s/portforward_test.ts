import assert from "node:assert/strict";
import { PortForwardDemux, portForwardUrl } from "./portforward.ts";

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
