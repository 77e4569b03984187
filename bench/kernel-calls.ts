// What one kernel call costs besides its arithmetic: the wasm backend's dispatch (arrays to heap
// pointers, the wrapper, the split decision) on calls too small to split, and a round trip through
// the kernel pool (post a task to a helper, wait for its done flag) with the helper sleeping between
// tasks (the default) and looking for work (MINIGPT_WASM_SPIN=1). Times are µs per call: the best of
// the rounds, or the median of 300 single calls 2 ms apart. A step of nanoGPT's CPU recipe makes
// ~400-600 backend calls on the main thread.
//
//   node --import tsx bench/kernel-calls.ts [--calls N] [--rounds R]
import { loadWasmBackend } from "../src/kernels/wasm/loader.js";
import { WorkerPool } from "../src/kernels/wasm/pool.js";
import { compile } from "../src/kernels/wasm/runtime.js";
import { heap } from "../src/tensor/memory.js";
import { arg, expectArgs } from "./args.js";
import { median } from "./stats.js";

expectArgs("bench/kernel-calls.ts", ["calls", "rounds"]);
const calls = Number(arg("calls", "200000"));
const rounds = Number(arg("rounds", "3"));

const f32 = (n: number) => new Float32Array(heap().memory.buffer, heap().alloc(n * 4), n).fill(0.5);
const x = f32(16);
const y = f32(16);
const out = f32(16);

/** best µs per call of fn over the rounds */
function time(n: number, fn: () => void): number {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn();
    best = Math.min(best, ((performance.now() - t0) / n) * 1000);
  }
  return best;
}

const be = await loadWasmBackend({ threads: 1 });
const results: Record<string, number> = {
  "scale, 16 floats (one direct call)": time(calls, () => be.scale(x, 16, 1)),
  "add, 16 floats (one direct call)": time(calls, () => be.add(out, x, y, 16)),
  "geluForward, 16 floats (split decision, one call)": time(calls, () => be.geluForward(out, x, 16)),
  "matmul 4x4x4 (tasks, scratch, one call)": time(calls, () => be.matmul(out, x, y, 4, 4, 4, false)),
};
be.dispose();

const module = await compile("plain");
for (const spin of [false, true]) {
  const before = process.env.MINIGPT_WASM_SPIN;
  process.env.MINIGPT_WASM_SPIN = spin ? "1" : "0";
  const pool = await WorkerPool.create(1, module, heap().memory, ["accumulate"]);
  if (before === undefined) delete process.env.MINIGPT_WASM_SPIN;
  else process.env.MINIGPT_WASM_SPIN = before;
  const tasks = [
    [out.byteOffset, x.byteOffset, 4],
    [y.byteOffset, x.byteOffset, 4],
  ];
  const local = () => {};
  const n = Math.max(200, Math.floor(calls / 100));
  results[`pool round trip, helper ${spin ? "looking (MINIGPT_WASM_SPIN=1)" : "sleeping"}, back to back`] = time(n, () =>
    pool.run("accumulate", tasks, local),
  );
  // 2 ms between calls, as between a step's split calls: a sleeping helper is asleep again by then
  const each: number[] = [];
  for (let i = 0; i < 300; i++) {
    const t = performance.now();
    while (performance.now() - t < 2);
    const t0 = performance.now();
    pool.run("accumulate", tasks, local);
    each.push((performance.now() - t0) * 1000);
  }
  results[`pool round trip, helper ${spin ? "looking" : "sleeping"}, 2 ms apart (median)`] = median(each);
  pool.dispose();
}

for (const [what, us] of Object.entries(results)) console.log(`${us.toFixed(2).padStart(9)} µs  ${what}`);
