// One PyTorch fixture run through the engine: logits, loss, every gradient, the clipped norm and the
// weights after 1 and 3 AdamW steps, each compared with PyTorch's (tests/fixtures/make_fixtures.py
// made them; tests/fixtures/README.md says what each file holds and how to regenerate them).
// No Node API: tests/fixtures.test.ts runs it in Node and tests/browser/model.ts in a browser page,
// on whatever backend is selected. Values are read with `await t.read()`, so the same check runs on
// a GPU backend, whose tensors the CPU cannot index.

import { type SafeTensor, toInt32 } from "../src/io/safetensors.js";
import type { GPT } from "../src/nn/gpt.js";
import { AdamW, clipGradNormAsync } from "../src/optim/adamw.js";
import { scope, Tensor } from "../src/tensor/tensor.js";
import { closeReport } from "./close.js";

export interface FixtureData {
  /** expected.safetensors: logits, grad.<param>, step1.<param>, step3.<param> */
  expected: Map<string, SafeTensor>;
  /** expected.json */
  json: { loss: number; grad_norm: number; step_losses: number[] };
  /** batch.safetensors: idx, targets, idx2, targets2, idx3, targets3 */
  batch: Map<string, SafeTensor>;
}

export interface FixtureCheck {
  label: string;
  maxAbsDiff: number;
  ok: boolean;
}

/** Run the fixture's three AdamW steps on `model` (its weights loaded from model.safetensors). */
export async function checkFixture(model: GPT, data: FixtureData): Promise<FixtureCheck[]> {
  const checks: FixtureCheck[] = [];
  const get = (key: string): Float32Array => {
    const t = data.expected.get(key);
    if (!t || !(t.data instanceof Float32Array)) throw new Error(`expected.safetensors lacks float tensor ${key}`);
    return t.data;
  };
  const batchTensor = (key: string): Tensor => {
    const t = data.batch.get(key);
    if (!t) throw new Error(`batch.safetensors lacks ${key}`);
    return Tensor.ints(toInt32(t, key), t.shape);
  };
  const check = (label: string, actual: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number) => {
    const r = closeReport(actual, want, atol, rtol);
    checks.push({ label, maxAbsDiff: r.maxAbsDiff, ok: r.ok && actual.length === want.length });
  };
  const opt = new AdamW(model.params, { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
  for (let step = 1; step <= 3; step++) {
    const suffix = step === 1 ? "" : String(step);
    // reads start inside the scope (a read is ordered before the tensor's memory is reused) and are awaited after it
    const reads = scope(() => {
      const pending: Promise<void>[] = [];
      const later = (value: Promise<Float32Array>, use: (v: Float32Array) => void) => pending.push(value.then(use));
      const idx = batchTensor(`idx${suffix}`);
      const targets = batchTensor(`targets${suffix}`);
      model.zeroGrad();
      const { logits, loss } = model.forward(idx, { targets });
      if (!loss) throw new Error("the model returned no loss for targets");
      if (step === 1) later(logits.read(), (v) => check("logits", v, get("logits"), 1e-5, 0));
      later(loss.read(), ([v]) => {
        if (step === 1) check("loss", [v as number], [data.json.loss], 1e-5, 0);
        check(`step ${step} loss`, [v as number], [data.json.step_losses[step - 1] as number], 1e-5, 0);
      });
      loss.backward();
      if (step === 1) {
        for (const [name, p] of model.params)
          later((p.grad as Tensor).read(), (v) => check(`grad.${name}`, v, get(`grad.${name}`), 1e-6, 1e-4));
      }
      return pending;
    });
    await Promise.all(reads);
    const norm = await clipGradNormAsync(model.params.values(), 1.0);
    if (step === 1) check("grad_norm", [norm], [data.json.grad_norm], 1e-5, 1e-5);
    opt.update(1e-3);
    if (step === 1 || step === 3) {
      for (const [name, p] of model.params) check(`step${step}.${name}`, await p.read(), get(`step${step}.${name}`), 1e-5, 0);
    }
  }
  return checks;
}
