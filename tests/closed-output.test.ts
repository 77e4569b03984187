/**
 * A reader that goes away before the command is done (`minigpt ... | head`): the pipe's EPIPE is the
 * reader's choice, not an error. A training run keeps training and saving unseen (its progress lines
 * were all that went to the closed pipe); generate, whose output is the text, stops with status 0.
 * Through the real CLI, in bash with pipefail, so that the status is minigpt's, not head's.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { CLI, charModelFolder, runCli, tempDir, wordCorpus } from "./helpers.js";

const dir = tempDir("minigpt-closed-output-");
const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;

/** `minigpt ...args 2>&1 | head -n LINES` (stdout and stderr into one pipe that closes after `lines` lines) */
function intoHead(args: readonly string[], lines: number): { status: number | null; shown: string } {
  const command = `set -o pipefail; ${[process.execPath, ...CLI, ...args].map(quote).join(" ")} 2>&1 | head -n ${lines}`;
  const r = spawnSync("bash", ["-c", command], {
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, MINIGPT_THREADS: "1" },
  });
  return { status: r.status, shown: r.stdout };
}

test("train ... 2>&1 | head: the run outlives its reader, trains every step, saves, and removes the folder it replaced", () => {
  const data = wordCorpus(dir, 3000);
  const out = join(dir, "out");
  const tiny = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4", "--eval-steps", "1"];
  const first = runCli(["train", "--data", data, "--out", out, ...tiny, "--max-steps", "2", "--sample-tokens", "0"]);
  assert.equal(first.status, 0, first.stderr);
  // --overwrite: the model folder it replaces waits beside OUT until the run has finished
  const steps = 30;
  const args = ["train", "--data", data, "--out", out, "--overwrite", ...tiny, "--max-steps", String(steps), "--eval-interval", "10"];
  const r = intoHead(args, 2);
  assert.equal(r.status, 0, `the run ended with status ${r.status}; head showed:\n${r.shown}`);
  assert.equal(r.shown.split("\n").length, 3, r.shown);
  const metrics = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n");
  assert.equal(JSON.parse(metrics.at(-1) as string).step, steps, "every step trained");
  assert.ok(existsSync(join(out, "training", `checkpoint-${steps}`)), "its last checkpoint saved");
  assert.ok(existsSync(join(out, "loss.svg")), "the run finished (loss.svg is written at its end)");
  assert.deepEqual(
    readdirSync(dir).filter((n) => n.startsWith("out.replaced-")),
    [],
    "the replaced folder goes once the run has finished",
  );
});

test("generate | head: the text stops when its reader goes, with status 0", () => {
  const model = charModelFolder(join(dir, "m"), "abc def\n", { blockSize: 32, nLayer: 1, nHead: 1, nEmbd: 8 });
  const r = intoHead(["generate", "--model", model, "--prompt", "ab", "--max-new-tokens", "1000000", "--temperature", "2"], 1);
  assert.equal(r.status, 0, r.shown);
});
