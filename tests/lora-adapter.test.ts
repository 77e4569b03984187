/**
 * LoRA adapters in PEFT's format (src/io/lora.ts, lora-folder.ts): the PyTorch fixture's adapter
 * reads with its shapes; a written adapter reads back the same; merging it into the base gives the
 * logits PyTorch computed with the adapter unmerged; and each option minigpt does not implement, an
 * adapter for another base and wrong rank shapes are one line each.
 */
import assert from "node:assert/strict";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { loadModel, readModelConfig } from "../src/io/hf.js";
import { loraKey, loraModules, mergeLoraLayer, targetMatches } from "../src/io/lora.js";
import { readLoraAdapter, readLoraConfig, writeLoraAdapter } from "../src/io/lora-folder.js";
import { toInt32 } from "../src/io/safetensors.js";
import { readSafetensorsFile, writeSafetensorsFile } from "../src/io/safetensors-file.js";
import { useBackend } from "../src/kernels/index.js";
import { noGrad, Tensor } from "../src/tensor/tensor.js";
import { closeReport, tempDir, throwsUser } from "./helpers.js";

const FIXTURE = "tests/fixtures-lora/gpt-lora";
const OTHER_BASE = "tests/fixtures/gpt-small";

test("the fixture's adapter reads in PEFT's layout: rank, scaling, targets by suffix", () => {
  const config = readLoraConfig(FIXTURE);
  assert.equal(config.rank, 4);
  assert.equal(config.alpha, 12);
  assert.deepEqual(config.targets, ["c_attn", "c_fc"]);
  const adapter = readLoraAdapter(FIXTURE, readModelConfig(FIXTURE));
  assert.deepEqual(
    adapter.layers.map((l) => [l.module, l.a.length, l.b.length]),
    [
      ["transformer.h.0.attn.c_attn", 4 * 32, 96 * 4],
      ["transformer.h.0.mlp.c_fc", 4 * 32, 128 * 4],
      ["transformer.h.1.attn.c_attn", 4 * 32, 96 * 4],
      ["transformer.h.1.mlp.c_fc", 4 * 32, 128 * 4],
    ],
  );
});

test("target_modules match as PEFT's do: by suffix after a dot, or one regular expression for the whole name", () => {
  assert.ok(targetMatches("transformer.h.0.attn.c_proj", ["c_proj"]));
  assert.ok(targetMatches("transformer.h.0.mlp.c_proj", ["c_proj"]));
  assert.ok(targetMatches("transformer.h.0.mlp.c_proj", ["mlp.c_proj"]));
  assert.ok(!targetMatches("transformer.h.0.attn.c_proj", ["mlp.c_proj"]));
  assert.ok(!targetMatches("transformer.h.0.attn.c_attn", ["attn"])); // not a substring match
  assert.ok(targetMatches("transformer.h.1.attn.c_attn", String.raw`.*\.1\.attn\.c_attn`));
  assert.ok(!targetMatches("transformer.h.0.attn.c_attn", String.raw`.*\.1\.attn\.c_attn`));
  const config = readModelConfig(FIXTURE);
  assert.equal(loraModules(config, ["c_proj"]).length, 2 * config.nLayer);
});

test("an adapter written by minigpt reads back the same, under PEFT's keys and config", () => {
  const dir = tempDir("minigpt-lora-");
  const model = readModelConfig(FIXTURE);
  const adapter = readLoraAdapter(FIXTURE, model);
  writeLoraAdapter(dir, adapter);
  const again = readLoraAdapter(dir, model);
  assert.deepEqual(again, adapter);
  const json = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
  assert.equal(json.peft_type, "LORA");
  assert.equal(json.fan_in_fan_out, true);
  const keys = [...readSafetensorsFile(join(dir, "adapter_model.safetensors")).tensors.keys()];
  assert.ok(keys.includes("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"), keys.join(" "));
});

test("merged into the base (W += scaling·(B·A)ᵀ), the adapter gives PyTorch's logits of the unmerged LoRA model", async () => {
  for (const backend of ["ref", "wasm"] as const) {
    await useBackend(backend);
    const model = loadModel(FIXTURE);
    const adapter = readLoraAdapter(FIXTURE, model.config);
    for (const layer of adapter.layers)
      mergeLoraLayer(model.param(`${layer.module}.weight`).data, layer, adapter.config.rank, adapter.config.alpha / adapter.config.rank);
    const batch = readSafetensorsFile(join(FIXTURE, "batch.safetensors")).tensors;
    const idx = batch.get("idx");
    const want = readSafetensorsFile(join(FIXTURE, "expected.safetensors")).tensors.get("logits");
    assert.ok(idx && want);
    noGrad(() => {
      const { logits } = model.forward(Tensor.ints(toInt32(idx), idx.shape));
      const r = closeReport(logits.data, want.data as Float32Array, 1e-5, 0);
      assert.ok(r.ok, `[${backend}] merged logits differ from PyTorch's: max-abs-diff ${r.maxAbsDiff}`);
      logits.dispose();
    });
    model.dispose();
  }
});

/** A copy of the fixture's adapter with adapter_config.json changed by `edit`. */
function adapterWith(edit: (config: Record<string, unknown>) => void): string {
  const dir = tempDir("minigpt-lora-bad-");
  const config = JSON.parse(readFileSync(join(FIXTURE, "adapter_config.json"), "utf8"));
  edit(config);
  writeFileSync(join(dir, "adapter_config.json"), JSON.stringify(config));
  copyFileSync(join(FIXTURE, "adapter_model.safetensors"), join(dir, "adapter_model.safetensors"));
  return dir;
}

test("each PEFT option minigpt does not implement is one line naming it", () => {
  const cases: [string, unknown, RegExp][] = [
    ["use_dora", true, /DoRA \(use_dora\) is not implemented/],
    ["use_rslora", true, /use_rslora/],
    ["rank_pattern", { "h.0.attn.c_attn": 8 }, /rank_pattern/],
    ["alpha_pattern", { "h.0.attn.c_attn": 8 }, /alpha_pattern/],
    ["bias", "lora_only", /bias other than "none"/],
    ["modules_to_save", ["lm_head"], /modules_to_save/],
    ["peft_type", "IA3", /LoRA adapters only/],
  ];
  for (const [key, value, message] of cases) {
    const dir = adapterWith((c) => {
      c[key] = value;
    });
    throwsUser(() => readLoraAdapter(dir, readModelConfig(FIXTURE)), message, /adapter_config\.json/);
  }
  // the defaults PEFT writes are accepted
  const dir = adapterWith(() => {});
  assert.equal(readLoraAdapter(dir, readModelConfig(FIXTURE)).layers.length, 4);
});

test("an adapter for another base, and shapes that contradict r, are one line naming the tensor", () => {
  const model = readModelConfig(FIXTURE);
  // gpt-small is 48 wide with 3 layers: lora_A's input width differs
  throwsUser(
    () => readLoraAdapter(FIXTURE, readModelConfig(OTHER_BASE)),
    /lora_A\.weight has shape \[4, 32\]/,
    /made for another base model/,
  );
  // one layer fewer than the adapter was made for: h.1's tensors belong to no layer
  throwsUser(() => readLoraAdapter(FIXTURE, { ...model, nLayer: 1 }), /h\.1\..*is not a LoRA weight of a layer this base model has/);
  // r says 8 but the tensors are rank 4
  throwsUser(
    () =>
      readLoraAdapter(
        adapterWith((c) => {
          c.r = 8;
        }),
        model,
      ),
    /r = 8/,
    /rank does not match/,
  );
  // a tensor missing
  const dir = adapterWith(() => {});
  const tensors = readSafetensorsFile(join(dir, "adapter_model.safetensors")).tensors;
  const key = loraKey("transformer.h.1.mlp.c_fc", "B");
  tensors.delete(key);
  writeSafetensorsFile(
    join(dir, "adapter_model.safetensors"),
    [...tensors].map(([name, t]) => ({ name, dtype: "F32", shape: t.shape, data: t.data as Float32Array })),
  );
  throwsUser(() => readLoraAdapter(dir, model), /missing tensor .*h\.1\.mlp\.c_fc\.lora_B\.weight/);
});
