import { fail, loadModelFolder, quantizationLabel, saveModel, saveTokenizer, writeModelFolder } from "../index.js";
import { modelFlag } from "./common.js";
import { type CommandSpec, parseFlags } from "./flags.js";

export const mergeSpec: CommandSpec = {
  name: "merge",
  summary: "fold a LoRA adapter into its base model: a plain Hugging Face GPT-2 folder",
  usage: "minigpt merge --model DIR --out DIR2 [--overwrite]",
  flags: [
    modelFlag("a folder holding a LoRA adapter (adapter_config.json, adapter_model.safetensors: minigpt's or PEFT's)", "out", {
      zip: false,
    }),
    { name: "out", type: "string", default: "", help: "the new model folder (required)" },
    { name: "overwrite", type: "bool", default: false, help: "replace the model folder in --out (never a folder that holds other files)" },
  ],
  examples: ["minigpt merge --model out-lora --out out-merged"],
};

export async function runMerge(argv: readonly string[]): Promise<number> {
  const f = parseFlags(mergeSpec, argv);
  const out = f.string("out");
  const dir = f.string("model");
  if (!out) return fail("say where to write the merged model: --out DIR2 (a new folder)");
  const notice = (text: string) => process.stderr.write(`${text}\n`);
  const folder = loadModelFolder(dir, notice, "quiet");
  try {
    if (!folder.lora) return fail(`${dir} holds no LoRA adapter (adapter_config.json); merge folds an adapter into its base model`);
    if (folder.quantization)
      notice(`the base is ${quantizationLabel(folder.quantization)}: the merged model is float32 (the dequantized base plus the adapter)`);
    const { lora } = folder;
    writeModelFolder(out, dir, f.bool("overwrite"), notice, (tmp) => {
      saveModel(folder.model, tmp, { ...folder.info, merged_from: { adapter: dir, base: lora.base } });
      saveTokenizer(tmp, folder.tokenizer, folder.model.config.blockSize);
    });
  } finally {
    folder.model.dispose();
  }
  process.stdout.write(`wrote ${out}: ${dir}'s adapter merged into its base\n`);
  return 0;
}
