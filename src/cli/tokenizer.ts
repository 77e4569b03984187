import { join } from "node:path";
import {
  createTokenizer,
  describeFolderSource,
  fail,
  findTextFiles,
  isModelFolder,
  loadTextSource,
  makeFolder,
  saveTokenizer,
  sourceBytes,
  TOKEN_CACHE_MIN_BYTES,
  type Tokenizer,
  tokenizerFromTextFiles,
  withFs,
} from "../index.js";
import { BPE_MIN_VOCAB } from "./common.js";
import { type CommandSpec, parseFlags } from "./flags.js";
import { checkOutputFiles, overwriteFlag } from "./output.js";
import { ProgressLine, tokenizeProgressLine } from "./progress.js";

export const tokenizerSpec: CommandSpec = {
  name: "tokenizer",
  summary: "train a byte-level BPE tokenizer on your text and save it as Hugging Face tokenizer.json",
  usage: "minigpt tokenizer train --data FILE|FOLDER|moby-dick --vocab-size N --out DIR",
  maxPositionals: 1,
  flags: [
    {
      name: "data",
      type: "string",
      default: "moby-dick",
      help: "text to learn merges from (a file, a folder of .txt, or a built-in name)",
    },
    {
      name: "vocab-size",
      type: "int",
      default: 4096,
      min: BPE_MIN_VOCAB,
      help: "vocabulary size: 256 bytes + special tokens (5, and each of --specials) + learned merges",
    },
    { name: "out", type: "string", default: "tokenizer", help: "folder to write tokenizer.json and tokenizer_config.json into" },
    overwriteFlag("a tokenizer in --out"),
    {
      name: "specials",
      type: "string",
      default: "",
      help: "extra special tokens, comma-separated (besides <|endoftext|>, <|pad|>, <|user|>, <|assistant|>, <|end|>)",
    },
  ],
  examples: ["minigpt tokenizer train --data notes/ --vocab-size 4096 --out notes-tokenizer"],
};

export async function runTokenizer(argv: readonly string[]): Promise<number> {
  const f = parseFlags(tokenizerSpec, argv);
  if (f.positionals[0] !== "train") fail('say what to do: "minigpt tokenizer train --data ... --vocab-size ... --out DIR"');
  const out = f.string("out");
  // a model's tokenizer belongs to its weights: replacing it would break the model for good
  if (isModelFolder(out)) fail(`${out} holds a model, whose tokenizer must stay the one it was trained with; choose another --out`);
  checkOutputFiles([join(out, "tokenizer.json"), join(out, "tokenizer_config.json")], "out", f.bool("overwrite"));
  const found = findTextFiles(f.string("data"));
  const files = describeFolderSource(found);
  if (files) console.error(`files: ${files}`);
  const extra = f
    .string("specials")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const options = { vocabSize: f.int("vocab-size"), extraSpecials: extra };
  const bytes = sourceBytes(found.files);
  const t0 = performance.now();
  let tok: Tokenizer;
  // what the tokenizer does to the text: measured on a text read whole; a big one is never one string
  let measured = "";
  if (bytes >= TOKEN_CACHE_MIN_BYTES) {
    // as train reads a big text: its word counts in chunks, on every core, with a progress line
    const progress = new ProgressLine();
    tok = tokenizerFromTextFiles({
      source: found,
      kind: "bpe",
      ...options,
      onProgress: (p) => progress.update(tokenizeProgressLine(p), p.done),
    });
  } else {
    const { text } = loadTextSource(f.string("data"));
    tok = createTokenizer("bpe", text, options);
    const ids = tok.encode(text);
    measured = `: ${ids.length.toLocaleString("en-US")} tokens, ${(bytes / ids.length).toFixed(2)} bytes/token`;
  }
  const seconds = (performance.now() - t0) / 1000;
  withFs(`cannot create ${out}`, () => makeFolder(out));
  saveTokenizer(out, tok);
  console.log(
    `trained a ${tok.vocabSize}-token byte-level BPE on ${found.name} (${bytes.toLocaleString("en-US")} bytes) in ${seconds.toFixed(2)}s${measured}; wrote ${out}/tokenizer.json`,
  );
  const asked = f.int("vocab-size");
  if (tok.vocabSize < asked)
    console.error(
      `note: ${tok.vocabSize} tokens, not --vocab-size ${asked}: merging stopped when every word of the text had become a single token; more text gives more`,
    );
  return 0;
}
