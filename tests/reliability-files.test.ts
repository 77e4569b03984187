/**
 * No model is ever lost (docs/reliability.md), the file side: where commands may write, what a corrupt file of a
 * model folder gets, and what a disk error does, all through the real CLI in a child process.
 * Disk errors are injected by tests/fault-inject.mjs (MINIGPT_FAULT names the failing call).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { type CliResult, runCli, tempDir, wordCorpus } from "./helpers.js";

const root = tempDir("minigpt-files-");
const corpus = wordCorpus(root);
const TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "8", "--block-size", "8", "--batch-size", "2", "--eval-steps", "1"];
const SHORT = ["--warmup-steps", "1", "--eval-interval", "3", "--checkpoint-interval", "2", "--sample-tokens", "0"];
const FAULT = { NODE_OPTIONS: `--import ${resolve("tests/fault-inject.mjs")}` };

function train(out: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): CliResult {
  return runCli(["train", "--data", corpus, "--out", out, ...TINY, ...SHORT, "--max-steps", "6", ...extra], { env });
}

/** a trained folder (checkpoints 4 and 6, metrics of steps 1-6) to copy for each case */
let baseFolder: string | undefined;
function base(): string {
  if (baseFolder === undefined) {
    baseFolder = join(root, "base");
    const r = train(baseFolder);
    assert.equal(r.status, 0, r.stderr);
  }
  return baseFolder;
}
let copies = 0;
function copyOfBase(): string {
  const dir = join(root, `case-${++copies}`);
  cpSync(base(), dir, { recursive: true });
  return dir;
}

/** the command failed with one line (after any progress lines) matching every pattern, and no stack trace */
function failsWithOneLine(r: CliResult, ...patterns: RegExp[]): void {
  assert.notEqual(r.status, 0, `expected a failure:\n${r.stderr}`);
  assert.equal(r.status, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /^ {4}at /m, `a stack trace:\n${r.stderr}`);
  const lines = r.stderr.trimEnd().split("\n");
  const last = lines[lines.length - 1] ?? "";
  assert.match(last, /^minigpt [a-z]+: /, r.stderr);
  for (const p of patterns) assert.match(last, p, r.stderr);
}

/** sha256 of every file under dir by path, skipping `except` */
function snapshot(dir: string, except: string[] = []): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (except.some((e) => p === e || p.startsWith(`${e}.`) || p.startsWith(`${e}/`))) continue;
      if (statSync(p).isDirectory()) walk(p);
      else out.set(p, createHash("sha256").update(readFileSync(p)).digest("hex"));
    }
  };
  walk(dir);
  return out;
}

/** the folder loads (generate) and continues (--resume, to 8 steps) */
function loadsAndResumes(out: string): void {
  const g = runCli(["generate", "--model", out, "--max-new-tokens", "5", "--prompt", "the"]);
  assert.equal(g.status, 0, g.stderr);
  const r = train(out, ["--resume", "--max-steps", "8"]);
  assert.equal(r.status, 0, r.stderr);
  const steps = readFileSync(join(out, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => (JSON.parse(l) as { step: number }).step);
  assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7, 8], "metrics.jsonl: every step once, in order");
}

/** no temporary files or partial folders left in or beside OUT */
function noJunk(out: string): void {
  const junk = [
    ...readdirSync(out).filter((n) => n.startsWith(".")),
    ...(existsSync(join(out, "training")) ? readdirSync(join(out, "training")).filter((n) => n.startsWith(".")) : []),
    ...readdirSync(join(out, "..")).filter((n) => n.startsWith(`${out.split("/").pop()}.partial`)),
  ];
  assert.deepEqual(junk, [], `temporary files left in ${out}`);
}

test("attention --out refuses an existing file without --overwrite, and any path inside a model folder", () => {
  const model = copyOfBase();
  const before = snapshot(root);
  const html = join(root, "notes.html");
  writeFileSync(html, "my notes");
  const ask = (out: string, ...extra: string[]) => runCli(["attention", "--model", model, "--prompt", "the sea", "--out", out, ...extra]);
  failsWithOneLine(ask(html), /notes\.html already exists/, /--overwrite/);
  assert.equal(readFileSync(html, "utf8"), "my notes");
  for (const inside of [join(model, "model.safetensors"), join(model, "att.html"), join(model, "training", "att.html")]) {
    failsWithOneLine(ask(inside, "--overwrite"), /inside the model folder/);
    failsWithOneLine(ask(inside), /inside the model folder/);
  }
  assert.deepEqual(snapshot(root, [html]), before, "nothing but the asked-for file changed");
  const ok = ask(html, "--overwrite");
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(readFileSync(html, "utf8"), /<svg|<html/i);
});

test("tokenizer train --out refuses an existing tokenizer without --overwrite, and a folder inside a model folder", () => {
  const model = copyOfBase();
  const before = snapshot(root);
  const tok = (out: string, ...extra: string[]) =>
    runCli(["tokenizer", "train", "--data", corpus, "--vocab-size", "300", "--out", out, ...extra]);
  failsWithOneLine(tok(model, "--overwrite"), /model/);
  failsWithOneLine(tok(join(model, "tok"), "--overwrite"), /inside the model folder/);
  assert.deepEqual(snapshot(root), before);
  const out = join(root, "tok");
  assert.equal(tok(out).status, 0);
  failsWithOneLine(tok(out), /already exists/, /--overwrite/);
  assert.equal(tok(out, "--overwrite").status, 0);
});

/** state.json of the latest checkpoint, changed by `edit` */
function corruptState(out: string, edit: (s: Record<string, unknown>) => void): void {
  const file = join(out, "training", "checkpoint-6", "state.json");
  const state = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  edit(state);
  writeFileSync(file, JSON.stringify(state));
}

test("a corrupt training/*/state.json gets one line naming it on --resume", () => {
  const cases: [string, (s: Record<string, unknown>) => void][] = [
    ["step a string", (s) => Object.assign(s, { step: "6" })],
    ["rng null", (s) => Object.assign(s, { rng: null })],
    ["rng.data short", (s) => Object.assign(s, { rng: { ...(s.rng as object), data: [1, 2] } })],
    ["config missing", (s) => delete s.config],
    ["config.lr a string", (s) => Object.assign(s.config as object, { lr: "fast" })],
  ];
  for (const [what, edit] of cases) {
    const out = copyOfBase();
    corruptState(out, edit);
    const before = snapshot(root);
    const r = train(out, ["--resume", "--max-steps", "8"]);
    failsWithOneLine(r, /checkpoint-6\/state\.json/);
    assert.deepEqual(snapshot(root), before, `${what}: nothing changed`);
  }
});

test("a corrupt metrics.jsonl gets one line naming it, from train --resume and analyze; never an emptied history", () => {
  const cases: [string, (file: string) => void][] = [
    ["a bad middle line", (f) => writeFileSync(f, readFileSync(f, "utf8").replace(/\n/, '\n{"step": 2, "loss": \n'))],
    ["a line of the wrong type", (f) => writeFileSync(f, readFileSync(f, "utf8").replace(/\n/, '\n{"step":"two","loss":1}\n'))],
    [
      "a folder",
      (f) => {
        rmSync(f);
        mkdirSync(f);
      },
    ],
  ];
  for (const [what, edit] of cases) {
    const out = copyOfBase();
    edit(join(out, "metrics.jsonl"));
    const before = snapshot(root);
    failsWithOneLine(train(out, ["--resume", "--max-steps", "8"]), /metrics\.jsonl/);
    failsWithOneLine(runCli(["analyze", "--model", out]), /metrics\.jsonl/);
    assert.deepEqual(snapshot(root), before, `${what}: nothing changed`);
  }
  // a torn last line (a kill during an append) is the one bad line that is expected: it is dropped
  const out = copyOfBase();
  writeFileSync(join(out, "metrics.jsonl"), `${readFileSync(join(out, "metrics.jsonl"), "utf8")}{"step":7,"lo`);
  loadsAndResumes(out);
});

test("training/latest must name a checkpoint inside training/", () => {
  for (const name of ["../x", "/etc", "checkpoint-6/../..", ""]) {
    const out = copyOfBase();
    writeFileSync(join(out, "training", "latest"), `${name}\n`);
    const before = snapshot(root);
    failsWithOneLine(train(out, ["--resume", "--max-steps", "8"]), /training\/latest/);
    assert.deepEqual(snapshot(root), before, `latest ${JSON.stringify(name)}: nothing changed`);
  }
  const out = copyOfBase();
  rmSync(join(out, "training", "latest"));
  mkdirSync(join(out, "training", "latest"));
  failsWithOneLine(train(out, ["--resume", "--max-steps", "8"]), /training\/latest/);
});

test("a damaged tokenizer.json gets one line naming it, from generate, train --init and train --resume", () => {
  const edit = (change: (j: { model: Record<string, unknown> } & Record<string, unknown>) => void) => (text: string) => {
    const json = JSON.parse(text);
    change(json);
    return JSON.stringify(json);
  };
  const cases: [string, (text: string) => string][] = [
    ["truncated", (t) => t.slice(0, t.length >> 1)],
    ["wrong types", edit((j) => Object.assign(j, { added_tokens: null, model: { ...j.model, vocab: ["a", "b"] } }))],
    ["a missing field", edit((j) => Reflect.deleteProperty(j, "model"))],
    ["a merges list that does not parse", edit((j) => Object.assign(j.model, { merges: ["a", 7] }))],
  ];
  const never = join(root, "never");
  const commands = (out: string) => [
    runCli(["generate", "--model", out, "--max-new-tokens", "3"]),
    train(never, ["--init", out]),
    train(out, ["--resume", "--max-steps", "8"]),
  ];
  for (const [what, damage] of cases) {
    const out = copyOfBase();
    const file = join(out, "tokenizer.json");
    writeFileSync(file, damage(readFileSync(file, "utf8")));
    const before = snapshot(root);
    const named = new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\b`);
    for (const r of commands(out)) failsWithOneLine(r, named);
    assert.deepEqual(snapshot(root), before, `${what}: nothing changed`);
    assert.ok(!existsSync(never), `${what}: no folder made by --init`);
  }
});

test("config.json values out of range get one line naming the file, from every command that loads a model", () => {
  const edits: [string, unknown][] = [
    ["layer_norm_epsilon", -1],
    ["layer_norm_epsilon", "small"],
    ["resid_pdrop", "x"],
    ["attn_pdrop", 1.5],
    ["embd_pdrop", null],
  ];
  const commands = (out: string) => [
    ["generate", "--model", out, "--max-new-tokens", "3"],
    ["eval", "--model", out, "--data", corpus],
    ["analyze", "--model", out],
    ["attention", "--model", out, "--prompt", "the", "--out", join(root, "never.html")],
    ["chat", "--model", out],
  ];
  edits.forEach(([key, value], i) => {
    const out = copyOfBase();
    const file = join(out, "config.json");
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, "utf8")), [key]: value }));
    // each command once over the cases (they share the loading code; one run each keeps this quick)
    const args = commands(out)[i % 5] as string[];
    failsWithOneLine(runCli(args, { input: "hi\n" }), new RegExp(`config\\.json.*${key}`));
  });
  assert.ok(!existsSync(join(root, "never.html")));
});

test("file-system errors of the other commands are one line naming the path (injected, or a place no folder can be made)", () => {
  // train --data FOLDER: a subfolder that cannot be listed
  const data = join(root, "data-folder");
  mkdirSync(join(data, "sub"), { recursive: true });
  writeFileSync(join(data, "a.txt"), readFileSync(corpus, "utf8"));
  const listing = { env: { ...FAULT, MINIGPT_FAULT: `readdir:${join(data, "sub")}:1:EACCES` } };
  failsWithOneLine(
    runCli(["train", "--data", data, "--out", join(root, "never"), ...TINY], listing),
    /cannot read the folder .*sub/,
    /EACCES/,
  );
  // interactive: the folder of models cannot be read (it said "no model folders in ...")
  const models = { env: { ...FAULT, MINIGPT_FAULT: `readdir:${root}:1:EIO` } };
  failsWithOneLine(runCli(["interactive", "--dir", root], { ...models, input: "/quit\n" }), /cannot read the folder/, /EIO/);
  // selftest: no temporary folder
  const temporary = { env: { ...FAULT, MINIGPT_FAULT: "mkdtemp:minigpt-selftest:1:ENOSPC" } };
  failsWithOneLine(runCli(["selftest"], temporary), /temporary folder/, /free some disk space/);
  // tokenizer train --out where no folder can be made (Node 20's recursive mkdir never returned on /proc/x)
  const proc = runCli(["tokenizer", "train", "--data", corpus, "--vocab-size", "300", "--out", "/proc/x/tok"], { timeoutMs: 60_000 });
  failsWithOneLine(proc, /\/proc\/x/);
  assert.ok(!existsSync(join(root, "never")));
});

/** set one float of a safetensors file's data to `value` */
function poisonWeights(file: string, value: number): void {
  const bytes = readFileSync(file);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  bytes.writeFloatLE(value, 8 + headerLength + 4 * 10);
  writeFileSync(file, bytes);
}

test("weights holding NaN or Inf are named on load instead of generating nonsense", () => {
  const out = copyOfBase();
  poisonWeights(join(out, "model.safetensors"), Number.NaN);
  failsWithOneLine(runCli(["generate", "--model", out, "--max-new-tokens", "3"]), /model\.safetensors/, /NaN/);
  failsWithOneLine(runCli(["eval", "--model", out, "--data", corpus, "--json"]), /model\.safetensors/, /NaN/);
  const resumed = copyOfBase();
  poisonWeights(join(resumed, "training", "checkpoint-6", "model.safetensors"), Number.POSITIVE_INFINITY);
  failsWithOneLine(train(resumed, ["--resume", "--max-steps", "8"]), /checkpoint-6\/model\.safetensors/, /Infinity/);
  const moments = copyOfBase();
  poisonWeights(join(moments, "training", "checkpoint-6", "optimizer.safetensors"), Number.NaN);
  failsWithOneLine(train(moments, ["--resume", "--max-steps", "8"]), /checkpoint-6\/optimizer\.safetensors/, /NaN/);
});

/**
 * A run with the Nth matching file-system call failing (tests/fault-inject.mjs): it stops with one
 * line naming the path and what to do, leaves no temporary files, and the folder loads and resumes.
 */
function diskFaultStopsCleanly(name: string, fault: (out: string) => string, ...patterns: RegExp[]): void {
  const out = join(root, name);
  const before = snapshot(root);
  const r = train(out, [], { ...FAULT, MINIGPT_FAULT: fault(out) });
  failsWithOneLine(r, ...patterns);
  assert.match(r.stderr.trimEnd().split("\n").pop() ?? "", /--resume/, "says how to continue");
  noJunk(out);
  assert.deepEqual(snapshot(root, [out]), before, "no file outside OUT changed");
  loadsAndResumes(out);
}

test("ENOSPC appending to metrics.jsonl stops the run in one line; it resumes once space is freed", () => {
  diskFaultStopsCleanly(
    "full-metrics",
    (out) => `write:${out}/metrics.jsonl:3:ENOSPC:all`,
    /metrics\.jsonl/,
    /ENOSPC/,
    /free some disk space/,
  );
});

test("ENOSPC making a checkpoint folder stops the run in one line with the last checkpoint intact", () => {
  diskFaultStopsCleanly("full-mkdir", (out) => `mkdir:${out}/training/.checkpoint-4:1:ENOSPC:all`, /checkpoint-4/, /ENOSPC/);
});

test("EIO renaming a checkpoint folder into place stops the run in one line, leaving no temporary folder", () => {
  diskFaultStopsCleanly("eio-rename", (out) => `rename:> ${out}/training/checkpoint-4:1:EIO`, /checkpoint-4/, /EIO/);
});

test("ENOSPC writing training/latest leaves the previous checkpoint as the latest", () => {
  diskFaultStopsCleanly("full-latest", (out) => `write:${out}/training/.latest:2:ENOSPC`, /latest/, /ENOSPC/);
});

test("ENOSPC during the first save leaves no folder and no partial folder behind", () => {
  const out = join(root, "full-first");
  const before = snapshot(root);
  failsWithOneLine(train(out, [], { ...FAULT, MINIGPT_FAULT: `write:${out}.partial:4:ENOSPC:all` }), /ENOSPC/, /free some disk space/);
  assert.deepEqual(snapshot(root), before, "nothing left, nothing changed");
});

test("a failed prune of an old checkpoint is a warning, not the end of the run", () => {
  const out = join(root, "eio-prune");
  const r = train(out, [], { ...FAULT, MINIGPT_FAULT: `rm:${out}/training/checkpoint-0:1:EIO` });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /^ {4}at /m);
  assert.match(r.stderr, /warning: .*checkpoint-0.*EIO/);
  assert.match(r.stderr, /done: 6 steps/);
  loadsAndResumes(out);
});
