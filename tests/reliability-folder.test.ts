/**
 * The model folder under faults (docs/reliability.md): kills at seeded random points of a
 * train --overwrite run, two writers at once, a stale lock, the junk a killed run leaves, an OUT
 * that cannot be created. Every command runs through the real CLI in a child process.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadModelFolder } from "../src/io/folder.js";
import { Rng } from "../src/random.js";
import { type CliResult, runCli, startCli, tempDir, wordCorpus } from "./helpers.js";

const tiny = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4", "--eval-steps", "1"];
const quiet = ["--sample-tokens", "0"];

/** a failed command: non-zero, one line on stderr, no stack */
function refused(r: CliResult, pattern: RegExp): void {
  assert.notEqual(r.status, 0, r.stderr);
  assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
  assert.ok(!/\n\s+at /.test(r.stderr), `no stack trace: ${r.stderr}`);
  assert.match(r.stderr, pattern);
}

/** the folder loads (weights and tokenizer) */
function loads(dir: string): void {
  const folder = loadModelFolder(dir, () => {});
  folder.model.dispose();
}

/** the step of the folder's latest checkpoint */
function latestStep(dir: string): number {
  const name = readFileSync(join(dir, "training", "latest"), "utf8").trim();
  return Number(/checkpoint-(\d+)/.exec(name)?.[1]);
}

/** the folder resumes: one more step from its latest checkpoint ends well */
function resumes(dir: string): CliResult {
  const r = runCli(["train", "--out", dir, "--resume", "--max-steps", String(latestStep(dir) + 1), ...quiet]);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(!/\n\s+at /.test(r.stderr), r.stderr);
  return r;
}

/** the id of a process that has ended (so certainly not running) */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

const besides = (dir: string, prefix: string) => readdirSync(dir).filter((n) => n.startsWith(prefix));

let trained: { data: string; model: string; ms: number } | undefined;

/**
 * DIR/corpus.txt and DIR/m, a copy of one small model trained (once per file, 2 steps) on the same
 * corpus; `ms` is how long that training run took, start-up included.
 */
function modelIn(dir: string): { data: string; out: string; ms: number } {
  if (!trained) {
    const home = tempDir("minigpt-trained-");
    const data = wordCorpus(home);
    const t0 = performance.now();
    const r = runCli(["train", "--data", data, ...tiny, ...quiet, "--max-steps", "2", "--out", join(home, "m")]);
    assert.equal(r.status, 0, r.stderr);
    trained = { data, model: join(home, "m"), ms: performance.now() - t0 };
  }
  const out = join(dir, "m");
  cpSync(trained.model, out, { recursive: true });
  return { data: trained.data, out, ms: trained.ms };
}

test("kills at seeded random points of a train --overwrite run (SIGINT, SIGTERM, SIGKILL) never lose the replaced model", async () => {
  const seed = Number(process.env.MINIGPT_FAULT_SEED ?? Date.now() % 1_000_000);
  console.log(`# kill points from seed ${seed} (rerun them with MINIGPT_FAULT_SEED=${seed})`);
  const rng = new Rng(seed);
  const dir = tempDir("minigpt-kill-");
  // a run's start-up (tsx, the data, the first save) takes about `startup` ms on this machine
  const { data, out, ms: startup } = modelIn(dir);
  const original = readFileSync(join(out, "model.safetensors"));
  for (const signal of ["SIGINT", "SIGTERM", "SIGKILL"] as const) {
    // a different model each time (seed), trained for longer than the test waits
    const run = startCli(["train", "--data", data, ...tiny, ...quiet, "--seed", "7", "--max-steps", "100000", "--out", out, "--overwrite"]);
    const delay = Math.round(rng.random() * startup * 1.5);
    await Promise.race([run.exited, new Promise((r) => setTimeout(r, delay))]);
    run.child.kill(signal);
    const { status, signal: died } = await run.exited;
    const what = `${signal} after ${delay} ms (seed ${seed}): status ${status} ${died ?? ""}\n${run.stderr()}`;
    assert.ok(!/\n\s+at /.test(run.stderr()), `no stack trace: ${what}`);
    assert.notEqual(status, 0, what);
    // a caught signal ends with a checkpoint and 128 + its number; before the handlers exist (or
    // SIGKILL) the process dies of it
    if (status !== null) assert.equal(status, signal === "SIGINT" ? 130 : 143, what);
    // whatever moment it hit: the next command on OUT puts things right, OUT loads, and the model the
    // run replaced is at OUT or beside it
    loads(out);
    const kept = [out, ...besides(dir, "m.replaced-").map((n) => join(dir, n))].filter((d) =>
      readFileSync(join(d, "model.safetensors")).equals(original),
    );
    assert.ok(kept.length > 0, `the replaced model is lost: ${what}`);
    assert.deepEqual(besides(dir, "m.partial-"), [], what);
    assert.ok(!existsSync(join(dir, ".m.lock")), `the lock is left: ${what}`);
    // the interrupted run finishes by --resume, and only then is the model it replaced removed
    const r = resumes(out);
    loads(out);
    if (kept[0] !== out) assert.deepEqual(besides(dir, "m.replaced-"), [], `${what}\n${r.stderr}`);
    // back to the original model for the next kill
    for (const n of readdirSync(dir)) rmSync(join(dir, n), { recursive: true });
    modelIn(dir);
  }
});

test("a kill between the two renames of --overwrite: the next command restores OUT, or names where it is", () => {
  const dir = tempDir("minigpt-renames-");
  const { out } = modelIn(dir);
  const original = readFileSync(join(out, "model.safetensors"));
  // what such a kill leaves: OUT moved aside, the new folder complete but not yet renamed
  const pid = deadPid();
  renameSync(out, join(dir, `m.replaced-${pid}`));
  mkdirSync(join(dir, `m.partial-${pid}`));
  // while someone else (here: another machine) holds the lock, nothing is moved, but the message
  // says where the model is and how to get it back
  writeFileSync(join(dir, ".m.lock"), JSON.stringify({ pid: 1, host: "elsewhere", started: "2026-01-01T00:00:00Z" }));
  refused(
    runCli(["generate", "--model", out, "--prompt", "the", "--max-new-tokens", "2"]),
    /does not exist.*m\.replaced-\d+ holds the model it had: get it back with: mv /,
  );
  refused(runCli(["train", "--out", out, "--resume", ...quiet]), /locked by process 1 on the machine elsewhere.*remove .*\.m\.lock/);
  // with the lock free, any command restores it by rename and says so
  writeFileSync(join(dir, ".m.lock"), JSON.stringify({ pid, host: hostname(), started: "2026-01-01T00:00:00Z" }));
  const r = runCli(["generate", "--model", out, "--prompt", "the", "--max-new-tokens", "2"]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /restored .*m from .*m\.replaced-\d+/);
  assert.match(r.stderr, /took over the lock .* of process \d+, which is no longer running/);
  assert.match(r.stderr, /removed .*m\.partial-\d+/);
  assert.ok(readFileSync(join(out, "model.safetensors")).equals(original));
  assert.deepEqual(readdirSync(dir).sort(), ["m"]);
  resumes(out);
});

test("two writers of one model folder: the second gets one line naming the first's PID and changes nothing", async () => {
  const dir = tempDir("minigpt-twice-");
  const data = wordCorpus(dir);
  const out = join(dir, "m");
  const args = ["train", "--data", data, ...tiny, ...quiet, "--max-steps", "100000", "--checkpoint-interval", "5", "--out", out];
  const first = startCli(args);
  assert.ok(await first.seen(/^kernels: /m), first.stderr());
  const before = readFileSync(join(out, "config.json"));
  refused(runCli([...args, "--overwrite"]), new RegExp(`being written by process ${first.child.pid}\\b`));
  assert.deepEqual(readdirSync(dir).sort(), [".m.lock", "corpus.txt", "m"], "no folder replaced or begun");
  assert.ok(readFileSync(join(out, "config.json")).equals(before));
  first.child.kill("SIGINT");
  assert.equal((await first.exited).status, 130, first.stderr());
  // two --resume at once: the second is refused, and metrics.jsonl stays one run's history
  const resumed = startCli(["train", "--out", out, "--resume", ...quiet]);
  assert.ok(await resumed.seen(/^kernels: /m), resumed.stderr());
  refused(runCli(["train", "--out", out, "--resume", ...quiet]), new RegExp(`being written by process ${resumed.child.pid}\\b`));
  resumed.child.kill("SIGTERM");
  assert.equal((await resumed.exited).status, 143, resumed.stderr());
  assert.match(resumed.stderr(), /SIGTERM: finishing this step and saving a checkpoint/);
  assert.deepEqual(readdirSync(dir).sort(), ["corpus.txt", "m"], "the lock is removed on exit");
  const steps = readFileSync(join(out, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => (JSON.parse(l) as { step: number }).step);
  assert.deepEqual(
    steps,
    steps.map((_, i) => i + 1),
    "steps in order, none twice",
  );
  assert.equal(latestStep(out), steps.length, "SIGTERM saved a checkpoint of the last step");
  loads(out);
  resumes(out);
});

test("a command that reads a model removes the lock of a run killed before its first save (nothing else left to tidy)", () => {
  const dir = tempDir("minigpt-stale-lock-");
  const { out } = modelIn(dir);
  // Ctrl-C while train reads its data ends the process at once, as a kill does: its lock stays
  writeFileSync(join(dir, ".m.lock"), JSON.stringify({ pid: deadPid(), host: hostname(), started: "2026-01-01T00:00:00Z" }));
  loads(out);
  assert.ok(!existsSync(join(dir, ".m.lock")));
});

test("a stale lock is taken over, and the junk dead runs left is removed and named; a replaced model is kept", () => {
  const dir = tempDir("minigpt-junk-");
  const { out } = modelIn(dir);
  const pid = deadPid();
  writeFileSync(join(dir, ".m.lock"), JSON.stringify({ pid, host: hostname(), started: "2026-01-01T00:00:00Z" }));
  const junk = [
    join(dir, `m.partial-${pid}`),
    join(out, `.metrics.jsonl.tmp-${pid}-0a1b2c3d`),
    join(out, `.model.safetensors.tmp-${pid}-deadbeef`),
    join(out, "training", `.checkpoint-7.tmp-${pid}`),
    join(out, "training", `.latest.tmp-${pid}-00ff00ff`),
  ];
  mkdirSync(junk[0] as string);
  mkdirSync(junk[3] as string);
  for (const f of [junk[1], junk[2], junk[4]]) writeFileSync(f as string, "half written");
  // a model folder an unfinished --overwrite replaced is someone's model: kept, and pointed out
  const replaced = join(dir, `m.replaced-${pid}`);
  mkdirSync(replaced);
  writeFileSync(join(replaced, "model.safetensors"), "the only copy");
  const r = resumes(out);
  assert.match(r.stderr, new RegExp(`took over the lock .*\\.m\\.lock of process ${pid}, which is no longer running`));
  assert.match(r.stderr, new RegExp(`removed what killed runs \\(process ${pid}\\) left unfinished: .*m\\.partial-${pid}`));
  assert.match(
    r.stderr,
    new RegExp(
      `m\\.replaced-${pid} holds a model folder that a train --overwrite \\(process ${pid}\\) replaced and never finished; put it back with: .*, or remove it with: rm -r`,
    ),
  );
  for (const j of junk) assert.ok(!existsSync(j), `${j} is removed`);
  assert.equal(readFileSync(join(replaced, "model.safetensors"), "utf8"), "the only copy");
  assert.ok(!existsSync(join(dir, ".m.lock")));
  loads(out);
});

test("an OUT that cannot be created gets one line (Node 20's recursive mkdir loops forever on /proc/x)", () => {
  const dir = tempDir("minigpt-nowhere-");
  const data = wordCorpus(dir);
  const train = (out: string) => runCli(["train", "--data", data, ...tiny, "--max-steps", "1", "--out", out], { timeoutMs: 30_000 });
  if (existsSync("/proc/self")) {
    refused(train("/proc/x"), /cannot create the model folder \/proc\/x/);
  }
  const file = join(dir, "f");
  writeFileSync(file, "");
  refused(train(join(file, "m")), /cannot create the model folder .*ENOTDIR/);
});
