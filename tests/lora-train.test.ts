/**
 * `minigpt train --init DIR --lora-rank r`, through the real CLI on a 2-layer, 32-wide model: the
 * folder holds a PEFT adapter (and only the adapter trains: the base's weights come back unchanged
 * after merging a zero B, its rows of wte stay the base's), checkpoints hold only the adapter and its
 * moments, a stopped run resumes bit-identically (LoRA dropout on), data-parallel threads give the
 * same bits, chat fine-tuning trains the added token rows (trainable_token_indices), and every
 * command loads the result; each bad input is one line.
 */
import assert from "node:assert/strict";
import { cpSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { loadModelFolder } from "../src/io/folder.js";
import { readSafetensorsFile } from "../src/io/safetensors-file.js";
import { RunFolder } from "../src/train/run-folder.js";
import type { Trained } from "../src/train/trained.js";
import { charModelFolder, runCli, tempDir, wordCorpus } from "./helpers.js";

const quiet = () => {};

/** a 2-layer 32-wide base model on the corpus's characters (random weights: what LoRA adapts does not matter here) */
function baseModel(dir: string, text: string): string {
  return charModelFolder(join(dir, "base"), text, { blockSize: 16, nLayer: 2, nHead: 2, nEmbd: 32 }, 7);
}

function setup(): { dir: string; data: string; base: string } {
  const dir = tempDir("minigpt-lora-train-");
  const data = wordCorpus(dir);
  return { dir, data, base: baseModel(dir, readFileSync(data, "utf8")) };
}

const steps = (n: number) => ["--max-steps", String(n), "--warmup-steps", "0", "--lr", "0.01", "--sample-tokens", "0"];

function tensors(file: string): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of readSafetensorsFile(file).tensors) out.set(name, { shape: t.shape, data: t.data as Float32Array });
  return out;
}

const A0 = "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight";
const B0 = "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight";

test("train --lora-rank writes a PEFT adapter; only it trains and its checkpoints hold only it; generate and eval load the folder", () => {
  const { dir, data, base } = setup();
  const out = join(dir, "lora");
  const r = runCli([
    "train",
    "--init",
    base,
    "--data",
    data,
    "--out",
    out,
    "--lora-rank",
    "4",
    "--lora-alpha",
    "16",
    ...steps(6),
    "--eval-interval",
    "3",
  ]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /lora: rank 4, alpha 16 \(scaling 4\), dropout 0, on c_attn: 1,024 parameters train/);
  const config = JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8"));
  assert.equal(config.peft_type, "LORA");
  assert.equal(config.r, 4);
  assert.equal(config.lora_alpha, 16);
  assert.deepEqual(config.target_modules, ["c_attn"]);
  assert.equal(config.fan_in_fan_out, true);
  assert.equal(config.base_model_name_or_path, "../base");
  assert.equal(config.trainable_token_indices, null);
  const adapter = tensors(join(out, "adapter_model.safetensors"));
  assert.deepEqual([...adapter.keys()].sort(), [A0, B0, A0.replace("h.0", "h.1"), B0.replace("h.0", "h.1")].sort());
  assert.deepEqual(adapter.get(A0)?.shape, [4, 32]);
  assert.deepEqual(adapter.get(B0)?.shape, [96, 4]);
  // the first checkpoint: A ~ U(-1/sqrt(in), 1/sqrt(in)), B = 0
  const first = tensors(join(out, "training", "checkpoint-0", "adapter_model.safetensors"));
  const a = first.get(A0)?.data as Float32Array;
  assert.ok(a.every((v) => Math.abs(v) <= 1 / Math.sqrt(32)) && a.some((v) => Math.abs(v) > 0.1));
  assert.ok((first.get(B0)?.data as Float32Array).every((v) => v === 0));
  // B trained: no longer zero
  assert.ok((adapter.get(B0)?.data as Float32Array).some((v) => v !== 0));
  // checkpoints: the adapter and its moments, nothing of the base
  const last = join(out, "training", "checkpoint-6");
  const moments = [...tensors(join(last, "optimizer.safetensors")).keys()].sort();
  assert.deepEqual(moments, [...adapter.keys()].flatMap((k) => [`m.${k}`, `v.${k}`]).sort());
  assert.throws(() => readFileSync(join(last, "model.safetensors")));
  // merged, the frozen weights are the base's: only c_attn's weight moved (by the adapter)
  const merged = loadModelFolder(out, quiet);
  const baseFolder = loadModelFolder(base, quiet);
  for (const [name, t] of baseFolder.model.params) {
    const same = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(
      Buffer.from(merged.model.param(name).data.buffer, merged.model.param(name).data.byteOffset, t.data.byteLength),
    );
    assert.equal(same, !name.endsWith("c_attn.weight"), `${name} ${same ? "is" : "is not"} the base's`);
  }
  merged.model.dispose();
  baseFolder.model.dispose();
  const g = runCli(["generate", "--model", out, "--prompt", "the", "--max-new-tokens", "5"]);
  assert.equal(g.status, 0, g.stderr);
  assert.match(g.stderr, /a LoRA adapter \(r 4, \["c_attn"\]\) on .*base, merged into its weights/);
  // the learning mode's step on the merged model: every layer has a gradient again (the merge unfreezes)
  const x = runCli(["explain-step", "--model", out, "--data", data]);
  assert.equal(x.status, 0, x.stderr);
  assert.match(x.stdout + x.stderr, /h\.1 +[1-9]\.\d+e[-+]\d+/);
  const e = runCli(["eval", "--model", out]);
  assert.equal(e.status, 0, e.stderr);
  // scored on the run's own validation split (its record is in the adapter folder's config.json)
  assert.match(e.stdout + e.stderr, /validation split/);
});

test("a LoRA run stopped after a checkpoint resumes bit-identically (dropout on the adapters), and 2 data-parallel threads give the same bits as 1", () => {
  const { dir, data, base } = setup();
  const flags = ["--init", base, "--data", data, "--lora-rank", "2", "--lora-targets", "c_attn,c_proj", "--lora-dropout", "0.2"];
  const every = ["--eval-interval", "4", "--checkpoint-interval", "4"];
  const straight = join(dir, "straight");
  const a = runCli(["train", ...flags, ...steps(12), ...every, "--out", straight]);
  assert.equal(a.status, 0, a.stderr);
  // what a run killed after its step-8 checkpoint leaves: latest names checkpoint-8 (metrics beyond it are cut on resume)
  const stopped = join(dir, "stopped");
  cpSync(straight, stopped, { recursive: true });
  rmSync(join(stopped, "training", "checkpoint-12"), { recursive: true });
  writeFileSync(join(stopped, "training", "latest"), "checkpoint-8\n");
  const b = runCli(["train", "--out", stopped, "--resume"]);
  assert.equal(b.status, 0, b.stderr);
  assert.match(b.stderr, /resuming .* at step 8/);
  for (const file of ["adapter_model.safetensors", "optimizer.safetensors"])
    assert.ok(
      readFileSync(join(straight, "training", "checkpoint-12", file)).equals(
        readFileSync(join(stopped, "training", "checkpoint-12", file)),
      ),
      `${file} differs after resume`,
    );
  const threaded = join(dir, "threads2");
  const c = runCli(["train", ...flags, ...steps(12), ...every, "--out", threaded, "--threads", "2"], { env: { MINIGPT_THREADS: "2" } });
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stderr, /2 thread\(s\), data parallel/);
  assert.ok(
    readFileSync(join(straight, "adapter_model.safetensors")).equals(readFileSync(join(threaded, "adapter_model.safetensors"))),
    "2 threads trained other bits",
  );
});

test("chat fine-tuning with LoRA trains the added tokens' rows (trainable_token_indices) and no other row; chat loads it", () => {
  const { dir, base } = setup();
  const chats = join(dir, "chats.jsonl");
  const qa = [
    ["hi", "hello there"],
    ["who is ahab", "the captain"],
  ];
  writeFileSync(
    chats,
    Array.from({ length: 12 }, (_, i) => {
      const [q, ans] = qa[i % 2] as string[];
      return `${JSON.stringify({
        messages: [
          { role: "user", content: q },
          { role: "assistant", content: ans },
        ],
      })}\n`;
    }).join(""),
  );
  const out = join(dir, "chat");
  const r = runCli(["train", "--chat", chats, "--init", base, "--out", out, "--lora-rank", "2", ...steps(8)]);
  assert.equal(r.status, 0, r.stderr);
  const baseVocab = loadModelFolder(base, quiet).tokenizer.vocabSize;
  const config = JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8"));
  const added: number[] = config.trainable_token_indices.wte;
  assert.ok(added.length >= 1, `added tokens ${added}`);
  assert.deepEqual(
    added,
    added.map((_, i) => baseVocab + i),
  );
  const rows = tensors(join(out, "adapter_model.safetensors")).get("base_model.model.transformer.wte.token_adapter.trainable_tokens_delta");
  assert.deepEqual(rows?.shape, [added.length, 32]);
  const first = tensors(join(out, "training", "checkpoint-0", "adapter_model.safetensors")).get(
    "base_model.model.transformer.wte.token_adapter.trainable_tokens_delta",
  );
  assert.ok(
    !Buffer.from((rows?.data as Float32Array).buffer).equals(Buffer.from((first?.data as Float32Array).buffer)),
    "the added rows did not train",
  );
  // the rest of wte is the base's
  const merged = loadModelFolder(out, quiet);
  const baseFolder = loadModelFolder(base, quiet);
  const C = 32;
  assert.deepEqual(
    merged.model.param("transformer.wte.weight").data.subarray(0, baseVocab * C),
    baseFolder.model.param("transformer.wte.weight").data,
  );
  assert.deepEqual(merged.model.param("transformer.wte.weight").data.subarray(baseVocab * C), rows?.data);
  merged.model.dispose();
  baseFolder.model.dispose();
  const c = runCli(["chat", "--model", out, "--max-new-tokens", "5"], { input: "hi\n" });
  assert.equal(c.status, 0, c.stderr);
});

test("train --help's --lora-rank line offers the ranks the run accepts (not >= 0) and says what its default means", () => {
  const r = runCli(["train", "--help"]);
  assert.equal(r.status, 0, r.stderr);
  const line = r.stdout.split("\n").find((l) => l.includes("LoRA adapter of this rank")) ?? "";
  assert.match(line, /1 or more/);
  assert.doesNotMatch(line, />= 0/);
  assert.match(line, /default: none, the whole model trains/);
});

test("bad LoRA settings are one line each", () => {
  const { dir, data, base } = setup();
  const oneLine = (args: string[], pattern: RegExp) => {
    const r = runCli(["train", "--data", data, ...steps(2), ...args]);
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0] as string, pattern);
  };
  oneLine(["--out", join(dir, "a"), "--lora-rank", "4"], /--lora-rank trains an adapter on an existing model: give --init DIR/);
  oneLine(["--out", join(dir, "b"), "--init", base, "--lora-rank", "0"], /--lora-rank 0: an adapter's rank must be at least 1/);
  oneLine(
    ["--out", join(dir, "d"), "--init", base, "--lora-rank", "4", "--lora-targets", "c_attn,q_proj"],
    /--lora-targets: q_proj matches no layer of the model/,
  );
  oneLine(["--out", join(dir, "e"), "--init", base, "--lora-alpha", "16"], /--lora-alpha applies to LoRA training: give --lora-rank too/);
  // resume with other LoRA settings than the run's
  const out = join(dir, "run");
  const r = runCli(["train", "--data", data, ...steps(2), "--init", base, "--out", out, "--lora-rank", "4"]);
  assert.equal(r.status, 0, r.stderr);
  for (const flag of [
    ["--lora-rank", "8"],
    ["--lora-alpha", "32"],
    ["--lora-targets", "c_fc"],
  ])
    oneLine(["--out", out, "--resume", ...flag], new RegExp(`--resume continues the run in .* with its saved settings; ${flag[0]} was`));
  // the base model gone
  rmSync(base, { recursive: true });
  oneLine(["--out", out, "--resume", "--max-steps", "4"], /is a LoRA adapter on the model .*base, which is not there any more/);
});

test("an adapter for another base is one line", () => {
  const { dir, data, base } = setup();
  const out = join(dir, "lora");
  const r = runCli(["train", "--init", base, "--data", data, "--out", out, "--lora-rank", "4", ...steps(2)]);
  assert.equal(r.status, 0, r.stderr);
  // the base replaced by a wider model of the same vocabulary
  rmSync(base, { recursive: true });
  charModelFolder(base, readFileSync(data, "utf8"), { blockSize: 16, nLayer: 2, nHead: 2, nEmbd: 48 }, 7);
  const g = runCli(["generate", "--model", out, "--prompt", "the"]);
  assert.equal(g.status, 1, g.stderr);
  assert.equal(g.stderr.trim().split("\n").length, 1, g.stderr);
  assert.match(g.stderr, /adapter was made for another base model/);
});

test("QLoRA from the CLI: train --init on an int8 folder with --lora-rank keeps the base quantized and trains the adapter; without --lora-rank it is one line", () => {
  const { dir, data, base } = setup();
  const q8 = join(dir, "q8");
  const q = runCli(["quantize", "--model", base, "--out", q8, "--bits", "8"]);
  assert.equal(q.status, 0, q.stderr);
  const refused = runCli(["train", "--init", q8, "--data", data, "--out", join(dir, "full"), ...steps(2)]);
  assert.equal(refused.status, 1);
  assert.equal(refused.stderr.trim().split("\n").length, 1, refused.stderr);
  assert.match(refused.stderr, /holds quantized weights.*--lora-rank/);
  const out = join(dir, "qlora");
  const r = runCli(["train", "--init", q8, "--data", data, "--out", out, "--lora-rank", "2", ...steps(4), "--eval-interval", "2"]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /QLoRA: the base's int8 weights stay quantized/);
  const config = JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8"));
  assert.equal(config.base_model_name_or_path, "../q8");
  assert.ok(
    (tensors(join(out, "adapter_model.safetensors")).get(B0)?.data as Float32Array).some((v) => v !== 0),
    "B trained",
  );
  const g = runCli(["generate", "--model", out, "--prompt", "the", "--max-new-tokens", "3"]);
  assert.equal(g.status, 0, g.stderr);
  assert.match(g.stderr, /a LoRA adapter \(r 2, \["c_attn"\]\) on .*q8/);
});

test("a LoRA run's note on its folder's size names adapter_model.safetensors and its size, not model.safetensors", () => {
  const dir = tempDir("minigpt-lora-note-");
  // --out a file: the run stops where it would start writing, after the note
  const out = join(dir, "a-file");
  writeFileSync(out, "");
  // an adapter big enough for a run folder over 100 MB, stood in for by its figures (nothing allocated)
  const parameters = 5e6;
  const trained = {
    params: new Map([["a", { size: parameters }]]),
    lora: {},
    weightsFile: "adapter_model.safetensors",
    weightsFileBytes: () => 4 * parameters + 4096,
  } as unknown as Trained;
  const notes: string[] = [];
  const run = RunFolder.open(out, false, (m) => notes.push(String(m)));
  try {
    const first = { trained, tokenizer: {}, info: {}, checkpoint: quiet, overwrite: false, data: join(dir, "data.txt") };
    assert.throws(() => run.create(first as unknown as Parameters<RunFolder["create"]>[0]), /is a file/);
  } finally {
    run.close();
  }
  assert.equal(notes.length, 1);
  assert.match(
    notes[0] as string,
    /will take about 140 MB on disk \(adapter_model\.safetensors 20\.0 MB and 2 checkpoints of its weights and AdamW moments, 60\.0 MB each\)/,
  );
  assert.doesNotMatch(notes[0] as string, /\(model\.safetensors/);
});
