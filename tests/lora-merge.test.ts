/**
 * A LoRA adapter folder (PEFT's layout, base_model_name_or_path naming the base's folder) loads in
 * the commands with the adapter merged in, and `minigpt merge` writes a plain model folder whose
 * logits are PyTorch's for the unmerged LoRA model (tests/fixtures-lora); analyze says what the folder
 * holds; a missing base, a folder without an adapter and an adapter whose tensors contradict its rank
 * are one line.
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { zipSync } from "fflate";
import type { ModelAnalysis } from "../src/analyze/analyze.js";
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

test("analyze on an adapter folder: the adapter's file and parameters, and its base's folder and weights, with their true sizes", () => {
  const { base, adapter } = folders();
  const size = (file: string) => statSync(file).size;
  const r = runCli(["analyze", "--model", adapter, "--json"]);
  assert.equal(r.status, 0, r.stderr);
  const files = (JSON.parse(r.stdout) as ModelAnalysis).files;
  // r 4 on c_attn (32 -> 96) and c_fc (32 -> 128) of 2 layers: 2 · 4 · ((32 + 96) + (32 + 128))
  assert.deepEqual(files?.lora, {
    rank: 4,
    targets: ["c_attn", "c_fc"],
    parameters: 2304,
    base,
    baseWeightsBytes: size(join(base, "model.safetensors")),
  });
  assert.equal(files?.weightsFile, "adapter_model.safetensors");
  assert.equal(files?.weightsBytes, size(join(adapter, "adapter_model.safetensors")));
  const text = runCli(["analyze", "--model", adapter]);
  assert.equal(text.status, 0, text.stderr);
  assert.match(
    text.stdout,
    /^model folder .*adapter: a LoRA adapter \(r 4 on c_attn, c_fc: 2,304 parameters\), adapter_model\.safetensors 10\.2 KB, on the base model .*base \(model\.safetensors 115 KB;/,
  );
  assert.doesNotMatch(text.stdout, /0 B/);
});

test("analyze on an adapter folder: what training it writes and trains is the adapter's, and what a merge would write", () => {
  const { adapter } = folders();
  const r = runCli(["analyze", "--model", adapter, "--json"]);
  assert.equal(r.status, 0, r.stderr);
  const a = JSON.parse(r.stdout) as ModelAnalysis;
  const adapterParameters = 2304; // r 4 on c_attn and c_fc of 2 layers (the test above)
  const base = a.parameters.total;
  // the adapter trains (gradients and AdamW moments of its parameters only), the base stays frozen
  assert.equal(a.parameters.adapter, adapterParameters);
  assert.equal(a.parameters.trainable, adapterParameters);
  assert.ok(a.parameters.tensors.every((t) => !t.trainable));
  assert.equal(a.memory.training.grads, 4 * adapterParameters);
  assert.equal(a.memory.training.adamMoments, 8 * adapterParameters);
  assert.equal(a.memory.training.weights, 4 * (base + adapterParameters));
  // a LoRA run's folder: the adapter's file (the folder's own) and checkpoints of the adapter and its
  // moments; a merge writes the whole model, a file the size of the base's
  const file = statSync(join(adapter, "adapter_model.safetensors")).size;
  const baseFile = statSync(join(a.files?.lora?.base ?? "", "model.safetensors")).size;
  assert.deepEqual(a.disk, {
    weightsFile: "adapter_model.safetensors",
    weightsBytes: file,
    checkpointBytes: 3 * file,
    keepCheckpoints: 2,
    runFolderBytes: file + 2 * 3 * file,
    mergedWeightsBytes: baseFile,
  });
  assert.ok(file > 4 * adapterParameters && baseFile > 4 * base);
  const text = runCli(["analyze", "--model", adapter]).stdout;
  // each file's size is said once, the same wherever it is named
  assert.match(text, /adapter_model\.safetensors 10\.2 KB, on the base model .*base \(model\.safetensors 115 KB;/);
  assert.match(
    text,
    /^on disk when trained: adapter_model\.safetensors 10\.2 KB \(float32\); a LoRA training run's folder at least 71\.4 KB: the adapter and 2 checkpoints of its weights and AdamW moments, 30\.6 KB each \(other files besides\); merged into its base: model\.safetensors 115 KB$/m,
  );
  assert.match(
    text,
    /^parameters: 28,064 in the base model \(frozen\), 2,304 trainable in the LoRA adapter \(closed form .* = 28,064, agrees\)$/m,
  );
  assert.doesNotMatch(text, /a training run's folder/);
});

test("merge --help offers what merge loads: an adapter folder or its checkpoint, not a zip (a zip of an adapter is one line)", () => {
  const { adapter } = folders();
  const help = runCli(["merge", "--help"]).stdout;
  assert.match(
    help,
    /^ {2}--model <value> +a folder holding a LoRA adapter .*, or one of its checkpoints \(DIR\/training\/checkpoint-N\) \(default: out\)$/m,
  );
  assert.doesNotMatch(help, /zip/);
  const zip = join(adapter, "..", "adapter.zip");
  writeFileSync(zip, zipSync({ "adapter_config.json": readFileSync(join(adapter, "adapter_config.json")) }));
  const r = runCli(["merge", "--model", zip, "--out", join(adapter, "..", "merged")]);
  assert.equal(r.status, 1);
  assert.match(
    r.stderr,
    /^minigpt merge: .*adapter\.zip is not a model folder zip: it has no config\.json, model\.safetensors, tokenizer\.json/,
  );
  assert.equal(r.stderr.split("\n").length, 2);
});

test("an adapter whose tensors contradict its rank is one line through the CLI", () => {
  const { adapter } = folders();
  const config = JSON.parse(readFileSync(join(adapter, "adapter_config.json"), "utf8"));
  writeFileSync(join(adapter, "adapter_config.json"), JSON.stringify({ ...config, r: 8 }));
  for (const args of [
    ["generate", "--model", adapter, "--prompt", "a", "--max-new-tokens", "2"],
    ["merge", "--model", adapter, "--out", join(tempDir("minigpt-lora-merged-"), "m")],
  ]) {
    const r = runCli(args);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /lora_A\.weight has shape \[4, 32\] but r = 8 .*the adapter's rank does not match its adapter_config\.json/);
  }
});
