import { fail, MinigptError } from "../errors.js";
import { type BpeMerge, ByteLevelBpe } from "./bpe.js";
import { unicodeToBytes } from "./bytes.js";
import { CharTokenizer } from "./char.js";
import type { Tokenizer } from "./types.js";
import { WordTokenizer } from "./word.js";

type Json = Record<string, unknown>;

function isObject(x: unknown): x is Json {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function typeOf(x: unknown): string | undefined {
  return isObject(x) && typeof x.type === "string" ? x.type : undefined;
}

/** Token strings by id, from model.vocab and added_tokens; ids must cover 0..n-1. */
function readVocab(model: Json, added: Map<string, number>): string[] {
  if (!isObject(model.vocab)) fail("model.vocab must be an object mapping tokens to ids");
  const pieces: string[] = [];
  const place = (token: string, id: unknown) => {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0) fail(`token ${JSON.stringify(token)} has invalid id ${String(id)}`);
    const there = pieces[id];
    if (there !== undefined && there !== token) fail(`id ${id} is used by both ${JSON.stringify(there)} and ${JSON.stringify(token)}`);
    pieces[id] = token;
  };
  for (const [token, id] of Object.entries(model.vocab)) place(token, id);
  for (const [token, id] of added) place(token, id);
  for (let id = 0; id < pieces.length; id++) {
    if (pieces[id] === undefined) fail(`no token has id ${id}; ids must run from 0 to ${pieces.length - 1}`);
  }
  return pieces;
}

function readAddedTokens(json: Json): Map<string, number> {
  const added = new Map<string, number>();
  // absent in some hand-made files; null or another type is damage (the specials would become text)
  const list = json.added_tokens === undefined ? [] : json.added_tokens;
  if (!Array.isArray(list)) fail("added_tokens must be an array");
  for (const t of list) {
    if (!isObject(t) || typeof t.content !== "string" || typeof t.id !== "number") {
      fail("every added_tokens entry needs a string content and a numeric id");
    }
    added.set(t.content, t.id);
  }
  return added;
}

function readMerge(m: unknown, i: number): [string, string] {
  if (typeof m === "string") {
    const cut = m.indexOf(" ");
    if (cut > 0 && cut === m.lastIndexOf(" ")) return [m.slice(0, cut), m.slice(cut + 1)];
  } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") {
    return [m[0], m[1]];
  }
  return fail(`merge ${i} must be "left right" or ["left", "right"], got ${JSON.stringify(m)}`);
}

/** the decoder of byte fallback: {"type":"Sequence","decoders":[{"type":"ByteFallback"},{"type":"Fuse"}]} */
function isByteFallbackDecoder(decoder: unknown): boolean {
  if (typeOf(decoder) !== "Sequence" || !isObject(decoder) || !Array.isArray(decoder.decoders)) return false;
  return decoder.decoders.map(typeOf).join() === "ByteFallback,Fuse";
}

/**
 * Reads a Hugging Face tokenizer.json: minigpt's character form (BPE without merges or
 * pre-tokenizer, Fuse decoder, with or without byte fallback), a WordLevel vocabulary split on
 * whitespace, or a GPT-2-style byte-level BPE (merges as "a b" strings or as pairs). Anything else is refused with a reason,
 * since silently encoding differently from the file's owner would corrupt a model's input.
 * Whatever is wrong with it (a missing field, a wrong type, a merge that does not parse, a
 * vocabulary the tokenizer cannot be built from) is one line that begins with `file`.
 */
export function tokenizerFromHuggingFaceJson(json: unknown, file = "tokenizer.json"): Tokenizer {
  try {
    return readTokenizerJson(json);
  } catch (err) {
    if (err instanceof MinigptError) fail(`${file}: ${err.message}`);
    throw err;
  }
}

/** a field that must be a boolean when it is there */
function checkBoolean(object: Json, key: string, where: string): void {
  if (object[key] !== undefined && object[key] !== null && typeof object[key] !== "boolean")
    fail(`${where}.${key} must be true or false, got ${JSON.stringify(object[key])}`);
}

function readTokenizerJson(json: unknown): Tokenizer {
  if (!isObject(json) || !isObject(json.model)) fail('expected an object with a "model" field');
  const model = json.model;
  if (model.type !== undefined && typeof model.type !== "string") fail(`model.type must be a string, got ${JSON.stringify(model.type)}`);
  for (const key of ["byte_fallback", "ignore_merges", "fuse_unk"]) checkBoolean(model, key, "model");
  if (json.normalizer !== null && json.normalizer !== undefined) {
    fail(`normalizer ${typeOf(json.normalizer) ?? "?"} is not supported (minigpt reads tokenizers without a normalizer)`);
  }
  const added = readAddedTokens(json);
  const specials = [...added.keys()];
  const pre = json.pre_tokenizer ?? null;
  const modelType = typeOf(model);

  if (modelType === "WordLevel") {
    if (typeOf(pre) !== "WhitespaceSplit") fail(`a WordLevel model needs the WhitespaceSplit pre-tokenizer, got ${typeOf(pre) ?? "none"}`);
    return new WordTokenizer(readVocab(model, added), specials);
  }
  if (modelType !== "BPE" && modelType !== undefined) fail(`model type ${modelType} is not supported (minigpt reads BPE and WordLevel)`);
  const merges = model.merges ?? [];
  if (!Array.isArray(merges)) fail("model.merges must be an array");
  const mergePairs = merges.map(readMerge);

  if (pre === null && merges.length === 0) {
    const byteFallback = model.byte_fallback === true;
    if (typeOf(json.decoder) === "Fuse" && !byteFallback) return new CharTokenizer(readVocab(model, added), specials);
    if (isByteFallbackDecoder(json.decoder) && byteFallback) return new CharTokenizer(readVocab(model, added), specials, { byteFallback });
    if (byteFallback || typeOf(json.decoder) === "Fuse")
      fail(
        "a character vocabulary (BPE without merges) needs byte_fallback with the decoders ByteFallback then Fuse, or neither with Fuse alone",
      );
  }
  if (typeOf(pre) !== "ByteLevel" || !isObject(pre)) {
    fail(`pre-tokenizer ${typeOf(pre) ?? "none"} is not supported (minigpt reads GPT-2-style ByteLevel BPE)`);
  }
  if (pre.use_regex === false || pre.add_prefix_space === true) {
    fail("only the GPT-2 ByteLevel settings (use_regex true, add_prefix_space false) are supported");
  }
  if (model.continuing_subword_prefix || model.end_of_word_suffix) {
    fail("BPE with continuing_subword_prefix or end_of_word_suffix is not byte-level GPT-2 style");
  }

  const names = readVocab(model, added);
  const idOf = new Map(names.map((t, id) => [t, id]));
  const pieces = names.map((name, id) => {
    if (added.get(name) === id) return undefined;
    const bytes = unicodeToBytes(name);
    if (bytes === undefined) fail(`vocab entry ${JSON.stringify(name)} is not written in GPT-2's byte-level alphabet`);
    return bytes;
  });
  const bpeMerges: BpeMerge[] = mergePairs.map(([l, r], i) => {
    const left = idOf.get(l);
    const right = idOf.get(r);
    const merged = idOf.get(l + r);
    if (left === undefined || right === undefined || merged === undefined) {
      fail(`merge ${i} (${JSON.stringify(l)} + ${JSON.stringify(r)}) uses or makes a token missing from the vocab`);
    }
    return [left, right, merged];
  });
  const isGpt2 = names.length === 50257 && idOf.get("<|endoftext|>") === 50256 && idOf.get("Ġthe") === 262;
  return new ByteLevelBpe({
    kind: isGpt2 ? "gpt2" : "bpe",
    pieces,
    merges: bpeMerges,
    specials: added,
    ignoreMerges: model.ignore_merges === true,
  });
}

/**
 * The tokenizer.json GPT-2's fast tokenizer would write for the slow one's files (vocab.json: piece ->
 * id; merges.txt: a "#version" line, then one "left right" merge a line), so a Hugging Face folder
 * saved with either reads the same. The vocabulary's <|...|> entries are its special tokens (GPT-2's
 * <|endoftext|>).
 */
export function gpt2SlowTokenizerJson(vocab: unknown, merges: string): object {
  if (!isObject(vocab)) fail(`vocab.json must be an object of piece: id, got ${JSON.stringify(vocab).slice(0, 40)}`);
  const specials = Object.entries(vocab)
    .filter(([piece]) => /^<\|[^|]*\|>$/.test(piece))
    .map(([content, id]) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  return {
    model: { type: "BPE", vocab, merges: merges.split(/\r?\n/).filter((line) => line !== "" && !line.startsWith("#version")) },
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    decoder: { type: "ByteLevel" },
    added_tokens: specials,
  };
}

export interface TokenizerConfigOptions {
  /** The model's context length, which Hugging Face uses to truncate and warn (1024, GPT-2's, if not given). */
  modelMaxLength?: number;
}

/** tokenizer_config.json to sit next to tokenizer.json, so AutoTokenizer loads the folder. */
export function tokenizerConfigJson(tok: Tokenizer, options: TokenizerConfigOptions = {}): object {
  const decoder: Record<string, object> = {};
  for (const s of tok.specialTokens) {
    decoder[String(tok.specialTokenId(s))] = {
      content: s,
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
      special: true,
    };
  }
  const has = (s: string) => (tok.specialTokenId(s) === undefined ? null : s);
  return {
    tokenizer_class: "PreTrainedTokenizerFast",
    model_max_length: options.modelMaxLength ?? 1024,
    bos_token: has("<|endoftext|>"),
    eos_token: has("<|endoftext|>"),
    pad_token: has("<|pad|>"),
    unk_token: null,
    add_prefix_space: false,
    clean_up_tokenization_spaces: false,
    added_tokens_decoder: decoder,
    minigpt_tokenizer: tok.kind,
  };
}
