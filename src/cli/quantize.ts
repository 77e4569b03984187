import { statSync } from "node:fs";
import { join } from "node:path";
import {
  DEFAULT_GROUP_SIZE,
  fail,
  formatBytes,
  loadModelFolder,
  type QuantizationConfig,
  quantizationLabel,
  saveQuantizedModel,
  saveTokenizer,
  withFs,
  writeModelFolder,
} from "../index.js";
import { modelFlag } from "./common.js";
import { type CommandSpec, parseFlags } from "./flags.js";

export const quantizeSpec: CommandSpec = {
  name: "quantize",
  summary: "write a copy of a model with int8 or int4 weights: smaller files (docs/quantization.md)",
  usage: "minigpt quantize --model DIR --out DIR2 [--bits 8|4] [--group-size G] [--overwrite]",
  flags: [
    modelFlag("the model to quantize"),
    { name: "out", type: "string", default: "", help: "the new model folder (required; never the model itself)" },
    {
      name: "bits",
      type: "int",
      default: 8,
      choices: ["8", "4"],
      help: "8: int8, one scale per output; 4: int4, one scale per group of inputs",
    },
    {
      name: "group-size",
      type: "int",
      default: DEFAULT_GROUP_SIZE,
      min: 2,
      help: "int4: inputs sharing one scale (even; smaller is more accurate and bigger)",
    },
    { name: "overwrite", type: "bool", default: false, help: "replace the model folder in --out (never a folder that holds other files)" },
  ],
  examples: ["minigpt quantize --model out --out out-int8", "minigpt quantize --model out --out out-int4 --bits 4 --group-size 64"],
};

export async function runQuantize(argv: readonly string[]): Promise<number> {
  const f = parseFlags(quantizeSpec, argv);
  const out = f.string("out");
  if (!out) return fail("say where to write the quantized model: --out DIR2 (a new folder)");
  const bits = f.int("bits") as 8 | 4;
  const groupSize = f.int("group-size");
  if (f.has("group-size") && bits === 8) return fail("--group-size applies to --bits 4; int8 has one scale per output");
  if (groupSize % 2 !== 0) return fail(`--group-size ${groupSize} must be even: int4 stores two inputs per byte`);
  const quantization: QuantizationConfig = bits === 8 ? { bits: 8, groupSize: null } : { bits: 4, groupSize };
  const notice = (text: string) => process.stderr.write(`${text}\n`);
  const folder = loadModelFolder(f.string("model"), notice, "quiet");
  if (folder.quantization) {
    folder.model.dispose();
    return fail(`${f.string("model")} is quantized already (${quantizationLabel(folder.quantization)}); quantize its float32 original`);
  }
  // what the same weights take as float32 (4 bytes a parameter), to say how much smaller the file is
  const floatBytes = 4 * folder.model.parameterCount();
  try {
    writeModelFolder(out, folder.dir, f.bool("overwrite"), notice, (tmp) => {
      saveQuantizedModel(folder.model, tmp, quantization, { ...folder.info, quantized_from: f.string("model") });
      saveTokenizer(tmp, folder.tokenizer, folder.model.config.blockSize);
    });
  } finally {
    folder.model.dispose();
  }
  const bytes = withFs(`cannot read ${out}`, () => statSync(join(out, "model.safetensors")).size);
  process.stdout.write(
    `wrote ${out}: ${quantizationLabel(quantization)} weights of ${f.string("model")}, model.safetensors ${formatBytes(bytes)} (${(floatBytes / bytes).toFixed(1)}x smaller than its float32 weights, ${formatBytes(floatBytes)})\n`,
  );
  return 0;
}
