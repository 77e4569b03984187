// The kernel-vs-ref cases that both tests/kernels-wasm.test.ts (Node) and the browser page
// tests/browser/kernels.ts run: each function runs one family of kernels on `be` and on refBackend
// for the shapes it is given, and hands every pair of outputs with its tolerance to `check` (the
// Node test asserts in it, the page collects a report). No Node API: it is compiled for the page.
//
// Tolerances (fp32 kernels vs the float64-accumulating reference, stored as f32):
// - matmul:       |diff| <= 1e-6 · K · max|A| · max|B|  (+ 1e-6 · max|out before| when accumulating)
// - elementwise:  |diff| <= 1e-6 · |ref|  (+ a floor of 1e-6 · scale of the op's inputs where an
//                 exp/cancellation makes a purely relative bound meaningless near 0: gelu, layernorm)
// - reductions in rows (softmax, cross-entropy, attention): |diff| <= 1e-6 · (row length) · max|ref|
import type { Backend } from "../src/kernels/backend.js";
import { refBackend } from "../src/kernels/ref/index.js";
import type { Rng } from "../src/random.js";
import { copy, f32, i32, maxAbs, rand } from "./kernel-data.js";

/** got must be within rel·|want| + abs of want, elementwise */
export type Check = (what: string, got: ArrayLike<number>, want: ArrayLike<number>, rel: number, abs: number) => void;

/** matmul, matmulBT and matmulAT, overwriting and accumulating, for each [M, K, N] */
export function matmulCases(be: Backend, rng: Rng, shapes: [number, number, number][], check: Check): void {
  for (const [M, K, N] of shapes) {
    for (const kind of ["matmul", "matmulBT", "matmulAT"] as const) {
      for (const acc of [false, true]) {
        const a = rand(rng, M * K, 2);
        const b = rand(rng, K * N, 0.5);
        const init = rand(rng, M * N, 3);
        const got = copy(init);
        const want = new Float32Array(init);
        be[kind](got, a, b, M, K, N, acc);
        refBackend[kind](want, a, b, M, K, N, acc);
        const tol = 1e-6 * K * maxAbs(a) * maxAbs(b) + (acc ? 1e-6 * maxAbs(init) : 0) + 1e-30;
        check(`${kind} ${M}x${K}x${N} acc=${acc}`, got, want, 0, tol);
      }
    }
  }
}

/** gelu and relu, forward and (accumulating) backward, and gelu with its derivative, for each length n */
export function activationCases(be: Backend, rng: Rng, sizes: number[], check: Check): void {
  for (const n of sizes) {
    const x = rand(rng, n, 6);
    x[0] = 0;
    const o = f32(n);
    const wo = new Float32Array(n);
    be.geluForward(o, x, n);
    refBackend.geluForward(wo, x, n);
    // exp's argument carries f32 rounding: a floor of 1e-6·|x|·e^{-|x|}-sized absolute error
    check(`geluForward ${n}`, o, wo, 1e-6, 1e-7);
    const dout = rand(rng, n);
    const dx0 = rand(rng, n);
    const g = copy(dx0);
    const wg = new Float32Array(dx0);
    be.geluBackward(g, x, dout, n);
    refBackend.geluBackward(wg, x, dout, n);
    check(`geluBackward ${n}`, g, wg, 1e-6, 1e-6);
    // geluForwardGrad: gelu and gelu' in one pass, in place over a copy of x; gelu exactly as
    // geluForward computes it, gelu'·dout as geluBackward adds it into zeros
    const fo = f32(n);
    const fd = copy(x);
    be.geluForwardGrad(fo, fd, fd, n);
    check(`geluForwardGrad out ${n}`, fo, o, 0, 0);
    const wfo = new Float32Array(n);
    const wfd = new Float32Array(n);
    refBackend.geluForwardGrad(wfo, wfd, x, n);
    check(`geluForwardGrad dgelu ${n}`, fd, wfd, 1e-6, 1e-6);
    const viaGrad = f32(n);
    be.mul(viaGrad, fd, dout, n);
    const viaBackward = f32(n);
    be.zero(viaBackward, n);
    be.geluBackward(viaBackward, x, dout, n);
    check(`geluForwardGrad dgelu·dout ${n}`, viaGrad, viaBackward, be.name === "ref" ? 1e-6 : 0, 0);

    const r = f32(n);
    const wr = new Float32Array(n);
    be.reluForward(r, x, n);
    refBackend.reluForward(wr, x, n);
    check(`reluForward ${n}`, r, wr, 0, 0);
    const rg = copy(dx0);
    const wrg = new Float32Array(dx0);
    be.reluBackward(rg, x, dout, n);
    refBackend.reluBackward(wrg, x, dout, n);
    check(`reluBackward ${n}`, rg, wrg, 1e-6, 0);
  }
}

/** layernorm forward, and backward accumulating into non-zero gradients, for each [N, C] */
export function layernormCases(be: Backend, rng: Rng, shapes: [number, number][], check: Check): void {
  for (const [N, C] of shapes) {
    const x = rand(rng, N * C, 2);
    for (let i = 0; i < N * C; i++) x[i] = (x[i] as number) + 0.5;
    const w = rand(rng, C);
    const b = rand(rng, C);
    const out = f32(N * C);
    const mean = f32(N);
    const rstd = f32(N);
    const wout = new Float32Array(N * C);
    const wmean = new Float32Array(N);
    const wrstd = new Float32Array(N);
    be.layernormForward(out, mean, rstd, x, w, b, N, C, 1e-5);
    refBackend.layernormForward(wout, wmean, wrstd, x, w, b, N, C, 1e-5);
    check(`layernorm mean ${N}x${C}`, mean, wmean, 1e-6, 1e-7);
    check(`layernorm rstd ${N}x${C}`, rstd, wrstd, 1e-6, 0);
    check(`layernorm out ${N}x${C}`, out, wout, 1e-6, 1e-6 * maxAbs(wout));

    const dout = rand(rng, N * C);
    const dx0 = rand(rng, N * C);
    const dw0 = rand(rng, C);
    const db0 = rand(rng, C);
    const dx = copy(dx0);
    const dw = copy(dw0);
    const db = copy(db0);
    const wdx = new Float32Array(dx0);
    const wdw = new Float32Array(dw0);
    const wdb = new Float32Array(db0);
    be.layernormBackward(dx, dw, db, dout, x, w, copy(wmean), copy(wrstd), N, C);
    refBackend.layernormBackward(wdx, wdw, wdb, dout, x, w, wmean, wrstd, N, C);
    const s = maxAbs(wrstd) * maxAbs(w);
    check(`layernorm dx ${N}x${C}`, dx, wdx, 1e-6, 1e-6 * (4 * s + 1));
    check(`layernorm dw ${N}x${C}`, dw, wdw, 1e-6, 1e-6 * N * 4);
    check(`layernorm db ${N}x${C}`, db, wdb, 1e-6, 1e-6 * N);
  }
}

/** softmax, and cross-entropy forward (some targets ignored) and backward, for each [N, V] */
export function softmaxCrossEntropyCases(be: Backend, rng: Rng, shapes: [number, number][], check: Check): void {
  for (const [N, V] of shapes) {
    const x = rand(rng, N * V, 8);
    const o = f32(N * V);
    const wo = new Float32Array(N * V);
    be.softmax(o, x, N, V);
    refBackend.softmax(wo, x, N, V);
    check(`softmax ${N}x${V}`, o, wo, 1e-6, 1e-6 * maxAbs(wo));

    const targets = i32(N);
    for (let n = 0; n < N; n++) targets[n] = n % 3 === 2 ? -1 : rng.int(V);
    const losses = f32(N);
    const lse = f32(N);
    const wl = new Float32Array(N);
    const wlse = new Float32Array(N);
    be.crossEntropyForward(losses, lse, x, targets, N, V);
    refBackend.crossEntropyForward(wl, wlse, x, targets, N, V);
    check(`crossEntropy lse ${N}x${V}`, lse, wlse, 1e-6, 1e-6);
    check(`crossEntropy loss ${N}x${V}`, losses, wl, 1e-6, 1e-6 * maxAbs(wlse));

    const d0 = rand(rng, N * V);
    const d = copy(d0);
    const wd = new Float32Array(d0);
    be.crossEntropyBackward(d, x, copy(wlse), targets, N, V, 0.25);
    refBackend.crossEntropyBackward(wd, x, wlse, targets, N, V, 0.25);
    check(`crossEntropyBackward ${N}x${V}`, d, wd, 1e-6, 1e-6 * 0.25);
  }
}

/**
 * causal attention forward (out and lse) and backward, for each [B, T, C, nh]; and again with the
 * forward keeping its probabilities for the backward (probs): the same out and lse, probabilities
 * (row t's entries 0..t; not checked with keepsProbs false: a device backend may recompute them) and
 * a backward within the tolerances of the reference's; and a backward told to overwrite dqkv
 */
export function attentionCases(be: Backend, rng: Rng, shapes: [number, number, number, number][], check: Check, keepsProbs = true): void {
  for (const [B, T, C, nh] of shapes) {
    const qkv = rand(rng, B * T * 3 * C, 1.5);
    const out = f32(B * T * C);
    const lse = f32(B * nh * T);
    const wout = new Float32Array(B * T * C);
    const wlse = new Float32Array(B * nh * T);
    be.attentionForward(out, lse, qkv, B, T, C, nh);
    refBackend.attentionForward(wout, wlse, qkv, B, T, C, nh);
    const hs = C / nh;
    const tol = 1e-6 * (hs + T) * maxAbs(qkv);
    check(`attentionForward ${B},${T},${C},${nh} out`, out, wout, 0, tol);
    check(`attentionForward ${B},${T},${C},${nh} lse`, lse, wlse, 0, tol * maxAbs(qkv));

    const dout = rand(rng, B * T * C);
    const d0 = rand(rng, B * T * 3 * C);
    const d = copy(d0);
    const wd = new Float32Array(d0);
    be.attentionBackward(d, dout, qkv, copy(wout), copy(wlse), B, T, C, nh);
    refBackend.attentionBackward(wd, dout, qkv, wout, wlse, B, T, C, nh);
    const s = maxAbs(qkv);
    const dtol = 1e-6 * (hs + T) * s * s * s + 1e-6;
    check(`attentionBackward ${B},${T},${C},${nh}`, d, wd, 0, dtol);

    const probs = f32(B * nh * T * T);
    const wprobs = new Float32Array(B * nh * T * T);
    const pout = f32(B * T * C);
    const plse = f32(B * nh * T);
    be.attentionForward(pout, plse, qkv, B, T, C, nh, probs);
    refBackend.attentionForward(new Float32Array(B * T * C), new Float32Array(B * nh * T), qkv, B, T, C, nh, wprobs);
    check(`attentionForward ${B},${T},${C},${nh} out, keeping probs`, pout, out, 0, 0);
    check(`attentionForward ${B},${T},${C},${nh} lse, keeping probs`, plse, lse, 0, 0);
    const causal = (p: Float32Array) => p.filter((_, i) => i % T <= Math.floor(i / T) % T);
    if (keepsProbs) {
      check(`attentionForward ${B},${T},${C},${nh} probs`, causal(probs), causal(wprobs), 0, 1e-6 * T);
      // each row a distribution over its t + 1 keys (what a forward that kept nothing would fail)
      const sums = Array.from({ length: B * nh * T }, (_, r) => probs.subarray(r * T, r * T + (r % T) + 1).reduce((a, p) => a + p, 0));
      check(`attentionForward ${B},${T},${C},${nh} probs' row sums`, sums, new Float32Array(sums.length).fill(1), 0, 1e-6 * T);
    }
    const pd = copy(d0);
    const wpd = new Float32Array(d0);
    be.attentionBackward(pd, dout, qkv, pout, plse, B, T, C, nh, probs);
    refBackend.attentionBackward(wpd, dout, qkv, wout, wlse, B, T, C, nh, wprobs);
    check(`attentionBackward ${B},${T},${C},${nh} from probs`, pd, wpd, 0, dtol);
    check(`attentionBackward ${B},${T},${C},${nh} from probs vs recomputed`, pd, wd, 0, dtol);

    // overwrite (dqkv =): over any values, what += into zeros gives, kept probs or not
    for (const p of [null, probs]) {
      const zeros = f32(B * T * 3 * C).fill(0);
      be.attentionBackward(zeros, dout, qkv, pout, plse, B, T, C, nh, p);
      const junk = rand(rng, B * T * 3 * C, 9);
      be.attentionBackward(junk, dout, qkv, pout, plse, B, T, C, nh, p, true);
      check(`attentionBackward ${B},${T},${C},${nh} overwriting${p ? ", from probs" : ""}`, junk, zeros, 0, 0);
    }
  }
}

/**
 * sampleTemperature (one draw from softmax(logits / T), read in place) against the float64
 * definition, for each vocabulary size V and temperature: a drawn id k must have u in
 * [F(k-1), F(k)) of the ref's float64 cumulative distribution F to within 1e-5 (fp32 rounding of the
 * probabilities), over a grid of uniform draws (so the counts follow the distribution), draws near 0
 * and near 1; plus the edges: -Infinity logits (suppressed ids, the last ones too) are never drawn,
 * a one-hot row always draws its id. The ref kernel must also draw the ref ids exactly.
 */
export function sampleTemperatureCases(be: Backend, rng: Rng, sizes: number[], check: Check): void {
  const fused = be.sampleTemperature?.bind(be);
  const refDraw = refBackend.sampleTemperature as NonNullable<Backend["sampleTemperature"]>;
  if (!fused) throw new Error("the backend has no sampleTemperature");
  const us = [0, 1e-12, 0.5, 1 - 1e-9, 1 - 2 ** -53, ...Array.from({ length: 64 }, (_, j) => (j + 0.5) / 64)];
  for (const V of sizes) {
    for (const T of [1, 0.7, 2.5]) {
      const x = rand(rng, V, 8);
      if (V > 4) {
        x[V - 1] = -Infinity; // suppressed ids: the last one too, where a sliver of rounding falls back to
        x[V >> 1] = -Infinity;
      }
      // the float64 cumulative distribution
      let max = -Infinity;
      for (let i = 0; i < V; i++) max = Math.max(max, (x[i] as number) / T);
      let sum = 0;
      for (let i = 0; i < V; i++) sum += Math.exp((x[i] as number) / T - max);
      const cum = new Float64Array(V + 1);
      for (let i = 0; i < V; i++) cum[i + 1] = (cum[i] as number) + Math.exp((x[i] as number) / T - max) / sum;
      const off: number[] = [];
      for (const u of us) {
        const k = fused(x, V, T, u);
        const want = refDraw(x, V, T, u);
        if (k < 0 || k >= V || x[k] === -Infinity) throw new Error(`sampleTemperature V=${V} T=${T} u=${u}: drew ${k}`);
        // how far u is outside [F(k-1), F(k)) (the last id with mass takes what rounding leaves near 1)
        const hi = k === want || u < (cum[k + 1] as number) ? 0 : u - (cum[k + 1] as number);
        off.push(Math.max(0, (cum[k] as number) - u, hi));
      }
      check(`sampleTemperature V=${V} T=${T}: u outside the drawn id's interval`, off, new Array(off.length).fill(0), 0, 1e-5);
    }
    // one-hot: every draw is that id
    const hot = f32(V).fill(-Infinity);
    const at = rng.int(V);
    hot[at] = 3;
    const ids = us.map((u) => fused(hot, V, 0.8, u));
    check(`sampleTemperature V=${V} one-hot`, ids, new Array(ids.length).fill(at), 0, 0);
  }
}
