import { fail, generateTextAsync, loadModelFolder, startPrompt, unseenSpecialIds } from "../index.js";
import { deviceBackendFlags, modelFlag, samplingFlags } from "./common.js";
import { explainGenerate, explainLevelFlag } from "./explain.js";
import { type CommandSpec, parseFlags } from "./flags.js";
import { catchingCtrlC, streamUntil } from "./interrupt.js";
import { forStdout } from "./terminal-text.js";
import { encodeUserText } from "./user-text.js";

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
      help: "end the text where this string first appears, leaving it out (special tokens such as <|end|> work too)",
    },
    { name: "stop-include", type: "bool", default: false, help: "keep the --stop string at the end of the text" },
    {
      name: "num-samples",
      type: "int",
      default: 1,
      min: 1,
      help: "how many samples of the prompt, each under a --- sample k of N --- line; sample k uses --seed + k - 1, so any one can be had again alone",
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
    ...deviceBackendFlags,
  ],
  examples: ['minigpt generate --model out --prompt "Call me" --max-new-tokens 300 --temperature 0.8 --top-k 40'],
};

export async function runGenerate(argv: readonly string[]): Promise<number> {
  const f = parseFlags(generateSpec, argv);
  const folder = loadModelFolder(f.string("model"), undefined, "decode");
  const { model, tokenizer } = folder;
  const suppressIds = unseenSpecialIds(folder);
  // the default prompt, a newline, is not in every vocabulary (a character model of a single line)
  const promptText = f.string("prompt") === "\n" ? startPrompt(tokenizer).text : f.string("prompt");
  const prompt = encodeUserText(tokenizer, promptText, { specialsAsText: f.bool("specials-as-text") });
  if (prompt.length === 0) {
    // a word vocabulary is the counting task's numbers: "The" would not encode there either
    const example = tokenizer.kind === "word" ? "3 4 5" : "The";
    if (promptText === "")
      fail(`the prompt is empty: give some text, e.g. --prompt "${example}", or leave --prompt out to start a new text`);
    fail(
      `the prompt encodes to no tokens; give text the model's ${tokenizer.kind} vocabulary has, e.g. --prompt "${example}" (minigpt tokenize --model ${f.string("model")} "..." shows how a text encodes)`,
    );
  }
  const stopText = f.string("stop");
  // as an empty --prompt is: an empty string would end nothing, and silence would hide the slip
  if (f.has("stop") && stopText === "") fail('--stop is empty: give the text to end at, e.g. --stop "THE END", or leave --stop out');
  // <|endoftext|> ends every text; the --stop string ends it as text (generateText), special or not
  const eot = tokenizer.specialTokenId("<|endoftext|>");
  const stopIds = eot === undefined ? [] : [eot];
  const samples = f.int("num-samples");
  if (f.bool("explain")) {
    if (samples > 1) fail("--explain shows one sample; drop --num-samples");
    const specialStop = tokenizer.specialTokenId(stopText);
    const o = {
      maxNewTokens: f.int("max-new-tokens"),
      temperature: f.float("temperature"),
      topK: f.int("top-k"),
      topP: f.float("top-p"),
      seed: f.int("seed"),
      stopIds: specialStop === undefined ? stopIds : [...stopIds, specialStop],
      suppressIds,
    };
    await explainGenerate(model, tokenizer, prompt, o, f.string("explain-level") as "brief" | "full", (s) => process.stdout.write(s));
    return 0;
  }
  // Ctrl-C stops the text where it is, ends its line and the command (status 130, as a shell's)
  return await catchingCtrlC(async (interrupted) => {
    for (let k = 0; k < samples; k++) {
      const seed = f.int("seed") + k;
      if (samples > 1) process.stdout.write(`${k > 0 ? "\n" : ""}--- sample ${k + 1} of ${samples} (--seed ${seed}) ---\n`);
      process.stdout.write(promptText);
      const pieces = generateTextAsync(model, tokenizer, prompt, {
        maxNewTokens: f.int("max-new-tokens"),
        temperature: f.float("temperature"),
        topK: f.int("top-k"),
        topP: f.float("top-p"),
        seed,
        cache: !f.bool("no-cache"),
        stopIds,
        suppressIds,
        stop: stopText,
        includeStop: f.bool("stop-include"),
      });
      const end = await streamUntil(pieces, (piece) => process.stdout.write(forStdout(piece)), interrupted);
      process.stdout.write("\n");
      if (end === "stopped") return 130;
    }
    return 0;
  });
}
