// The WebGPU backend's speed on whatever adapter Dawn (Node) finds. Prints one JSON object per
// measurement on stdout, each naming the adapter; bench/webgpu_torch.py measures the same parts with
// PyTorch on CUDA, and bench/webgpu-device.sh runs both on a GPU machine without Node or network.
//
//   node --import tsx bench/webgpu.ts [--parts matmul,train,decode] [--recipes small,big,gpt2] [--quick]
//
// matmul  GFLOP/s of the three layouts on 4096-sized products, and a·b / a·bᵀ on GPT-2 124M's
//         shapes (8192 rows = batch 8 x 1024 positions): c_attn, c_fc, c_proj, the LM head
// train   one training step (forward, backward, clipping on the device, AdamW; the loss read once):
//         small = nanoGPT's CPU recipe, big = the bigger recipe (bench/step.ts RECIPES), gpt2 = a
//         GPT-2 124M-shaped model (12 layers, 768 wide, vocab 50257, block 1024, batch 8)
// decode  tokens/s of one-token steps of a GPT-2 124M-shaped model with a KV cache, through the
//         model's own decode path (KVCache.appendAsync: the logits read back every token)
import { KVCache } from "../src/generate/kvcache.js";
import { useBackend } from "../src/kernels/index.js";
import type { GpuArray, WebGpuBackend } from "../src/kernels/webgpu/index.js";
import { makeConfig } from "../src/nn/config.js";
import { GPT } from "../src/nn/gpt.js";
import { AdamW, clipGradNormAsync } from "../src/optim/adamw.js";
import { Rng } from "../src/random.js";
import { scope, Tensor } from "../src/tensor/tensor.js";
import { arg, expectArgs } from "./args.js";
import { median } from "./stats.js";
import { RECIPES } from "./step.js";

expectArgs("bench/webgpu.ts", ["parts", "recipes"], ["quick"]);
const quick = process.argv.includes("--quick");
const parts = arg("parts", "matmul,train,decode").split(",");
const recipes = arg("recipes", "small,big,gpt2").split(",");

const gpu = (await useBackend("webgpu")) as WebGpuBackend;
const rt = gpu.runtime;
const adapter = gpu.adapter.description;
const emit = (o: Record<string, unknown>) => console.log(JSON.stringify({ adapter, ...o }));

function randomArray(n: number, rng: Rng, scale = 0.02): GpuArray {
  const a = rt.alloc(n);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = (rng.random() * 2 - 1) * scale;
  rt.write(a, v);
  return a;
}

/** seconds per call of `fn` (recorded dispatches), repeated until `minSeconds`, after `warm` calls */
async function timeIt(fn: () => void, warm: number, minSeconds: number): Promise<number> {
  for (let i = 0; i < warm; i++) fn();
  await rt.finish();
  let n = 0;
  const t0 = performance.now();
  do {
    fn();
    n++;
    if (n % 4 === 0) await rt.finish();
  } while (n < 3 || (performance.now() - t0) / 1000 < minSeconds);
  await rt.finish();
  return (performance.now() - t0) / 1000 / n;
}

if (parts.includes("matmul")) {
  const rng = new Rng(1);
  const shapes: [string, "matmul" | "matmulBT" | "matmulAT", number, number, number][] = [
    ["4096 a·b", "matmul", 4096, 4096, 4096],
    ["4096 a·bT", "matmulBT", 4096, 4096, 4096],
    ["4096 aT·b", "matmulAT", 4096, 4096, 4096],
    ["c_attn x·w", "matmul", 8192, 768, 2304],
    ["c_fc x·w", "matmul", 8192, 768, 3072],
    ["mlp c_proj x·w", "matmul", 8192, 3072, 768],
    ["c_fc dx = dy·wT", "matmulBT", 8192, 3072, 768],
    ["c_fc dw = xT·dy", "matmulAT", 768, 8192, 3072],
    ["LM head x·wteT", "matmulBT", 8192, 768, 50257],
  ];
  for (const [label, kind, M, K, N] of quick ? shapes.slice(0, 3) : shapes) {
    const a = randomArray(M * K, rng);
    const b = randomArray(K * N, rng);
    const out = rt.alloc(M * N);
    const s = await timeIt(() => gpu[kind](out, a, b, M, K, N, false), 2, quick ? 0.3 : 1);
    emit({ part: "matmul", label, kind, M, K, N, ms: s * 1000, gflops: (2 * M * K * N) / s / 1e9 });
    for (const x of [a, b, out]) rt.release(x);
  }
}

if (parts.includes("train")) {
  const all = { ...RECIPES, gpt2: { nLayer: 12, nHead: 12, nEmbd: 768, blockSize: 1024, batchSize: 8 } };
  for (const name of recipes) {
    const recipe = all[name as keyof typeof all];
    if (!recipe) throw new Error(`--recipes: unknown recipe ${name} (small, big, gpt2)`);
    const V = name === "gpt2" ? 50257 : 65;
    const { batchSize: B, blockSize: T } = recipe;
    const model = new GPT(makeConfig({ vocabSize: V, ...recipe, dropout: 0 }), 1337);
    const opt = new AdamW(model.params, { lr: 1e-3 });
    const rng = new Rng(1338);
    const step = async (): Promise<number> => {
      const ids = Array.from({ length: B * (T + 1) }, () => rng.int(V));
      const rows = (shift: number) => Array.from({ length: B * T }, (_, i) => ids[Math.floor(i / T) * (T + 1) + (i % T) + shift] as number);
      const loss = scope(() => {
        model.zeroGrad();
        const { loss } = model.forward(Tensor.ints(rows(0), [B, T]), { targets: Tensor.ints(rows(1), [B, T]) });
        (loss as Tensor).backward();
        return (loss as Tensor).read();
      });
      await clipGradNormAsync(model.params.values(), 1.0);
      opt.update(1e-3);
      return (await loss)[0] as number;
    };
    const warm = quick ? 1 : 3;
    const steps = quick ? 3 : name === "gpt2" ? 10 : 20;
    for (let i = 0; i < warm; i++) await step();
    const times: number[] = [];
    let loss = 0;
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      loss = await step();
      times.push(performance.now() - t0);
    }
    const ms = median(times);
    emit({ part: `train-${name}`, ...recipe, vocab: V, step_ms: ms, tokens_per_s: (B * T * 1000) / ms, loss, steps });
    model.dispose();
  }
}

if (parts.includes("decode")) {
  // GPT-2 124M through the model's own decode path: the KV cache and every activation on the GPU,
  // the logits read back once per token (KVCache.appendAsync), as generateAsync runs it
  const config = makeConfig({ vocabSize: 50257, blockSize: 1024, nLayer: 12, nHead: 12, nEmbd: 768 });
  const model = new GPT(config, 2);
  const cache = new KVCache(model);
  try {
    const tokens = quick ? 20 : 200;
    for (let p = 0; p < 5; p++) await cache.appendAsync([p]);
    const t0 = performance.now();
    for (let p = 0; p < tokens; p++) await cache.appendAsync([(p * 7919) % config.vocabSize]);
    const s = (performance.now() - t0) / 1000;
    emit({
      part: "decode-gpt2-kv",
      layers: config.nLayer,
      n_embd: config.nEmbd,
      vocab: config.vocabSize,
      tokens,
      tokens_per_s: tokens / s,
      ms_per_token: (s * 1000) / tokens,
    });
  } finally {
    cache.dispose();
    model.dispose();
  }
}
process.exit(0);
