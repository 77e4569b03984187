// A QLoRA training step (a LoRA adapter, rank 8 on c_attn, over a frozen int8 / int4 base) on a
// GPT-2 124M-shaped folder with random weights, as loadModel loads it: the code of this checkout
// against other checkouts' (--baseline DIR, comma-separated: the code before a change), each step in
// a process of its own per tree and folder, in turns, so load on the machine falls on each alike.
// A quantized model keeps only its packed matrices and dequantizes each one twice a step (forward
// and backward, src/nn/quantized.ts's TapeScratch); before ec43267 it kept float copies instead.
//
//   node --import tsx bench/qlora-step.ts [--dir /tmp/minigpt-qlora-step] [--rounds 2] [--steps 2]
//     [--batch 1] [--t 256] [--bits 4,8] [--baseline DIR[,DIR]]
//
// Each child runs one untimed step, then --steps timed ones (forward and backward in a scope, clip
// 1.0, AdamW, one wasm thread); medians and ranges of the timed steps are printed. The folders are
// written once into --dir (~0.3 GB) and reused; delete it afterwards.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { arg, expectArgs } from "./args.js";
import { GPT2_SHAPE } from "./shapes.js";
import { median } from "./stats.js";

expectArgs("bench/qlora-step.ts", ["dir", "rounds", "steps", "batch", "t", "bits", "baseline", "child", "tree"]);
const GPT2 = GPT2_SHAPE;
const steps = Number(arg("steps", "2"));
const batch = Number(arg("batch", "1"));
const T = Number(arg("t", "256"));
const child = arg("child", "");

if (child !== "") {
  // one folder, trained on with the sources of `--tree` (imported by path: one copy of the library)
  const tree = resolve(arg("tree", "."));
  const { useBackend } = await import(join(tree, "src/kernels/index.ts"));
  const { loadModel } = await import(join(tree, "src/io/hf.ts"));
  const { attachLora } = await import(join(tree, "src/nn/lora.ts"));
  const { createStepper } = await import(join(tree, "src/train/stepper.ts"));
  const { AdamW, clipGradNorm } = await import(join(tree, "src/optim/adamw.ts"));
  const { scope, Tensor } = await import(join(tree, "src/tensor/tensor.ts"));
  const { Rng } = await import(join(tree, "src/random.ts"));
  await useBackend("wasm", { threads: 1 });
  const model = loadModel(child);
  const lora = attachLora(model, { rank: 8, alpha: 16, dropout: 0, targets: ["c_attn"], base: "", trainableTokens: [] }, new Rng(1));
  const params = lora.params as Map<string, { zeroGrad(): void }>;
  const optimizer = new AdamW(params, { lr: 1e-4, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0 });
  const stepper = await createStepper(model, 1, 1, lora);
  const rng = new Rng(2);
  const ms: number[] = [];
  for (let i = 0; i <= steps; i++) {
    const x = Int32Array.from({ length: batch * T }, () => rng.int(GPT2.vocabSize));
    const y = Int32Array.from({ length: batch * T }, () => rng.int(GPT2.vocabSize));
    const t0 = performance.now();
    for (const p of params.values()) p.zeroGrad();
    scope(() => stepper.forwardBackward(Tensor.ints(x, [batch, T]), Tensor.ints(y, [batch, T]), 1, undefined, true));
    stepper.update(() => {
      clipGradNorm(params.values(), 1.0);
      optimizer.update(1e-4);
    });
    if (i > 0) ms.push(performance.now() - t0);
  }
  console.log(JSON.stringify(ms));
  process.exit(0);
}

const dir = resolve(arg("dir", "/tmp/minigpt-qlora-step"));
const rounds = Number(arg("rounds", "2"));
const bits = arg("bits", "4,8").split(",");
const folders = Object.fromEntries(bits.map((b) => [`int${b}`, join(dir, `int${b}`)]));
if (!Object.values(folders).every((f) => existsSync(join(f, "model.safetensors")))) {
  const { saveQuantizedModel } = await import("../src/io/hf.js");
  const { useBackend } = await import("../src/kernels/index.js");
  const { makeConfig } = await import("../src/nn/config.js");
  const { GPT } = await import("../src/nn/gpt.js");
  await useBackend("wasm", { threads: 1 });
  const model = new GPT(makeConfig(GPT2), 1337);
  for (const [name, f] of Object.entries(folders)) {
    mkdirSync(f, { recursive: true });
    saveQuantizedModel(model, f, name === "int8" ? { bits: 8, groupSize: null } : { bits: 4, groupSize: 32 });
  }
  model.dispose();
  console.log(`wrote the folders into ${dir}`);
}

const baselines = arg("baseline", "")
  .split(",")
  .filter((b) => b !== "");
const trees: [string, string][] = [["this", resolve(".")], ...baselines.map((b): [string, string] => [b, resolve(b)])];
const results = new Map<string, number[]>();
for (let r = 0; r < rounds; r++)
  // the trees' order turns each round, so neither always runs first
  for (const [variant, folder] of Object.entries(folders))
    for (const [label, tree] of r % 2 === 0 ? trees : [...trees].reverse()) {
      const args = ["--import", "tsx", "bench/qlora-step.ts", "--child", folder, "--tree", tree];
      const out = execFileSync(process.execPath, [...args, "--steps", String(steps), "--batch", String(batch), "--t", String(T)], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "inherit"],
      });
      const key = `${variant} ${label}`;
      const ms = JSON.parse(out.trim().split("\n").at(-1) as string) as number[];
      results.set(key, [...(results.get(key) ?? []), ...ms]);
      console.error(`round ${r + 1} ${key}: ${ms.map((m) => (m / 1000).toFixed(2)).join(", ")} s`);
    }

console.log(
  `GPT-2 124M shape, random weights, LoRA rank 8 on c_attn, batch ${batch}, T ${T}, wasm 1 thread; ${rounds} rounds x ${steps} steps`,
);
for (const [key, ms] of results)
  console.log(
    `${key.padEnd(24)} step ${(median(ms) / 1000).toFixed(2)} s (${(Math.min(...ms) / 1000).toFixed(2)}-${(Math.max(...ms) / 1000).toFixed(2)})`,
  );
