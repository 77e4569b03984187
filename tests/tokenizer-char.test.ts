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
import { NASTY, randomCodeUnits, randomStrings, shakespeare } from "./tokenizer-helpers.js";

function hf(tok: Tokenizer): HfTokenizer {
  return new HfTokenizer(JSON.parse(JSON.stringify(tok.toHuggingFaceJson())), tokenizerConfigJson(tok));
}

describe("character tokenizer", () => {
  const text = "hello wörld 😀 ba\n";
  const tok = CharTokenizer.fromText(text);

  test("vocabulary is the sorted distinct code points, then the 256 byte tokens, then the special tokens", () => {
    const chars = ["\n", " ", "a", "b", "d", "e", "h", "l", "o", "r", "w", "ö", "😀"];
    assert.equal(tok.vocabSize, chars.length + 256 + 4);
    for (const [id, c] of chars.entries()) assert.equal(tok.tokenString(id), c);
    assert.equal(tok.tokenString(chars.length), "<0x00>");
    assert.equal(tok.tokenString(chars.length + 0xe2), "<0xE2>");
    assert.deepEqual([...tok.tokenBytes(chars.length + 0xe2)], [0xe2]);
    assert.deepEqual(tok.specialTokens, ["<|endoftext|>", "<|user|>", "<|assistant|>", "<|end|>"]);
    assert.equal(tok.specialTokenId("<|endoftext|>"), chars.length + 256);
    assert.equal(tok.specialTokenId("<|end|>"), chars.length + 256 + 3);
    assert.equal(tok.kind, "char");
    const old = CharTokenizer.fromText(text, [], { byteFallback: false });
    assert.equal(old.vocabSize, chars.length + 4);
    assert.equal(old.specialTokenId("<|endoftext|>"), chars.length);
  });

  test("byte fallback: an unseen character is its UTF-8 bytes, and decodes back", () => {
    const byte = (b: number) => 13 + b;
    assert.deepEqual(tok.encode("+"), [byte(0x2b)]);
    assert.deepEqual(tok.encode("hë"), [6, byte(0xc3), byte(0xab)]);
    assert.deepEqual(tok.encode("🙂"), [byte(0xf0), byte(0x9f), byte(0x99), byte(0x82)]);
    for (const s of ["2+2=4", "hëllo 🙂!", "\u0000\u00ff", ...NASTY, ...randomStrings(3, 200, 40), ...randomCodeUnits(4, 200, 30)]) {
      assert.equal(tok.decode(tok.encode(s)), s, JSON.stringify(s));
      assert.equal(tok.decode(tok.encode(s, { specialsAsText: true })), s, JSON.stringify(s));
    }
    // bytes that are not whole UTF-8 decode to replacement characters, as TextDecoder does
    assert.equal(tok.decode([byte(0xf0), byte(0x9f), 6, byte(0xab)]), "\ufffdh\ufffd");
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
    assert.equal(shake.vocabSize, chars + 256 + 4);
    assert.equal(shake.decode(shake.encode(big)), big);
  });

  test("without byte fallback (folders made before it), an unknown character is an error, or dropped when asked", () => {
    const old = CharTokenizer.fromText(text, [], { byteFallback: false });
    assert.throws(() => old.encode("hellx"), {
      name: "MinigptError",
      message: /character "x" \(U\+0078\) is not in this model's character vocabulary: the model was trained on a different text/,
    });
    const dropped: string[] = [];
    assert.deepEqual(old.encode("hëx😀", { onUnknown: (c) => dropped.push(c) }), [6, 12]);
    assert.deepEqual(dropped, ["ë", "x"]);
    assert.deepEqual(old.unknownPieces("hëx😀xë<|end|>"), ["ë", "x"]);
    assert.deepEqual(tok.unknownPieces("hëx😀xë<|end|>"), ["ë", "x"]);
    assert.deepEqual(tok.unknownPieces("<|end|>", { specialsAsText: true }), ["<", "|", "n", ">"]);
    const grown = tok.withPieces(["ë", "x"]);
    assert.deepEqual(grown.encode("hëx<|end|>"), [6, tok.vocabSize, tok.vocabSize + 1, tok.specialTokenId("<|end|>")]);
    assert.equal(grown.decode(grown.encode("hëx+")), "hëx+");
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
    const samples = [
      "First Citizen:\nBefore we proceed",
      "é😀 ok\r\n",
      "<|user|>hi<|end|><|assistant|>yo<|end|><|endoftext|>",
      // characters it never saw: byte fallback
      "2+2=4 {ë} 🙂 日本 \u0000",
      ...NASTY,
      ...randomStrings(6, 200, 40),
    ];
    // Random strings over the vocabulary itself, special tokens included.
    const rng = new Rng(5);
    for (let i = 0; i < 300; i++) {
      const ids = Array.from({ length: rng.int(60) }, () => rng.int(shake.vocabSize));
      samples.push(shake.decode(ids));
    }
    for (const s of samples) {
      // Differences of that library, not of the file: its ByteFallback decoder drops a byte order
      // mark (Hugging Face's Rust one keeps it, as we do), and it encodes a lone surrogate as
      // U+FFFD where we write WTF-8 (so that decode(encode(s)) === s for every JavaScript string).
      if (s.includes("\ufeff") || /\p{Cs}/u.test(s)) continue;
      const ids = shake.encode(s);
      assert.deepEqual(theirs.encode(s, { add_special_tokens: false }).ids, ids, JSON.stringify(s));
      if (ids.length > 0) assert.equal(theirs.decode(ids), shake.decode(ids), JSON.stringify(s));
    }
    // any order of byte tokens, whole UTF-8 or not (a model can sample them so): the same text
    const bytes = shake.encode("\u0000")[0] as number;
    for (let i = 0; i < 300; i++) {
      const ids = Array.from({ length: 1 + rng.int(12) }, () => (rng.random() < 0.8 ? bytes + rng.int(256) : rng.int(shake.vocabSize)));
      assert.equal(theirs.decode(ids), shake.decode(ids), JSON.stringify(ids));
    }
    // a folder made before byte fallback still writes the same ids and text there
    const old = CharTokenizer.fromText(`${big}é😀\r`, [], { byteFallback: false });
    const theirsOld = hf(old);
    for (const s of samples.slice(0, 3)) assert.deepEqual(theirsOld.encode(s, { add_special_tokens: false }).ids, old.encode(s));
  });

  test("its tokenizer.json reads back as the same tokenizer", () => {
    const back = tokenizerFromHuggingFaceJson(JSON.parse(JSON.stringify(tok.toHuggingFaceJson())));
    assert.equal(back.kind, "char");
    assert.equal(back.vocabSize, tok.vocabSize);
    assert.deepEqual(back.specialTokens, tok.specialTokens);
    assert.deepEqual(back.encode("hello<|end|> 😀"), tok.encode("hello<|end|> 😀"));
    assert.deepEqual(back.encode("2+2 ë"), tok.encode("2+2 ë"));
    const old = CharTokenizer.fromText("hello", [], { byteFallback: false });
    const oldBack = tokenizerFromHuggingFaceJson(JSON.parse(JSON.stringify(old.toHuggingFaceJson())));
    assert.equal(oldBack.vocabSize, old.vocabSize);
    assert.throws(() => oldBack.encode("+"), { name: "MinigptError", message: /"\+"/ });
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

  test("an unknown word is left out when asked; a fine-tune can add it", () => {
    const dropped: string[] = [];
    assert.deepEqual(tok.encode("1 hello 2 100", { onUnknown: (w) => dropped.push(w) }), [1, 2]);
    assert.deepEqual(dropped, ["hello", "100"]);
    const grown = tok.withPieces(["hello"]);
    assert.deepEqual(grown.encode("1 hello<|end|>"), [1, 104, 103]);
    assert.equal(grown.decode([1, 104]), "1 hello");
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
