/**
 * LoRA against PyTorch (tests/fixtures-lora/, made by tests/fixtures/make_lora_fixture.py with PEFT's
 * maths written out): the base frozen, adapters on c_attn and c_fc (r 4, alpha 12) with B non-zero;
 * logits, loss, the gradient of every lora_A and lora_B, the clipped norm and the adapters after 1
 * and 3 AdamW steps, on ref and wasm at the engine's fixture tolerances (tests/fixture-check.ts).
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Decoder } from "../src/generate/generate.js";
import { loadModel, saveModel, saveQuantizedModel } from "../src/io/hf.js";
import { readLoraAdapter } from "../src/io/lora-folder.js";
import { toInt32 } from "../src/io/safetensors.js";
import { readSafetensorsFile } from "../src/io/safetensors-file.js";
import { useBackend } from "../src/kernels/index.js";
import { attachLora, mergeLora } from "../src/nn/lora.js";
import { QuantizedLinear } from "../src/nn/quantized.js";
import { AdamW, clipGradNorm } from "../src/optim/adamw.js";
import { scope, Tensor } from "../src/tensor/tensor.js";
import { closeReport, tempDir } from "./helpers.js";

const FIXTURE = "tests/fixtures-lora/gpt-lora";

for (const backendName of ["ref", "wasm"] as const)
  test(`LoRA matches PyTorch: logits, loss, adapter gradients, AdamW steps; the base stays frozen [${backendName}]`, async () => {
    await useBackend(backendName);
    const expected = readSafetensorsFile(join(FIXTURE, "expected.safetensors")).tensors;
    const batch = readSafetensorsFile(join(FIXTURE, "batch.safetensors")).tensors;
    const json = JSON.parse(readFileSync(join(FIXTURE, "expected.json"), "utf8")) as {
      loss: number;
      grad_norm: number;
      step_losses: number[];
    };
    const model = loadModel(FIXTURE);
    const baseBefore = new Map([...model.params].map(([n, t]) => [n, t.data.slice()]));
    const adapter = readLoraAdapter(FIXTURE, model.config);
    const lora = attachLora(model, adapter.config, adapter);
    const failures: string[] = [];
    const check = (label: string, actual: ArrayLike<number>, key: string | number[], atol: number, rtol: number) => {
      const want = typeof key === "string" ? (expected.get(key)?.data as Float32Array | undefined) : key;
      if (!want) return failures.push(`${label}: expected.safetensors lacks ${key}`);
      const r = closeReport(actual, want, atol, rtol);
      if (!r.ok || actual.length !== want.length) failures.push(`${label}: max-abs-diff ${r.maxAbsDiff.toExponential(2)}`);
    };
    const ids = (key: string) => {
      const t = batch.get(key);
      if (!t) throw new Error(`batch lacks ${key}`);
      return Tensor.ints(toInt32(t, key), t.shape);
    };
    const opt = new AdamW(lora.params, { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
    assert.equal(opt.m.size, 8, "AdamW holds moments for the 8 adapter tensors only");
    for (let step = 1; step <= 3; step++) {
      const suffix = step === 1 ? "" : String(step);
      scope(() => {
        for (const t of lora.params.values()) t.zeroGrad();
        const { logits, loss } = model.forward(ids(`idx${suffix}`), { targets: ids(`targets${suffix}`) });
        if (!loss) throw new Error("no loss");
        if (step === 1) {
          check("logits", logits.data, "logits", 1e-5, 0);
          check("loss", [loss.item()], [json.loss], 1e-5, 0);
        }
        check(`step ${step} loss`, [loss.item()], [json.step_losses[step - 1]!], 1e-5, 0);
        loss.backward();
        if (step === 1) for (const [key, t] of lora.params) check(`grad.${key}`, (t.grad as Tensor).data, `grad.${key}`, 1e-6, 1e-4);
        const norm = clipGradNorm(lora.params.values(), 1.0);
        if (step === 1) check("grad_norm", [norm], [json.grad_norm], 1e-5, 1e-5);
        opt.update(1e-3);
      });
      if (step === 1 || step === 3) for (const [key, t] of lora.params) check(`step${step}.${key}`, t.data, `step${step}.${key}`, 1e-5, 0);
    }
    for (const [name, t] of model.params) {
      assert.equal(t.grad, null, `${name} has a gradient buffer: the base must be frozen`);
      assert.deepEqual(t.data, baseBefore.get(name), `${name} changed`);
    }
    model.dispose();
    assert.deepEqual(failures, []);
  });

test("an attached adapter decodes (KV cache, LoraLinear.rows) as the merged model does, and mergeLora leaves a plain GPT", async () => {
  await useBackend("ref");
  const attached = loadModel(FIXTURE);
  const adapter = readLoraAdapter(FIXTURE, attached.config);
  attachLora(attached, adapter.config, adapter);
  const merged = loadModel(FIXTURE);
  mergeLora(merged, attachLora(merged, adapter.config, adapter));
  assert.ok(merged.h.every((b) => b.attn.c_attn.plain() !== null && b.mlp.c_fc.plain() !== null));
  const prompt = [3, 14, 15, 9, 2];
  const options = { maxNewTokens: 10, temperature: 0 };
  // greedy tokens and the last step's logits: cached decode through the adapters vs the merged weights
  const a = new Decoder(attached, prompt, options);
  const m = new Decoder(merged, prompt, options);
  for (let i = 0; i < 10; i++) {
    const sa = a.step();
    const sm = m.step();
    assert.ok(sa && sm);
    assert.equal(sa.id, sm.id, `token ${i}`);
    const r = closeReport(sa.logits, sm.logits, 1e-5, 0);
    assert.ok(r.ok, `step ${i}: logits differ by ${r.maxAbsDiff}`);
  }
  attached.dispose();
  merged.dispose();
});

test("QLoRA: an adapter on an int4 base trains with the base quantized; its gradients equal float LoRA's on the dequantized base", async () => {
  await useBackend("wasm", { threads: 1 });
  const dir = tempDir("minigpt-qlora-");
  const q4 = join(dir, "q4");
  const deq = join(dir, "deq");
  mkdirSync(q4);
  mkdirSync(deq);
  const base = loadModel(FIXTURE);
  saveQuantizedModel(base, q4, { bits: 4, groupSize: 8 });
  base.dispose();
  const quantized = loadModel(q4);
  saveModel(quantized, deq); // the dequantized weights as a plain float32 model
  const plain = loadModel(deq);
  assert.ok(quantized.h[0]?.attn.c_attn instanceof QuantizedLinear, "the base stays quantized");
  const adapter = readLoraAdapter(FIXTURE, plain.config);
  const batch = readSafetensorsFile(join(FIXTURE, "batch.safetensors")).tensors;
  const gradients = (model: typeof plain) => {
    const lora = attachLora(model, adapter.config, adapter);
    return scope(() => {
      const idx = batch.get("idx");
      const targets = batch.get("targets");
      assert.ok(idx && targets);
      const { loss } = model.forward(Tensor.ints(toInt32(idx), idx.shape), { targets: Tensor.ints(toInt32(targets), targets.shape) });
      loss?.backward();
      return new Map([...lora.params].map(([k, t]) => [k, (t.grad as Tensor).data.slice()]));
    });
  };
  const gq = gradients(quantized);
  const gf = gradients(plain);
  assert.equal(gq.size, 8);
  for (const [key, g] of gf) assert.deepEqual(gq.get(key), g, `${key}: QLoRA's gradient differs from LoRA's on the dequantized base`);
  // and the quantization is coarse enough to matter: the int4 base's gradients are not the float base's
  const exact = readSafetensorsFile(join(FIXTURE, "expected.safetensors")).tensors.get(`grad.${[...gf.keys()][0]}`);
  assert.notDeepEqual([...gf.values()][0], exact?.data);
  quantized.dispose();
  plain.dispose();
});
