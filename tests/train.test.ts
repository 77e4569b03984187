/**
 * Training end to end through the CLI entry (child processes, as a user runs it): the counting task
 * learns its pattern, resume after SIGKILL (on another --threads) is bit-identical, and random kills never leave the model
 * folder unloadable or unresumable.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { test } from "node:test";
import { generate } from "../src/generate/generate.js";
import { unseenSpecialIds } from "../src/generate/suppress.js";
import { loadModelFolder } from "../src/io/folder.js";
import { Rng } from "../src/random.js";
import { CLI, charModelFolder, runCli, tempDir, wordCorpus } from "./helpers.js";

const tmp = () => tempDir("minigpt-train-");
const cli = (args: string[], cwd?: string) => runCli(args, { cwd });

/** each command exits 1 with one line matching its pattern, never a stack trace */
function assertUserErrors(cases: [string[], RegExp][]): void {
  for (const [args, pattern] of cases) {
    const r = cli(args);
    assert.equal(r.status, 1, `${args.join(" ")}: exit ${r.status}\n${r.stderr}`);
    assert.match(r.stderr, pattern, args.join(" "));
    assert.ok(!/\n\s+at /.test(r.stderr), `stack trace for ${args.join(" ")}:\n${r.stderr}`);
  }
}

const small = [
  "--n-layer",
  "2",
  "--n-head",
  "2",
  "--n-embd",
  "16",
  "--block-size",
  "16",
  "--batch-size",
  "4",
  "--eval-steps",
  "2",
  "--sample-tokens",
  "0",
];

test("counting: a tiny model reaches 100% pattern accuracy on held-out starts", () => {
  const out = join(tmp(), "counting");
  const r = cli([
    "train",
    "--data",
    "counting",
    "--out",
    out,
    "--n-layer",
    "2",
    "--n-head",
    "2",
    "--n-embd",
    "48",
    "--block-size",
    "19",
    "--batch-size",
    "32",
    "--max-steps",
    "400",
    "--lr",
    "3e-3",
    "--min-lr",
    "3e-4",
    "--warmup-steps",
    "20",
    "--weight-decay",
    "0",
    "--eval-interval",
    "400",
    "--eval-steps",
    "1",
    "--checkpoint-interval",
    "400",
    "--sample-tokens",
    "0",
  ]);
  assert.equal(r.status, 0, r.stderr);
  const ev = cli(["eval", "--model", out, "--data", "counting", "--json"]);
  assert.equal(ev.status, 0, ev.stderr);
  const result = JSON.parse(ev.stdout) as { pattern_accuracy: number; loss: number };
  assert.equal(result.pattern_accuracy, 1, `pattern accuracy ${result.pattern_accuracy}, loss ${result.loss}`);
  // the hint the run ends with works, and the continuation is spaced like the prompt
  assert.match(r.stderr, /next: minigpt generate --model .* --prompt "3 4 5"/);
  const gen = cli(["generate", "--model", out, "--prompt", "3 4 5", "--max-new-tokens", "3", "--temperature", "0"]);
  assert.equal(gen.status, 0, gen.stderr);
  assert.equal(gen.stdout, "3 4 5 6 7 8\n");
  // and so in interactive mode: model menu (best model), mode (generate), greedy, the prompt
  const it = runCli(["interactive", "--dir", out], { input: "1\n1\n/temp 0\n3 4 5\n/quit\n" });
  assert.equal(it.status, 0, it.stderr);
  assert.match(it.stdout, /> 3 4 5\n3 4 5 6 7 8 9 /);
});

function weightsOf(dir: string): Map<string, Uint32Array> {
  const { model } = loadModelFolder(dir);
  const m = new Map<string, Uint32Array>();
  for (const [n, t] of model.params) m.set(n, new Uint32Array(t.data.slice().buffer));
  model.dispose();
  return m;
}

function latestWeights(out: string): string {
  const name = readFileSync(join(out, "training", "latest"), "utf8").trim();
  return join(out, "training", name);
}

test("resume after SIGKILL, on another thread count, is bit-identical to an uninterrupted run (dropout 0.1)", async () => {
  const dir = tmp();
  const data = wordCorpus(dir);
  const common = [
    "--data",
    data,
    ...small,
    "--max-steps",
    "200",
    "--dropout",
    "0.1",
    "--eval-interval",
    "50",
    "--checkpoint-interval",
    "50",
  ];
  // both runs on 2 threads (data parallel); the resumed one goes on with 1 thread: the shards
  // (--grad-shards 2) make the weights the same bits on any thread count
  const twoThreads = ["--threads", "2"];
  const straight = join(dir, "straight");
  const a = cli(["train", ...common, ...twoThreads, "--out", straight]);
  assert.equal(a.status, 0, a.stderr);

  const killed = join(dir, "killed");
  const child = spawn(process.execPath, [...CLI, "train", ...common, ...twoThreads, "--out", killed], { stdio: "ignore" });
  await waitFor(
    () =>
      existsSync(join(killed, "training", "latest")) && /checkpoint-(1\d\d)/.test(readFileSync(join(killed, "training", "latest"), "utf8")),
    120_000,
  );
  child.kill("SIGKILL");
  await new Promise((r) => child.once("exit", r));
  const b = cli(["train", ...common, "--out", killed, "--resume", "--threads", "1"]);
  assert.equal(b.status, 0, b.stderr);
  assert.match(b.stderr, /resuming/);

  // the final checkpoints (step 200) must agree bit for bit
  const wa = weightsOfCheckpoint(latestWeights(straight));
  const wb = weightsOfCheckpoint(latestWeights(killed));
  for (const [name, v] of wa) assert.deepEqual(wb.get(name), v, `${name} differs after resume`);
  // and so must the best model kept at the top level
  const ta = weightsOf(straight);
  const tb = weightsOf(killed);
  for (const [name, v] of ta) assert.deepEqual(tb.get(name), v, `best model ${name} differs`);
});

function weightsOfCheckpoint(dir: string): Map<string, Uint32Array> {
  const bytes = readFileSync(join(dir, "model.safetensors"));
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString()) as Record<string, { data_offsets: [number, number] }>;
  const m = new Map<string, Uint32Array>();
  for (const [name, h] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const [s, e] = h.data_offsets;
    m.set(name, new Uint32Array(bytes.buffer.slice(bytes.byteOffset + 8 + n + s, bytes.byteOffset + 8 + n + e)));
  }
  return m;
}

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("crash safety: 20 SIGKILLs at random moments never leave the folder unloadable or unresumable", async () => {
  const dir = tmp();
  const data = wordCorpus(dir);
  const out = join(dir, "run");
  const args = ["train", "--data", data, ...small, "--max-steps", "100000", "--eval-interval", "7", "--checkpoint-interval", "5"];
  const rng = new Rng(99);
  let kills = 0;
  let resumes = 0;
  while (kills < 20) {
    const resume = existsSync(out);
    if (resume) {
      // what a user would do after a crash: load it, and resume it
      const folder = loadModelFolder(out);
      folder.model.dispose();
      resumes++;
    }
    const child: ChildProcess = spawn(process.execPath, [...CLI, ...args, "--out", out, ...(resume ? ["--resume"] : [])], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    let started: (v: "training") => void = () => {};
    const training = new Promise<"training">((r) => {
      started = r;
    });
    child.stderr?.on("data", (d) => {
      stderr += String(d);
      if (/^kernels: /m.test(stderr)) started("training");
    });
    // Start-up (tsx, the model, the data) takes 1-3 s and writes nothing, so a delay from spawn
    // would mostly kill before the first write. Three kills in four are timed from the "kernels:"
    // line, printed as the step loop starts, when checkpoints (every 5 steps of a few ms) are being
    // written; the rest from spawn, to cover the moments around creating the folder.
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    const fromStep = kills % 4 !== 3;
    if (fromStep) {
      const state = await Promise.race([exited, training]);
      assert.equal(state, "training", `training exited before its first step (code ${String(state)}): ${stderr}`);
    }
    const delay = fromStep ? rng.int(800) : 300 + rng.int(2500);
    const early = await Promise.race([exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), delay))]);
    assert.equal(early, "timeout", `training exited by itself (code ${String(early)}): ${stderr}`);
    child.kill("SIGKILL");
    await exited;
    kills++;
  }
  assert.ok(resumes >= 15, `only ${resumes} of the runs found a folder to resume`);
  const final = loadModelFolder(out);
  final.model.dispose();
});

test("bad input gives one clear line, not a stack trace", () => {
  const dir = tmp();
  const cases: [string[], RegExp][] = [
    [["train", "--data", join(dir, "nope.txt")], /neither a file|does not exist|not found/i],
    [["train", "--bogus"], /unknown flag --bogus/],
    [["train", "--max-steps", "abc"], /--max-steps needs a whole number/],
    [["train", "--tokenizer", "wordpiece"], /--tokenizer wordpiece is neither char, bpe, gpt2 nor a folder with a tokenizer\.json/],
    [["generate", "--model", join(dir, "missing")], /does not exist/],
    [["train", "--out", join(dir, "x"), "--resume"], /nothing to resume/],
  ];
  writeFileSync(join(dir, "short.txt"), "tiny");
  cases.push([["train", "--data", join(dir, "short.txt"), "--out", join(dir, "s")], /lower --block-size or give more text/]);
  writeFileSync(join(dir, "bin.txt"), Buffer.from([0x48, 0x00, 0x01, 0xff, 0xfe]));
  cases.push([["train", "--data", join(dir, "bin.txt"), "--out", join(dir, "b")], /binary|UTF-8/i]);
  assertUserErrors(cases);
});

test("an existing model folder is not overwritten without --overwrite", () => {
  const dir = tmp();
  const data = wordCorpus(dir);
  const out = join(dir, "m");
  const base = ["train", "--data", data, ...small, "--max-steps", "3", "--eval-interval", "3", "--out", out];
  assert.equal(cli(base).status, 0);
  const again = cli(base);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /already holds files \(a model\).*--resume.*--overwrite/);
  assert.equal(cli([...base, "--overwrite"]).status, 0);
});

test("a model folder with no training run (made by quantize, merge or Hugging Face) is not offered --resume, and --resume on it says how to train from it", () => {
  const dir = tmp();
  const data = wordCorpus(dir);
  const model = charModelFolder(join(dir, "plain"), readFileSync(data, "utf8"), { blockSize: 8, nLayer: 1, nHead: 1, nEmbd: 8 });
  const base = ["train", "--data", data, ...small, "--max-steps", "1", "--out", model];
  // each message used to send the user to the other: "continue that run with --resume", "train without --resume first"
  const fresh = cli(base);
  assert.equal(fresh.status, 1);
  assert.equal(
    fresh.stderr.trim(),
    `minigpt train: ${model} already holds a model but no training run to continue (no ${join(model, "training", "latest")}); replace it with --overwrite, or choose another --out (--init ${model} starts from its weights)`,
  );
  const resumed = cli([...base, "--resume"]);
  assert.equal(resumed.status, 1);
  assert.equal(
    resumed.stderr.trim(),
    `minigpt train: nothing to resume in ${model}: it holds a model but no training run (no ${join(model, "training", "latest")}); to train it further, start a new run from its weights with --init ${model} and another --out`,
  );
  // following that advice works
  const further = cli([
    "train",
    "--data",
    data,
    "--init",
    model,
    "--out",
    join(dir, "further"),
    "--max-steps",
    "1",
    "--batch-size",
    "4",
    "--eval-steps",
    "1",
    "--sample-tokens",
    "0",
  ]);
  assert.equal(further.status, 0, further.stderr);
});

test("--overwrite replaces only a model folder; the user's files, the data and the current folder are refused", () => {
  const dir = tmp();
  const data = wordCorpus(dir);
  const run = (out: string, extra: string[] = [], cwd?: string) =>
    cli(["train", "--data", data, ...small, "--max-steps", "2", "--out", out, ...extra], cwd);
  const refused = (r: ReturnType<typeof run>, pattern: RegExp) => {
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, pattern);
    assert.ok(!/\n\s+at /.test(r.stderr), `stack trace:\n${r.stderr}`);
  };
  // a folder with someone's files in it
  const mine = join(dir, "mine");
  mkdirSync(mine);
  writeFileSync(join(mine, "thesis.tex"), "important");
  refused(run(mine, ["--overwrite"]), /replaces only a model folder.*thesis\.tex/);
  assert.equal(readFileSync(join(mine, "thesis.tex"), "utf8"), "important");
  // the folder that holds the data, and the current folder
  refused(run(dir, ["--overwrite"]), /holds the training data/);
  refused(run(".", ["--overwrite"], mine), /is the current folder/);
  assert.equal(readFileSync(join(mine, "thesis.tex"), "utf8"), "important");
  assert.ok(existsSync(data));
  // an --out below a file, and a file as --out: one line each
  refused(run(join(data, "m")), /cannot create the model folder.*ENOTDIR/);
  writeFileSync(join(dir, "afile"), "x");
  refused(run(join(dir, "afile")), /is a file; give a folder/);
  // a model folder is replaced; the data path is saved absolute, so --resume works from elsewhere
  const model = join(dir, "model");
  assert.equal(run(model).status, 0);
  assert.equal(run(model, ["--overwrite"]).status, 0);
  const resumed = cli(["train", "--out", model, "--resume", "--max-steps", "3"], mine);
  assert.equal(resumed.status, 0, resumed.stderr);
  // resuming a run that is already there says so
  const again = cli(["train", "--out", model, "--resume", "--max-steps", "3"]);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /already at step 3, not below --max-steps 3: nothing to train/);
  // the length of the run given in the other unit replaces the saved one, not joins it
  const configLine = (stderr: string) => /^config: (.*)$/m.exec(stderr)?.[1] ?? "(no config line)";
  const byEpochs = cli(["train", "--out", model, "--resume", "--epochs", "2"]);
  assert.equal(byEpochs.status, 0, byEpochs.stderr);
  assert.match(configLine(byEpochs.stderr), /--epochs 2( |$)/);
  assert.doesNotMatch(configLine(byEpochs.stderr), /--max-steps/);
  const epochSteps = Number(/; (\d+) steps\n/.exec(byEpochs.stderr)?.[1]);
  const bySteps = cli(["train", "--out", model, "--resume", "--max-steps", String(epochSteps + 2)]);
  assert.equal(bySteps.status, 0, bySteps.stderr);
  assert.match(configLine(bySteps.stderr), new RegExp(`--max-steps ${epochSteps + 2} `));
  assert.doesNotMatch(configLine(bySteps.stderr), /--epochs/);
  // the time is this run's: it says how many steps that was
  assert.match(bySteps.stderr, new RegExp(`done: ${epochSteps + 2} steps \\(2 steps in this run, resumed at step ${epochSteps}\\) in `));
  // a trained tokenizer never replaces a model's
  const tok = cli(["tokenizer", "train", "--data", data, "--vocab-size", "300", "--out", model]);
  assert.equal(tok.status, 1);
  assert.match(tok.stderr, /holds a model, whose tokenizer must stay/);
});

test("number flags outside their range, and shape flags --init would ignore, are one-line errors", () => {
  const dir = tmp();
  const data = wordCorpus(dir);
  const base = join(dir, "base");
  assert.equal(cli(["train", "--data", data, ...small, "--max-steps", "2", "--out", base]).status, 0);
  const cases: [string[], RegExp][] = [
    [["train", "--lr", "-1"], /--lr must be > 0, got -1/],
    [["train", "--beta1", "1"], /--beta1 must be >= 0 and < 1, got 1/],
    [["train", "--grad-accum", "0"], /--grad-accum must be >= 1, got 0/],
    [["train", "--threads", "100000"], /--threads must be 0 to \d+, got 100000/],
    [["train", "--data", data, "--out", join(dir, "x"), "--min-lr", "0.1", "--lr", "0.01"], /--min-lr 0\.1 is above --lr 0\.01/],
    [["generate", "--model", base, "--top-p", "1.5"], /--top-p must be > 0 and <= 1, got 1\.5/],
    [["generate", "--model", base, "--temperature", "-1"], /--temperature must be >= 0, got -1/],
    [["train", "--init", base, "--data", data, "--out", join(dir, "i"), "--n-embd", "32"], /--n-embd 32 does not apply with --init.*16/],
    // two flags that say the same thing differently: which one wins would be a guess
    [["train", "--epochs", "2", "--max-steps", "5"], /--max-steps or as --epochs, not both/],
    [["train", "--data", data, "--out", join(dir, "h"), "--n-embd", "16", "--n-head", "3"], /--n-embd 16 must be divisible by --n-head 3/],
    [["tokenize", "--model", base, "--tokenizer", "gpt2", "hi"], /give --model DIR or --tokenizer, not both/],
    [["explain-step", "--model", base, "--text", "the whale", "--data", data], /--text or --data, not both/],
    [["analyze", "--model", base, "--block-size", "1000"], /--block-size 1000 is beyond the model's 16 positions/],
  ];
  assertUserErrors(cases);
});

test("a character model of one line (no newline in its vocabulary) trains, samples and generates", () => {
  const dir = tmp();
  const data = join(dir, "line.txt");
  writeFileSync(data, "Some notes on a single line. ".repeat(200));
  const out = join(dir, "m");
  const r = cli(["train", "--data", data, ...small.slice(0, -2), "--sample-tokens", "20", "--max-steps", "3", "--out", out]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /sample:/);
  assert.match(r.stderr, /hint: --warmup-steps 100 is not below the run's 3 steps/);
  const g = cli(["generate", "--model", out, "--max-new-tokens", "10"]);
  assert.equal(g.status, 0, g.stderr);
  // 3 steps leave the byte tokens (for characters the text lacks) about as likely as its own
  // characters, and sampled bytes that form no character are left out of the text: 10 tokens print
  // some text, not necessarily 10 characters
  assert.ok(g.stdout.trim().length > 0, JSON.stringify(g.stdout));
});

test("--init from a trained model: no hint that the first loss is far from an untrained model's ln(vocab)", () => {
  const dir = tmp();
  const data = wordCorpus(dir, 3000);
  const fast = ["--warmup-steps", "0", "--lr", "0.02", "--eval-interval", "1000"];
  const base = join(dir, "base");
  assert.equal(cli(["train", "--data", data, ...small, ...fast, "--max-steps", "25", "--out", base]).status, 0);
  const out = join(dir, "tuned");
  const r = cli(["train", "--init", base, "--data", data, ...small, ...fast, "--max-steps", "1", "--out", out]);
  assert.equal(r.status, 0, r.stderr);
  // the trained model starts well below ln(vocab), as it should
  const first = JSON.parse(readFileSync(join(out, "metrics.jsonl"), "utf8").split("\n")[0] as string).loss as number;
  const lnVocab = Math.log(JSON.parse(readFileSync(join(out, "config.json"), "utf8")).vocab_size);
  assert.ok(first < lnVocab - 1, `first loss ${first}, ln(vocab) ${lnVocab}`);
  assert.doesNotMatch(r.stderr, /far from ln\(vocab\)/);
});

test("--tokenizer DIR trains with a tokenizer from minigpt tokenizer train, as it is", () => {
  const dir = tmp();
  const data = wordCorpus(dir);
  const tk = join(dir, "tk");
  const t = cli(["tokenizer", "train", "--data", data, "--vocab-size", "300", "--out", tk]);
  assert.equal(t.status, 0, t.stderr);
  const out = join(dir, "m");
  const r = cli(["train", "--data", data, "--tokenizer", tk, ...small, "--max-steps", "2", "--out", out]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /bpe tokenizer, 300 tokens/);
  // the model folder's tokenizer is the trained one, token for token
  const trained = JSON.parse(readFileSync(join(tk, "tokenizer.json"), "utf8")) as { model: { vocab: Record<string, number> } };
  const saved = JSON.parse(readFileSync(join(out, "tokenizer.json"), "utf8")) as { model: { vocab: Record<string, number> } };
  assert.deepEqual(saved.model.vocab, trained.model.vocab);
  const folder = loadModelFolder(out);
  assert.equal(folder.model.config.vocabSize, 300);
  folder.model.dispose();
});

test("--init-partial loads matching tensors and reports skipped and new ones", () => {
  const dir = tmp();
  const data = wordCorpus(dir);
  const base = join(dir, "base");
  assert.equal(cli(["train", "--data", data, ...small, "--max-steps", "3", "--eval-interval", "3", "--out", base]).status, 0);
  // one more layer and a longer context: wpe changes shape, h.2 is new, everything else loads
  const grown = join(dir, "grown");
  const args = ["--data", data, "--n-layer", "3", "--n-head", "2", "--n-embd", "16", "--block-size", "24", "--batch-size", "4"];
  const r = cli([
    "train",
    ...args,
    "--eval-steps",
    "2",
    "--sample-tokens",
    "0",
    "--max-steps",
    "2",
    "--eval-interval",
    "2",
    "--init",
    base,
    "--init-partial",
    "--out",
    grown,
  ]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /init-partial: loaded 27 tensors, skipped 1, new 12/);
  assert.match(r.stderr, /skipped \(shape differs\): transformer\.wpe\.weight \[16, 16\] -> \[24, 16\]/);
  assert.match(r.stderr, /new \(not in --init\): transformer\.h\.2\.ln_1\.weight/);
  // without --init-partial, --init takes the architecture of the folder it starts from
  const cont = join(dir, "cont");
  const c = cli([
    "train",
    "--data",
    data,
    "--eval-steps",
    "2",
    "--sample-tokens",
    "0",
    "--batch-size",
    "4",
    "--max-steps",
    "2",
    "--eval-interval",
    "2",
    "--init",
    base,
    "--out",
    cont,
  ]);
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stderr, /2 layers, 2 heads, 16 wide, block 16/);
});

test("Ctrl-C (SIGINT) saves a checkpoint at the current step and exits cleanly", async () => {
  const dir = tmp();
  const data = wordCorpus(dir);
  const out = join(dir, "int");
  const child = spawn(
    process.execPath,
    [
      ...CLI,
      "train",
      "--data",
      data,
      ...small,
      "--max-steps",
      "100000",
      "--checkpoint-interval",
      "100000",
      "--eval-interval",
      "100000",
      "--out",
      out,
    ],
    {
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr += String(d);
  });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  await waitFor(
    () => existsSync(join(out, "metrics.jsonl")) && readFileSync(join(out, "metrics.jsonl"), "utf8").split("\n").length > 5,
    60_000,
  );
  child.kill("SIGINT");
  const code = await exited;
  assert.equal(code, 130, stderr);
  assert.match(stderr, /checkpoint saved\. Continue with: minigpt train --out .* --resume/);
  const latest = readFileSync(join(out, "training", "latest"), "utf8").trim();
  const steps = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").length;
  assert.equal(latest, `checkpoint-${steps}`);
});

test("--tokenizer bpe and gpt2 work end to end: train, generate, eval with bits_per_byte", () => {
  const dir = tmp();
  const data = wordCorpus(dir);
  for (const [kind, extra] of [
    ["bpe", ["--vocab-size", "300"]],
    ["gpt2", []],
  ] as const) {
    const out = join(dir, kind);
    const r = cli([
      "train",
      "--data",
      data,
      ...small,
      "--tokenizer",
      kind,
      ...extra,
      "--max-steps",
      "4",
      "--eval-interval",
      "4",
      "--out",
      out,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const tokenizer = JSON.parse(readFileSync(join(out, "tokenizer.json"), "utf8")) as { model: { type: string } };
    assert.equal(tokenizer.model.type, "BPE");
    const g = cli(["generate", "--model", out, "--prompt", "the whale", "--max-new-tokens", "5"]);
    assert.equal(g.status, 0, g.stderr);
    assert.ok(g.stdout.startsWith("the whale"));
    // --split all: the whole file, so its bytes are the ones counted below (the default scores the held-out split)
    const e = cli(["eval", "--model", out, "--data", data, "--split", "all", "--json"]);
    assert.equal(e.status, 0, e.stderr);
    const result = JSON.parse(e.stdout) as { loss: number; bits_per_byte: number; tokens: number; perplexity: number };
    const bytes = readFileSync(data).length;
    // bits per byte is the same total information, counted per byte: loss·tokens/ln2/bytes
    assert.ok(Math.abs(result.bits_per_byte - (result.loss * result.tokens) / Math.LN2 / bytes) < 1e-9);
    assert.ok(Math.abs(result.perplexity - Math.exp(result.loss)) < 1e-9);
  }
});

test("a loss that goes NaN stops training with a clear message and keeps the last good checkpoint", () => {
  const dir = tmp();
  const data = wordCorpus(dir);
  const out = join(dir, "nan");
  const r = cli([
    "train",
    "--data",
    data,
    ...small,
    "--max-steps",
    "50",
    "--lr",
    "1e30",
    "--warmup-steps",
    "0",
    "--grad-clip",
    "0",
    "--out",
    out,
  ]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /the loss became NaN at step \d+; training stopped and the last good checkpoint in .* is kept/);
  assert.ok(!/\n\s+at /.test(r.stderr), "no stack trace");
  const folder = loadModelFolder(out);
  for (const t of folder.model.params.values()) assert.ok(t.data.every(Number.isFinite), "the kept model is finite");
  folder.model.dispose();
});

test("out of memory at the first step names the sizes to shrink and leaves no folder that refuses the next try", () => {
  const dir = tmp();
  const data = wordCorpus(dir, 60_000);
  const shape = ["--n-layer", "1", "--n-head", "2", "--n-embd", "256", "--batch-size", "1024", "--grad-shards", "1"];
  // the embeddings' output (1024, 5000, 256) alone is 5.2 GB: the first step cannot run
  const huge = ["train", "--data", data, ...shape, "--block-size", "5000", "--max-steps", "2"];
  const fits = ["train", "--data", data, ...small, "--max-steps", "2"];
  const out = join(dir, "m");
  const failed = cli([...huge, "--out", out]);
  assert.equal(failed.status, 1, failed.stderr);
  assert.match(
    failed.stderr,
    /\nminigpt train: out of tensor memory[^\n]*--block-size 5000[^\n]*--batch-size 1024[^\n]*--n-embd 256[^\n]*--n-layer 1/,
  );
  assert.ok(!/\n\s+at /.test(failed.stderr), "no stack trace");
  assert.ok(!existsSync(out), "no step was trained: OUT is not left behind");
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.startsWith("m.")),
    [],
  );
  // the next try with a block that fits is not refused
  const next = cli([...fits, "--out", out]);
  assert.equal(next.status, 0, next.stderr);
  // --overwrite: a failure before the first step puts the replaced model back as it was
  const before = readFileSync(join(out, "model.safetensors"));
  const again = cli([...huge, "--out", out, "--overwrite"]);
  assert.equal(again.status, 1, again.stderr);
  assert.match(again.stderr, /out of tensor memory/);
  assert.deepEqual(readFileSync(join(out, "model.safetensors")), before);
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.startsWith("m.")),
    [],
  );
});

test("--overwrite keeps the model it replaces until the new run ends well", () => {
  const dir = tmp();
  const data = wordCorpus(dir);
  const out = join(dir, "m");
  const base = ["train", "--data", data, ...small, "--max-steps", "3", "--out", out];
  assert.equal(cli(base).status, 0);
  const before = readFileSync(join(out, "model.safetensors"));
  // a run that fails (its loss goes NaN) leaves the replaced model beside OUT and says where
  const failed = cli([...base, "--overwrite", "--max-steps", "50", "--lr", "1e30", "--warmup-steps", "0", "--grad-clip", "0"]);
  assert.equal(failed.status, 1, failed.stderr);
  const kept = /is kept in (\S+) \(put it back/.exec(failed.stderr)?.[1];
  assert.ok(kept, failed.stderr);
  assert.deepEqual(readFileSync(join(kept, "model.safetensors")), before);
  // a run that ends well removes it
  const ok = cli([...base, "--overwrite"]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.startsWith("m.replaced-") && f !== basename(kept)),
    [],
  );
});

test("special tokens: the ones the data has as targets are recorded; generation never samples the others", () => {
  const dir = tmp();
  const plain = wordCorpus(dir);
  const docs = join(dir, "docs.txt");
  writeFileSync(docs, readFileSync(plain, "utf8").replaceAll(".\n", ".\n<|endoftext|>"));
  for (const [data, want] of [
    [plain, []],
    [docs, ["<|endoftext|>"]],
  ] as const) {
    const out = join(dir, want.length > 0 ? "docs-model" : "plain-model");
    const r = cli(["train", "--data", data, ...small, "--max-steps", "2", "--eval-interval", "2", "--out", out]);
    assert.equal(r.status, 0, r.stderr);
    const folder = loadModelFolder(out);
    assert.deepEqual(folder.info.special_targets, want);
    const specials = folder.tokenizer.specialTokens;
    assert.ok(specials.length >= 4);
    const unseen = specials.filter((t) => !(want as readonly string[]).includes(t)).map((t) => folder.tokenizer.specialTokenId(t));
    assert.deepEqual(unseenSpecialIds(folder), unseen);
    // two steps leave the special rows near their random init: unsuppressed, they are sampled
    const isUnseen = (t: number) => unseen.includes(t);
    const free = generate(folder.model, [1], { maxNewTokens: 400, temperature: 1.5, seed: 3 });
    assert.ok(free.some(isUnseen), "an undertrained model samples unseen special tokens");
    const kept = generate(folder.model, [1], { maxNewTokens: 400, temperature: 1.5, seed: 3, suppressIds: unseenSpecialIds(folder) });
    assert.deepEqual(kept.filter(isUnseen), []);
    folder.model.dispose();
    // the CLI does the same, and the list survives --resume
    const g = cli(["generate", "--model", out, "--prompt", "the", "--max-new-tokens", "400", "--temperature", "1.5"]);
    assert.equal(g.status, 0, g.stderr);
    for (const t of specials) if (!(want as readonly string[]).includes(t)) assert.ok(!g.stdout.includes(t), `generate printed ${t}`);
    const again = cli(["train", "--out", out, "--resume", "--max-steps", "3"]);
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(JSON.parse(readFileSync(join(out, "config.json"), "utf8")).minigpt.special_targets, want);
  }
});
