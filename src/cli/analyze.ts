import { analyzeModel, fail, formatAnalysis, loadModelFolder } from "../index.js";
import { modelFlag } from "./common.js";
import { type CommandSpec, parseFlags } from "./flags.js";

export const analyzeSpec: CommandSpec = {
  name: "analyze",
  summary:
    "parameters, memory and FLOPs of a model, computed from its tensors; its files' sizes, what training it writes, and its training history",
  usage: "minigpt analyze --model DIR [--json] [--batch-size B] [--block-size T]",
  flags: [
    modelFlag(),
    { name: "json", type: "bool", default: false, help: "print every figure as one JSON object" },
    { name: "batch-size", type: "int", default: 12, min: 1, help: "batch size B of the training-memory figure" },
    {
      name: "block-size",
      type: "int",
      default: 0,
      min: 0,
      help: "tokens per sequence T of the training-memory figure (0 = the model's block size)",
    },
  ],
  examples: ["minigpt analyze --model out", "minigpt analyze --model out --json --batch-size 32"],
};

export async function runAnalyze(argv: readonly string[]): Promise<number> {
  const f = parseFlags(analyzeSpec, argv);
  const dir = f.string("model");
  const { model } = loadModelFolder(dir);
  try {
    const B = f.int("batch-size");
    const T = f.int("block-size") || model.config.blockSize;
    if (T > model.config.blockSize)
      return fail(`--block-size ${T} is beyond the model's ${model.config.blockSize} positions; give at most ${model.config.blockSize}`);
    const analysis = analyzeModel(model, dir, { batchSize: B, blockSize: T });
    process.stdout.write(f.bool("json") ? `${JSON.stringify(analysis, null, 2)}\n` : `${formatAnalysis(analysis)}\n`);
    return 0;
  } finally {
    model.dispose();
  }
}
