// Generation speed of minigpt, inside the context window, random weights (GPT-2 init, seeded):
//   gen-cache    the bigger recipe's model (6 layers, 384 wide, block 256, vocab 65): 250 tokens
//                after 1 with the KV cache
//   gen-nocache  the same model without the cache (the whole window through the model per token,
//                as nanoGPT's sample.py does)
//   gen-kv       a GPT-2 124M-shaped model (12 layers, 12 heads, 768 wide, vocab 50,257, block 1024):
//                200 tokens after <|endoftext|> with the KV cache
// Temperature 0.8, no top-k/top-p (as bench/pytorch_bench.py). One warm-up run of 20 tokens, then the
// median over runs. Prints one JSON object on stdout.
//
//   node --import tsx bench/generate.ts --part gen-cache|gen-nocache|gen-kv [--backend wasm|ref]
//        [--threads N] [--runs R]
import { backend, GPT, generateTokens, makeConfig, useBackend } from "../src/index.js";
import { arg, expectArgs } from "./args.js";
import { BIGGER_SHAPE, GPT2_SHAPE } from "./shapes.js";
import { median } from "./stats.js";

expectArgs("bench/generate.ts", ["part", "backend", "threads", "runs"]);

const part = arg("part", "gen-cache");
const backendName = arg("backend", "wasm") as "wasm" | "ref";
const threads = Number(arg("threads", "1"));
const runs = Number(arg("runs", "3"));

const big = BIGGER_SHAPE;
const gpt2 = GPT2_SHAPE;
const setups: Record<string, { model: typeof big; tokens: number; prompt: number[]; cache: boolean }> = {
  "gen-cache": { model: big, tokens: 250, prompt: [0], cache: true },
  "gen-nocache": { model: big, tokens: 250, prompt: [0], cache: false },
  "gen-kv": { model: gpt2, tokens: 200, prompt: [50256], cache: true },
};
const found = setups[part];
if (!found) throw new Error(`--part ${part}: use ${Object.keys(setups).join(", ")}`);
const setup = found;

await useBackend(backendName, { threads });
const model = new GPT(makeConfig({ ...setup.model, dropout: 0 }), 1337);

function run(tokens: number, seed: number): number {
  let n = 0;
  for (const _ of generateTokens(model, setup.prompt, {
    maxNewTokens: tokens,
    temperature: 0.8,
    topK: 0,
    topP: 1,
    seed,
    cache: setup.cache,
  }))
    n++;
  return n;
}

run(20, 1);
const times: number[] = [];
for (let r = 0; r < runs; r++) {
  const t0 = performance.now();
  const n = run(setup.tokens, 42 + r);
  times.push(performance.now() - t0);
  if (n !== setup.tokens) throw new Error(`generated ${n} tokens, expected ${setup.tokens}`);
}
const medianMs = median(times);
const b = backend() as { simd?: string; tile?: string; threads?: number };
console.log(
  JSON.stringify({
    part,
    backend: backendName,
    threads: backendName === "wasm" ? (b.threads ?? threads) : 1,
    simd: b.simd,
    tile: b.tile,
    cache: setup.cache,
    median_ms: medianMs,
    tokens: setup.tokens,
    runs,
    tokens_per_s: (setup.tokens * 1000) / medianMs,
    params: model.parameterCount(),
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  }),
);
(backend() as { dispose?: () => void }).dispose?.();
process.exit(0);
