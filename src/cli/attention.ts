import { attentionHtml, fail, heatmap, loadModelFolder, tokenLabel, traceForwardAsync, writeFileAtomic } from "../index.js";
import { deviceBackendFlags, modelFlag } from "./common.js";
import { counted } from "./counted.js";
import { type CommandSpec, parseFlags } from "./flags.js";
import { checkOutputFiles, overwriteFlag } from "./output.js";
import { encodeUserText } from "./user-text.js";

export const attentionSpec: CommandSpec = {
  name: "attention",
  summary: "write the attention weights of every layer and head for a prompt as a self-contained HTML/SVG heat map",
  usage: 'minigpt attention --model DIR --prompt "text" [--out att.html]',
  flags: [
    modelFlag(),
    { name: "prompt", type: "string", default: "", help: "the text whose attention to show (at most the block size in tokens)" },
    { name: "out", type: "string", default: "attention.html", help: "HTML file to write (opens in any browser, no network)" },
    overwriteFlag("an --out file"),
    { name: "specials-as-text", type: "bool", default: false, help: "treat <|...|> strings in the prompt as plain text" },
    ...deviceBackendFlags,
  ],
  examples: ['minigpt attention --model out --prompt "Call me Ishmael." --out att.html'],
};

export async function runAttention(argv: readonly string[]): Promise<number> {
  const f = parseFlags(attentionSpec, argv);
  const dir = f.string("model");
  const promptText = f.string("prompt");
  if (!promptText) fail('give the text: --prompt "..."');
  const out = f.string("out");
  checkOutputFiles([out], "out", f.bool("overwrite"));
  const { model, tokenizer } = loadModelFolder(dir, undefined, "run");
  try {
    const ids = encodeUserText(tokenizer, promptText, { specialsAsText: f.bool("specials-as-text") });
    if (ids.length === 0) fail("the prompt encodes to no tokens");
    const T = model.config.blockSize;
    if (ids.length > T) fail(`the prompt is ${ids.length} tokens but the model sees at most ${T}; shorten it`);
    const trace = await traceForwardAsync(model, ids);
    writeFileAtomic(out, attentionHtml(trace, tokenizer, `attention of ${dir} on ${JSON.stringify(promptText.slice(0, 60))}`));
    const c = model.config;
    process.stdout.write(
      `wrote ${out}: ${counted(c.nLayer, "layer")} x ${counted(c.nHead, "head")} over ${counted(ids.length, "token")}\n`,
    );
    // a taste in the terminal: the last layer's first head
    const labels = ids.map((id) => tokenLabel(tokenizer, id));
    const last = trace.attention[c.nLayer - 1]?.[0];
    if (last) {
      process.stdout.write(`layer ${c.nLayer - 1}, head 0 (rows look at columns):\n`);
      for (const row of heatmap(last, ids.length, labels, 24)) process.stdout.write(`  ${row}\n`);
    }
    return 0;
  } finally {
    model.dispose();
  }
}
