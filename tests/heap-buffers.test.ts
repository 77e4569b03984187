// Telling a view of the tensor heap from any other array: a shared memory hands out a new buffer
// object after each grow, so tensors made before a grow view an older object than memory.buffer.
// The heap records every buffer object its memory hands out (src/tensor/memory.ts isBufferOf), so
// the wasm backend knows such a view by identity, without writing a probe into shared memory.
import assert from "node:assert/strict";
import { test } from "node:test";
import { loadWasmBackend } from "../src/kernels/wasm/loader.js";
import { heap, isBufferOf, WasmHeap } from "../src/tensor/memory.js";

test("a view made before the memory grew is still the heap's; other buffers are not", () => {
  const h = new WasmHeap(2 << 20);
  const old = new Float32Array(h.memory.buffer, h.alloc(64), 16);
  h.alloc(16 << 20); // grows the memory
  assert.notEqual(old.buffer, h.memory.buffer, "the memory handed out a new buffer object");
  assert.ok(isBufferOf(h.memory, old.buffer));
  assert.ok(isBufferOf(h.memory, h.memory.buffer));
  assert.ok(!isBufferOf(h.memory, new SharedArrayBuffer(old.buffer.byteLength)), "a shared buffer of the same size");
  assert.ok(!isBufferOf(h.memory, new ArrayBuffer(64)));
  assert.ok(!isBufferOf(h.memory, new WasmHeap(2 << 20).memory.buffer), "another heap's memory");
});

test("the wasm backend runs kernels on views made before a grow, and falls back on foreign arrays", async () => {
  const be = await loadWasmBackend({ threads: 1 });
  try {
    const n = 64;
    const x = new Float32Array(heap().memory.buffer, heap().alloc(n * 4), n).fill(2);
    const before = heap().memory.buffer;
    heap().release(heap().alloc(heap().memory.buffer.byteLength), heap().memory.buffer.byteLength); // grow
    assert.notEqual(x.buffer, heap().memory.buffer);
    assert.equal(x.buffer, before);
    const { fast, fallback } = be.stats;
    be.scale(x, n, 3);
    assert.deepEqual([be.stats.fast - fast, be.stats.fallback - fallback], [1, 0], "the old view took the wasm path");
    assert.equal(x[n - 1], 6);
    const foreign = new Float32Array(new SharedArrayBuffer(x.buffer.byteLength), x.byteOffset, n).fill(1);
    be.scale(foreign, n, 3);
    assert.equal(be.stats.fallback - fallback, 1, "a foreign shared buffer went to ref");
    assert.equal(foreign[0], 3);
  } finally {
    be.dispose();
  }
});
