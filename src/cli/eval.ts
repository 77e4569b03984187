import { type EvalResult, evaluateCounting, evaluateIds, loadModelFolder, loadTextSource } from "../index.js";
import { backendFlags } from "./common.js";
import { type CommandSpec, parseFlags } from "./flags.js";

export const evalSpec: CommandSpec = {
  name: "eval",
  summary: "loss, perplexity and bits per byte of a model on a text",
  usage: "minigpt eval --model DIR --data FILE|FOLDER|moby-dick|counting [--json]",
  flags: [
    { name: "model", type: "string", default: "out", help: "model folder" },
    { name: "data", type: "string", default: "moby-dick", help: "text to evaluate on (a file, folder, or built-in name)" },
    { name: "json", type: "bool", default: false, help: 'print {"loss","perplexity","tokens","bits_per_byte"} as JSON' },
    { name: "specials-as-text", type: "bool", default: false, help: "treat <|...|> strings in the text as plain text" },
    ...backendFlags,
  ],
  examples: ["minigpt eval --model out --data ../shared/data/tinyshakespeare/input.txt --json"],
};

export async function runEval(argv: readonly string[]): Promise<number> {
  const f = parseFlags(evalSpec, argv);
  const { model, tokenizer } = loadModelFolder(f.string("model"));
  let result: EvalResult;
  if (f.string("data") === "counting") {
    result = evaluateCounting(model);
  } else {
    const { text } = loadTextSource(f.string("data"));
    const ids = Int32Array.from(tokenizer.encode(text, { specialsAsText: f.bool("specials-as-text") }));
    result = evaluateIds(model, ids, new TextEncoder().encode(text).length);
  }
  if (f.bool("json")) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    process.stdout.write(
      `loss ${result.loss.toFixed(4)}  perplexity ${result.perplexity.toFixed(2)}  bits/byte ${result.bits_per_byte.toFixed(4)}  over ${result.tokens.toLocaleString("en-US")} predicted tokens` +
        (result.pattern_accuracy !== undefined ? `  pattern accuracy ${(result.pattern_accuracy * 100).toFixed(1)}%` : "") +
        "\n",
    );
  }
  return 0;
}
