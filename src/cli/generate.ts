import { fail, generateTokens, loadModelFolder, startPrompt, TextStreamer, unseenSpecialIds } from "../index.js";
import { backendFlags, modelFlag, samplingFlags } from "./common.js";
import { explainGenerate, explainLevelFlag } from "./explain.js";
import { type CommandSpec, parseFlags } from "./flags.js";

export const generateSpec: CommandSpec = {
  name: "generate",
  summary: "sample text from a trained model, streamed token by token",
  usage: 'minigpt generate --model DIR [--prompt "text"] [flags]',
  flags: [
    modelFlag("model folder written by minigpt train"),
    { name: "prompt", type: "string", default: "\n", help: "text to continue" },
    ...samplingFlags,
    {
      name: "stop",
      type: "string",
      default: "",
      help: "stop when the generated text contains this string (special tokens like <|end|> stop as tokens)",
    },
    {
      name: "no-cache",
      type: "bool",
      default: false,
      help: "recompute the whole context for every token instead of using the KV cache (slower; for comparison)",
    },
    { name: "specials-as-text", type: "bool", default: false, help: "treat <|...|> strings in the prompt as plain text" },
    {
      name: "explain",
      type: "bool",
      default: false,
      help: "learning mode: show each stage of the forward pass, every head's attention and the top-5 next tokens at each step",
    },
    explainLevelFlag,
    ...backendFlags,
  ],
  examples: ['minigpt generate --model out --prompt "Call me" --max-new-tokens 300 --temperature 0.8 --top-k 40'],
};

export async function runGenerate(argv: readonly string[]): Promise<number> {
  const f = parseFlags(generateSpec, argv);
  const folder = loadModelFolder(f.string("model"));
  const { model, tokenizer } = folder;
  const suppressIds = unseenSpecialIds(folder);
  // the default prompt, a newline, is not in every vocabulary (a character model of a single line)
  const promptText = f.string("prompt") === "\n" ? startPrompt(tokenizer).text : f.string("prompt");
  const prompt = tokenizer.encode(promptText, { specialsAsText: f.bool("specials-as-text") });
  if (prompt.length === 0) fail('the prompt encodes to no tokens; give some text, e.g. --prompt "The"');
  const stopText = f.string("stop");
  const stopIds: number[] = [];
  for (const s of tokenizer.specialTokens) {
    if (s === stopText || s === "<|endoftext|>") {
      const id = tokenizer.specialTokenId(s);
      if (id !== undefined) stopIds.push(id);
    }
  }
  if (f.bool("explain")) {
    const o = {
      maxNewTokens: f.int("max-new-tokens"),
      temperature: f.float("temperature"),
      topK: f.int("top-k"),
      topP: f.float("top-p"),
      seed: f.int("seed"),
      stopIds,
      suppressIds,
    };
    explainGenerate(model, tokenizer, prompt, o, f.string("explain-level") as "brief" | "full", (s) => process.stdout.write(s));
    return 0;
  }
  const streamer = new TextStreamer(tokenizer, prompt);
  process.stdout.write(promptText);
  for (const id of generateTokens(model, prompt, {
    maxNewTokens: f.int("max-new-tokens"),
    temperature: f.float("temperature"),
    topK: f.int("top-k"),
    topP: f.float("top-p"),
    seed: f.int("seed"),
    cache: !f.bool("no-cache"),
    stopIds,
    suppressIds,
  })) {
    process.stdout.write(streamer.push(id));
    if (stopText && !tokenizer.specialTokens.includes(stopText) && streamer.text.includes(stopText)) break;
  }
  process.stdout.write("\n");
  return 0;
}
