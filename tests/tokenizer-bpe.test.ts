import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import {
  type BpeMerge,
  createTokenizer,
  gpt2Tokenizer,
  pretokenize,
  tokenizerConfigJson,
  tokenizerFromHuggingFaceJson,
  trainBpe,
} from "../src/tokenizer/index.js";
import { NASTY, randomCodeUnits, randomStrings, shakespeare } from "./tokenizer-helpers.js";

const SPECIALS = ["<|endoftext|>", "<|pad|>", "<|user|>", "<|assistant|>", "<|end|>"];

/**
 * Textbook BPE training with a full recount of every pair before each merge: slow, obviously
 * right, and an independent check of the incremental trainer's bookkeeping.
 */
function referenceTrain(text: string, numMerges: number): { merges: BpeMerge[]; pieces: string[] } {
  const counts = new Map<string, number>();
  for (const part of text.split(/<\|endoftext\|>|<\|pad\|>|<\|user\|>|<\|assistant\|>|<\|end\|>/)) {
    for (const w of pretokenize(part)) counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  const words = [...counts].map(([w, c]) => ({
    ids: [...new TextEncoder().encode(w)],
    c,
  }));
  const pieces = Array.from({ length: 256 }, (_, b) => String.fromCharCode(b));
  const merges: BpeMerge[] = [];
  for (let step = 0; step < numMerges; step++) {
    const pairs = new Map<string, number>();
    for (const { ids, c } of words) {
      for (let i = 0; i + 1 < ids.length; i++) {
        const k = `${ids[i]},${ids[i + 1]}`;
        pairs.set(k, (pairs.get(k) ?? 0) + c);
      }
    }
    let best: [number, number] | undefined;
    let bestCount = 0;
    for (const [k, c] of pairs) {
      const [a, b] = k.split(",").map(Number) as [number, number];
      if (c > bestCount || (c === bestCount && best && (a < best[0] || (a === best[0] && b < best[1])))) {
        best = [a, b];
        bestCount = c;
      }
    }
    if (!best) break;
    const [a, b] = best;
    const joined = (pieces[a] as string) + (pieces[b] as string);
    let merged = pieces.indexOf(joined);
    if (merged < 0) {
      merged = pieces.length;
      pieces.push(joined);
    }
    merges.push([a, b, merged]);
    for (const w of words) {
      const out: number[] = [];
      for (let i = 0; i < w.ids.length; i++) {
        if (w.ids[i] === a && w.ids[i + 1] === b && i + 1 < w.ids.length) {
          out.push(merged);
          i++;
        } else out.push(w.ids[i] as number);
      }
      w.ids = out;
    }
  }
  return { merges, pieces };
}

const text = shakespeare();
const small = text.slice(0, 20_000);

describe("BPE trainer", () => {
  test("learns the same merges as a full-recount reference trainer", () => {
    const sample = `${small}<|endoftext|>aaaaaaa bbbbbbb ${"ab".repeat(40)}`;
    const tok = trainBpe(sample, { vocabSize: 256 + 5 + 300 });
    const ref = referenceTrain(sample, tok.spec.merges.length);
    assert.equal(tok.spec.merges.length, ref.merges.length);
    assert.ok(tok.spec.merges.length >= 300);
    assert.deepEqual(tok.spec.merges, ref.merges);
  });

  test("reaches the requested vocabulary with the special tokens at the end", () => {
    const tok = trainBpe(text.slice(0, 200_000), {
      vocabSize: 1000,
      extraSpecials: ["<|tool|>"],
    });
    assert.equal(tok.vocabSize, 1000);
    assert.deepEqual(tok.specialTokens, [...SPECIALS, "<|tool|>"]);
    assert.equal(tok.specialTokenId("<|endoftext|>"), 994);
    assert.equal(tok.specialTokenId("<|tool|>"), 999);
    assert.equal(tok.kind, "bpe");
  });

  test("a tiny text stops early instead of inventing merges", () => {
    // "abab": merge a+b, then ab+ab, then no pair is left.
    const tok = trainBpe("abab", { vocabSize: 1000 });
    assert.equal(tok.vocabSize, 256 + 2 + 5);
    assert.deepEqual(tok.encode("abab"), [257]);
    assert.deepEqual(tok.encode("ab"), [256]);
  });

  test("special tokens are never merged with text and never split", () => {
    const sample = "<|user|>hi<|end|><|assistant|>hello<|end|>".repeat(200);
    const tok = trainBpe(sample, { vocabSize: 400 });
    for (let id = 0; id < tok.vocabSize; id++) {
      if (tok.specialTokens.includes(tok.tokenString(id))) continue;
      assert.ok(!tok.tokenString(id).includes("<|"), `token ${id} ${JSON.stringify(tok.tokenString(id))} swallowed a special`);
    }
    const user = tok.specialTokenId("<|user|>") as number;
    const end = tok.specialTokenId("<|end|>") as number;
    const ids = tok.encode("<|user|>hi<|end|>");
    assert.equal(ids[0], user);
    assert.equal(ids[ids.length - 1], end);
    assert.ok(tok.encode("<|user|>", { specialsAsText: true }).length > 1);
  });

  test("refuses a vocabulary too small for the bytes and special tokens", () => {
    assert.throws(() => trainBpe(small, { vocabSize: 260 }), {
      name: "MinigptError",
      message: /at least 261/,
    });
    assert.throws(() => trainBpe(small, { vocabSize: 4096, extraSpecials: [""] }), { name: "MinigptError" });
  });

  test("is deterministic", () => {
    const a = trainBpe(small, { vocabSize: 500 });
    const b = trainBpe(small, { vocabSize: 500 });
    assert.deepEqual(a.spec.merges, b.spec.merges);
  });
});

describe("trained BPE encoding", () => {
  const tok = trainBpe(text.slice(0, 300_000), { vocabSize: 2048 });

  test("round-trips every string, including lone surrogates and text it never saw", () => {
    for (const s of [...NASTY, ...randomStrings(11, 1000, 80), ...randomCodeUnits(12, 500, 40)]) {
      assert.equal(tok.decode(tok.encode(s)), s, JSON.stringify(s));
      assert.equal(tok.decode(tok.encode(s, { specialsAsText: true })), s, JSON.stringify(s));
    }
  });

  test("frequent words of the training text become single tokens", () => {
    const counts = new Map<string, number>();
    for (const w of pretokenize(text.slice(0, 300_000))) counts.set(w, (counts.get(w) ?? 0) + 1);
    const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 50);
    for (const [w] of top) assert.equal(tok.encode(w).length, 1, JSON.stringify(w));
    assert.ok(text.length / tok.encode(text).length > 2.5, "a 2k vocabulary packs over 2.5 characters of Shakespeare per token");
  });

  test("token bytes add up to the UTF-8 bytes of the text (bits-per-byte)", () => {
    const s = "O Romeo, Romeo! wherefore art thou Romeo? 😀";
    const total = tok.encode(s).reduce((n, id) => n + tok.tokenBytes(id).length, 0);
    assert.equal(total, new TextEncoder().encode(s).length);
  });
});

/** The fields of an exported byte-level tokenizer.json that the error tests break. */
interface HfBpeJson {
  pre_tokenizer: unknown;
  normalizer: unknown;
  model: { type: string; merges: unknown[]; vocab: Record<string, number> };
}

/** The strings Hugging Face's JavaScript ByteLevel pre-tokenizer splits like GPT-2 does. */
const hfComparable = NASTY.filter((s) => !s.includes("\ufeff"));

function hf(json: object, tok: Parameters<typeof tokenizerConfigJson>[0]) {
  return new HfTokenizer(JSON.parse(JSON.stringify(json)), tokenizerConfigJson(tok));
}

describe("Hugging Face tokenizer.json for byte-level BPE", () => {
  const tok = trainBpe(text.slice(0, 300_000), { vocabSize: 2048 });
  const json = tok.toHuggingFaceJson();

  test("an exported trained tokenizer loads in @huggingface/tokenizers with our ids and text", () => {
    const theirs = hf(json, tok);
    for (const s of [...hfComparable, text.slice(500_000, 520_000), ...randomStrings(21, 300, 60)]) {
      const ids = tok.encode(s);
      assert.deepEqual(theirs.encode(s, { add_special_tokens: false }).ids, ids, JSON.stringify(s));
      if (ids.length > 0) assert.equal(theirs.decode(ids), s, JSON.stringify(s));
    }
  });

  test("the exported GPT-2 tokenizer loads there with OpenAI's ids", () => {
    const gpt2 = gpt2Tokenizer();
    const theirs = hf(gpt2.toHuggingFaceJson(), gpt2);
    for (const s of [...hfComparable, text.slice(0, 20_000)]) {
      assert.deepEqual(theirs.encode(s, { add_special_tokens: false }).ids, gpt2.encode(s), JSON.stringify(s));
    }
  });

  test("our export reads back as the same tokenizer, with merges as strings or as pairs", () => {
    const back = tokenizerFromHuggingFaceJson(JSON.parse(JSON.stringify(json)));
    const asPairs = JSON.parse(JSON.stringify(json));
    asPairs.model.merges = asPairs.model.merges.map((m: string) => m.split(" "));
    const backPairs = tokenizerFromHuggingFaceJson(asPairs);
    assert.equal(back.kind, "bpe");
    assert.equal(back.vocabSize, tok.vocabSize);
    assert.deepEqual(back.specialTokens, tok.specialTokens);
    for (const s of [...NASTY, text.slice(0, 20_000)]) {
      assert.deepEqual(back.encode(s), tok.encode(s), JSON.stringify(s));
      assert.deepEqual(backPairs.encode(s), tok.encode(s), JSON.stringify(s));
    }
  });

  test("the GPT-2 export reads back as gpt2 with the same ids", () => {
    const gpt2 = gpt2Tokenizer();
    const back = tokenizerFromHuggingFaceJson(JSON.parse(JSON.stringify(gpt2.toHuggingFaceJson())));
    assert.equal(back.kind, "gpt2");
    for (const s of NASTY) assert.deepEqual(back.encode(s), gpt2.encode(s), JSON.stringify(s));
  });

  test("unsupported or broken tokenizer.json files give clear errors", () => {
    const bad = (patch: (j: HfBpeJson) => void, message: RegExp) => {
      const j = JSON.parse(JSON.stringify(json));
      patch(j);
      assert.throws(() => tokenizerFromHuggingFaceJson(j), {
        name: "MinigptError",
        message,
      });
    };
    assert.throws(() => tokenizerFromHuggingFaceJson("nope"), {
      name: "MinigptError",
      message: /model/,
    });
    bad((j) => {
      j.pre_tokenizer = { type: "Metaspace" };
    }, /pre-tokenizer Metaspace/);
    bad((j) => {
      j.normalizer = { type: "NFC" };
    }, /normalizer NFC/);
    bad((j) => {
      j.model.type = "Unigram";
    }, /model type Unigram/);
    bad((j) => j.model.merges.push("zzz qqq"), /missing from the vocab/);
    bad((j) => j.model.merges.push(42), /merge \d+ must be/);
    bad((j) => delete j.model.vocab.Ġ, /no token has id|no token for byte/);
  });

  test("tokenizer_config.json names the special tokens", () => {
    const config = tokenizerConfigJson(tok, { modelMaxLength: 256 }) as Record<string, unknown>;
    assert.equal(config.eos_token, "<|endoftext|>");
    assert.equal(config.pad_token, "<|pad|>");
    assert.equal(config.model_max_length, 256);
    assert.deepEqual(Object.keys(config.added_tokens_decoder as object).map(Number), [2043, 2044, 2045, 2046, 2047]);
  });
});

describe("createTokenizer", () => {
  test("builds each kind", () => {
    assert.equal(createTokenizer("char", "abc").kind, "char");
    assert.equal(createTokenizer("bpe", small, { vocabSize: 300 }).vocabSize, 300);
    assert.equal(createTokenizer("gpt2", "").vocabSize, 50257);
    assert.throws(() => createTokenizer("gpt2", "", { extraSpecials: ["<|x|>"] }), { name: "MinigptError" });
    assert.throws(() => createTokenizer("nope" as "char", "abc"), {
      name: "MinigptError",
      message: /unknown tokenizer/,
    });
  });
});
