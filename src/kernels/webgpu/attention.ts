/**
 * Causal self-attention on the GPU, fused; twin of src/kernels/ref/attention.ts. qkv (B,T,3C) holds
 * [q | k | v] along its last axis, heads (nh, hs) inside each; out (B,T,C); lse (B,nh,T).
 *
 * Forward (flash-attention's shape): a workgroup of 64 invocations takes 64 consecutive queries of
 * one (batch, head); it walks the keys they may see in tiles of KT rows, each tile's k and v loaded
 * once into workgroup memory, and every invocation keeps a running max, sum and output (online
 * softmax), so no (T,T) score matrix exists anywhere. lse = max + log(sum) is saved for backward.
 *
 * Backward, with D_t = do_t·o_t, p = exp(q_t·k_j/√hs - lse_t), ds = p·(do_t·v_j - D_t):
 *   pass 1, per query (the same tiling over keys): dq_t += Σ_j ds·k_j/√hs, and D_t saved;
 *   pass 2, per key (tiles over the queries that see it): dk_j += Σ_t ds·q_t/√hs, dv_j += Σ_t p·do_t.
 * Each output row is summed by one invocation: no atomics, nothing added twice.
 *
 * The head size is a constant of each compiled shader (private arrays need one), so a model's head
 * size compiles once.
 */
import type { GpuArray, GpuRuntime } from "./runtime.js";
import { declare } from "./wgsl.js";

const QUERIES = 64;

/** rows per tile: two tiles of KT·hs floats stay within 16 KiB of workgroup memory (the WebGPU default limit) */
function tileRows(hs: number): number {
  return Math.max(1, Math.min(64, Math.floor(2048 / hs)));
}

function header(hs: number): string {
  return `const HS = ${hs}u;
const KT = ${tileRows(hs)}u;
var<workgroup> tileA: array<f32, ${tileRows(hs) * hs}>;
var<workgroup> tileB: array<f32, ${tileRows(hs) * hs}>;`;
}

const SHAPE = ["B: u32", "T: u32", "C: u32", "nh: u32", "scale: f32"];

/**
 * The entry of the three tiled kernels and what they share: workgroup (x: a block of QUERIES rows,
 * y: batch·head bh = b·nh + h); this invocation's row `row` (a query, or in backward's key pass a
 * key) from `row`0, whether it is inside T, and `base`, where this (b, h)'s q of position 0 is in qkv.
 */
function tiledMain(row: "t" | "j"): string {
  return `@compute @workgroup_size(${QUERIES})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y;
  let b = bh / p.nh;
  let h = bh % p.nh;
  let ${row}0 = wid.x * ${QUERIES}u;
  let ${row} = ${row}0 + lid;
  let C3 = 3u * p.C;
  let base = p.o_qkv + b * p.T * C3 + h * HS;
  let valid = ${row} < p.T;`;
}

/**
 * The walk over the keys the block's queries t0.. may see (forward and backward's query pass), one
 * tile of KT keys at a time: their k into tileA and v into tileB (zeros past T), then a barrier. The
 * loop's body follows, ending in a barrier and the loop's closing brace.
 */
const KEY_TILES = `  let kEnd = min(t0 + ${QUERIES}u, p.T);
  for (var k0 = 0u; k0 < kEnd; k0 += KT) {
    for (var e = lid; e < KT * HS; e += ${QUERIES}u) {
      let j = k0 + e / HS;
      let d = e % HS;
      var kv = 0.0;
      var vv = 0.0;
      if (j < p.T) { kv = qkv[base + j * C3 + p.C + d]; vv = qkv[base + j * C3 + 2u * p.C + d]; }
      tileA[e] = kv;
      tileB[e] = vv;
    }
    workgroupBarrier();`;

function forwardSource(hs: number): string {
  return `${declare(SHAPE, [{ name: "qkv" }, { name: "out", write: true }, { name: "lse", write: true }])}
${header(hs)}
${tiledMain("t")}
  var q: array<f32, HS>;
  var acc: array<f32, HS>;
  if (valid) { for (var d = 0u; d < HS; d++) { q[d] = qkv[base + t * C3 + d]; } }
  var m = -3.4028234e38;
  var l = 0.0;
${KEY_TILES}
    if (valid) {
      for (var jj = 0u; jj < KT; jj++) {
        if (k0 + jj > t) { break; }
        var s = 0.0;
        for (var d = 0u; d < HS; d++) { s = fma(q[d], tileA[jj * HS + d], s); }
        s = s * p.scale;
        if (s > m) {
          let corr = exp(m - s);
          l = l * corr;
          for (var d = 0u; d < HS; d++) { acc[d] = acc[d] * corr; }
          m = s;
        }
        let e = exp(s - m);
        l = l + e;
        for (var d = 0u; d < HS; d++) { acc[d] = fma(e, tileB[jj * HS + d], acc[d]); }
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    let oo = p.o_out + (b * p.T + t) * p.C + h * HS;
    for (var d = 0u; d < HS; d++) { out[oo + d] = acc[d] / l; }
    lse[p.o_lse + bh * p.T + t] = m + log(l);
  }
}`;
}

function backwardQuerySource(hs: number): string {
  return `${declare(SHAPE, [{ name: "dout" }, { name: "qkv" }, { name: "out" }, { name: "lse" }, { name: "dqkv", write: true }, { name: "dd", write: true }])}
${header(hs)}
${tiledMain("t")}
  var q: array<f32, HS>;
  var g: array<f32, HS>;
  var dq: array<f32, HS>;
  var D = 0.0;
  var l = 0.0;
  if (valid) {
    let oo = (b * p.T + t) * p.C + h * HS;
    for (var d = 0u; d < HS; d++) {
      q[d] = qkv[base + t * C3 + d];
      g[d] = dout[p.o_dout + oo + d];
      D = fma(g[d], out[p.o_out + oo + d], D);
    }
    l = lse[p.o_lse + bh * p.T + t];
  }
${KEY_TILES}
    if (valid) {
      for (var jj = 0u; jj < KT; jj++) {
        if (k0 + jj > t) { break; }
        var s = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < HS; d++) {
          s = fma(q[d], tileA[jj * HS + d], s);
          dp = fma(g[d], tileB[jj * HS + d], dp);
        }
        let pr = exp(s * p.scale - l);
        let ds = pr * (dp - D) * p.scale;
        for (var d = 0u; d < HS; d++) { dq[d] = fma(ds, tileA[jj * HS + d], dq[d]); }
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    let qo = p.o_dqkv + (b * p.T + t) * C3 + h * HS;
    for (var d = 0u; d < HS; d++) { dqkv[qo + d] = dqkv[qo + d] + dq[d]; }
    dd[p.o_dd + bh * p.T + t] = D;
  }
}`;
}

function backwardKeySource(hs: number): string {
  return `${declare(SHAPE, [{ name: "dout" }, { name: "qkv" }, { name: "lse" }, { name: "dd" }, { name: "dqkv", write: true }])}
${header(hs)}
var<workgroup> rowL: array<f32, KT>;
var<workgroup> rowD: array<f32, KT>;
${tiledMain("j")}
  var k: array<f32, HS>;
  var v: array<f32, HS>;
  var dk: array<f32, HS>;
  var dv: array<f32, HS>;
  if (valid) {
    for (var d = 0u; d < HS; d++) { k[d] = qkv[base + j * C3 + p.C + d]; v[d] = qkv[base + j * C3 + 2u * p.C + d]; }
  }
  for (var q0 = j0; q0 < p.T; q0 += KT) {
    for (var e = lid; e < KT * HS; e += ${QUERIES}u) {
      let t = q0 + e / HS;
      let d = e % HS;
      var qv = 0.0;
      var gv = 0.0;
      if (t < p.T) { qv = qkv[base + t * C3 + d]; gv = dout[p.o_dout + (b * p.T + t) * p.C + h * HS + d]; }
      tileA[e] = qv;
      tileB[e] = gv;
    }
    for (var e = lid; e < KT; e += ${QUERIES}u) {
      let t = q0 + e;
      if (t < p.T) { rowL[e] = lse[p.o_lse + bh * p.T + t]; rowD[e] = dd[p.o_dd + bh * p.T + t]; }
    }
    workgroupBarrier();
    if (valid) {
      for (var tt = 0u; tt < KT; tt++) {
        let t = q0 + tt;
        if (t >= p.T) { break; }
        if (t < j) { continue; }
        var s = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < HS; d++) {
          s = fma(tileA[tt * HS + d], k[d], s);
          dp = fma(tileB[tt * HS + d], v[d], dp);
        }
        let pr = exp(s * p.scale - rowL[tt]);
        let ds = pr * (dp - rowD[tt]) * p.scale;
        for (var d = 0u; d < HS; d++) {
          dv[d] = fma(pr, tileB[tt * HS + d], dv[d]);
          dk[d] = fma(ds, tileA[tt * HS + d], dk[d]);
        }
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    let ko = p.o_dqkv + (b * p.T + j) * C3 + p.C + h * HS;
    for (var d = 0u; d < HS; d++) {
      dqkv[ko + d] = dqkv[ko + d] + dk[d];
      dqkv[ko + p.C + d] = dqkv[ko + p.C + d] + dv[d];
    }
  }
}`;
}

/**
 * Generation: workgroup (new position i, head h), 64 invocations over the cache rows 0..pos0+i;
 * scores go to a scratch row so the softmax's max and sum are workgroup reductions and the output
 * is summed one dimension per invocation, reading v rows contiguously.
 */
function cachedSource(hs: number): string {
  return `${declare(["Tn: u32", "pos0: u32", "C: u32", "nh: u32", "scale: f32", "L: u32"], [{ name: "qkv" }, { name: "kc" }, { name: "vc" }, { name: "out", write: true }, { name: "sc", write: true }])}
const HS = ${hs}u;
var<workgroup> red: array<f32, 64>;
fn reduce64(v: f32, lid: u32, isMax: bool) -> f32 {
  workgroupBarrier();
  red[lid] = v;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s = s >> 1u) {
    if (lid < s) { if (isMax) { red[lid] = max(red[lid], red[lid + s]); } else { red[lid] = red[lid] + red[lid + s]; } }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let h = wid.x;
  let i = wid.y;
  let pos = p.pos0 + i;
  let qo = p.o_qkv + i * 3u * p.C + h * HS;
  let so = p.o_sc + (i * p.nh + h) * p.L;
  var mx = -3.4028234e38;
  for (var j = lid; j <= pos; j += 64u) {
    let ko = p.o_kc + j * p.C + h * HS;
    var s = 0.0;
    for (var d = 0u; d < HS; d++) { s = fma(qkv[qo + d], kc[ko + d], s); }
    s = s * p.scale;
    sc[so + j] = s;
    mx = max(mx, s);
  }
  let m = reduce64(mx, lid, true);
  var sum = 0.0;
  for (var j = lid; j <= pos; j += 64u) {
    let e = exp(sc[so + j] - m);
    sc[so + j] = e;
    sum = sum + e;
  }
  let total = reduce64(sum, lid, false);
  storageBarrier();
  for (var d = lid; d < HS; d += 64u) {
    var acc = 0.0;
    for (var j = 0u; j <= pos; j++) { acc = fma(sc[so + j], vc[p.o_vc + j * p.C + h * HS + d], acc); }
    out[p.o_out + i * p.C + h * HS + d] = acc / total;
  }
}`;
}

const compiled = new Map<string, string>();
function source(kind: string, hs: number, make: (hs: number) => string): string {
  const key = `${kind} ${hs}`;
  let s = compiled.get(key);
  if (!s) {
    s = make(hs);
    compiled.set(key, s);
  }
  return s;
}

function shape(B: number, T: number, C: number, nh: number) {
  return [{ u32: B }, { u32: T }, { u32: C }, { u32: nh }, { f32: 1 / Math.sqrt(C / nh) }];
}

export function attentionForward(
  rt: GpuRuntime,
  out: GpuArray,
  lse: GpuArray,
  qkv: GpuArray,
  B: number,
  T: number,
  C: number,
  nh: number,
): void {
  const hs = C / nh;
  rt.run(source("fwd", hs, forwardSource), [Math.ceil(T / QUERIES), B * nh], shape(B, T, C, nh), [qkv], [out, lse]);
}

export function attentionBackward(
  rt: GpuRuntime,
  dqkv: GpuArray,
  dout: GpuArray,
  qkv: GpuArray,
  out: GpuArray,
  lse: GpuArray,
  B: number,
  T: number,
  C: number,
  nh: number,
): void {
  const hs = C / nh;
  const D = rt.alloc(B * nh * T);
  const groups: [number, number] = [Math.ceil(T / QUERIES), B * nh];
  rt.run(source("bwdq", hs, backwardQuerySource), groups, shape(B, T, C, nh), [dout, qkv, out, lse], [dqkv, D]);
  rt.run(source("bwdk", hs, backwardKeySource), groups, shape(B, T, C, nh), [dout, qkv, lse, D], [dqkv]);
  rt.release(D);
}

export function attentionCached(
  rt: GpuRuntime,
  out: GpuArray,
  qkv: GpuArray,
  kCache: GpuArray,
  vCache: GpuArray,
  Tn: number,
  pos0: number,
  C: number,
  nh: number,
): void {
  const hs = C / nh;
  const L = pos0 + Tn;
  const scores = rt.alloc(Tn * nh * L);
  const scalars = [{ u32: Tn }, { u32: pos0 }, { u32: C }, { u32: nh }, { f32: 1 / Math.sqrt(hs) }, { u32: L }];
  rt.run(source("cached", hs, cachedSource), [nh, Tn], scalars, [qkv, kCache, vCache], [out, scores]);
  rt.release(scores);
}
