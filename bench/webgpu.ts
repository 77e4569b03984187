// The WebGPU backend's speed on whatever adapter Dawn (Node) finds. Prints one JSON object per
// measurement on stdout, each naming the adapter; bench/webgpu_torch.py measures the same parts with
// PyTorch on CUDA, and bench/webgpu-device.sh runs both on a lent GPU machine.
//
//   node --import tsx bench/webgpu.ts [--parts matmul,train,decode] [--recipes small,big,gpt2] [--quick]
//
// matmul  GFLOP/s of the three layouts on 4096-sized products, and a·b / a·bᵀ on GPT-2 124M's
//         shapes (8192 rows = batch 8 x 1024 positions): c_attn, c_fc, c_proj, the LM head
// train   one training step (forward, backward, clipping on the device, AdamW; the loss read once):
//         small = nanoGPT's CPU recipe, big = the bigger recipe (bench/step.ts RECIPES), gpt2 = a
//         GPT-2 124M-shaped model (12 layers, 768 wide, vocab 50257, block 1024, batch 8)
// decode  tokens/s of one-token steps of the GPT-2 124M shape with a KV cache, as the decode kernels
//         run them (attentionRows, mlpRows, the LM head; the logits read back every token). The
//         model's own decode path (src/nn/) is not on the device yet, so this times the kernels'
//         chain on buffers, which is what that path would dispatch.
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
  // GPT-2 124M: 12 layers, 12 heads, 768 wide, vocab 50257, a cache of 1024 positions
  const [L, C, nh, V, Tmax, H] = [12, 768, 12, 50257, 1024, 3072];
  const rng = new Rng(2);
  const layers = Array.from({ length: L }, () => ({
    ln1w: randomArray(C, rng, 1),
    ln1b: randomArray(C, rng),
    wattn: randomArray(C * 3 * C, rng),
    battn: randomArray(3 * C, rng),
    wproj: randomArray(C * C, rng),
    bproj: randomArray(C, rng),
    ln2w: randomArray(C, rng, 1),
    ln2b: randomArray(C, rng),
    wfc: randomArray(C * H, rng),
    bfc: randomArray(H, rng),
    wmp: randomArray(H * C, rng),
    bmp: randomArray(C, rng),
    keys: randomArray(Tmax * C, rng),
    values: randomArray(Tmax * C, rng),
  }));
  const wte = randomArray(V * C, rng);
  const [x, a, y, att, qkv, h, mean, rstd, logits] = [C, C, C, C, 3 * C, H, 1, 1, V].map((n) => rt.alloc(n)) as [
    GpuArray,
    GpuArray,
    GpuArray,
    GpuArray,
    GpuArray,
    GpuArray,
    GpuArray,
    GpuArray,
    GpuArray,
  ];
  const token = async (pos: number): Promise<void> => {
    for (const l of layers) {
      gpu.layernormForward(a, mean, rstd, x, l.ln1w, l.ln1b, 1, C, 1e-5);
      gpu.attentionRows(y, att, qkv, a, [{ keys: l.keys, values: l.values, pos }], l.wattn, l.battn, l.wproj, l.bproj, C, nh);
      gpu.accumulate(x, y, C);
      gpu.layernormForward(a, mean, rstd, x, l.ln2w, l.ln2b, 1, C, 1e-5);
      gpu.mlpRows(y, h, a, 1, l.wfc, l.bfc, l.wmp, l.bmp, C, H, false);
      gpu.accumulate(x, y, C);
    }
    gpu.matmulBT(logits, x, wte, 1, C, V, false);
    await rt.read(logits);
  };
  const tokens = quick ? 20 : 200;
  for (let p = 0; p < 5; p++) await token(p);
  const t0 = performance.now();
  for (let p = 0; p < tokens; p++) await token(p);
  const s = (performance.now() - t0) / 1000;
  emit({ part: "decode-gpt2-kv", layers: L, n_embd: C, vocab: V, tokens, tokens_per_s: tokens / s, ms_per_token: (s * 1000) / tokens });
}
process.exit(0);
