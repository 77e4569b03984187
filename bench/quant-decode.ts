// Decode speed of int8 / int4 weights against float32 (docs/benchmarks.md, "Quantized decode"):
// a GPT-2 124M-shaped model with random weights, quantized in memory as minigpt quantize writes it
// (src/io/quantize.ts), a prompt of 16 tokens, N new tokens greedy, the median of R runs, for each
// thread count. Validated first: each variant's decode logits against its dequantized forward.
// Also prints the file sizes the three would have (model.safetensors bytes).
//
//   node --import tsx bench/quant-decode.ts [--tokens 256] [--runs 3] [--threads 1,2] [--layers 12]

import { Decoder, nextLogitsUncached } from "../src/generate/generate.js";
import { modelSafetensorsBytes, modelTensors } from "../src/io/model-zip.js";
import { isQuantizedName, type QuantizationConfig, quantizedTensors, quantizeMatrix } from "../src/io/quantize.js";
import { writeSafetensors } from "../src/io/safetensors.js";
import { useBackend } from "../src/kernels/index.js";
import { makeConfig } from "../src/nn/config.js";
import { GPT } from "../src/nn/gpt.js";
import { type QuantizedWeight, quantizedWeight } from "../src/nn/quantized.js";
import { arg, expectArgs } from "./args.js";
import { median } from "./stats.js";

expectArgs("bench/quant-decode.ts", ["tokens", "runs", "threads", "layers"]);
const tokens = Number(arg("tokens", "256"));
const runs = Number(arg("runs", "3"));
const threadCounts = arg("threads", "1,2").split(",").map(Number);
const config = makeConfig({ vocabSize: 50257, nLayer: Number(arg("layers", "12")), nHead: 12, nEmbd: 768, blockSize: 1024 });
const prompt = Array.from({ length: 16 }, (_, i) => (i * 7919) % config.vocabSize);

await useBackend("wasm", { threads: 1 });
const fp32 = new GPT(config, 1337);
const variants: { name: string; model: GPT; bytes: number }[] = [{ name: "fp32", model: fp32, bytes: modelSafetensorsBytes(fp32).length }];
for (const q of [
  { bits: 8, groupSize: null },
  { bits: 4, groupSize: 32 },
] as QuantizationConfig[]) {
  // the fp32 model's matrices quantized; the model holds them packed only, as a loaded quantized folder does
  const quantized = new Map<string, QuantizedWeight>();
  for (const [name, t] of fp32.params) {
    if (!isQuantizedName(name)) continue;
    const wte = name === "transformer.wte.weight";
    const [rows, cols] = t.shape as [number, number];
    const m = wte
      ? quantizeMatrix(t.data, cols, rows, "out-in", q.bits, q.groupSize ?? cols)
      : quantizeMatrix(t.data, rows, cols, "in-out", q.bits, q.groupSize ?? rows);
    quantized.set(name, quantizedWeight(m));
  }
  const model = GPT.forLoading(config, quantized);
  model.loadWeights(new Map([...fp32.params].filter(([name]) => !quantized.has(name))), "fp32");
  const bytes = writeSafetensors(
    quantizedTensors(
      modelTensors(model).map((t) => [t.name, t]),
      q,
    ),
    { format: "pt" },
  ).length;
  variants.push({ name: `int${q.bits}`, model, bytes });
}

// validate: the decode's logits against the dequantized forward. The decode quantizes its activations
// to int8 (src/kernels/ref/quant-int.ts), so they differ a little: their RMS relative to the logits'.
for (const v of variants) {
  const d = new Decoder(v.model, prompt, { maxNewTokens: 2, temperature: 0 });
  d.step();
  const step = d.step();
  const want = nextLogitsUncached(v.model, d.ids.slice(0, -1));
  let diff = 0;
  let size = 0;
  for (let i = 0; i < want.length; i++) {
    diff += ((step?.logits[i] ?? Number.NaN) - want[i]!) ** 2;
    size += want[i]! ** 2;
  }
  const rel = Math.sqrt(diff / size);
  d.dispose();
  if (!(rel < 0.05)) throw new Error(`${v.name}: decode logits differ from the forward by ${rel} (RMS, relative)`);
  console.log(`${v.name}: decode logits within ${(rel * 100).toFixed(3)}% (RMS) of the dequantized forward's`);
}

// One untimed decode of the full length first, its cache freed: every timed run's cache then reuses
// that memory (the heap hands a freed block back), as a process that generates more than once does.
// A fresh cache's first write to each 4 KB page is a page fault, ~10-30 us on this VM: ~0.4 ms a
// token over the 24 cache rows a token writes, a first decode's cost, not the model's.
{
  const d = new Decoder(variants[variants.length - 1]!.model, prompt, { maxNewTokens: tokens, temperature: 0 });
  while (d.step());
  d.dispose();
}

console.log(`GPT-2 124M shape (${config.nLayer} layers), prompt 16, ${tokens} new tokens greedy, median of ${runs}`);
for (const v of variants)
  console.log(`${v.name}: model.safetensors ${(v.bytes / 1e6).toFixed(1)} MB (${(variants[0]!.bytes / v.bytes).toFixed(2)}x smaller)`);
for (const threads of threadCounts) {
  await useBackend("wasm", { threads });
  const rates = new Map<string, number[]>();
  // variants in turns, so that the machine's load falls on each alike
  for (let r = 0; r < runs; r++)
    for (const v of variants) {
      const d = new Decoder(v.model, prompt, { maxNewTokens: tokens, temperature: 0 });
      const t0 = performance.now();
      while (d.step());
      const s = (performance.now() - t0) / 1000;
      // freed as generate and the server free theirs: the next run's cache reuses this memory
      d.dispose();
      rates.set(v.name, [...(rates.get(v.name) ?? []), tokens / s]);
    }
  const base = median(rates.get("fp32") ?? []);
  for (const v of variants) {
    const m = median(rates.get(v.name) ?? []);
    console.log(
      `threads ${threads} ${v.name}: ${m.toFixed(1)} tokens/s (${(m / base).toFixed(2)}x fp32) runs ${(rates.get(v.name) ?? []).map((x) => x.toFixed(1)).join(", ")}`,
    );
  }
}
