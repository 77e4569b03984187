import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { Rng } from "../src/random.js";
import {
  CharTokenizer,
  countingTokenizer,
  type Tokenizer,
  tokenizerConfigJson,
  tokenizerFromHuggingFaceJson,
} from "../src/tokenizer/index.js";
import { shakespeare } from "./tokenizer-helpers.js";

function hf(tok: Tokenizer): HfTokenizer {
  return new HfTokenizer(JSON.parse(JSON.stringify(tok.toHuggingFaceJson())), tokenizerConfigJson(tok));
}

describe("character tokenizer", () => {
  const text = "hello wörld 😀 ba\n";
  const tok = CharTokenizer.fromText(text);

  test("vocabulary is the sorted distinct code points, then the special tokens", () => {
    const chars = ["\n", " ", "a", "b", "d", "e", "h", "l", "o", "r", "w", "ö", "😀"];
    assert.equal(tok.vocabSize, chars.length + 4);
    for (const [id, c] of chars.entries()) assert.equal(tok.tokenString(id), c);
    assert.deepEqual(tok.specialTokens, ["<|endoftext|>", "<|user|>", "<|assistant|>", "<|end|>"]);
    assert.equal(tok.specialTokenId("<|endoftext|>"), chars.length);
    assert.equal(tok.specialTokenId("<|end|>"), chars.length + 3);
    assert.equal(tok.kind, "char");
  });

  test("an emoji is one token and its bytes are its UTF-8", () => {
    assert.deepEqual(tok.encode("😀"), [12]);
    assert.deepEqual([...tok.tokenBytes(12)], [0xf0, 0x9f, 0x98, 0x80]);
    assert.deepEqual([...tok.tokenBytes(tok.specialTokenId("<|end|>") as number)], [...new TextEncoder().encode("<|end|>")]);
  });

  test("special-token strings are special ids unless specialsAsText", () => {
    const withSpecials = CharTokenizer.fromText("<|end|> abc");
    const end = withSpecials.specialTokenId("<|end|>") as number;
    assert.deepEqual(withSpecials.encode("a<|end|>b"), [withSpecials.encode("a")[0], end, withSpecials.encode("b")[0]]);
    assert.equal(withSpecials.encode("a<|end|>b", { specialsAsText: true }).length, 9);
    assert.equal(withSpecials.decode(withSpecials.encode("a<|end|>b")), "a<|end|>b");
  });

  test("round-trips text made of its characters", () => {
    const big = shakespeare();
    const shake = CharTokenizer.fromText(big);
    // tiny Shakespeare has nanoGPT's 65 characters; the Moby Dick fallback is counted here
    const chars = big.length === 1115394 ? 65 : new Set(big).size;
    assert.equal(shake.vocabSize, chars + 4);
    assert.equal(shake.decode(shake.encode(big)), big);
  });

  test("a character outside the vocabulary is a clear error", () => {
    assert.throws(() => tok.encode("hellx"), {
      name: "MinigptError",
      message: /character "x" \(U\+0078\) is not in this model's character vocabulary: the model was trained on a different text/,
    });
    assert.throws(() => tok.decode([999]), {
      name: "MinigptError",
      message: /outside/,
    });
    assert.throws(() => CharTokenizer.fromText(""), {
      name: "MinigptError",
      message: /empty/,
    });
  });

  test("its tokenizer.json loads in @huggingface/tokenizers with our ids and decoded text", () => {
    const big = shakespeare();
    const shake = CharTokenizer.fromText(`${big}é😀\r`);
    const theirs = hf(shake);
    const samples = ["First Citizen:\nBefore we proceed", "é😀 ok\r\n", "<|user|>hi<|end|><|assistant|>yo<|end|><|endoftext|>"];
    // Random strings over the vocabulary itself, special tokens included.
    const rng = new Rng(5);
    for (let i = 0; i < 300; i++) {
      const ids = Array.from({ length: rng.int(60) }, () => rng.int(shake.vocabSize));
      samples.push(shake.decode(ids));
    }
    for (const s of samples) {
      const ids = shake.encode(s);
      assert.deepEqual(theirs.encode(s, { add_special_tokens: false }).ids, ids, JSON.stringify(s));
      if (ids.length > 0) assert.equal(theirs.decode(ids), shake.decode(ids), JSON.stringify(s));
    }
  });

  test("its tokenizer.json reads back as the same tokenizer", () => {
    const back = tokenizerFromHuggingFaceJson(JSON.parse(JSON.stringify(tok.toHuggingFaceJson())));
    assert.equal(back.kind, "char");
    assert.equal(back.vocabSize, tok.vocabSize);
    assert.deepEqual(back.specialTokens, tok.specialTokens);
    assert.deepEqual(back.encode("hello<|end|> 😀"), tok.encode("hello<|end|> 😀"));
  });
});

describe("word tokenizer (counting)", () => {
  const tok = countingTokenizer();

  test("vocabulary is 0..99 then the special tokens", () => {
    assert.equal(tok.vocabSize, 104);
    assert.equal(tok.kind, "word");
    assert.deepEqual(tok.encode("10 11 12"), [10, 11, 12]);
    assert.deepEqual(tok.encode("  0\t99\n5 "), [0, 99, 5]);
    assert.deepEqual(tok.encode("1 2<|end|>"), [1, 2, 103]);
    assert.equal(tok.decode([10, 11, 12, 103]), "10 11 12 <|end|>");
    assert.deepEqual([...tok.tokenBytes(42)], [0x34, 0x32]);
  });

  test("an unknown word is a clear error", () => {
    assert.throws(() => tok.encode("10 100"), {
      name: "MinigptError",
      message: /"100" is not in this model's word vocabulary \(0, 1, 2, \.\.\., 99\)/,
    });
    assert.throws(() => tok.encode("1,2"), {
      name: "MinigptError",
      message: /"1,2"/,
    });
    assert.throws(() => tok.encode("<|end|>", { specialsAsText: true }), {
      name: "MinigptError",
    });
  });

  test("its tokenizer.json loads in @huggingface/tokenizers with our ids and decoded text", () => {
    const theirs = hf(tok);
    for (const s of ["10 11 12", " 0  1\n2 ", "97 98 99<|end|>", "<|user|>1 2 3<|end|>"]) {
      const ids = tok.encode(s);
      assert.deepEqual(theirs.encode(s, { add_special_tokens: false }).ids, ids, s);
      assert.equal(theirs.decode(ids), tok.decode(ids), s);
    }
  });

  test("its tokenizer.json reads back as the same tokenizer", () => {
    const back = tokenizerFromHuggingFaceJson(JSON.parse(JSON.stringify(tok.toHuggingFaceJson())));
    assert.equal(back.kind, "word");
    assert.deepEqual(back.encode("3 4 5<|end|>"), [3, 4, 5, 103]);
  });
});
