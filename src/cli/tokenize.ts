import { statSync } from "node:fs";
import { basename } from "node:path";
import {
  arrayStream,
  fail,
  gpt2Tokenizer,
  hasTokenizer,
  loadModelTokenizer,
  loadTokenizer,
  openTokenCache,
  readTextFile,
  TOKEN_CACHE_MIN_BYTES,
  type Tokenizer,
  type TokenStream,
  tokenizerFolder,
} from "../index.js";
import { modelFlag } from "./common.js";
import { type CommandSpec, parseFlags } from "./flags.js";
import { ProgressLine, tokenizeProgressLine } from "./progress.js";
import { encodeUserText } from "./user-text.js";

export const tokenizeSpec: CommandSpec = {
  name: "tokenize",
  summary: "show how a text is cut into tokens: ids, pieces and byte counts",
  usage: 'minigpt tokenize (--model DIR | --tokenizer gpt2|DIR) ("text" | --file F) [--json]',
  maxPositionals: 1,
  // the nearest flag to --text is --specials-as-text, which would mislead
  takenOtherwise: Object.fromEntries(
    ["text", "prompt", "input", "string"].map((name) => [
      name,
      'the text goes without a flag (minigpt tokenize --tokenizer gpt2 "Hello"), or give --file F',
    ]),
  ),
  flags: [
    modelFlag("use the tokenizer of this model folder", ""),
    {
      name: "tokenizer",
      type: "string",
      default: "",
      help: "use this tokenizer instead of a model's: gpt2 (GPT-2's, built in) or a folder with a tokenizer.json (from minigpt tokenizer train; that file itself too) or Hugging Face's vocab.json and merges.txt",
    },
    {
      name: "file",
      type: "string",
      default: "",
      help: "read the text from this file (8 MiB or more: through the token cache, see README)",
    },
    { name: "json", type: "bool", default: false, help: 'print {"ids":[...]} only' },
    { name: "specials-as-text", type: "bool", default: false, help: "treat <|...|> strings as plain text" },
  ],
  examples: [
    'minigpt tokenize --tokenizer gpt2 "Hello world"',
    'minigpt tokenize --tokenizer my-tokenizer "Hello world"   # a folder from minigpt tokenizer train',
    "minigpt tokenize --model out --file notes.txt --json",
  ],
};

export async function runTokenize(argv: readonly string[]): Promise<number> {
  const f = parseFlags(tokenizeSpec, argv);
  let tokenizer: Tokenizer;
  const named = f.string("tokenizer");
  if (named && f.has("model")) fail("give --model DIR or --tokenizer, not both");
  if (named === "gpt2") tokenizer = gpt2Tokenizer();
  else if (named) {
    const folder = tokenizerFolder(named);
    if (!hasTokenizer(folder))
      fail(
        `--tokenizer ${named} is neither gpt2 nor a folder with a tokenizer.json (or Hugging Face's vocab.json and merges.txt; make one with: minigpt tokenizer train --out DIR)`,
      );
    tokenizer = loadTokenizer(folder);
  } else if (f.string("model")) tokenizer = loadModelTokenizer(f.string("model"));
  else return fail("say which tokenizer: --model DIR (a trained model's), --tokenizer gpt2 or --tokenizer DIR (a tokenizer folder)");
  const specialsAsText = f.bool("specials-as-text");
  const file = f.string("file");
  let text: string;
  if (file) {
    if (fileSize(file) >= TOKEN_CACHE_MIN_BYTES) return tokenizeBigFile(file, tokenizer, specialsAsText, f.bool("json"));
    text = readTextFile(file);
  } else if (f.positionals.length === 1) text = f.positionals[0] as string;
  else return fail('give the text to tokenize, e.g. minigpt tokenize --tokenizer gpt2 "Hello", or --file F');
  const ids = Int32Array.from(encodeUserText(tokenizer, text, { specialsAsText }));
  const bytes = new TextEncoder().encode(text).length;
  await printIds(tokenizer, arrayStream(ids), { characters: text.length, bytes, json: f.bool("json") });
  return 0;
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0; // readTextFile says what is wrong
  }
}

/**
 * A file too big for one string goes through the token cache, as train's data does: tokenized in
 * chunks once (a progress line on stderr), then printed from the cache a window at a time.
 */
async function tokenizeBigFile(file: string, tokenizer: Tokenizer, specialsAsText: boolean, json: boolean): Promise<number> {
  const progress = new ProgressLine();
  const cache = openTokenCache({
    source: { name: basename(file), files: [file], what: file },
    tokenizer,
    kind: "char",
    vocabSize: tokenizer.vocabSize,
    specialsAsText,
    onProgress: (p) => progress.update(tokenizeProgressLine(p), p.done),
    onMessage: (m) => {
      progress.break();
      console.error(m);
    },
  });
  try {
    await printIds(tokenizer, cache.tokens, { characters: cache.header.characters as number, bytes: cache.bytes, json });
  } finally {
    cache.close();
  }
  return 0;
}

/** ids read this many at a time when printing */
const WINDOW = 1 << 16;

/** The ids as {"ids":[...]} (json) or a summary line and one line per token; waits when stdout is full. */
async function printIds(tokenizer: Tokenizer, ids: TokenStream, o: { characters: number; bytes: number; json: boolean }): Promise<void> {
  const write = (s: string): Promise<void> | undefined =>
    process.stdout.write(s) ? undefined : new Promise((done) => process.stdout.once("drain", done));
  if (!o.json) {
    await write(
      `${ids.length} tokens for ${o.characters} characters (${o.bytes} bytes, ${(o.bytes / Math.max(1, ids.length)).toFixed(2)} bytes/token), ${tokenizer.kind} tokenizer of ${tokenizer.vocabSize}\n`,
    );
    await write(`${"id".padStart(7)}  ${"bytes".padStart(5)}  piece\n`);
  } else await write('{"ids":[');
  const window = new Int32Array(WINDOW);
  for (let start = 0; start < ids.length; start += WINDOW) {
    const n = Math.min(WINDOW, ids.length - start);
    ids.read(start, start + n, window, 0);
    let out = "";
    for (let i = 0; i < n; i++) {
      const id = window[i] as number;
      if (o.json) out += start + i > 0 ? `,${id}` : `${id}`;
      else
        out += `${String(id).padStart(7)}  ${String(tokenizer.tokenBytes(id).length).padStart(5)}  ${JSON.stringify(tokenizer.tokenString(id))}\n`;
    }
    await write(out);
  }
  if (o.json) await write("]}\n");
}
