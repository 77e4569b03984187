// The LM head of a batched decode step from wte packed once (dev/kernel-variants/head-packed-wte.patch:
// packHeadRows, headPacked) against the shipped row-major kernel (matmulRows kind 1, 8 streams), one
// thread, its half of GPT-2's vocabulary, in turns; outputs compared bit for bit first. With the patch
// applied and built (npm run build:wasm):
//   node --no-liftoff --import tsx dev/kernel-variants/head-packed-ab.ts   (M=8 N=512 ROUNDS=400: rows, vocabulary, rounds)
import { readFileSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
setFlagsFromString("--experimental-wasm-relaxed-simd");
const memory = new WebAssembly.Memory({ initial: 4096, maximum: 65536, shared: true });
const { instance } = await WebAssembly.instantiate(readFileSync("src/kernels/wasm/build/kernels-relaxed.wasm"), { env: { memory } });
const k = instance.exports as Record<string, (...a: number[]) => number>;
let top = 1 << 20;
const alloc = (floats: number) => { const p = top; top += (floats * 4 + 63) & ~63; if (top > memory.buffer.byteLength) memory.grow(Math.ceil((top - memory.buffer.byteLength) / 65536)); return p; };
const M = Number(process.env.M ?? 16), K = 768, N = Number(process.env.N ?? 25128);
const a = alloc(M * K), b = alloc(N * K), bp = alloc(N * K), o1 = alloc(M * N), o2 = alloc(M * N);
const fill = (p: number, n: number) => { const v = new Float32Array(memory.buffer, p, n); for (let i = 0; i < n; i++) v[i] = Math.sin(i * 0.37 + p); };
fill(a, M * K); fill(b, N * K);
k.packHeadRows(bp, b, K, N);
const n8 = N & ~7;
k.matmulRows(1, o1, a, b, M, K, N, K, 0, 0, N, 0);
k.headPacked(o2, a, bp, M, K, 0, n8, N);
const v1 = new Float32Array(memory.buffer, o1, M * N), v2 = new Float32Array(memory.buffer, o2, M * N);
let diff = 0;
for (let i = 0; i < M; i++) for (let j = 0; j < n8; j++) diff = Math.max(diff, Math.abs(v1[i * N + j] - v2[i * N + j]));
console.log("max diff", diff);
const t: number[][] = [[], []];
for (let r = 0; r < Number(process.env.ROUNDS ?? 15); r++) {
  let t0 = performance.now(); k.matmulRows(1, o1, a, b, M, K, N, K, 0, 0, n8, 0); t[0].push(performance.now() - t0);
  t0 = performance.now(); k.headPacked(o2, a, bp, M, K, 0, n8, N); t[1].push(performance.now() - t0);
}
const med = (x: number[]) => [...x].sort((p, q) => p - q)[x.length >> 1];
const gf = (ms: number) => (2 * M * K * n8) / ms / 1e6;
const ratios = t[0].map((x, i) => x / t[1][i]).sort((p, q) => p - q);
console.log(`M ${M} N ${N}: shipped ${med(t[0]).toFixed(2)} ms (${gf(med(t[0])).toFixed(1)} GF/s), packed ${med(t[1]).toFixed(2)} ms (${gf(med(t[1])).toFixed(1)} GF/s), shipped/packed median ${ratios[ratios.length >> 1].toFixed(3)} (${ratios[0].toFixed(2)}-${ratios[ratios.length - 1].toFixed(2)})`);
