// Two (or more) builds of the wasm kernels A/B-tested INSIDE the training step: bench/kernel-ab.ts
// times a kernel on inputs it just touched (in cache), but in a step a kernel finds its inputs where
// the ops before it left them (attention's qkv was written a layer ago and comes from memory). Here
// the builds are instantiated on the tensor heap's memory and nanoGPT's CPU recipe is trained on one
// thread; each call of the named kernels goes to the builds in turn, timed alone. Reported per kernel:
// each build's 10th percentile, 25th and median of its calls' times. Single calls of a few hundred µs
// are rarely cut by another process's time slice, so the low quantiles hold on a loaded machine where
// whole-step times swing by 2x. The builds must export the named kernels with the same signatures.
//
//   npm run build:wasm && cp src/kernels/wasm/build/kernels-relaxed.wasm /tmp/A.wasm   # baseline
//   ... edit src/kernels/wasm/assembly/*.as, npm run build:wasm, cp ... /tmp/B.wasm
//   node --import tsx bench/kernel-insitu.ts /tmp/A.wasm /tmp/B.wasm [--kernels attentionForward,attentionBackward] [--steps 40]
import { readFileSync } from "node:fs";
import { backend, heap } from "../src/index.js";
import { arg, expectArgs } from "./args.js";
import { shardStep } from "./shard-step.js";

expectArgs("bench/kernel-insitu.ts", ["kernels", "steps"], [], true);
const files = process.argv.slice(2).filter((a) => a.endsWith(".wasm"));
const names = arg("kernels", "attentionForward,attentionBackward").split(",");
const steps = Number(arg("steps", "40"));
if (files.length < 2 || !(steps > 0)) {
  console.error("usage: node --import tsx bench/kernel-insitu.ts A.wasm B.wasm [--kernels K1,K2] [--steps N]");
  process.exit(2);
}

const { step, dispose } = await shardStep();

type Exports = Record<string, (...a: number[]) => number>;
const be = backend() as unknown as { x: Exports; tile: string };
const builds: Exports[] = [];
for (const f of files) {
  const { instance } = await WebAssembly.instantiate(readFileSync(f), { env: { memory: heap().memory } });
  const x = instance.exports as Exports;
  x.setMatmulTile?.(be.tile === "3x12" ? 1 : 0);
  builds.push(x);
}
for (const n of names) if (!builds.every((x) => typeof x[n] === "function")) throw new Error(`a build has no kernel ${n}`);

// the backend looks its kernels up on `x` at each call: hand the named ones to the builds in turn
const times = new Map(names.map((n) => [n, builds.map(() => [] as number[])]));
let turn = 0;
const own = be.x;
be.x = new Proxy({} as Exports, {
  get(_, prop) {
    const t = typeof prop === "string" ? times.get(prop) : undefined;
    if (!t) return Reflect.get(own, prop);
    return (...a: number[]) => {
      const i = turn++ % builds.length;
      const s = performance.now();
      const v = (builds[i] as Exports)[prop as string]?.(...a) as number;
      t[i]?.push(performance.now() - s);
      return v;
    };
  },
});

for (let i = 0; i < 5; i++) step();
for (const t of times.values()) for (const x of t) x.length = 0;
for (let i = 0; i < steps; i++) step();
dispose();

const q = (xs: number[], f: number) => [...xs].sort((a, b) => a - b)[Math.floor(f * (xs.length - 1))] as number;
const ms = (t: number[][], f: number) => t.map((x) => q(x, f).toFixed(3)).join(" / ");
console.log(`builds: ${files.join(", ")}; ${steps} steps of nanoGPT's CPU recipe on 1 thread (2 shards)`);
for (const [n, t] of times) {
  const ratio = (q(t[0] as number[], 0.1) / q(t[1] as number[], 0.1)).toFixed(3);
  console.log(`${n}: p10 ${ms(t, 0.1)} ms, p25 ${ms(t, 0.25)}, median ${ms(t, 0.5)}; A/B at p10 ${ratio} (${t[0]?.length} calls each)`);
}
process.exit(0);
