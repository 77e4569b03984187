/**
 * A new user's mistakes, each one line on stderr and exit 1 through the real CLI: a number flag
 * with fixed choices (quantize --bits 3) is refused, not taken as another value; a model file that
 * is broken JSON (whose parser quotes the file, newline and all) is still one line; serve on a port
 * in use or an unknown host ends at once with one line, not a stack trace and a process that hangs;
 * other tools' habits (the command after a flag, --embed_dim, a hub dataset's name) are answered in ours.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { attentionSpec } from "../src/cli/attention.js";
import { parseFlags } from "../src/cli/flags.js";
import { trainSpec } from "../src/cli/train.js";
import { loadTextSource } from "../src/data/text.js";
import { readModelConfig } from "../src/io/hf.js";
import { charModelFolder, runCli, tempDir, throwsUser } from "./helpers.js";

const root = tempDir("minigpt-badinput-");
const model = charModelFolder(join(root, "model"), "call me ishmael. ", { nLayer: 1, nHead: 1, nEmbd: 8, blockSize: 8 });

/** exit 1 with exactly one line on stderr matching `pattern`, nothing on stdout */
function oneLine(r: ReturnType<typeof runCli>, pattern: RegExp): void {
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /^[^\n]+\n$/, `not one line: ${JSON.stringify(r.stderr)}`);
  assert.match(r.stderr, pattern);
}

test("quantize --bits 3 is refused (it once wrote int4), and nothing is written", () => {
  const out = join(root, "q3");
  oneLine(runCli(["quantize", "--model", model, "--out", out, "--bits", "3"]), /^minigpt quantize: --bits must be one of 8, 4, got "3"$/m);
  assert.ok(!existsSync(out));
});

test("a tokenizer.json that is not JSON is one line, whatever the parser quotes of it", () => {
  const broken = charModelFolder(join(root, "broken"), "call me ishmael. ", { nLayer: 1, nHead: 1, nEmbd: 8, blockSize: 8 });
  writeFileSync(join(broken, "tokenizer.json"), "garbage\n\u0001{");
  oneLine(runCli(["generate", "--model", broken, "--prompt", "call"]), /tokenizer\.json is not valid JSON/);
});

test("serve on a port in use, on a host that is not this machine's, or on a name that does not resolve: one line, and the process ends", async () => {
  const taken = createServer();
  await new Promise<void>((ok) => taken.listen(0, "127.0.0.1", ok));
  const port = (taken.address() as { port: number }).port;
  try {
    const inUse = runCli(["serve", "--model", model, "--port", String(port)], { timeoutMs: 60_000 });
    oneLine(inUse, new RegExp(`^minigpt serve: port ${port} on 127\\.0\\.0\\.1 is in use: pick another with --port`));
  } finally {
    taken.close();
  }
  // 192.0.2.1 is TEST-NET-1 (RFC 5737): an address, never this machine's
  const badHost = runCli(["serve", "--model", model, "--port", "0", "--host", "192.0.2.1"], { timeoutMs: 60_000 });
  oneLine(badHost, /^minigpt serve: --host 192\.0\.2\.1 is not an address of this machine$/m);
  // .invalid never resolves (RFC 6761): not "not an address of this machine", as if it had one
  const noName = runCli(["serve", "--model", model, "--port", "0", "--host", "name.invalid"], { timeoutMs: 60_000 });
  oneLine(noName, /^minigpt serve: --host name\.invalid does not resolve to an address/m);
});

test("interactive --dir that does not exist, an empty --out, a missing --file: one line each, the error said once", () => {
  oneLine(runCli(["interactive", "--dir", join(root, "nowhere")], { input: "" }), /^minigpt interactive: --dir \S+nowhere does not exist/);
  oneLine(runCli(["train", "--out", "", "--max-steps", "1"]), /^minigpt train: --out needs a file or folder, got an empty value/);
  throwsUser(() => parseFlags(attentionSpec, ["--out", ""]), /--out needs a file or folder/);
  const missing = runCli(["tokenize", "--model", model, "--file", join(root, "nothing.txt")]);
  oneLine(missing, /cannot read \S+nothing\.txt: ENOENT: no such file or directory/);
  assert.doesNotMatch(missing.stderr, /ENOENT \(ENOENT/);
});

test('generate --prompt "" says the prompt is empty (and how to start a new text), not a vocabulary hint', () => {
  oneLine(
    runCli(["generate", "--model", model, "--prompt", ""]),
    /the prompt is empty: give some text, e\.g\. --prompt "The", or leave --prompt out/,
  );
});

test('generate --stop "" is refused in one line as the empty prompt is, and eval counts 0 and 1 tokens in words', () => {
  oneLine(runCli(["generate", "--model", model, "--stop", ""]), /^minigpt generate: --stop is empty: give the text to end at/);
  const text = join(root, "short.txt");
  writeFileSync(text, "call");
  oneLine(
    runCli(["eval", "--model", model, "--data", text, "--split", "val"]),
    /its validation split .* has no tokens; scoring needs at least 2/,
  );
  writeFileSync(text, "c");
  oneLine(runCli(["eval", "--model", model, "--data", text, "--split", "all"]), / has 1 token; scoring needs at least 2/);
});

test("tokenizer train says when the text gives fewer tokens than --vocab-size asked for", () => {
  const text = join(root, "short.txt");
  writeFileSync(text, "call me ishmael. some years ago, never mind how long precisely.\n");
  const r = runCli(["tokenizer", "train", "--data", text, "--vocab-size", "5000", "--out", join(root, "tok")]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stderr,
    /^note: \d+ tokens, not --vocab-size 5000: merging stopped when every word of the text had become a single token/m,
  );
});

test("the seeds' habits get our names: --mode train and --train say the command comes first, --embed_dim is --n-embd, wikitext-2 is not fetched", () => {
  oneLine(runCli(["--mode", "train"]), /^minigpt: the command comes first, then its flags .*did you mean "minigpt train \.\.\."\?/);
  oneLine(runCli(["--train", "--steps", "500"]), /did you mean "minigpt train \.\.\."\?/);
  throwsUser(() => parseFlags(trainSpec, ["--embed_dim", "256"]), /did you mean --n-embd\?/);
  throwsUser(() => loadTextSource("wikitext-2"), /"wikitext-2" is neither a file/, /minigpt downloads no datasets: save the text/);
});

test("tokenize --text is told the text goes without a flag, not 'did you mean --specials-as-text?'", () => {
  oneLine(
    runCli(["tokenize", "--tokenizer", "gpt2", "--text", "hello"]),
    /^minigpt tokenize: there is no --text: the text goes without a flag \(minigpt tokenize --tokenizer gpt2 "Hello"\), or give --file F\n$/,
  );
});

test("a config.json whose n_head does not divide n_embd names that file", () => {
  const dir = charModelFolder(join(root, "heads"), "call me ishmael. ", { nLayer: 1, nHead: 1, nEmbd: 8, blockSize: 8 });
  const file = join(dir, "config.json");
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, "utf8")), n_head: 3 }));
  throwsUser(() => readModelConfig(dir), /heads\/config\.json: n_embd 8 must be divisible by n_head 3/);
});
