import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, test } from "node:test";
import { arrayStream, evalWindows, readEvalWindows } from "../src/data/batches.js";
import { type Dataset, loadDataset } from "../src/data/dataset.js";
import { Rng } from "../src/random.js";
import { trainBpe } from "../src/tokenizer/bpeTrain.js";
import { CharTokenizer } from "../src/tokenizer/char.js";
import { bpeVocabulary, ChunkedEncoder, charUtf8Encoder, charVocabulary, IdBuffer } from "../src/tokenizer/chunked.js";
import type { Tokenizer } from "../src/tokenizer/types.js";
import { sampleWindowIndices, sampleWindows } from "../src/train/evaluate.js";
import { runCli, tempDir, wordCorpus } from "./helpers.js";

/**
 * A text made to break chunking: contractions ('re 's), runs of spaces and newlines, digits,
 * non-ASCII and astral characters, and special-token strings (whole and near misses).
 */
function nastyText(seed: number, length: number): string {
  const rng = new Rng(seed);
  const parts = [
    "the",
    " whale",
    "'re",
    "'s",
    "'",
    "r",
    "e",
    "  ",
    "   ",
    "\n",
    "\n\n",
    " \n",
    "42",
    "3.14",
    "é",
    "ü",
    "日本",
    "😀",
    "🐋",
    "!?",
    " .",
    "<|endoftext|>",
    "<|end|>",
    "<|user|>",
    "<|",
    "|>",
    "<|endof",
    "\t",
  ];
  let s = "";
  while (s.length < length) s += parts[rng.int(parts.length)];
  return s;
}

/** text cut at random places, never inside a surrogate pair (the UTF-8 reader never does that) */
function randomChunks(text: string, seed: number, maxLen: number): string[] {
  const rng = new Rng(seed);
  const chunks: string[] = [];
  let i = 0;
  while (i < text.length) {
    let end = Math.min(text.length, i + 1 + rng.int(maxLen));
    const c = text.charCodeAt(end - 1);
    if (c >= 0xd800 && c <= 0xdbff && end < text.length) end++;
    chunks.push(text.slice(i, end));
    i = end;
  }
  return chunks;
}

function encodeChunked(tokenizer: Tokenizer, chunks: string[], specialsAsText = false): number[] {
  const enc = new ChunkedEncoder(tokenizer, { specialsAsText });
  const ids: number[] = [];
  for (const [k, c] of chunks.entries()) ids.push(...enc.push(c, k === chunks.length - 1));
  return ids;
}

describe("chunked tokenizing gives what the whole string gives", () => {
  const text = nastyText(1, 6_000);
  test("char: vocabulary and ids, specials cut out or read as text, any chunk size", () => {
    const whole = CharTokenizer.fromText(text, ["<|x|>"]);
    for (const [seed, maxLen] of [
      [1, 3],
      [2, 17],
      [3, 4000],
    ] as const) {
      const chunks = randomChunks(text, seed, maxLen);
      const vocab = charVocabulary(["<|x|>"]);
      for (const [k, c] of chunks.entries()) vocab.add(c, k === chunks.length - 1);
      const built = vocab.finish();
      assert.deepEqual(built.toHuggingFaceJson(), whole.toHuggingFaceJson());
      assert.deepEqual(encodeChunked(built, chunks), whole.encode(text));
      assert.deepEqual(encodeChunked(built, chunks, true), whole.encode(text, { specialsAsText: true }));
    }
  });

  test("char from UTF-8 bytes, as the token cache's threads read it: the ids of the text read as text, unknown characters by byte fallback", () => {
    // a vocabulary without two of the text's characters (one astral), which then go as bytes
    const tokenizer = CharTokenizer.fromText(text.replace(/[ü🐋]/gu, ""));
    const out = new IdBuffer(Uint16Array);
    const length = charUtf8Encoder(tokenizer)(new TextEncoder().encode(text), out);
    assert.equal(length, text.length);
    assert.deepEqual([...out.ids.subarray(0, out.length)], tokenizer.encode(text, { specialsAsText: true }));
  });

  test("byte-level BPE: trained merges and ids, any chunk size", () => {
    const whole = trainBpe(text, { vocabSize: 300 });
    for (const [seed, maxLen] of [
      [4, 2],
      [5, 23],
      [6, 5000],
    ] as const) {
      const chunks = randomChunks(text, seed, maxLen);
      const vocab = bpeVocabulary({ vocabSize: 300 });
      for (const [k, c] of chunks.entries()) vocab.add(c, k === chunks.length - 1);
      const built = vocab.finish();
      assert.deepEqual(built.toHuggingFaceJson(), whole.toHuggingFaceJson());
      assert.deepEqual(encodeChunked(built, chunks), whole.encode(text));
      assert.deepEqual(encodeChunked(built, chunks, true), whole.encode(text, { specialsAsText: true }));
    }
  });
});

describe("token cache", () => {
  const dir = tempDir("minigpt-token-cache-");
  const corpus = join(dir, "corpus");
  mkdirSync(join(corpus, "b"), { recursive: true });
  // two files joined with "\n\n", a BOM; the second has no newline, so no place to cut for threads
  writeFileSync(join(corpus, "a.txt"), `\uFEFF${nastyText(7, 12_000)}`);
  writeFileSync(join(corpus, "b", "c.txt"), nastyText(8, 8_000).replace(/\n/g, " "));
  const cacheDir = join(dir, "cache");
  const options = (kind: "char" | "bpe", cached: boolean, messages: string[] = []) => ({
    data: corpus,
    blockSize: 16,
    batchSize: 4,
    tokenizerKind: kind,
    vocabSize: 300,
    specialsAsText: false,
    tokenCache: { dir: cacheDir, minBytes: cached ? 0 : Number.MAX_SAFE_INTEGER, chunkBytes: 7, threads: 0 },
    onMessage: (m: string) => messages.push(m),
  });
  const batches = (d: Dataset, seed: number) => {
    const train = d.trainSampler(new Rng(seed));
    const val = d.valSampler(new Rng(seed + 1));
    return Array.from({ length: 20 }, () => [train.next(), val.next()]);
  };

  // on this thread with 7-byte chunks; on 2 worker threads, in pieces cut at newlines, and with a
  // text that has no place to cut for 2,000 characters taken over by this thread
  const ways = [
    { threads: 0, chunkBytes: 7 },
    { threads: 2, chunkBytes: 1000 },
    { threads: 2, chunkBytes: 1000, maxPiece: 2000 },
  ];
  for (const kind of ["char", "bpe"] as const) {
    test(`${kind}: the cache gives the batches, splits, vocabulary and special targets of tokenizing in memory`, () => {
      const memory = loadDataset(options(kind, false));
      for (const way of ways) {
        rmSync(cacheDir, { recursive: true, force: true });
        const messages: string[] = [];
        const cached = loadDataset({ ...options(kind, true, messages), tokenCache: { dir: cacheDir, minBytes: 0, ...way } });
        assert.match(messages.join("\n"), /token cache: wrote /);
        assert.deepEqual(cached.tokenizer.toHuggingFaceJson(), memory.tokenizer.toHuggingFaceJson());
        assert.equal(cached.trainTokens, memory.trainTokens);
        assert.equal(cached.valTokens, memory.valTokens);
        assert.deepEqual(cached.specialTargets, memory.specialTargets);
        assert.ok(cached.specialTargets.length > 0);
        assert.deepEqual(batches(cached, 3), batches(memory, 3), JSON.stringify(way));
      }
    });
  }

  test("char, specials read as text, on 2 threads (ids made from the bytes, written by the threads): the batches of tokenizing in memory", () => {
    const asText = (cached: boolean) => ({ ...options("char", cached), specialsAsText: true });
    const memory = loadDataset(asText(false));
    rmSync(cacheDir, { recursive: true, force: true });
    const cached = loadDataset({ ...asText(true), tokenCache: { dir: cacheDir, minBytes: 0, threads: 2, chunkBytes: 1000 } });
    assert.deepEqual(cached.tokenizer.toHuggingFaceJson(), memory.tokenizer.toHuggingFaceJson());
    assert.equal(cached.trainTokens, memory.trainTokens);
    assert.equal(cached.valTokens, memory.valTokens);
    assert.deepEqual(batches(cached, 5), batches(memory, 5));
  });

  test("reused while the sources are unchanged; written again when a file's size or mtime changes", () => {
    const run = () => {
      const messages: string[] = [];
      const d = loadDataset(options("char", true, messages));
      return { d, said: messages.join("\n") };
    };
    run();
    // a half-written cache of a run that was killed is removed; one of a live process is not
    const deadPid = spawnSync(process.execPath, ["-e", ""]).pid;
    const dead = join(cacheDir, "tokens", `x.tokens.tmp-${deadPid}`);
    // (writeFileAtomic's temporary name, as a run killed while writing a vocabulary leaves it)
    const deadVocab = join(cacheDir, "tokens", `.x.vocab.json.tmp-${deadPid}-0a1b2c3d`);
    const live = join(cacheDir, "tokens", `x.tokens.tmp-${process.pid}`);
    writeFileSync(dead, "partial");
    writeFileSync(deadVocab, "partial");
    writeFileSync(live, "partial");
    assert.match(run().said, /token cache: reusing /);
    assert.ok(!existsSync(dead) && !existsSync(deadVocab) && existsSync(live));
    rmSync(live);
    const file = join(corpus, "b", "c.txt");
    const before = run().d;
    appendFileSync(file, " the whale");
    const grown = run();
    assert.match(grown.said, /c\.txt changed since .* was written; tokenizing again/);
    assert.equal(grown.d.trainTokens + grown.d.valTokens, before.trainTokens + before.valTokens + " the whale".length);
    assert.match(run().said, /reusing/);
    const st = statSync(file);
    utimesSync(file, st.atime, new Date(st.mtimeMs + 5000));
    assert.match(run().said, /c\.txt changed since/);
    assert.match(run().said, /reusing/);
  });
});

test("train on a 24 MB text under a 128 MB heap: tokenized in chunks into the cache, then reused (the whole-string path needs ~650 MB)", () => {
  const dir = tempDir("minigpt-token-cache-cli-");
  const line = readFileSync(wordCorpus(dir), "utf8");
  const big = join(dir, "big.txt");
  writeFileSync(big, line.repeat(Math.ceil(24e6 / line.length)));
  const args = [
    "train",
    "--data",
    big,
    "--max-steps",
    "1",
    "--block-size",
    "16",
    "--batch-size",
    "4",
    "--n-layer",
    "1",
    "--n-embd",
    "16",
    "--n-head",
    "2",
    "--eval-steps",
    "1",
  ];
  const env = { MINIGPT_CACHE_DIR: join(dir, "cache"), NODE_OPTIONS: "--max-old-space-size=128" };
  const first = runCli([...args, "--out", join(dir, "m1")], { env });
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stderr, /tokenizing \(vocabulary pass\) .* MB\/s/);
  assert.match(first.stderr, /tokenizing \(tokens pass\) .* MB\/s [\d,]+ tokens/);
  assert.match(first.stderr, /token cache: wrote .*cache\/tokens\/\w+\.tokens \([\d,]+ tokens\)/);
  const second = runCli([...args, "--out", join(dir, "m2")], { env });
  assert.equal(second.status, 0, second.stderr);
  assert.match(second.stderr, /token cache: reusing /);
  assert.doesNotMatch(second.stderr, /tokenizing/);
  // with the cache current, the text is not read again: not to resume, nor to fine-tune (--init) a
  // second time (the first works out what the data adds to the vocabulary, and remembers it);
  // tests/fault-inject.mjs makes any opening of the text fail
  const tune = (out: string, options = {}) =>
    runCli(["train", "--data", big, "--init", join(dir, "m1"), "--out", join(dir, out), "--max-steps", "1", "--eval-steps", "1"], options);
  assert.equal(tune("m3", { env }).status, 0);
  const noReading = {
    env: { ...env, NODE_OPTIONS: `${env.NODE_OPTIONS} --import ${resolve("tests/fault-inject.mjs")}`, MINIGPT_FAULT: `open:${big}:1:EIO` },
  };
  const resumed = runCli(["train", "--out", join(dir, "m1"), "--resume", "--max-steps", "2"], noReading);
  assert.equal(resumed.status, 0, resumed.stderr);
  const tuned = tune("m4", noReading);
  assert.equal(tuned.status, 0, tuned.stderr);
  assert.match(tuned.stderr, /token cache: reusing /);
});

test("tokenizer train on a 9 MB text reads it in chunks (a progress line) and writes the BPE trainBpe learns from the whole text, with --specials too", () => {
  const dir = tempDir("minigpt-token-cache-tokenizer-");
  // a special token of the user's among the built-in ones (its words are counted on one thread)
  const text = nastyText(11, 9e6).replaceAll("<|endof", "<|note|>");
  const file = join(dir, "big.txt");
  writeFileSync(file, text);
  for (const specials of [[], ["<|note|>"]]) {
    const out = join(dir, `tokenizer-${specials.length}`);
    const r = runCli(["tokenizer", "train", "--data", file, "--vocab-size", "300", "--out", out, "--specials", specials.join(",")]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /tokenizing \(vocabulary pass\) .* MB\/s/);
    const whole = trainBpe(text, { vocabSize: 300, extraSpecials: specials });
    assert.deepEqual(JSON.parse(readFileSync(join(out, "tokenizer.json"), "utf8")), JSON.parse(JSON.stringify(whole.toHuggingFaceJson())));
  }
});

test("eval's windows read from a token stream are evalWindows' (all, or sampleWindows' sample)", () => {
  const ids = Int32Array.from({ length: 1003 }, (_, i) => (i * 7) % 65);
  const stream = arrayStream(ids).range(0, ids.length);
  const T = 16;
  const all = evalWindows(ids, T);
  assert.deepEqual(
    readEvalWindows(stream, T, () => null),
    all,
  );
  const total = ids.length - 1;
  for (const tokens of [1, 100, 500, 5000])
    assert.deepEqual(
      readEvalWindows(stream, T, (n) => sampleWindowIndices(n, total, T, tokens)),
      sampleWindows(all, tokens),
    );
});
