/**
 * Plain temperature sampling over GPT-2's 50,257 logits (issue 22: the generation thread draws each
 * row's next token after the decode step, one sampleToken call a row). In turns, on the wasm backend:
 *   copy+softmax  what sampleToken did before: copy the logits into a heap buffer, scale by 1/T,
 *                 the backend's softmax, then walk the probabilities in JS
 *   fused         sampleToken now: the backend's sampleTemperature kernel on the logits where they are
 *                 (a heap array, as the model's output is)
 *   fused+copy    sampleToken on logits off the heap (suppressed ids, plain arrays): a heap copy first
 * Each turn draws --draws tokens; prints the median and range of µs a draw over --turns turns.
 * Run: node --import tsx bench/sample.ts [--draws 200] [--turns 9] [--temperature 0.8]
 */

import { sampleToken } from "../src/generate/sample.js";
import { backend, useBackend } from "../src/kernels/index.js";
import { Rng } from "../src/random.js";
import { Tensor } from "../src/tensor/tensor.js";
import { arg, expectArgs } from "./args.js";
import { median } from "./stats.js";

expectArgs("bench/sample.ts", ["draws", "turns", "temperature"]);
const draws = Number(arg("draws", "200"));
const turns = Number(arg("turns", "9"));
const temperature = Number(arg("temperature", "0.8"));
const V = 50257;

await useBackend("wasm", { threads: 1 });
const be = backend();
// logits shaped like a language model's: mostly around -5 .. 5, a few tokens well above
const rng = new Rng(1);
const onHeap = new Tensor([V], "f32", false, false);
for (let i = 0; i < V; i++) onHeap.data[i] = (rng.random() - 0.5) * 10 + (i % 997 === 0 ? 8 : 0);
const offHeap = Float32Array.from(onHeap.data);
const buf = new Tensor([V], "f32", false, false);

function before(logits: Float32Array, r: Rng): number {
  const p = buf.data;
  p.set(logits);
  be.scale(p, V, 1 / temperature);
  be.softmax(p, p, 1, V);
  let u = r.random();
  for (let i = 0; i < V; i++) {
    u -= p[i] as number;
    if (u < 0) return i;
  }
  for (let i = V - 1; i >= 0; i--) if ((p[i] as number) > 0) return i;
  return 0;
}

const o = { temperature, topK: 0, topP: 1 };
const variants: [string, (r: Rng) => number][] = [
  ["copy+softmax (before)", (r) => before(onHeap.data, r)],
  ["fused (sampleToken, in place)", (r) => sampleToken(onHeap.data, o, r)],
  ["fused+copy (sampleToken, off heap)", (r) => sampleToken(offHeap, o, r)],
];

// the same tokens for the same draws (but where a draw falls within fp32 rounding of a boundary)
let differ = 0;
for (let s = 0; s < 200; s++) if (new Set(variants.map(([, f]) => f(new Rng(s)))).size !== 1) differ++;
if (differ > 1) throw new Error(`${differ} of 200 seeds draw different tokens`);

const times = variants.map(() => [] as number[]);
for (let t = 0; t < turns; t++) {
  variants.forEach(([, f], k) => {
    const r = new Rng(t);
    const t0 = performance.now();
    for (let d = 0; d < draws; d++) f(r);
    (times[k] as number[]).push(((performance.now() - t0) * 1000) / draws);
  });
}
console.log(`sampleToken over ${V} logits, T=${temperature}, wasm backend, ${draws} draws x ${turns} turns (µs a draw):`);
variants.forEach(([name], k) => {
  const xs = times[k] as number[];
  console.log(`  ${name.padEnd(36)} median ${median(xs).toFixed(1)}  range ${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)}`);
});
