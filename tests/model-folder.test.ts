import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { loadModelFolder, loadModelTokenizer } from "../src/io/folder.js";
import { loadModel, saveModel } from "../src/io/hf.js";
import { makeConfig } from "../src/nn/config.js";
import { GPT } from "../src/nn/gpt.js";
import { charModelFolder, runCli, tempDir, throwsUser } from "./helpers.js";

const tmp = () => tempDir("minigpt-test-");

test("save -> load round-trips every tensor bit-exactly", () => {
  const model = new GPT(makeConfig({ vocabSize: 17, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 12, nInner: 20, activation: "relu" }), 7);
  const dir = tmp();
  saveModel(model, dir);
  const back = loadModel(dir);
  assert.deepEqual(back.config, model.config);
  for (const [name, t] of model.params) {
    const u = new Uint32Array(t.data.slice().buffer);
    const v = new Uint32Array(back.param(name).data.slice().buffer);
    assert.deepEqual(v, u, name);
  }
  const header = readFileSync(join(dir, "model.safetensors"));
  const json = header.subarray(8, 8 + Number(header.readBigUInt64LE(0))).toString();
  assert.ok(json.includes('"format":"pt"'));
  assert.ok(!json.includes("lm_head"));
});

test("GPT-2 init: seeded, std 0.02, residual projections scaled", () => {
  const c = makeConfig({ vocabSize: 50, blockSize: 16, nLayer: 4, nHead: 2, nEmbd: 64 });
  const a = new GPT(c, 1);
  const b = new GPT(c, 1);
  assert.deepEqual(a.param("transformer.wte.weight").data, b.param("transformer.wte.weight").data);
  const std = (d: Float32Array) => Math.sqrt(d.reduce((s, v) => s + v * v, 0) / d.length);
  assert.ok(Math.abs(std(a.param("transformer.h.0.mlp.c_fc.weight").data) - 0.02) < 0.001);
  assert.ok(Math.abs(std(a.param("transformer.h.0.mlp.c_proj.weight").data) - 0.02 / Math.sqrt(8)) < 0.001);
  assert.ok(a.param("transformer.h.0.ln_1.weight").data.every((v) => v === 1));
  assert.ok(a.param("transformer.h.0.attn.c_attn.bias").data.every((v) => v === 0));
});

test("a config that does not match the tensors names the tensor", () => {
  const dir = tmp();
  copyFileSync("tests/fixtures/gpt-tiny/model.safetensors", join(dir, "model.safetensors"));
  const config = JSON.parse(readFileSync("tests/fixtures/gpt-tiny/config.json", "utf8"));
  config.n_embd = 64;
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  throwsUser(() => loadModel(dir), /transformer\.wte\.weight has shape \[65, 32\] but the config needs \[65, 64\]/);
});

test("missing files and bad configs give one clear line", () => {
  const dir = tmp();
  throwsUser(() => loadModel(dir), /missing file .*config\.json/);
  copyFileSync("tests/fixtures/gpt-tiny/config.json", join(dir, "config.json"));
  throwsUser(() => loadModel(dir), /missing file .*model\.safetensors/);
  // a Hugging Face folder from before safetensors: said, with the way to convert it
  writeFileSync(join(dir, "pytorch_model.bin"), "");
  throwsUser(() => loadModel(dir), /holds pytorch_model\.bin \(PyTorch's pickle format\).*save_pretrained/);
  const config = JSON.parse(readFileSync("tests/fixtures/gpt-tiny/config.json", "utf8"));
  config.activation_function = "gelu";
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  throwsUser(() => loadModel(dir), /activation_function "gelu" is not supported/);
  writeFileSync(join(dir, "config.json"), "{not json");
  throwsUser(() => loadModel(dir), /not valid JSON/);
});

test("a folder with none of a model's files (a folder of texts) is 'not a model folder', not a missing config.json", () => {
  const dir = tmp();
  writeFileSync(join(dir, "notes.txt"), "some text");
  throwsUser(
    () => loadModelFolder(dir),
    /is not a model folder: a model folder holds config\.json, model\.safetensors and tokenizer\.json/,
  );
  throwsUser(() => loadModelTokenizer(dir), /is not a model folder/);
  // one of them there: the others are named as missing
  copyFileSync("tests/fixtures/gpt-tiny/config.json", join(dir, "config.json"));
  throwsUser(() => loadModelFolder(dir), /missing file .*(model\.safetensors|tokenizer\.json)/);
});

test("a tokenizer folder given as a model says it holds a tokenizer only, in every command that loads a model", () => {
  const dir = tmp();
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(`tests/models/char-before-fallback/${f}`, join(dir, f));
  throwsUser(() => loadModelFolder(dir), /is not a model folder: it holds a tokenizer only, no config\.json or model\.safetensors/);
  // where only a tokenizer is read, the folder still does
  assert.equal(loadModelTokenizer(dir).kind, "char");
  // the CLI names the setting by its flag, also from serve's generation thread
  for (const args of [["generate", "--prompt", "hi"], ["eval"], ["serve", "--port", "0"]]) {
    const r = runCli([...args, "--model", dir], { timeoutMs: 60_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(
      r.stderr.trim(),
      new RegExp(`^minigpt ${args[0]}: .* is not a model folder: it holds a tokenizer only, .*a training run's --tokenizer\\)$`),
    );
  }
});

test("the training folder of a LoRA run is named as its checkpoints' folder, as a full run's is", () => {
  const run = tmp();
  for (const step of [2, 4]) {
    const checkpoint = join(run, "training", `checkpoint-${step}`);
    mkdirSync(checkpoint, { recursive: true });
    for (const f of ["adapter_config.json", "adapter_model.safetensors", "state.json"]) writeFileSync(join(checkpoint, f), "{}");
  }
  throwsUser(
    () => loadModelFolder(join(run, "training")),
    /training holds the checkpoints of a training run, not a model: give one of them \(.*checkpoint-4, .*checkpoint-2\)/,
  );
});

test("a file of a model folder or checkpoint given as the model names the folder to give instead", () => {
  // a run as train leaves it: the model folder, one checkpoint and the latest file that names it
  const run = charModelFolder(join(tmp(), "run"), "call me ishmael.", { blockSize: 8, nLayer: 1, nHead: 1, nEmbd: 8 });
  const checkpoint = join(run, "training", "checkpoint-4");
  mkdirSync(checkpoint, { recursive: true });
  copyFileSync(join(run, "model.safetensors"), join(checkpoint, "model.safetensors"));
  writeFileSync(join(checkpoint, "state.json"), "{}");
  writeFileSync(join(run, "training", "latest"), "checkpoint-4\n");
  for (const file of ["model.safetensors", "config.json", "tokenizer.json"])
    throwsUser(() => loadModelFolder(join(run, file)), new RegExp(`${file} is one file of the model folder .*run: give the folder itself`));
  throwsUser(
    () => loadModelFolder(join(checkpoint, "model.safetensors")),
    /is one file of the model folder .*training\/checkpoint-4: give the folder itself/,
  );
  throwsUser(
    () => loadModelFolder(join(run, "training", "latest")),
    /latest only names its run's newest checkpoint: give that checkpoint's folder \(.*training\/checkpoint-4\) or the run's model folder .*run$/,
  );
  throwsUser(() => loadModelTokenizer(join(run, "tokenizer.json")), /is one file of the model folder/);
  // and both folders it names load
  for (const dir of [run, checkpoint]) loadModelFolder(dir, () => {}).model.dispose();
});

test("a Hugging Face folder with weights and no tokenizer files says which files a tokenizer may be and how to write them", () => {
  const dir = tmp();
  for (const f of ["config.json", "model.safetensors"]) copyFileSync(`tests/fixtures/gpt-tiny/${f}`, join(dir, f));
  throwsUser(
    () => loadModelFolder(dir),
    /missing file .*tokenizer\.json \(or Hugging Face's vocab\.json and merges\.txt\).*save_pretrained/,
  );
});

test("a truncated weights file is a clear error", () => {
  const dir = tmp();
  copyFileSync("tests/fixtures/gpt-tiny/config.json", join(dir, "config.json"));
  const bytes = readFileSync("tests/fixtures/gpt-tiny/model.safetensors");
  writeFileSync(join(dir, "model.safetensors"), bytes.subarray(0, bytes.length - 100));
  throwsUser(() => loadModel(dir), /model\.safetensors/);
});

test("keys without the transformer. prefix and attn.bias buffers load", async () => {
  const { readSafetensorsFile, writeSafetensorsFile } = await import("../src/io/safetensors-file.js");
  const src = readSafetensorsFile("tests/fixtures/gpt-tiny/model.safetensors");
  const dir = tmp();
  copyFileSync("tests/fixtures/gpt-tiny/config.json", join(dir, "config.json"));
  const tensors = [...src.tensors].map(([name, t]) => ({
    name: name.replace(/^transformer\./, ""),
    dtype: "F32" as const,
    shape: t.shape,
    data: t.data,
  }));
  tensors.push({ name: "h.0.attn.bias", dtype: "F32", shape: [1, 1, 16, 16], data: new Float32Array(256) });
  writeSafetensorsFile(join(dir, "model.safetensors"), tensors);
  const model = loadModel(dir);
  assert.deepEqual(model.param("transformer.wte.weight").data, src.tensors.get("transformer.wte.weight")?.data);
});
