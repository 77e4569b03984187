/**
 * A LoRA adapter folder (PEFT's layout, base_model_name_or_path naming the base's folder) loads in
 * the commands with the adapter merged in, and `minigpt merge` writes a plain model folder whose
 * logits are PyTorch's for the unmerged LoRA model (tests/fixtures-lora); a missing base and a
 * folder without an adapter are one line.
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { saveTokenizer } from "../src/io/folder.js";
import { loadModel } from "../src/io/hf.js";
import { toInt32 } from "../src/io/safetensors.js";
import { readSafetensorsFile } from "../src/io/safetensors-file.js";
import { noGrad, Tensor } from "../src/tensor/tensor.js";
import { CharTokenizer } from "../src/tokenizer/char.js";
import { closeReport, runCli, tempDir } from "./helpers.js";

const FIXTURE = "tests/fixtures-lora/gpt-lora";

/** base/ (the fixture's base with a tokenizer) and adapter/ (its adapter, base named relatively) */
function folders(): { base: string; adapter: string } {
  const root = tempDir("minigpt-lora-merge-");
  const base = join(root, "base");
  const adapter = join(root, "adapter");
  mkdirSync(base);
  mkdirSync(adapter);
  copyFileSync(join(FIXTURE, "config.json"), join(base, "config.json"));
  copyFileSync(join(FIXTURE, "model.safetensors"), join(base, "model.safetensors"));
  saveTokenizer(base, CharTokenizer.fromText("abcdefghijklmnopqrstuvwxyz .,\n", [], { byteFallback: false }));
  const config = JSON.parse(readFileSync(join(FIXTURE, "adapter_config.json"), "utf8"));
  writeFileSync(join(adapter, "adapter_config.json"), JSON.stringify({ ...config, base_model_name_or_path: "../base" }));
  copyFileSync(join(FIXTURE, "adapter_model.safetensors"), join(adapter, "adapter_model.safetensors"));
  return { base, adapter };
}

test("minigpt merge: the merged folder gives PyTorch's LoRA logits; analyze loads the adapter folder and says so", () => {
  const { adapter } = folders();
  const out = join(tempDir("minigpt-lora-merged-"), "merged");
  const r = runCli(["merge", "--model", adapter, "--out", out]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /a LoRA adapter \(r 4, \["c_attn","c_fc"\]\) on .*base, merged/);
  const model = loadModel(out);
  const batch = readSafetensorsFile(join(FIXTURE, "batch.safetensors")).tensors.get("idx");
  const want = readSafetensorsFile(join(FIXTURE, "expected.safetensors")).tensors.get("logits");
  assert.ok(batch && want);
  noGrad(() => {
    const logits = model.forward(Tensor.ints(toInt32(batch), batch.shape)).logits;
    const c = closeReport(logits.data, want.data as Float32Array, 1e-5, 0);
    assert.ok(c.ok, `merged logits differ from PyTorch's LoRA logits by ${c.maxAbsDiff}`);
  });
  model.dispose();
  const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
  assert.equal(config.model_type, "gpt2");
  const g = runCli(["analyze", "--model", adapter]);
  assert.equal(g.status, 0, g.stderr);
  assert.match(g.stderr, /LoRA adapter/);
});

test("merge: an adapter whose base is missing, and a folder without an adapter, are one line", () => {
  const { base, adapter } = folders();
  const config = JSON.parse(readFileSync(join(adapter, "adapter_config.json"), "utf8"));
  writeFileSync(join(adapter, "adapter_config.json"), JSON.stringify({ ...config, base_model_name_or_path: "gpt2" }));
  const out = join(tempDir("minigpt-lora-merged-"), "m");
  const missing = runCli(["merge", "--model", adapter, "--out", out]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr.trim(), /^[^\n]*names the base model gpt2, which is not a folder here/);
  const plain = runCli(["merge", "--model", base, "--out", out]);
  assert.equal(plain.status, 1);
  assert.match(plain.stderr, /holds no LoRA adapter/);
});
