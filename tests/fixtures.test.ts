/**
 * The model against PyTorch: logits, loss, every gradient, and the weights after 1 and 3 AdamW steps,
 * for every fixture folder (see tests/helpers.ts for where they come from). A fixture the engine
 * cannot handle fails; nothing is skipped.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { loadModel } from "../src/io/hf.js";
import { readSafetensorsFile, toInt32 } from "../src/io/safetensors.js";
import { useBackend } from "../src/kernels/index.js";
import { AdamW, clipGradNorm } from "../src/optim/adamw.js";
import { scope, Tensor } from "../src/tensor/tensor.js";
import { closeReport, fixtureFolders } from "./helpers.js";

const folders = fixtureFolders();
// every fixture on both backends, with the same tolerances
const backends = ["ref", "wasm"] as const;

test("fixture folders are found", () => {
  assert.ok(folders.length >= 2, `found ${folders.length} fixture folders`);
});

for (const { name, dir } of folders)
  for (const backendName of backends) {
    test(`${name} matches PyTorch [${backendName}]`, async () => {
      await useBackend(backendName);
      const model = loadModel(dir);
      const expected = readSafetensorsFile(join(dir, "expected.safetensors")).tensors;
      const expectedJson = JSON.parse(readFileSync(join(dir, "expected.json"), "utf8")) as {
        loss: number;
        grad_norm: number;
        step_losses: number[];
      };
      const batch = readSafetensorsFile(join(dir, "batch.safetensors")).tensors;
      const get = (key: string) => {
        const t = expected.get(key);
        assert.ok(t, `expected.safetensors lacks ${key}`);
        return t.data as Float32Array;
      };
      const batchTensor = (key: string) => {
        const t = batch.get(key);
        assert.ok(t, `batch.safetensors lacks ${key}`);
        return Tensor.ints(toInt32(t, key), t.shape);
      };
      const failures: string[] = [];
      const check = (label: string, actual: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number) => {
        const r = closeReport(actual, want, atol, rtol);
        if (!r.ok) failures.push(`${label}: max-abs-diff ${r.maxAbsDiff.toExponential(2)} (worst at ${r.index})`);
      };

      const opt = new AdamW(model.params, { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
      for (let step = 1; step <= 3; step++) {
        const suffix = step === 1 ? "" : String(step);
        scope(() => {
          const idx = batchTensor(`idx${suffix}`);
          const targets = batchTensor(`targets${suffix}`);
          model.zeroGrad();
          const { logits, loss } = model.forward(idx, { targets });
          assert.ok(loss);
          if (step === 1) {
            check("logits", logits.data, get("logits"), 1e-5, 0);
            check("loss", [loss.item()], [expectedJson.loss], 1e-5, 0);
          }
          check(`step ${step} loss`, [loss.item()], [expectedJson.step_losses[step - 1] as number], 1e-5, 0);
          loss.backward();
          if (step === 1) {
            for (const [pname, p] of model.params) check(`grad.${pname}`, (p.grad as Tensor).data, get(`grad.${pname}`), 1e-6, 1e-4);
          }
          const norm = clipGradNorm(model.params.values(), 1.0);
          if (step === 1) check("grad_norm", [norm], [expectedJson.grad_norm], 1e-5, 1e-5);
          opt.update(1e-3);
        });
        if (step === 1 || step === 3) {
          for (const [pname, p] of model.params) check(`step${step}.${pname}`, p.data, get(`step${step}.${pname}`), 5e-5, 0);
        }
      }
      model.dispose();
      assert.deepEqual(failures, [], `mismatches against PyTorch in ${dir}:\n${failures.join("\n")}`);
    });
  }
