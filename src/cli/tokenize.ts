import { fail, gpt2Tokenizer, loadTokenizer, readTextFile, type Tokenizer } from "../index.js";
import { type CommandSpec, parseFlags } from "./flags.js";
import { encodeUserText } from "./user-text.js";

export const tokenizeSpec: CommandSpec = {
  name: "tokenize",
  summary: "show how a text is cut into tokens: ids, pieces and byte counts",
  usage: 'minigpt tokenize (--model DIR | --tokenizer gpt2) ("text" | --file F) [--json]',
  maxPositionals: 1,
  flags: [
    { name: "model", type: "string", default: "", help: "use this model folder's tokenizer" },
    { name: "tokenizer", type: "string", default: "", choices: ["", "gpt2"], help: "use a built-in tokenizer instead of a model's" },
    { name: "file", type: "string", default: "", help: "read the text from this file" },
    { name: "json", type: "bool", default: false, help: 'print {"ids":[...]} only' },
    { name: "specials-as-text", type: "bool", default: false, help: "treat <|...|> strings as plain text" },
  ],
  examples: ['minigpt tokenize --tokenizer gpt2 "Hello world"', "minigpt tokenize --model out --file notes.txt --json"],
};

export async function runTokenize(argv: readonly string[]): Promise<number> {
  const f = parseFlags(tokenizeSpec, argv);
  let tokenizer: Tokenizer;
  if (f.string("tokenizer") && f.has("model")) fail("give --model DIR or --tokenizer gpt2, not both");
  if (f.string("tokenizer") === "gpt2") tokenizer = gpt2Tokenizer();
  else if (f.string("model")) tokenizer = loadTokenizer(f.string("model"));
  else return fail("say which tokenizer: --model DIR (a trained model's) or --tokenizer gpt2");
  let text: string;
  if (f.string("file")) {
    text = readTextFile(f.string("file"));
  } else if (f.positionals.length === 1) text = f.positionals[0] as string;
  else return fail('give the text to tokenize, e.g. minigpt tokenize --tokenizer gpt2 "Hello", or --file F');
  const ids = encodeUserText(tokenizer, text, { specialsAsText: f.bool("specials-as-text") });
  if (f.bool("json")) {
    process.stdout.write(`${JSON.stringify({ ids })}\n`);
    return 0;
  }
  const bytes = new TextEncoder().encode(text).length;
  process.stdout.write(
    `${ids.length} tokens for ${text.length} characters (${bytes} bytes, ${(bytes / Math.max(1, ids.length)).toFixed(2)} bytes/token), ${tokenizer.kind} tokenizer of ${tokenizer.vocabSize}\n`,
  );
  process.stdout.write(`${"id".padStart(7)}  ${"bytes".padStart(5)}  piece\n`);
  for (const id of ids) {
    process.stdout.write(
      `${String(id).padStart(7)}  ${String(tokenizer.tokenBytes(id).length).padStart(5)}  ${JSON.stringify(tokenizer.tokenString(id))}\n`,
    );
  }
  return 0;
}
