/**
 * Ctrl-C (SIGINT) while a model's text streams to stdout (src/cli/interrupt.ts), through the real
 * CLI in a child process: the text stops, its line is ended (so the shell's prompt does not land
 * after the partial text), the status is 130, and a trained model is kept. Ctrl-C in the middle of
 * training is tests/train.test.ts's; in chat and interactive, tests/interactive.test.ts's.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { charModelFolder, type StartedCli, startCli, tempDir, wordCorpus } from "./helpers.js";

const dir = tempDir("minigpt-interrupt-");

/** SIGINT once stdout holds more than `after` characters; the exit, or a failure if it does not come within 10 s */
async function interrupt(cli: StartedCli, after: number): Promise<{ status: number | null; signal: NodeJS.Signals | null }> {
  assert.ok(await cli.seen(new RegExp(`[\\s\\S]{${after + 1}}`), "stdout"), cli.stderr());
  cli.child.kill("SIGINT");
  const late = new Promise<never>((_, reject) => {
    const t = setTimeout(() => {
      cli.child.kill("SIGKILL");
      reject(new Error(`still running 10 s after Ctrl-C:\n${cli.stderr()}`));
    }, 10_000);
    t.unref();
  });
  return Promise.race([cli.exited, late]);
}

test("generate: Ctrl-C ends the partial text's line and exits 130", async () => {
  const model = charModelFolder(join(dir, "m"), "abcdefgh \n", { blockSize: 32, nLayer: 1, nHead: 1, nEmbd: 8 });
  const cli = startCli(["generate", "--model", model, "--prompt", "ab", "--max-new-tokens", "1000000"]);
  const end = await interrupt(cli, 20);
  assert.deepEqual(end, { status: 130, signal: null }, cli.stderr());
  assert.match(cli.stdout(), /^ab[\s\S]+\n$/);
  assert.equal(cli.stderr(), "");
});

test("train: Ctrl-C during the closing sample stops the sample, ends its line, keeps the model", async () => {
  const out = join(dir, "trained");
  const tiny = ["--n-layer", "1", "--n-head", "1", "--n-embd", "8", "--block-size", "16", "--batch-size", "2"];
  const run = ["--max-steps", "2", "--eval-interval", "2", "--eval-steps", "1", "--warmup-steps", "0"];
  const cli = startCli(["train", "--data", wordCorpus(dir, 2000), "--out", out, ...tiny, ...run, "--sample-tokens", "1000000"]);
  const end = await interrupt(cli, 20);
  assert.deepEqual(end, { status: 130, signal: null }, cli.stderr());
  assert.match(cli.stdout(), /\n$/);
  assert.match(cli.stderr(), /done: 2 steps/);
  assert.doesNotMatch(cli.stderr(), /saving a checkpoint/, "the model is saved already: the sample is all Ctrl-C stops");
  assert.ok(existsSync(join(out, "model.safetensors")));
});
