/**
 * Ctrl-C (SIGINT) while a model's text streams to stdout (src/cli/interrupt.ts), through the real
 * CLI in a child process: the text stops, its line is ended (so the shell's prompt does not land
 * after the partial text), the status is 130, and a trained model is kept. Ctrl-C while train
 * prepares its data ends it at once, having written nothing. Ctrl-C in the middle of training is
 * tests/train.test.ts's; in chat and interactive, tests/interactive.test.ts's.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { charModelFolder, type StartedCli, startCli, tempDir, wordCorpus } from "./helpers.js";

const dir = tempDir("minigpt-interrupt-");

/** SIGINT once stdout holds more than `after` characters; the exit, or a failure if it does not come within 10 s */
async function interrupt(cli: StartedCli, after: number): Promise<{ status: number | null; signal: NodeJS.Signals | null }> {
  assert.ok(await cli.seen(new RegExp(`[\\s\\S]{${after + 1}}`), "stdout"), cli.stderr());
  return ctrlC(cli);
}

/** SIGINT now; the exit, or a failure if it does not come within 10 s */
function ctrlC(cli: StartedCli): Promise<{ status: number | null; signal: NodeJS.Signals | null }> {
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

test("train: Ctrl-C while it tokenizes the data ends it at once: no step, no model folder; the next run trains", async () => {
  // 9 MB: over the 8 MiB from which a text is tokenized into the token cache, in two passes for a BPE
  const line = "call me ishmael. the white whale and the captain of the ship, ahab, at sea.\n";
  const corpus = join(dir, "big.txt");
  writeFileSync(corpus, line.repeat(Math.ceil(9e6 / line.length)));
  const out = join(dir, "big-model");
  const cache = join(dir, "cache");
  const args = ["train", "--data", corpus, "--out", out, "--tokenizer", "bpe", "--vocab-size", "300", "--n-layer", "1", "--n-head", "1"];
  const tiny = [...args, "--n-embd", "8", "--block-size", "16", "--batch-size", "2", "--max-steps", "1", "--eval-steps", "1"];
  const env = { MINIGPT_CACHE_DIR: cache };
  const cli = startCli(tiny, { env });
  // the vocabulary pass has ended: the tokens pass is running
  assert.ok(await cli.seen(/tokenizing \(vocabulary pass\)/), cli.stderr());
  // and it said beforehand what Ctrl-C does then
  assert.match(
    cli.stderr(),
    /^tokenizing the data into the token cache first \(Ctrl-C stops at once: nothing is written until training starts\)$/m,
  );
  const end = await ctrlC(cli);
  assert.equal(end.signal, "SIGINT", `ended by the signal, at once:\n${cli.stderr()}`);
  assert.doesNotMatch(cli.stderr(), /finishing this step|new run in/);
  assert.ok(!existsSync(out), "the model folder is written only when training starts");
  // the next run removes the half-written cache file and trains
  const again = startCli(tiny, { env });
  assert.equal((await again.exited).status, 0, again.stderr());
  assert.match(again.stderr(), /done: 1 step in/);
  assert.deepEqual(
    readdirSync(join(cache, "tokens")).filter((f) => f.includes(".tmp-")),
    [],
  );
});
