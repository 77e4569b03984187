/**
 * --grad-shards through the CLI (child processes, as a user runs it): the batch is cut into shards
 * whose gradients are added in a fixed order, so the trained weights are the same bits on 1 thread,
 * on 2 data-parallel threads and on 2 kernel-split threads (with dropout and gradient accumulation);
 * a run saved before runs recorded their shards resumes with one notice, and so does a run resumed
 * on kernels that round differently; a --grad-shards that does not divide the batch is one line. (Resuming on another --threads: train.test.ts's SIGKILL test.)
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { runCli, tempDir, wordCorpus } from "./helpers.js";

// big enough that --parallel kernels splits matmuls over the threads: a shard's 2 x 32 rows times the
// 64 x 256 MLP weights is >= 2 MFLOP (loader.ts PARALLEL_FLOPS)
const run = [
  "--n-layer",
  "2",
  "--n-head",
  "2",
  "--n-embd",
  "64",
  "--block-size",
  "32",
  "--batch-size",
  "4",
  "--grad-accum",
  "2",
  "--dropout",
  "0.1",
  "--max-steps",
  "4",
  "--eval-interval",
  "2",
  "--eval-steps",
  "1",
  "--sample-tokens",
  "0",
];

/** train in a new folder with these extra flags; returns the folder */
function train(data: string, out: string, extra: string[]): string {
  const r = runCli(["train", "--data", data, ...run, "--out", out, ...extra]);
  assert.equal(r.status, 0, r.stderr);
  return out;
}

/** the weights and the optimizer state of a folder's latest checkpoint, and its best model */
function files(out: string): Map<string, Buffer> {
  const latest = join(out, "training", readFileSync(join(out, "training", "latest"), "utf8").trim());
  return new Map([
    ["model.safetensors", readFileSync(join(out, "model.safetensors"))],
    ["checkpoint model.safetensors", readFileSync(join(latest, "model.safetensors"))],
    ["checkpoint optimizer.safetensors", readFileSync(join(latest, "optimizer.safetensors"))],
  ]);
}

test("1 thread, 2 data-parallel threads and 2 kernel-split threads train bit-identical weights", () => {
  const dir = tempDir("minigpt-shards-");
  const data = wordCorpus(dir);
  const one = files(train(data, join(dir, "one"), ["--threads", "1"]));
  for (const [name, extra] of [
    ["2 threads, data parallel", ["--threads", "2"]],
    ["2 threads, kernels split", ["--threads", "2", "--parallel", "kernels"]],
  ] as const) {
    const other = files(train(data, join(dir, name.replace(/\W+/g, "-")), [...extra]));
    for (const [file, bytes] of one) assert.ok(bytes.equals(other.get(file) as Buffer), `${name}: ${file} differs from 1 thread's`);
  }
});

test("a run saved before runs recorded --grad-shards, or resumed on other kernels, says so in one notice; a --grad-shards that does not divide the batch is one line", () => {
  const dir = tempDir("minigpt-shards-");
  const data = wordCorpus(dir);
  const out = train(data, join(dir, "old"), ["--max-steps", "2", "--n-embd", "16", "--backend", "wasm"]);
  // what such a version saved: the same state without the key
  const state = join(out, "training", readFileSync(join(out, "training", "latest"), "utf8").trim(), "state.json");
  const saved = JSON.parse(readFileSync(state, "utf8")) as { config: Record<string, unknown> };
  delete saved.config.gradShards;
  writeFileSync(state, JSON.stringify(saved));
  const r = runCli(["train", "--out", out, "--resume", "--max-steps", "3"]);
  assert.equal(r.status, 0, r.stderr);
  const notices = r.stderr.split("\n").filter((l) => /saved before runs recorded --grad-shards/.test(l));
  assert.equal(notices.length, 1, r.stderr);
  assert.match(notices[0] as string, /continues with --grad-shards 2/);
  // the continued run records its shards: a second resume says nothing of them; on other kernels,
  // which round differently, it says that once
  const again = runCli(["train", "--out", out, "--resume", "--max-steps", "4", "--backend", "ref"]);
  assert.equal(again.status, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /saved before runs recorded/);
  const other = again.stderr.split("\n").filter((l) => /round differently/.test(l));
  assert.equal(other.length, 1, again.stderr);
  assert.match(other[0] as string, /was trained with wasm .* kernels and continues with ref/);

  const bad = runCli(["train", "--data", data, ...run, "--grad-shards", "3", "--out", join(dir, "bad")]);
  assert.equal(bad.status, 1, bad.stderr);
  assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
  assert.match(bad.stderr, /--batch-size 4 does not divide by --grad-shards 3: .*give one of 1, 2, 4/);
});
