import assert from "node:assert/strict";
import { TupleTable } from "./tuple_table.ts";

const a = new Uint8Array([10, 0, 0, 1]);
const b = new Uint8Array([10, 96, 0, 5]);
const c = new Uint8Array([10, 96, 0, 6]);

Deno.test("TupleTable.get() tells apart tuples that share ports", () => {
  const t = new TupleTable();
  const e1 = { srcAddr: a, srcPort: 4000, dstAddr: b, dstPort: 80 };
  const e2 = { srcAddr: a, srcPort: 4000, dstAddr: c, dstPort: 80 };
  t.add(e1);
  t.add(e2);
  assert.equal(t.size, 2);
  assert.equal(t.get(a, 4000, b, 80), e1);
  assert.equal(t.get(a, 4000, c, 80), e2);
  assert.equal(t.get(a, 4001, b, 80), undefined);
  assert.equal(t.get(b, 4000, a, 80), undefined);
  assert.ok(t.delete(e1));
  assert.ok(!t.delete(e1));
  assert.equal(t.get(a, 4000, b, 80), undefined);
  assert.equal(t.get(a, 4000, c, 80), e2);
  assert.deepEqual(t.values(), [e2]);
});

Deno.test("TupleTable.get() never matches across address families", () => {
  const t = new TupleTable();
  const v6 = new Uint8Array(16);
  t.add({ srcAddr: v6, srcPort: 1, dstAddr: v6, dstPort: 2 });
  assert.equal(t.get(new Uint8Array(4), 1, new Uint8Array(4), 2), undefined);
});

Deno.test("TupleTable.add() gives entries one shared copy of each address, not the caller's view", () => {
  const t = new TupleTable();
  const packet = new Uint8Array([10, 0, 0, 1, 10, 96, 0, 5]);
  const e1 = {
    srcAddr: packet.subarray(0, 4),
    srcPort: 4000,
    dstAddr: packet.subarray(4),
    dstPort: 80,
  };
  const e2 = { srcAddr: a.slice(), srcPort: 4001, dstAddr: c, dstPort: 80 };
  t.add(e1);
  t.add(e2);
  assert.notEqual(e1.srcAddr.buffer, packet.buffer, "a copy, not a view of the packet");
  assert.equal(e2.srcAddr, e1.srcAddr, "one array for the same address");
  packet.fill(0); // the packet's buffer is reused for the next one
  assert.equal(t.get(a, 4000, b, 80), e1);
  assert.ok(t.delete(e1));
  assert.deepEqual([...e1.dstAddr], [...b], "a deleted entry keeps its addresses");
  assert.equal(t.get(a, 4001, c, 80), e2);
});
