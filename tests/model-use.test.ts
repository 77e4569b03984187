/**
 * What a user does with a model folder after `minigpt train`, through the real CLI: `eval` scores the
 * validation split of the model's own training data by default (the same positions training held
 * out: the token counts are the ones train printed), says what it scored and shows progress on
 * stderr; every command that takes --model takes a checkpoint of the run too; --data DIR says
 * which files it read and which it skipped.
 */
import assert from "node:assert/strict";
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { runCli, tempDir, wordCorpus } from "./helpers.js";

const root = tempDir("minigpt-modeluse-");
// a folder of notes as users have them: the .txt is read, the others are skipped and counted
const texts = join(root, "texts");
mkdirSync(texts);
wordCorpus(texts);
writeFileSync(join(texts, "README.md"), "# notes\n");
writeFileSync(join(texts, "index.json"), "{}\n");
const out = join(root, "model");
const T = 16;

/** a tiny run: seconds; its stderr says how many training and validation tokens it cut */
const trained = runCli([
  "train",
  ...["--data", texts, "--out", out, "--max-steps", "2", "--n-layer", "1", "--n-head", "2", "--n-embd", "16"],
  ...["--block-size", String(T), "--batch-size", "4", "--eval-steps", "1", "--warmup-steps", "0", "--sample-tokens", "0"],
]);
const counts = /([\d,]+) training and ([\d,]+) validation tokens/.exec(trained.stderr);
const trainTokens = Number(counts?.[1]?.replaceAll(",", ""));
const valTokens = Number(counts?.[2]?.replaceAll(",", ""));

interface EvalJson {
  loss: number;
  tokens: number;
  bits_per_byte: number;
  data: string;
  split: string;
}

function evalJson(...args: string[]): { json: EvalJson; stderr: string } {
  const r = runCli(["eval", "--model", out, "--json", ...args]);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, 1, `--json prints one line, nothing else: ${r.stdout}`);
  return { json: JSON.parse(lines[0] as string) as EvalJson, stderr: r.stderr };
}

test("eval scores the validation split of the model's own training data by default, and says so", () => {
  assert.equal(trained.status, 0, trained.stderr);
  assert.ok(trainTokens > 0 && valTokens > 0, trained.stderr);
  const { json, stderr } = evalJson();
  assert.equal(json.split, "val");
  assert.equal(json.data, texts);
  // every validation token but the first is predicted once
  assert.equal(json.tokens, valTokens - 1);
  assert.match(stderr, /model's training data\), its validation split \(the last 10% of its tokens, which training holds out\)/);
  assert.match(stderr, new RegExp(`${valTokens - 1}/${valTokens - 1} tokens in \\d+s`), "the progress line, on stderr");
  // the same text named by --data is still the model's own data
  assert.equal(evalJson("--data", texts).json.tokens, valTokens - 1);
});

test("eval --split train|all and --eval-tokens score the parts training used, and samples", () => {
  assert.equal(evalJson("--split", "train").json.tokens, trainTokens - 1);
  assert.equal(evalJson("--split", "all").json.tokens, trainTokens + valTokens - 1);
  const sample = evalJson("--split", "all", "--eval-tokens", "100");
  // whole windows of T tokens, evenly spread: at least 100 and less than one window more
  assert.ok(sample.json.tokens >= 100 && sample.json.tokens < 100 + T, `${sample.json.tokens}`);
  assert.match(sample.stderr, /a sample of 7 of its \d+ windows/);
  assert.ok(Number.isFinite(sample.json.bits_per_byte) && sample.json.bits_per_byte > 0);
});

test("every command that takes --model takes a checkpoint, and a wrong folder names the checkpoints", () => {
  const training = join(out, "training");
  const checkpoint = join(training, "checkpoint-2");
  const runs = [
    ["tokenize", "--model", checkpoint, "the whale"],
    ["generate", "--model", checkpoint, "--prompt", "the ", "--max-new-tokens", "5", "--temperature", "0"],
    ["eval", "--model", checkpoint, "--eval-tokens", "20"],
    ["analyze", "--model", checkpoint],
    ["attention", "--model", checkpoint, "--prompt", "the whale", "--out", join(root, "att.html")],
  ];
  for (const args of runs) {
    const r = runCli(args);
    assert.equal(r.status, 0, `${args[0]}: ${r.stderr}`);
    assert.ok(r.stdout.length > 0, `${args[0]} printed nothing`);
  }
  for (const wrong of [training, join(training, "checkpoint-7")]) {
    const r = runCli(["generate", "--model", wrong]);
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /checkpoint-2, .*checkpoint-0/, r.stderr);
  }
});

test("--data DIR says how many files of which kinds it read and skipped", () => {
  assert.match(trained.stderr, /^files: read 1 \.txt file \([\d.]+ KB\); skipped 1 \.json, 1 \.md \(only \.txt files are read\)$/m);
});

test("generate --num-samples N: each under its own header, sample k as --seed + k - 1 alone; --stop is left out unless --stop-include", () => {
  const gen = (...args: string[]) => {
    const r = runCli(["generate", "--model", out, "--prompt", "the ", "--max-new-tokens", "40", ...args]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const three = gen("--num-samples", "3");
  const parts = three.split(/^--- sample (\d) of 3 \(--seed (\d+)\) ---\n/m);
  // ["", "1", "1337", text, "2", "1338", text, "3", "1339", text]
  assert.equal(parts.length, 10, three);
  assert.deepEqual([parts[1], parts[2], parts[4], parts[5], parts[7], parts[8]], ["1", "1337", "2", "1338", "3", "1339"]);
  const second = gen("--seed", "1338");
  assert.equal(`${parts[6]}`.trimEnd(), second.trimEnd());
  // a stop string of two characters from inside the text: the text ends before its first appearance
  const continuation = second.slice("the ".length).trimEnd();
  const stop = continuation.slice(10, 12);
  const before = `the ${continuation.slice(0, continuation.indexOf(stop))}`;
  assert.equal(gen("--seed", "1338", "--stop", stop), `${before}\n`);
  assert.equal(gen("--seed", "1338", "--stop", stop, "--stop-include"), `${before}${stop}\n`);
});

test("a model folder over 100 MB is announced before anything is written; analyze gives the figure", () => {
  const analysis = runCli(["analyze", "--model", out, "--json"]);
  assert.equal(analysis.status, 0, analysis.stderr);
  const a = JSON.parse(analysis.stdout) as {
    parameters: { total: number };
    disk: { weightsBytes: number; checkpointBytes: number; keepCheckpoints: number; runFolderBytes: number };
  };
  // the float32 weights file (the folder's own), and per checkpoint the weights and AdamW's two moments
  const weights = statSync(join(out, "model.safetensors")).size;
  assert.equal(a.disk.weightsBytes, weights);
  assert.ok(weights > 4 * a.parameters.total);
  assert.equal(a.disk.runFolderBytes, weights + a.disk.keepCheckpoints * 3 * weights);
  assert.match(
    runCli(["analyze", "--model", out]).stdout,
    /^on disk when trained: model\.safetensors [\d.]+ KB \(float32\); a training run's folder at least/m,
  );
  assert.doesNotMatch(trained.stderr, /will take about/);
  // GPT-2's 50,257-token vocabulary, 72 wide: 3.6M parameters, about 103 MB. The --out given is a
  // file, so the run stops where it would start writing: the note must already have been given
  const file = join(root, "a-file");
  writeFileSync(file, "");
  const big = runCli(
    ["train", "--data", join(texts, "corpus.txt"), "--tokenizer", "gpt2", "--n-embd", "72", "--n-head", "2"].concat([
      "--n-layer",
      "1",
      "--block-size",
      "8",
      "--batch-size",
      "1",
      "--max-steps",
      "1",
      "--out",
      file,
    ]),
  );
  assert.equal(big.status, 1);
  assert.match(big.stderr, /^note: .*a-file will take about 10\d MB on disk \(model\.safetensors 14\.\d MB and 2 checkpoints/m);
  assert.match(big.stderr, /is a file; give a folder for the model/);
});

test('chat data takes a "system" message (<|system|> added by the fine-tune), and chat --system puts one before every prompt', () => {
  const conversations = join(root, "conversations.jsonl");
  const line = (messages: { role: string; content: string }[]) => JSON.stringify({ messages });
  writeFileSync(
    conversations,
    `${line([
      { role: "system", content: "sea" },
      { role: "user", content: "me" },
      { role: "assistant", content: "the whale." },
    ])}\n${line([
      { role: "user", content: "ahab" },
      { role: "assistant", content: "a ship." },
    ])}\n`,
  );
  const chatModel = join(root, "chat-model");
  const tuned = runCli(
    ["train", "--chat", conversations, "--init", out, "--out", chatModel].concat([
      "--max-steps",
      "2",
      "--batch-size",
      "2",
      "--eval-steps",
      "1",
      "--warmup-steps",
      "0",
    ]),
  );
  assert.equal(tuned.status, 0, tuned.stderr);
  assert.match(tuned.stderr, /^chat: added <\|system\|> to the vocabulary/m);
  const reply = (...args: string[]) => {
    const r = runCli(["chat", "--model", chatModel, "--temperature", "0", "--max-new-tokens", "12", ...args], { input: "me\n/quit\n" });
    assert.equal(r.status, 0, r.stderr);
    return /^assistant> (.*)$/m.exec(r.stdout)?.[1];
  };
  // greedy replies to the same message: the system message is part of what the model sees
  assert.notEqual(reply("--system", "sea"), reply());
  // a system message anywhere but first is a one-line error naming the line
  writeFileSync(
    conversations,
    `${line([
      { role: "user", content: "me" },
      { role: "system", content: "sea" },
    ])}\n`,
  );
  const late = runCli(["train", "--chat", conversations, "--init", out, "--out", join(root, "chat-late")]);
  assert.equal(late.status, 1);
  assert.match(late.stderr, /conversations\.jsonl line 1: a "system" message may only come first/);
});
