/**
 * Embedding lookup and its scatter-add backward on the GPU; twins of src/kernels/ref/embedding.ts.
 * ids (N) i32, table (V,C), out (N,C).
 *
 * Backward without atomics (WGSL has no float atomic add) and in the ref's order: a first pass
 * finds, for each position n, the next position with the same id (or -1) and whether n is the
 * first of its id; then one invocation per (first position, column) walks that chain, adding the
 * rows into dtable in ascending n, exactly as the ref loop does.
 */
import { type GpuArray, type GpuRuntime, groups1d } from "./runtime.js";
import { declare, ENTRY_1D, GROUP_1D, mapKernel } from "./wgsl.js";

const FORWARD = mapKernel(
  ["C: u32"],
  [{ name: "ids", int: true }, { name: "table" }, { name: "out", write: true }],
  "let row = i / p.C; @out = table[p.o_table + u32(ids[p.o_ids + row]) * p.C + i % p.C];",
);

/** chain[n] = next position with ids[n]'s id, or -1; chain[N + n] = 1 when n is its id's first position */
const CHAINS = `${declare(
  ["N: u32"],
  [
    { name: "ids", int: true },
    { name: "chain", int: true, write: true },
  ],
)}
@compute @workgroup_size(256)
fn main(${ENTRY_1D}) {
  ${GROUP_1D}
  let n = group * 256u + lid;
  if (n >= p.N) { return; }
  let id = ids[p.o_ids + n];
  var next = -1;
  for (var k = n + 1u; k < p.N; k = k + 1u) { if (ids[p.o_ids + k] == id) { next = i32(k); break; } }
  var first = 1;
  for (var k = 0u; k < n; k = k + 1u) { if (ids[p.o_ids + k] == id) { first = 0; break; } }
  chain[p.o_chain + n] = next;
  chain[p.o_chain + p.N + n] = first;
}`;

const SCATTER = `${declare(["N: u32", "C: u32"], [{ name: "ids", int: true }, { name: "chain", int: true }, { name: "dout" }, { name: "dtable", write: true }])}
@compute @workgroup_size(256)
fn main(${ENTRY_1D}) {
  ${GROUP_1D}
  let i = group * 256u + lid;
  if (i >= p.N * p.C) { return; }
  let n = i / p.C;
  let c = i % p.C;
  if (chain[p.o_chain + p.N + n] == 0) { return; }
  let o = p.o_dtable + u32(ids[p.o_ids + n]) * p.C + c;
  var s = dtable[o];
  var k = i32(n);
  loop {
    s = s + dout[p.o_dout + u32(k) * p.C + c];
    k = chain[p.o_chain + u32(k)];
    if (k < 0) { break; }
  }
  dtable[o] = s;
}`;

export function embeddingForward(rt: GpuRuntime, out: GpuArray, ids: GpuArray, table: GpuArray, N: number, C: number): void {
  rt.run(FORWARD, groups1d(N * C, 256), [{ u32: N * C }, { u32: C }], [ids, table], [out]);
}

export function embeddingBackward(rt: GpuRuntime, dtable: GpuArray, dout: GpuArray, ids: GpuArray, N: number, C: number): void {
  if (N === 0) return;
  const chain = rt.alloc(2 * N);
  rt.run(CHAINS, groups1d(N, 256), [{ u32: N }], [ids], [chain]);
  rt.run(SCATTER, groups1d(N * C, 256), [{ u32: N }, { u32: C }], [ids, chain, dout], [dtable]);
  rt.release(chain);
}
