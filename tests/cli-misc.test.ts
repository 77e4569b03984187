/**
 * The CLI around the edges: --help lists every command of the README's table, --version is
 * package.json's, an unknown command is an error line (no stack trace), `tokenize --tokenizer gpt2`
 * gives OpenAI tiktoken's ids (and `--tokenizer DIR` a tokenizer folder's), selftest passes, gradient accumulation (2 micro-batches of 2) is the
 * same step as one batch of 4 (and both equal a forward/backward done here on the batch the
 * trainer's data PRNG draws), and --resume with a changed model setting is a one-line error.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { get_encoding } from "tiktoken";
import { helpText, parseFlags } from "../src/cli/flags.js";
import { generateSpec } from "../src/cli/generate.js";
import { main } from "../src/cli/main.js";
import { tokenizerSpec } from "../src/cli/tokenizer.js";
import { configAsFlags, trainConfigFromFlags, trainSpec } from "../src/cli/train.js";
import { loadDataset } from "../src/data/dataset.js";
import { loadTokenizer } from "../src/io/folder.js";
import { readSafetensorsFile } from "../src/io/safetensors-file.js";
import { makeConfig } from "../src/nn/config.js";
import { GPT } from "../src/nn/gpt.js";
import { Rng } from "../src/random.js";
import { scope, Tensor } from "../src/tensor/tensor.js";
import { gpt2Tokenizer } from "../src/tokenizer/gpt2.js";
import type { TrainConfig } from "../src/train/config.js";
import { runCli, tempDir, throwsUser, wordCorpus } from "./helpers.js";

const root = tempDir("minigpt-climisc-");

const cli = (args: string[]) => runCli(args);

const noStackTrace = (s: string) => !/^\s+at /m.test(s) && !/Error:/.test(s);

test("--help lists every command of the README's command table, and each has its own --help", async () => {
  const readme = readFileSync("README.md", "utf8");
  const names = [...readme.matchAll(/^\| `minigpt(?:` \/ `minigpt)? ([a-z-]+)/gm)].map((m) => m[1] as string);
  assert.ok(names.length >= 11 && names.includes("interactive"), `found only ${names.join(", ")} in README.md`);
  const r = cli(["--help"]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /usage: minigpt <command>/);
  for (const name of names) assert.match(r.stdout, new RegExp(`^  ${name} +\\S`, "m"), `--help does not list ${name}`);
  // each command's --help, in this process (main returns before loading any backend) to save a
  // process start per command
  const printed: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => printed.push(a.join(" "));
  try {
    for (const name of names) {
      printed.length = 0;
      assert.equal(await main([name, "--help"]), 0, `${name} --help`);
      const text = printed.join("\n");
      assert.match(text, new RegExp(`^minigpt ${name}: `), `${name} --help`);
      assert.match(text, /^usage: minigpt /m, `${name} --help`);
      assert.match(text, /^ {2}--help +show this help$/m, `${name} --help`);
      // `minigpt help NAME` is the same text, as git and npm take it
      printed.length = 0;
      assert.equal(await main(["help", name]), 0, `help ${name}`);
      assert.equal(printed.join("\n"), text, `help ${name}`);
    }
  } finally {
    console.log = log;
  }
});

test("bin/minigpt.js without a build (no dist/) is one line saying to run npm run build; with one it runs the CLI", () => {
  const dir = join(root, "unbuilt");
  mkdirSync(join(dir, "bin"), { recursive: true });
  copyFileSync("bin/minigpt.js", join(dir, "bin", "minigpt.js"));
  writeFileSync(join(dir, "package.json"), '{"type": "module"}');
  const run = () => spawnSync(process.execPath, [join(dir, "bin", "minigpt.js"), "--version"], { encoding: "utf8" });
  const unbuilt = run();
  assert.equal(unbuilt.status, 1);
  assert.match(unbuilt.stderr, /^minigpt: the CLI is not built \(no .*entry\.js\): run npm run build in .*\n$/);
  // a stand-in for the build: the bin imports it with the arguments left as they were
  mkdirSync(join(dir, "dist", "src", "cli"), { recursive: true });
  writeFileSync(join(dir, "dist", "src", "cli", "entry.js"), 'console.log("entry", process.argv.slice(2).join(" "));');
  const built = run();
  assert.equal(built.status, 0, built.stderr);
  assert.equal(built.stdout, "entry --version\n");
});

test("--version prints package.json's version", () => {
  const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { version: string };
  const r = cli(["--version"]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `minigpt ${pkg.version}\n`);
  // as `npm exec minigpt -- --version` may pass it (npm exec answers a bare --version itself)
  const viaNpmExec = cli(["--", "--version"]);
  assert.equal(viaNpmExec.status, 0, viaNpmExec.stderr);
  assert.equal(viaNpmExec.stdout, `minigpt ${pkg.version}\n`);
});

test("an unknown command: exit 1, the error on the first line of stderr, no stack trace", () => {
  const r = cli(["trian", "--max-steps", "3"]);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, "");
  assert.equal(r.stderr, 'minigpt: unknown command "trian" (did you mean "train"?); minigpt --help lists the commands\n');
  assert.ok(noStackTrace(r.stderr), r.stderr);
  assert.match(cli(["tokenizers"]).stderr, /did you mean "tokenizer"\?/);
  const far = cli(["xyzzy"]);
  assert.equal(far.status, 1);
  assert.equal(far.stderr, 'minigpt: unknown command "xyzzy"; minigpt --help lists the commands\n');
});

test("through the CLI: another tool's flag name is answered with ours; help examples run as written", () => {
  assert.match(
    cli(["generate", "--max-tokens", "5"]).stderr,
    /unknown flag --max-tokens for minigpt generate \(did you mean --max-new-tokens\?\)/,
  );
  // no developer's relative paths (../shared/...) in an example
  const help = cli(["eval", "--help"]);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /minigpt eval --model out/);
  assert.doesNotMatch(help.stdout, /\.\.\//);
});

test("tokenizer train --help and train --help give the --vocab-size a BPE vocabulary takes (its 256 bytes and 5 special tokens)", () => {
  // (train's --vocab-size also records a character vocabulary's size in its config line: any size,
  // so its help says bpe's least in words, not as a range that would contradict it)
  assert.match(helpText(tokenizerSpec), /--vocab-size .*\(>= 261; default: 4096\)/);
  assert.match(helpText(trainSpec), /--vocab-size .*so at least 261 .*\(default: 4096\)/);
  assert.doesNotMatch(helpText(trainSpec), /--vocab-size .*>= 1;/);
  throwsUser(() => parseFlags(tokenizerSpec, ["--vocab-size", "260"]), /--vocab-size must be >= 261, got 260/);
  assert.equal(parseFlags(tokenizerSpec, ["--vocab-size", "261"]).int("vocab-size"), 261);
});

test("a mistyped flag names the flag it most likely meant", () => {
  const spec = { name: "train", summary: "", usage: "", flags: trainSpec.flags };
  const cases: [string, string | null][] = [
    ["--lrr", "--lr"],
    ["--max-step", "--max-steps"],
    ["--batchsize", "--batch-size"],
    ["--n-layers", "--n-layer"],
    ["--nlayer", "--n-layer"],
    ["--ep", "--epochs"],
    ["--int", "--init"],
    ["--steps", "--max-steps"],
    ["--timeout", null],
    ["--stdout", null],
    ["--zzzzzz", null],
  ];
  // other tools' names for our flags, and underscores for dashes
  const generateCases: [string, string][] = [
    ["--max-tokens", "--max-new-tokens"],
    ["--max_new_tokens", "--max-new-tokens"],
    ["--temp", "--temperature"],
    ["--top_k", "--top-k"],
  ];
  for (const [typo, meant] of generateCases)
    assert.throws(
      () => parseFlags(generateSpec, [typo, "1"]),
      (e: Error) => e.message.includes(`(did you mean ${meant}?)`),
    );
  cases.push(["--max_iters", "--max-steps"], ["--learning_rate", "--lr"], ["--out_dir", "--out"], ["--init_from", "--init"]);
  // a switch that is on by default, named without its no-: not "did you mean --no-cache?"
  assert.throws(() => parseFlags(generateSpec, ["--cache"]), /^MinigptError: --cache is the default; --no-cache turns it off$/);
  for (const [typo, meant] of cases) {
    assert.throws(
      () => parseFlags(spec, [typo, "1"]),
      (e: Error) => {
        assert.match(e.message, new RegExp(`^unknown flag ${typo} for minigpt train`));
        if (meant === null) assert.doesNotMatch(e.message, /did you mean/);
        else assert.ok(e.message.includes(`(did you mean ${meant}?)`), `${typo}: ${e.message}`);
        return true;
      },
    );
  }
});

/** a config line's words as a real shell splits them */
function shellWords(line: string): string[] {
  const sh = spawnSync("sh", ["-c", `printf '%s\\0' ${line}`], { encoding: "utf8" });
  assert.equal(sh.status, 0, sh.stderr);
  return sh.stdout.split("\0").slice(0, -1);
}

const configOf = (words: string[]) => trainConfigFromFlags(parseFlags(trainSpec, words)).config;

test("train's config line is the flags that give the same config (split by a real shell)", () => {
  const base = configOf([]);
  const variants: TrainConfig[] = [
    base,
    { ...base, data: join(root, "my notes/it's here.txt"), nLayer: 3, lr: 3e-4, initPartial: true, init: "/tmp/a b", chat: "c.jsonl" },
    { ...base, maxSteps: 0, epochs: 2.5, dropout: 0.1, specialsAsText: true },
  ];
  for (const want of variants) {
    const line = configAsFlags(want);
    assert.deepEqual(configOf(shellWords(line)), want, line);
  }
});

test("train's config line is the config the run saved, for every way of starting a run", () => {
  const dir = join(root, "truth");
  mkdirSync(dir);
  const data = wordCorpus(dir, 4000);
  const tiny = ["--n-layer", "1", "--n-head", "2", "--n-embd", "8", "--block-size", "8", "--batch-size", "2", "--eval-steps", "1"];
  const quiet = ["--sample-tokens", "0", "--threads", "1"];
  /** the printed config line of a train run, checked against the config its latest checkpoint saved */
  const run = (args: string[]): { line: string; config: TrainConfig } => {
    const r = cli(["train", ...args, ...quiet]);
    assert.equal(r.status, 0, r.stderr);
    const line = /^config: (.*)$/m.exec(r.stderr)?.[1];
    assert.ok(line !== undefined, r.stderr);
    const out = /^--out (\S+)/m.exec(line.replaceAll(" --", "\n--"))?.[1] as string;
    const latest = readFileSync(join(out, "training", "latest"), "utf8").trim();
    const saved = JSON.parse(readFileSync(join(out, "training", latest, "state.json"), "utf8")).config as TrainConfig;
    assert.deepEqual(configOf(shellWords(line)), saved, line);
    return { line, config: saved };
  };
  // fresh: the feed-forward width and the vocabulary are the model's, not 0 and --vocab-size's 4096
  const fresh = run(["--data", data, "--out", join(dir, "fresh"), ...tiny, "--max-steps", "2"]);
  assert.equal(fresh.config.nInner, 32);
  assert.equal(fresh.config.vocabSize, JSON.parse(readFileSync(join(dir, "fresh", "config.json"), "utf8")).vocab_size);
  // a tokenizer folder: its own size
  const tok = join(dir, "tok");
  assert.equal(cli(["tokenizer", "train", "--data", data, "--vocab-size", "300", "--out", tok]).status, 0);
  const folder = run(["--data", data, "--out", join(dir, "bpe"), "--tokenizer", tok, ...tiny, "--block-size", "32", "--max-steps", "1"]);
  assert.match(folder.line, / --vocab-size 300 /);
  // counting: the task's word tokenizer, not the default char
  const counting = run(["--data", "counting", "--out", join(dir, "counting"), ...tiny, "--block-size", "19", "--max-steps", "1"]);
  assert.match(counting.line, / --tokenizer word /);
  // --init: the folder's tokenizer and shape, whatever the defaults say
  const init = run(["--init", join(dir, "bpe"), "--data", data, "--out", join(dir, "init"), "--max-steps", "1"]);
  assert.match(init.line, / --tokenizer bpe .*--n-embd 8 /);
  // --chat --init from a BPE model: the conversations are the data (no --data moby-dick), the tokenizer is BPE
  const chats = join(dir, "chats.jsonl");
  const chat = {
    messages: [
      { role: "user", content: "What is 2+2?" },
      { role: "assistant", content: "4, of course!" },
    ],
  };
  writeFileSync(chats, `${JSON.stringify(chat)}\n`.repeat(20));
  const chatRun = run(["--chat", chats, "--init", join(dir, "bpe"), "--out", join(dir, "chat"), "--max-steps", "1", "--batch-size", "2"]);
  assert.doesNotMatch(chatRun.line, /--data/);
  assert.match(chatRun.line, / --tokenizer bpe /);
  assert.equal(chatRun.config.vocabSize, JSON.parse(readFileSync(join(dir, "chat", "config.json"), "utf8")).vocab_size);
  // --resume: the saved run with the length asked now
  const resumed = run(["--out", join(dir, "fresh"), "--resume", "--max-steps", "3"]);
  assert.deepEqual(resumed.config, { ...fresh.config, maxSteps: 3 });
  // the printed lines run as they are (with another --out)
  for (const { line } of [counting, chatRun]) {
    const words = shellWords(line);
    words[words.indexOf("--out") + 1] = join(dir, `again-${words.length}`);
    const again = run([...words, "--max-steps", "1"]);
    assert.deepEqual(again.config, configOf(words));
  }
});

test("tokenize --tokenizer gpt2 gives tiktoken's ids (special tokens recognized, or as text with --specials-as-text)", () => {
  const enc = get_encoding("gpt2");
  try {
    const text = [
      "Hello world! It's a test: don't, we'll, they've.",
      "   leading spaces,\ttabs\n\n\nand newlines  ",
      "numbers 12345 3.14159 1,000,000",
      "naïve café — 日本語のテキスト 🙂👍🏽",
      "code: fn(x) => x ** 2; // comment",
      "<|endoftext|>after the end",
    ].join("\n");
    const r = cli(["tokenize", "--tokenizer", "gpt2", "--json", text]);
    assert.equal(r.status, 0, r.stderr);
    const ids = (JSON.parse(r.stdout) as { ids: number[] }).ids;
    assert.deepEqual(ids, Array.from(enc.encode(text, "all")));
    assert.ok(ids.includes(50256), "<|endoftext|> is one special token");
    const plain = cli(["tokenize", "--tokenizer", "gpt2", "--json", "--specials-as-text", text]);
    assert.equal(plain.status, 0, plain.stderr);
    const plainIds = (JSON.parse(plain.stdout) as { ids: number[] }).ids;
    assert.deepEqual(plainIds, Array.from(enc.encode(text, [], [])));
    assert.ok(!plainIds.includes(50256));
  } finally {
    enc.free();
  }
});

test("tokenize --tokenizer DIR takes a folder from minigpt tokenizer train (its ids); a folder without one is one line", () => {
  const dir = join(root, "tokenize-folder");
  mkdirSync(dir);
  const tok = join(dir, "tok");
  assert.equal(cli(["tokenizer", "train", "--data", wordCorpus(dir, 3000), "--vocab-size", "280", "--out", tok]).status, 0);
  const text = "call me ishmael, the white whale";
  const r = cli(["tokenize", "--tokenizer", tok, "--json", text]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual((JSON.parse(r.stdout) as { ids: number[] }).ids, loadTokenizer(tok).encode(text));
  const missing = cli(["tokenize", "--tokenizer", dir, text]);
  assert.equal(missing.status, 1);
  assert.match(
    missing.stderr,
    /--tokenizer .* is neither gpt2 nor a folder with a tokenizer\.json \(or Hugging Face's vocab\.json and merges\.txt/,
  );
  assert.ok(noStackTrace(missing.stderr), missing.stderr);
});

test("tokenize and train --tokenizer take the tokenizer's file too (DIR/tokenizer.json, what a listing shows), as its folder", () => {
  const dir = join(root, "tokenize-file");
  mkdirSync(dir);
  const tok = join(dir, "tok");
  const data = wordCorpus(dir, 3000);
  assert.equal(cli(["tokenizer", "train", "--data", data, "--vocab-size", "280", "--out", tok]).status, 0);
  const text = "call me ishmael, the white whale";
  const r = cli(["tokenize", "--tokenizer", join(tok, "tokenizer.json"), "--json", text]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual((JSON.parse(r.stdout) as { ids: number[] }).ids, loadTokenizer(tok).encode(text));
  const out = join(dir, "model");
  const small = ["--n-layer", "1", "--n-head", "1", "--n-embd", "8", "--block-size", "8", "--batch-size", "2", "--max-steps", "1"];
  const t = cli(["train", "--data", data, "--tokenizer", join(tok, "tokenizer.json"), ...small, "--out", out]);
  assert.equal(t.status, 0, t.stderr);
  assert.deepEqual(loadTokenizer(out).encode(text), loadTokenizer(tok).encode(text));
  // any other file is still not a tokenizer
  const other = cli(["tokenize", "--tokenizer", data, text]);
  assert.equal(other.status, 1);
  assert.match(other.stderr, /is neither gpt2 nor a folder with a tokenizer\.json/);
});

test("tokenize and train --tokenizer DIR take a Hugging Face GPT-2 tokenizer folder of vocab.json and merges.txt (the slow tokenizer's files)", () => {
  const dir = join(root, "tokenize-slow");
  mkdirSync(dir);
  const json = gpt2Tokenizer().toHuggingFaceJson() as { model: { vocab: Record<string, number>; merges: (string | [string, string])[] } };
  writeFileSync(join(dir, "vocab.json"), JSON.stringify(json.model.vocab));
  const merges = json.model.merges.map((m) => (typeof m === "string" ? m : m.join(" ")));
  writeFileSync(join(dir, "merges.txt"), `#version: 0.2\n${merges.join("\n")}\n`);
  const text = "Hello world, héllo <|endoftext|>";
  const r = cli(["tokenize", "--tokenizer", dir, "--json", text]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(
    (JSON.parse(r.stdout) as { ids: number[] }).ids,
    JSON.parse(cli(["tokenize", "--tokenizer", "gpt2", "--json", text]).stdout).ids,
  );
  // train takes it as it is (a GPT-2 vocabulary: 50,257 tokens)
  const out = join(dir, "model");
  const t = cli([
    "train",
    "--data",
    wordCorpus(dir, 2000),
    "--tokenizer",
    dir,
    "--n-layer",
    "1",
    "--n-head",
    "1",
    "--n-embd",
    "8",
    "--block-size",
    "8",
    "--batch-size",
    "2",
    "--max-steps",
    "1",
    "--out",
    out,
  ]);
  assert.equal(t.status, 0, t.stderr);
  assert.equal(loadTokenizer(out).vocabSize, 50257);
});

test("selftest passes", () => {
  const r = cli(["selftest", "--threads", "1"]);
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /all checks passed/);
  assert.ok(!/^FAIL/m.test(r.stdout), r.stdout);
  assert.match(r.stdout, /^PASS {2}counting task/m);
});

// -- gradient accumulation and resume, on one small text --

const MODEL = { nLayer: 1, nHead: 2, nEmbd: 16, blockSize: 16 };
const SEED = 1337; // the default --seed: init from it, training batches from Rng(seed + 1)

function trainArgs(data: string, out: string, batch: number, accum: number, steps: number): string[] {
  return [
    ["train", "--data", data, "--out", out],
    ["--n-layer", String(MODEL.nLayer), "--n-head", String(MODEL.nHead), "--n-embd", String(MODEL.nEmbd)],
    ["--block-size", String(MODEL.blockSize), "--batch-size", String(batch), "--grad-accum", String(accum)],
    ["--max-steps", String(steps), "--lr", "1e-3", "--warmup-steps", "0", "--dropout", "0", "--threads", "1"],
    ["--eval-interval", "100", "--eval-steps", "1", "--checkpoint-interval", "100", "--sample-tokens", "0"],
  ].flat();
}

type Metrics = { step: number; loss: number; grad_norm: number };
const metricsOf = (out: string): Metrics[] =>
  readFileSync(join(out, "metrics.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Metrics);
const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

test("--grad-accum 2 --batch-size 2 takes the same steps as --grad-accum 1 --batch-size 4", () => {
  // The trainer draws every micro-batch from one data PRNG, row after row, so two micro-batches of 2
  // rows are the same 4 rows as one batch of 4; with dropout 0 and one thread the steps agree up to
  // float rounding (the mean of two 2-row means vs one 4-row mean).
  const data = wordCorpus(root, 5000);
  const steps = 3;
  const whole = join(root, "whole");
  const accum = join(root, "accum");
  const a = cli(trainArgs(data, whole, 4, 1, steps));
  assert.equal(a.status, 0, a.stderr);
  const b = cli(trainArgs(data, accum, 2, 2, steps));
  assert.equal(b.status, 0, b.stderr);

  const ma = metricsOf(whole);
  const mb = metricsOf(accum);
  assert.equal(ma.length, steps);
  assert.equal(mb.length, steps);
  for (let i = 0; i < steps; i++) {
    const [x, y] = [ma[i] as Metrics, mb[i] as Metrics];
    assert.ok(rel(y.loss, x.loss) < 1e-5, `step ${i + 1}: loss ${y.loss} (accum) vs ${x.loss}`);
    assert.ok(rel(y.grad_norm, x.grad_norm) < 1e-4, `step ${i + 1}: grad norm ${y.grad_norm} (accum) vs ${x.grad_norm}`);
  }
  const wa = readSafetensorsFile(join(whole, "training", `checkpoint-${steps}`, "model.safetensors")).tensors;
  const wb = readSafetensorsFile(join(accum, "training", `checkpoint-${steps}`, "model.safetensors")).tensors;
  let worst = 0;
  for (const [name, t] of wa) {
    const u = wb.get(name);
    assert.ok(u, name);
    for (let i = 0; i < t.data.length; i++) worst = Math.max(worst, Math.abs(Number(t.data[i]) - Number(u.data[i])));
  }
  assert.ok(worst <= 1e-6, `weights differ by up to ${worst}`);

  // the first step, done here: the initial model (seed 1337) on the 4 rows Rng(seed + 1) draws
  const tokenizer = loadTokenizer(whole);
  const dataset = loadDataset({
    data,
    blockSize: MODEL.blockSize,
    batchSize: 4,
    tokenizer,
    tokenizerKind: "char",
    vocabSize: 0,
    specialsAsText: false,
  });
  const { x, y } = dataset.trainSampler(new Rng(SEED + 1)).next();
  const model = new GPT(makeConfig({ ...MODEL, vocabSize: tokenizer.vocabSize, dropout: 0 }), SEED);
  const loss = scope(() => {
    const l = model.forward(Tensor.ints(x, [4, MODEL.blockSize]), { targets: Tensor.ints(y, [4, MODEL.blockSize]) }).loss as Tensor;
    l.backward();
    return l.item();
  });
  let sq = 0;
  for (const t of model.params.values()) for (const g of (t.grad as Tensor).data) sq += g * g;
  model.dispose();
  for (const [label, m] of [
    ["batch 4", ma[0]],
    ["2 x 2 accumulated", mb[0]],
  ] as const) {
    assert.ok(rel((m as Metrics).loss, loss) < 1e-5, `${label}: step 1 loss ${(m as Metrics).loss}, direct ${loss}`);
    assert.ok(
      rel((m as Metrics).grad_norm, Math.sqrt(sq)) < 1e-4,
      `${label}: step 1 grad norm ${(m as Metrics).grad_norm}, direct ${Math.sqrt(sq)}`,
    );
  }
});

test("--resume with a changed model setting is a one-line error; a longer --max-steps is allowed", () => {
  const data = wordCorpus(root, 5000);
  const out = join(root, "resumed");
  const first = cli(trainArgs(data, out, 2, 1, 2));
  assert.equal(first.status, 0, first.stderr);
  const r = cli(["train", "--out", out, "--resume", "--n-embd", "32"]);
  assert.equal(r.status, 1, r.stderr);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(
    lines[0] as string,
    /^minigpt train: --resume continues the run in .*; --n-embd was 16, not 32 \(start a new --out to change it\)$/,
  );
  assert.ok(noStackTrace(r.stderr));
  // the folder is untouched by the refused resume, and an allowed change works
  assert.equal(metricsOf(out).length, 2);
  const ok = cli(["train", "--out", out, "--resume", "--max-steps", "3", "--sample-tokens", "0", "--threads", "1"]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.deepEqual(
    metricsOf(out).map((m) => m.step),
    [1, 2, 3],
  );
});
