// Where a CPU-recipe step's time goes, kernel by kernel: nanoGPT's CPU recipe trained on one thread
// with two shards (each shard is what one thread of the 2-thread data-parallel step runs), every
// wasm kernel call timed alone. Per kernel: calls a step and ms a step (the median over the steps of
// each step's sum; and, holding on a loaded machine, the sum over the step's distinct calls, same
// kernel and same arguments, of each one's 25th-percentile time over the steps),
// the matmul's GFLOP/s, and the step's time outside every kernel (JavaScript, the optimizer's driver).
//
//   node --import tsx bench/step-kernels.ts [--steps 40]
import { backend } from "../src/index.js";
import { arg, expectArgs } from "./args.js";
import { shardStep } from "./shard-step.js";
import { median } from "./stats.js";

expectArgs("bench/step-kernels.ts", ["steps"], []);
const steps = Number(arg("steps", "40"));

const { step, dispose } = await shardStep();

type Exports = Record<string, (...a: number[]) => number>;
const be = backend() as unknown as { x: Exports };
const own = be.x;
/** per kernel: each call's ms, and the current step's sum; per distinct call (kernel and arguments): its times */
const calls = new Map<string, number[]>();
const sites = new Map<string, { k: string; t: number[] }>();
const stepSum = new Map<string, number>();
let matmulFlops = 0;
be.x = new Proxy({} as Exports, {
  get(_, prop) {
    const f = Reflect.get(own, prop) as unknown;
    if (typeof prop !== "string" || typeof f !== "function" || prop.endsWith("Bytes")) return f;
    return (...a: number[]) => {
      const s = performance.now();
      const v = (f as (...x: number[]) => number)(...a);
      const dt = performance.now() - s;
      const c = calls.get(prop) ?? [];
      calls.set(prop, c);
      c.push(dt);
      // same kernel, same integer arguments (pointers, sizes; not a float such as AdamW's step size)
      const id = `${prop}(${a.filter(Number.isInteger).join(",")})`;
      const site = sites.get(id) ?? { k: prop, t: [] };
      sites.set(id, site);
      site.t.push(dt);
      stepSum.set(prop, (stepSum.get(prop) ?? 0) + dt);
      // matmul(kind, out, a, b, M, K, N, ...)
      if (prop === "matmul") matmulFlops += 2 * (a[4] as number) * (a[5] as number) * (a[6] as number);
      return v;
    };
  },
});

for (let i = 0; i < 5; i++) step();
calls.clear();
sites.clear();
stepSum.clear();
matmulFlops = 0;
const perStep = new Map<string, number[]>();
const wall: number[] = [];
for (let i = 0; i < steps; i++) {
  stepSum.clear();
  const s = performance.now();
  step();
  wall.push(performance.now() - s);
  let inKernels = 0;
  for (const [k, v] of stepSum) {
    perStep.set(k, [...(perStep.get(k) ?? []), v]);
    inKernels += v;
  }
  perStep.set("(outside kernels)", [...(perStep.get("(outside kernels)") ?? []), (wall.at(-1) as number) - inKernels]);
}
dispose();

const q = (xs: number[], f: number) => [...xs].sort((a, b) => a - b)[Math.floor(f * (xs.length - 1))] as number;
const p25 = new Map<string, number>();
for (const { k, t } of sites.values()) p25.set(k, (p25.get(k) ?? 0) + (q(t, 0.25) * t.length) / steps);
const rows = [...perStep].map(([k, v]) => ({ k, n: (calls.get(k)?.length ?? 0) / steps, med: median(v), p25: p25.get(k) ?? 0 }));
rows.sort((a, b) => b.med - a.med);
const total = median(wall);
console.log(
  `nanoGPT CPU recipe, 1 thread, 2 shards, ${steps} steps: step median ${total.toFixed(2)} ms (min ${Math.min(...wall).toFixed(2)})`,
);
console.log("kernel                    calls/step   ms/step (median)   Σ calls' p25   share");
for (const r of rows) {
  console.log(
    `${r.k.padEnd(26)}${r.n.toFixed(0).padStart(8)}${r.med.toFixed(3).padStart(15)}${r.p25.toFixed(3).padStart(16)}${((100 * r.med) / total).toFixed(1).padStart(8)}%`,
  );
}
const mm = median(perStep.get("matmul") ?? [0]);
// the matmul by layout and shape: out (M,N) (+)= a·b, kind 0 a·b, 1 a·bᵀ, 2 aᵀ·b
const shapes = new Map<string, { n: number; ms: number; flops: number }>();
for (const [id, { k, t }] of sites) {
  if (k !== "matmul") continue;
  const a = id.slice(7, -1).split(",").map(Number);
  const key = `${["a·b", "a·bᵀ", "aᵀ·b"][a[0] as number]} ${a[4]}x${a[5]}x${a[6]}`;
  const s = shapes.get(key) ?? { n: 0, ms: 0, flops: 0 };
  s.n += t.length / steps;
  s.ms += (q(t, 0.25) * t.length) / steps;
  s.flops = 2 * (a[4] as number) * (a[5] as number) * (a[6] as number);
  shapes.set(key, s);
}
console.log("matmul (M x K x N)        calls/step   Σ calls' p25 ms   GFLOP/s at p25");
for (const [key, s] of [...shapes].sort((x, y) => y[1].ms - x[1].ms)) {
  console.log(
    `${key.padEnd(26)}${s.n.toFixed(0).padStart(8)}${s.ms.toFixed(3).padStart(15)}${((s.flops * s.n) / s.ms / 1e6).toFixed(1).padStart(14)}`,
  );
}
console.log(
  `matmul: ${(matmulFlops / steps / 1e9).toFixed(3)} GFLOP a step, ${(matmulFlops / steps / 1e6 / mm).toFixed(1)} GFLOP/s (packing included)`,
);
process.exit(0);
