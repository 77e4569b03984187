import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import * as gptTokenizer from "gpt-tokenizer/encoding/gpt2";
import { get_encoding } from "tiktoken";
import { loadTokenizer } from "../src/io/folder.js";
import { gpt2Tokenizer } from "../src/tokenizer/gpt2.js";
import { pretokenize, pretokenizeRegex } from "../src/tokenizer/pretokenize.js";
import { tempDir } from "./helpers.js";
import { mobyDick, NASTY, randomCodeUnits, randomStrings, shakespeare } from "./tokenizer-helpers.js";

// The ranks come from js-tiktoken, so the oracles are the two other implementations:
// OpenAI's Rust tiktoken (as WASM) and gpt-tokenizer.
const tiktoken = get_encoding("gpt2");
after(() => tiktoken.free());
const gpt2 = gpt2Tokenizer();

const oracle = (s: string): number[] => Array.from(tiktoken.encode(s, "all"));
const oracleAsText = (s: string): number[] => Array.from(tiktoken.encode(s, [], []));

describe("GPT-2 encoding", () => {
  test("has OpenAI's vocabulary size and end-of-text id", () => {
    assert.equal(gpt2.vocabSize, 50257);
    assert.equal(gpt2.specialTokenId("<|endoftext|>"), 50256);
    assert.equal(gpt2.kind, "gpt2");
  });

  test("ids equal tiktoken's on the nasty corpus", () => {
    for (const s of NASTY) assert.deepEqual(gpt2.encode(s), oracle(s), JSON.stringify(s));
  });

  test("ids equal gpt-tokenizer's on the nasty corpus (text without special tokens)", () => {
    for (const s of NASTY) {
      if (s.includes("<|endoftext|>")) continue;
      assert.deepEqual(gpt2.encode(s), gptTokenizer.encode(s), JSON.stringify(s));
    }
  });

  test("special-token strings are plain text with specialsAsText", () => {
    for (const s of NASTY) assert.deepEqual(gpt2.encode(s, { specialsAsText: true }), oracleAsText(s), JSON.stringify(s));
    for (const s of NASTY) {
      const theirs = gptTokenizer.encode(s, { disallowedSpecial: new Set() });
      assert.deepEqual(gpt2.encode(s, { specialsAsText: true }), theirs, JSON.stringify(s));
    }
    assert.deepEqual(gpt2.encode("a<|endoftext|>b"), [64, 50256, 65]);
  });

  test("ids equal tiktoken's on tiny Shakespeare and Moby Dick", () => {
    for (const text of [shakespeare(), mobyDick()]) {
      const ours = gpt2.encode(text);
      const theirs = oracle(text);
      assert.equal(ours.length, theirs.length);
      assert.deepEqual(ours, theirs);
    }
  });

  test("ids equal tiktoken's on 2,000 random strings", () => {
    for (const s of randomStrings(1, 2000, 60)) assert.deepEqual(gpt2.encode(s), oracle(s), JSON.stringify(s));
  });

  test("decode(encode(s)) === s for the corpus, random strings and lone surrogates", () => {
    for (const s of [...NASTY, ...randomStrings(2, 500, 80), ...randomCodeUnits(3, 500, 40)]) {
      assert.equal(gpt2.decode(gpt2.encode(s)), s, JSON.stringify(s));
      assert.equal(gpt2.decode(gpt2.encode(s, { specialsAsText: true })), s, JSON.stringify(s));
    }
  });

  test("decode agrees with tiktoken on well-formed token sequences", () => {
    const ids = oracle("Hello 😀 naïve 日本語 <|endoftext|>");
    assert.equal(gpt2.decode(ids), new TextDecoder().decode(tiktoken.decode(Uint32Array.from(ids))));
  });

  test("token bytes and display strings", () => {
    assert.deepEqual([...gpt2.tokenBytes(31373)], [...new TextEncoder().encode("hello")]);
    assert.equal(gpt2.tokenString(995), " world");
    assert.equal(gpt2.tokenString(50256), "<|endoftext|>");
    // Half of a multi-byte character is shown as bytes, not as a replacement character.
    const partial = gpt2.encode("😀")[0] as number;
    assert.match(gpt2.tokenString(partial), /^(<0x[0-9A-F]{2}>)+$/);
    assert.throws(() => gpt2.decode([50257]), {
      name: "MinigptError",
      message: /outside this tokenizer's vocabulary/,
    });
  });

  test("heap merging (long words) and rescan merging agree", () => {
    const enc = new TextEncoder();
    for (const s of [...NASTY, ...randomStrings(4, 300, 120)]) {
      const bytes = enc.encode(s);
      assert.deepEqual(gpt2.mergeBytesForTest(bytes, true), gpt2.mergeBytesForTest(bytes, false), JSON.stringify(s));
    }
  });
});

describe("GPT-2 pre-tokenizer", () => {
  test("the hand-written scanner splits exactly like the GPT-2 regex", () => {
    const cases = [...NASTY, shakespeare(), mobyDick(), ...randomStrings(7, 3000, 50), ...randomCodeUnits(8, 3000, 30)];
    cases.push("𝐀𝐁𝐂 𝟏𝟐 x𝐀 '𝐀 \u0085\u0085x \u2028 a", "  \u00a0x", "\u3000\u3000日本");
    for (const s of cases) assert.deepEqual(pretokenize(s), pretokenizeRegex(s), JSON.stringify(s.slice(0, 80)));
  });
});

test("a Hugging Face folder with the slow tokenizer's vocab.json and merges.txt (no tokenizer.json) loads as GPT-2", () => {
  const dir = tempDir("minigpt-gpt2-slow-");
  const json = gpt2.toHuggingFaceJson() as { model: { vocab: Record<string, number>; merges: (string | [string, string])[] } };
  writeFileSync(join(dir, "vocab.json"), JSON.stringify(json.model.vocab));
  const merges = json.model.merges.map((m) => (typeof m === "string" ? m : m.join(" ")));
  writeFileSync(join(dir, "merges.txt"), `#version: 0.2\n${merges.join("\n")}\n`);
  const slow = loadTokenizer(dir);
  assert.equal(slow.kind, "gpt2");
  assert.equal(slow.specialTokenId("<|endoftext|>"), 50256);
  for (const s of NASTY) assert.deepEqual(slow.encode(s), oracle(s), JSON.stringify(s));
});
