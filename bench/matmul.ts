// Matmul GFLOP/s per shape: ref, wasm on 1 thread, wasm on 2 threads. Every backend's result is
// checked against ref (|diff| <= 1e-6·K·max|A|·max|B|) before it is timed; a median of several runs.
//   node --import tsx bench/matmul.ts [--quick]
// Shapes: the matmuls of nanoGPT's CPU recipe (B·T = 768 rows, C = 128, 3C, 4C, V = 65) in the layout
// each appears in during training, plus 4096x256x1024. Each shape's 1-thread figure is also given as
// a fraction of an in-cache 128x256x128 matmul timed in the same turns ("of peak"): this VM's speed
// swings by up to 2x from minute to minute, the fraction much less.
import { availableParallelism, cpus } from "node:os";
import type { Backend } from "../src/kernels/backend.js";
import { refBackend } from "../src/kernels/ref/index.js";
import { loadWasmBackend, type WasmBackend } from "../src/kernels/wasm/loader.js";
import { Rng } from "../src/random.js";
import { heap } from "../src/tensor/memory.js";
import { expectArgs } from "./args.js";
import { median } from "./stats.js";

expectArgs("bench/matmul.ts", [], ["quick"]);

type Kind = "matmul" | "matmulBT" | "matmulAT";
interface Shape {
  label: string;
  kind: Kind;
  M: number;
  K: number;
  N: number;
}

const R = 768;
const C = 128;
const V = 65;
const SHAPES: Shape[] = [
  { label: "qkv = x·W", kind: "matmul", M: R, K: C, N: 3 * C },
  { label: "attn proj", kind: "matmul", M: R, K: C, N: C },
  { label: "fc = x·W", kind: "matmul", M: R, K: C, N: 4 * C },
  { label: "mlp proj", kind: "matmul", M: R, K: 4 * C, N: C },
  { label: "logits = x·wteᵀ", kind: "matmulBT", M: R, K: C, N: V },
  { label: "dx = dy·Wᵀ (fc)", kind: "matmulBT", M: R, K: 4 * C, N: C },
  { label: "dx = dy·Wᵀ (qkv)", kind: "matmulBT", M: R, K: 3 * C, N: C },
  { label: "dW = xᵀ·dy (fc)", kind: "matmulAT", M: C, K: R, N: 4 * C },
  { label: "dW = xᵀ·dy (proj)", kind: "matmulAT", M: 4 * C, K: R, N: C },
  { label: "dx = dlogits·wte", kind: "matmul", M: R, K: V, N: C },
  { label: "big", kind: "matmul", M: 4096, K: 256, N: 1024 },
  { label: "big", kind: "matmulBT", M: 4096, K: 256, N: 1024 },
  { label: "big", kind: "matmulAT", M: 4096, K: 256, N: 1024 },
];

const quick = process.argv.includes("--quick");
const PEAK = [128, 256, 128] as const;

function f32(n: number): Float32Array {
  const p = heap().alloc(n * 4);
  return new Float32Array(heap().memory.buffer, p, n);
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

/** how many calls of fn take >= minMs (after one warm-up call) */
function calibrate(fn: () => void, minMs: number): number {
  fn();
  let reps = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) fn();
    const dt = performance.now() - t0;
    if (dt >= minMs) return reps;
    reps = Math.max(reps * 2, Math.ceil((reps * minMs) / Math.max(dt, 0.01)));
  }
}

/** seconds per call of one sample of `reps` calls */
function sample(fn: () => void, reps: number): number {
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) fn();
  return (performance.now() - t0) / reps / 1000;
}

/**
 * Median seconds per call of each function, their samples taken in turns (f0, f1, f0, f1, ...), and
 * the median of the per-turn ratios t0/t1: this machine's speed drifts over seconds, and a ratio of
 * two neighbouring samples cancels most of the drift that separate runs would put into it.
 */
function timeTurns(fns: (() => void)[], samples: number, minMs: number): { sec: number[]; ratio: number; turns: number[][] } {
  const reps = fns.map((fn) => calibrate(fn, minMs));
  const t: number[][] = fns.map(() => []);
  for (let s = 0; s < samples; s++) for (const [i, fn] of fns.entries()) t[i]?.push(sample(fn, reps[i] as number));
  const t0 = t[0] as number[];
  const t1 = t[1] ?? t0;
  return { sec: t.map(median), ratio: median(t0.map((x, i) => x / (t1[i] as number))), turns: t };
}

async function main(): Promise<void> {
  const one = await loadWasmBackend({ threads: 1 });
  const two = await loadWasmBackend({ threads: 2 });
  const rng = new Rng(7);
  // the in-cache reference: A (128x256), B (256x128) and out stay in L1/L2, so it runs at what the
  // 4x8 micro-kernel gives on this core at the moment (the machine's speed swings by minutes)
  const [pm, pk, pn] = PEAK;
  const pa = f32(pm * pk).fill(0.5);
  const pb = f32(pk * pn).fill(0.25);
  const po = f32(pm * pn);
  const peak = { flops: 2 * pm * pk * pn, run: () => one.matmul(po, pa, pb, pm, pk, pn, false) };
  const cpu = cpus()[0]?.model ?? "?";
  console.log(
    `matmul GFLOP/s  (${cpu}, ${availableParallelism()} cores, Node ${process.version}, wasm ${one.simd} SIMD, ${one.tile} matmul tile)`,
  );
  console.log(
    `validated against ref before timing; median of ${quick ? 5 : 9} samples, 1T and 2T in turns; 2T/1T = median of the per-turn ratios;\n` +
      `"of peak": 1T GF/s over that of an in-cache ${PEAK.join("x")} matmul on 1 thread timed in the same turns (what the kernel gives in those seconds)\n`,
  );
  const head = `${"shape".padEnd(20)} ${"layout".padEnd(9)} ${"M x K x N".padEnd(17)} ${"ref".padStart(7)} ${"wasm 1T".padStart(8)} ${"wasm 2T".padStart(8)} ${"2T/1T".padStart(6)} ${"of peak".padStart(8)}`;
  console.log(head);
  console.log("-".repeat(head.length));
  for (const s of SHAPES) {
    const { M, K, N, kind } = s;
    const aLen = M * K;
    const a = f32(aLen);
    const b = f32(K * N);
    for (let i = 0; i < a.length; i++) a[i] = rng.random() * 2 - 1;
    for (let i = 0; i < b.length; i++) b[i] = rng.random() * 2 - 1;
    const want = f32(M * N);
    refBackend[kind](want, a, b, M, K, N, false);
    const tol = 1e-6 * K * maxAbs(a) * maxAbs(b) + 1e-30;
    const flops = 2 * M * K * N;
    const check = (be: Backend): Float32Array => {
      const out = f32(M * N);
      be[kind](out, a, b, M, K, N, false);
      for (let i = 0; i < out.length; i++) {
        if (!(Math.abs((out[i] as number) - (want[i] as number)) <= tol)) {
          throw new Error(`${be.name} ${kind} ${M}x${K}x${N}: element ${i} is ${out[i]}, ref ${want[i]}`);
        }
      }
      return out;
    };
    const samples = quick ? 5 : 9;
    const minMs = quick ? 20 : 60;
    let r = Number.NaN;
    if (!(quick && flops > 3e8)) {
      const out = check(refBackend);
      r = flops / (timeTurns([() => refBackend[kind](out, a, b, M, K, N, false)], 3, minMs).sec[0] as number) / 1e9;
    }
    // 1 and 2 threads in turns; 2T/1T is the median of the per-turn ratios
    const o1 = check(one);
    const o2 = check(two);
    const tt = timeTurns([() => one[kind](o1, a, b, M, K, N, false), () => two[kind](o2, a, b, M, K, N, false), peak.run], samples, minMs);
    const w1 = flops / (tt.sec[0] as number) / 1e9;
    const w2 = flops / (tt.sec[1] as number) / 1e9;
    const [t1, , tp] = tt.turns as [number[], number[], number[]];
    const ofPeak = median(t1.map((x, i) => flops / x / (peak.flops / (tp[i] as number))));
    const fmt = (x: number, w: number, digits = 1) => (Number.isNaN(x) ? "-" : x.toFixed(digits)).padStart(w);
    console.log(
      `${s.label.padEnd(20)} ${kind.padEnd(9)} ${`${M}x${K}x${N}`.padEnd(17)} ${fmt(r, 7)} ${fmt(w1, 8)} ${fmt(w2, 8)} ${fmt(tt.ratio, 6)} ${fmt(ofPeak, 8, 2)}`,
    );
  }
  for (const be of [one, two] as WasmBackend[]) {
    if (be.stats.fallback !== 0) throw new Error("wasm fell back to ref");
    be.dispose();
  }
}

await main();
