import {
  type ExplainLevel,
  explainTrainingStepAsync,
  fail,
  findTextFiles,
  formatTop,
  formatTrace,
  type GenerateOptions,
  type GPT,
  loadModelFolder,
  Rng,
  sampleToken,
  type Tokenizer,
  textStart,
  tokenLabel,
  traceForwardAsync,
  withSuppressed,
} from "../index.js";
import { deviceBackendFlags, modelFlag } from "./common.js";
import { type CommandSpec, parseFlags } from "./flags.js";
import { forStdout } from "./terminal-text.js";
import { encodeUserText } from "./user-text.js";

export const explainLevelFlag = {
  name: "explain-level",
  type: "string",
  default: "brief",
  choices: ["brief", "full"],
  help: "with --explain: brief (first and last layer, key stages) or full (every layer, stage and head)",
} as const;

/**
 * generate --explain: the prompt's forward pass stage by stage with every head's attention as a
 * heat map, then for each generated token the top-5 candidates with probabilities (and, at the
 * full level, where the new token looks in every layer). Uses the uncached forward, so it is meant
 * for small models and short outputs. Runs on every backend (each step's stages read back together).
 */
export async function explainGenerate(
  model: GPT,
  tokenizer: Tokenizer,
  prompt: readonly number[],
  o: Omit<GenerateOptions, "cache">,
  level: ExplainLevel,
  write: (s: string) => void,
): Promise<void> {
  const T = model.config.blockSize;
  const rng = new Rng(o.seed);
  const ids = [...prompt];
  let text = "";
  for (let n = 0; n < o.maxNewTokens; n++) {
    const window = ids.slice(-T);
    const trace = await traceForwardAsync(model, window);
    if (n === 0) {
      write(
        `${formatTrace(trace, model, tokenizer, level)}\n\n== generation: the next token is sampled from the logits at the last position\n`,
      );
    }
    const next = sampleToken(withSuppressed(trace.nextLogits, o.suppressIds), o, rng);
    write(`step ${String(n + 1).padStart(3)}  top-5: ${formatTop(tokenizer, trace.nextLogits)}  -> "${tokenLabel(tokenizer, next, 12)}"\n`);
    if (level === "full" && n > 0) {
      // where the newest position looks: its attention row in every layer and head, over the window
      for (const [l, heads] of trace.attention.entries()) {
        const W = window.length;
        const rows = heads.map((w) => {
          let best = 0;
          for (let s = 1; s < W; s++) if ((w[(W - 1) * W + s] as number) > (w[(W - 1) * W + best] as number)) best = s;
          return `h${heads.indexOf(w)}→"${tokenLabel(tokenizer, window[best] as number)}" ${((w[(W - 1) * W + best] as number) * 100).toFixed(0)}%`;
        });
        write(`          layer ${l} strongest attention of the last token: ${rows.join("  ")}\n`);
      }
    }
    if (o.stopIds.includes(next)) {
      write("          (a stop token: generation ends)\n");
      break;
    }
    ids.push(next);
    text = tokenizer.decode(ids.slice(prompt.length), { textOnly: true });
  }
  write(`\n== text\n${forStdout(`${tokenizer.decode(prompt)}${text}`)}\n`);
}

export const explainStepSpec: CommandSpec = {
  name: "explain-step",
  summary: "one training step taken apart: stages, attention, loss and gradient norms per layer (weights unchanged)",
  usage: 'minigpt explain-step --model DIR (--text "..." | --data FILE) [--explain-level brief|full]',
  flags: [
    modelFlag(),
    { name: "text", type: "string", default: "", help: "the training text of the step (its first block-size + 1 tokens are used)" },
    { name: "data", type: "string", default: "", help: "take the text from this file or built-in corpus instead" },
    { ...explainLevelFlag, help: "brief (key stages, gradient norms per layer) or full (every stage and head, every tensor's gradient)" },
    { name: "specials-as-text", type: "bool", default: false, help: "treat <|...|> strings in the text as plain text" },
    ...deviceBackendFlags,
  ],
  examples: [
    'minigpt explain-step --model out --text "Call me Ishmael."',
    "minigpt explain-step --model out --data moby-dick --explain-level full",
  ],
};

export async function runExplainStep(argv: readonly string[]): Promise<number> {
  const f = parseFlags(explainStepSpec, argv);
  const dir = f.string("model");
  const { model, tokenizer } = loadModelFolder(dir, undefined, "run");
  try {
    if (f.string("text") && f.string("data")) fail("give the step's text with --text or --data, not both");
    let text = f.string("text");
    // the step uses the text's first block: a corpus of any size is read no further than that
    const start = 20 * model.config.blockSize + 100;
    if (!text && f.string("data")) text = textStart(findTextFiles(f.string("data")), start);
    if (!text) fail('give the text of the training step: --text "..." or --data FILE');
    const all = encodeUserText(tokenizer, text.slice(0, start), { specialsAsText: f.bool("specials-as-text") });
    if (all.length < 2) fail("the text must encode to at least 2 tokens: one input and the next one as its target");
    const T = Math.min(model.config.blockSize, all.length - 1);
    const x = all.slice(0, T);
    const y = all.slice(1, T + 1);
    const level = f.string("explain-level") as "brief" | "full";
    const e = await explainTrainingStepAsync(model, x, y);
    const w = (s: string) => process.stdout.write(`${s}\n`);
    w(formatTrace(e.trace, model, tokenizer, level));
    w("");
    w(`== loss: mean cross-entropy of predicting each next token = ${e.loss.toFixed(4)}`);
    w(`   (an untrained model guesses uniformly: ln(V) = ln(${model.config.vocabSize}) = ${Math.log(model.config.vocabSize).toFixed(4)})`);
    const perPos = Math.min(T, level === "full" ? T : 8);
    w(
      `   inputs -> targets (first ${perPos}): ${x
        .slice(0, perPos)
        .map((id, i) => `[${tokenLabel(tokenizer, id)}]→[${tokenLabel(tokenizer, y[i] as number)}]`)
        .join(" ")}`,
    );
    w("");
    w(`== backward: gradients (global norm ${e.gradNorm.toFixed(4)}; training clips it to --grad-clip, 1.0 by default)`);
    w(`   ${"group".padEnd(12)} ${"grad norm".padStart(12)} ${"weight norm".padStart(12)}  ratio`);
    for (const g of e.groups) {
      w(
        `   ${g.name.padEnd(12)} ${g.gradNorm.toExponential(3).padStart(12)} ${g.weightNorm.toExponential(3).padStart(12)}  ${(g.gradNorm / (g.weightNorm || 1)).toExponential(2)}`,
      );
    }
    if (level === "full") {
      w("");
      const width = Math.max(...e.tensors.map((t) => t.name.length));
      for (const t of e.tensors) {
        w(
          `   ${t.name.padEnd(width)} ${`[${t.shape.join(",")}]`.padEnd(12)} grad ${t.gradNorm.toExponential(3)}  weight ${t.weightNorm.toExponential(3)}`,
        );
      }
    }
    w("");
    w("(explain-step does not change the model: no optimizer step is taken)");
    return 0;
  } finally {
    model.dispose();
  }
}
