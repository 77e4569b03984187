/**
 * Characters a character model never saw, through the real CLI: README's path (train, then a chat
 * fine-tune on conversations with digits and punctuation) adds them to the vocabulary; a new model
 * encodes any prompt by byte fallback, with the ids and text @huggingface/tokenizers gives from its
 * tokenizer.json; a folder made before byte fallback (tests/models/char-before-fallback, written by
 * the code of that time) still loads and leaves such characters out with one warning line, as the
 * counting model's word vocabulary does with a word; training
 * data that cannot be encoded is an error naming the file, the line and the flag that helps.
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { before, describe, test } from "node:test";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { loadDataset } from "../src/data/dataset.js";
import { loadTokenizer, saveTokenizer } from "../src/io/folder.js";
import { saveModel } from "../src/io/hf.js";
import { makeConfig } from "../src/nn/config.js";
import { GPT } from "../src/nn/gpt.js";
import { Rng } from "../src/random.js";
import { countingTokenizer } from "../src/tokenizer/word.js";
import { runCli, tempDir, throwsUser, wordCorpus } from "./helpers.js";

const OLD = resolve("tests/models/char-before-fallback");
const TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4", "--backend", "ref"];
const UNSEEN = "2+2=4 ë 😀";

function ok(r: ReturnType<typeof runCli>): ReturnType<typeof runCli> {
  assert.equal(r.status, 0, r.stderr);
  return r;
}

function hfTokenizer(dir: string): HfTokenizer {
  const read = (f: string) => JSON.parse(readFileSync(join(dir, f), "utf8"));
  return new HfTokenizer(read("tokenizer.json"), read("tokenizer_config.json"));
}

describe("characters a model never saw", () => {
  const dir = tempDir("minigpt-unknown-");
  const corpus = wordCorpus(dir, 3000); // lower-case words, spaces, "." and newlines only
  const out = join(dir, "out");
  before(() => {
    ok(runCli(["train", "--data", corpus, "--out", out, ...TINY, "--max-steps", "2"]));
  });

  test("README's path: a chat fine-tune on '2+2=4' adds the characters its data needs, and says how many", () => {
    const conv = join(dir, "conv.jsonl");
    const turn = (q: string, a: string) =>
      JSON.stringify({
        messages: [
          { role: "user", content: q },
          { role: "assistant", content: a },
        ],
      });
    writeFileSync(conv, `${turn("2+2?", "2+2=4!")}\n${turn("hi, ë", "hello 😀")}\n`);
    const chat = join(dir, "chat");
    const r = ok(runCli(["train", "--chat", conv, "--init", out, "--out", chat, "--max-steps", "2", "--backend", "ref"]));
    const added = /added (\d+) characters the data needs \(([^)]*)\)/.exec(r.stderr);
    assert.ok(added, r.stderr);
    for (const c of ["2", "+", "=", "4", "?", "!", ",", "ë", "😀"]) assert.ok(added[2]?.includes(JSON.stringify(c)), `${c} in ${added[2]}`);
    assert.equal(Number(added[1]), 9);
    // the new characters are one token each in the fine-tuned model
    const ids = JSON.parse(ok(runCli(["tokenize", "--model", chat, "--json", "2+2=4"])).stdout).ids;
    assert.equal(ids.length, 5);
    ok(runCli(["chat", "--model", chat, "--max-new-tokens", "3", "--backend", "ref"], { input: "2+2=?\n/quit\n" }));
  });

  test("a new model encodes any prompt by byte fallback, with Hugging Face's ids and text", () => {
    const hf = hfTokenizer(out);
    const r = ok(runCli(["tokenize", "--model", out, "--json", UNSEEN]));
    assert.equal(r.stderr, "");
    const ids: number[] = JSON.parse(r.stdout).ids;
    assert.deepEqual(hf.encode(UNSEEN, { add_special_tokens: false }).ids, ids);
    assert.equal(hf.decode(ids), UNSEEN);
    // "2+2=4": five byte tokens (one byte each), ë two, 😀 four, the two spaces are characters
    assert.equal(ids.length, 5 + 2 + 4 + 2);
    const g = ok(runCli(["generate", "--model", out, "--prompt", UNSEEN, "--max-new-tokens", "4", "--seed", "1"]));
    assert.ok(g.stdout.startsWith(UNSEEN), g.stdout);
    assert.equal(g.stderr.includes("warning"), false, g.stderr);
  });

  test("a folder made before byte fallback loads; a character it cannot encode is left out with one warning naming it", () => {
    const warning = /^warning: left out "\+" \(U\+002B\), "ë" \(U\+00EB\), "😀" \(U\+1F600\): not in this model's character vocabulary/;
    const t = ok(runCli(["tokenize", "--model", OLD, "--json", "the+ë😀"]));
    assert.match(t.stderr, warning);
    assert.equal(t.stderr.trim().split("\n").length, 1, t.stderr);
    assert.equal(JSON.parse(t.stdout).ids.length, 3);
    const g = ok(runCli(["generate", "--model", OLD, "--prompt", "the+ë😀", "--max-new-tokens", "3", "--backend", "ref"]));
    assert.match(g.stderr, warning);
    const c = ok(runCli(["chat", "--model", OLD, "--max-new-tokens", "2", "--backend", "ref"], { input: "hi ë\n/quit\n" }));
    assert.match(c.stdout, /\(warning: left out "ë" \(U\+00EB\): not in this model's character vocabulary/);
  });

  test("the counting model's word vocabulary leaves an unknown word out with one warning naming it", () => {
    const counting = join(dir, "counting");
    mkdirSync(counting);
    const tok = countingTokenizer();
    const model = new GPT(makeConfig({ vocabSize: tok.vocabSize, blockSize: 20, nLayer: 1, nHead: 1, nEmbd: 8 }), 1);
    saveModel(model, counting);
    saveTokenizer(counting, tok);
    model.dispose();
    const g = ok(runCli(["generate", "--model", counting, "--prompt", "1 2 hello 3", "--max-new-tokens", "2", "--backend", "ref"]));
    assert.match(g.stderr, /^warning: left out "hello": not in this model's word vocabulary\n$/);
  });

  test("training data a fixed vocabulary cannot encode names the file, the line and the flag", () => {
    // --tokenizer DIR fixes the vocabulary; this one is a model folder's from before byte fallback
    const data = join(dir, "cafe.txt");
    writeFileSync(data, `${readFileSync(corpus, "utf8")}the café\n`);
    const line = readFileSync(data, "utf8").split("\n").length - 1;
    const r = runCli(["train", "--data", data, "--tokenizer", OLD, "--out", join(dir, "fixed"), ...TINY, "--max-steps", "1"]);
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `cafe\\.txt line ${line}: character "é" \\(U\\+00E9\\) is not in the model's char vocabulary; --tokenizer char builds the vocabulary from the data`,
      ),
    );
    // eval of that text on that model: the same place, and the fine-tune that adds the character
    const e = runCli(["eval", "--model", OLD, "--data", data, "--backend", "ref"]);
    assert.equal(e.status, 1);
    assert.match(e.stderr, new RegExp(`cafe\\.txt line ${line}: character "é" .*minigpt train --init .* --data .*cafe\\.txt --out NEW\n$`));
  });

  test("the token cache's chunked path adds, and refuses, what the in-memory path does", () => {
    const data = join(dir, "chunks.txt");
    // "<|end|>" and words cut by 5-byte chunks; the vocabulary lacks "é", "<", "|" and the word "café"
    writeFileSync(data, `${readFileSync(corpus, "utf8").slice(0, 400)}the café<|end|> and ë\nme 😀 a<b\n`);
    const options = (tokenizer: ReturnType<typeof loadTokenizer>, cached: boolean, grow: boolean) => ({
      data,
      blockSize: 4,
      batchSize: 2,
      tokenizer,
      tokenizerKind: "char" as const,
      vocabSize: 0,
      specialsAsText: false,
      vocabulary: { grow, hint: "the hint" },
      tokenCache: { dir: join(dir, "cache"), minBytes: cached ? 0 : Number.MAX_SAFE_INTEGER, chunkBytes: 5 },
    });
    for (const tok of [loadTokenizer(OLD), countingTokenizer()]) {
      const memory = loadDataset(options(tok, false, true));
      const cached = loadDataset(options(tok, true, true));
      assert.ok((memory.addedPieces ?? []).length > 3, tok.kind);
      assert.deepEqual(cached.addedPieces, memory.addedPieces, tok.kind);
      assert.ok(!memory.addedPieces?.includes("<|end|>"), tok.kind);
      assert.deepEqual(cached.tokenizer.toHuggingFaceJson(), memory.tokenizer.toHuggingFaceJson());
      const [a, b] = [memory.trainSampler(new Rng(1)).next(), cached.trainSampler(new Rng(1)).next()];
      assert.deepEqual(b, a);
      for (const cachedPath of [false, true])
        throwsUser(
          () => loadDataset(options(tok, cachedPath, false)),
          /chunks\.txt line \d+: /,
          /is not in the model's (char|word) vocabulary; the hint$/,
        );
    }
  });
});
