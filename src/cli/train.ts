import {
  backend,
  configKey,
  DEFAULT_DATA,
  defaultTrainConfig,
  enclosingModelFolder,
  fail,
  flagName,
  type GPT,
  generateTokensAsync,
  MinigptError,
  type ScheduleOptions,
  type StartInfo,
  sparkline,
  specialIdsExcept,
  startPrompt,
  TextStreamer,
  type Tokenizer,
  type TrainConfig,
  train,
} from "../index.js";
import { BPE_MIN_VOCAB, deviceBackendFlags } from "./common.js";
import { counted } from "./counted.js";
import { type CommandSpec, type FlagSpec, type ParsedFlags, parseFlags } from "./flags.js";
import { streamUntil } from "./interrupt.js";
import { bar, formatDuration, ProgressLine, tokenizeProgressLine } from "./progress.js";
import { forStdout } from "./terminal-text.js";
import { errorText, inFlags } from "./wording.js";

const d = defaultTrainConfig;
const flags: FlagSpec[] = [
  {
    name: "data",
    type: "string",
    default: d.data,
    help: `a text file, a folder (every .txt file under it; other kinds, .md included, are skipped and counted: rename them to .txt to train on them), or a built-in corpus: moby-dick, counting (default: ${DEFAULT_DATA}; with --chat the conversations are the data)`,
  },
  {
    name: "out",
    type: "string",
    default: d.out,
    help: "model folder to write (config.json, model.safetensors, tokenizer.json, training/)",
  },
  {
    name: "tokenizer",
    type: "string",
    default: d.tokenizer,
    help: "char: one token per character; bpe: byte-level BPE trained on --data; gpt2: GPT-2's 50,257 tokens; or a folder with a tokenizer.json (from minigpt tokenizer train; that file itself too) or Hugging Face's vocab.json and merges.txt; --data counting has its own (word), --init keeps its folder's",
  },
  {
    name: "vocab-size",
    type: "int",
    default: d.vocabSize,
    // no min here: 261 is bpe's (checked where the BPE is made), and the config line writes a char or word vocabulary's own size
    help: `vocabulary size of --tokenizer bpe: 256 bytes + 5 special tokens + learned merges, so at least ${BPE_MIN_VOCAB} (char and word vocabularies are the size their text makes)`,
  },
  { name: "n-layer", type: "int", default: d.nLayer, min: 1, help: "transformer blocks" },
  { name: "n-head", type: "int", default: d.nHead, min: 1, help: "attention heads per block (must divide --n-embd)" },
  { name: "n-embd", type: "int", default: d.nEmbd, min: 1, help: "width of the residual stream" },
  { name: "n-inner", type: "int", default: d.nInner, min: 0, help: "feed-forward width (0 = 4 x n-embd)" },
  {
    name: "activation",
    type: "string",
    default: d.activation,
    choices: ["gelu_new", "relu"],
    help: "MLP activation: GPT-2's tanh GELU or ReLU",
  },
  { name: "block-size", type: "int", default: d.blockSize, min: 1, help: "context length in tokens" },
  { name: "batch-size", type: "int", default: d.batchSize, min: 1, help: "sequences per micro-batch" },
  {
    name: "grad-shards",
    type: "int",
    default: d.gradShards,
    min: 1,
    help: "each batch is cut into this many shards (must divide --batch-size; left out, an odd --batch-size is not cut: 1), each shard's gradient computed by one thread and the shards added in order: the trained weights are the same bits on any --threads; more threads than shards stay idle",
  },
  { name: "grad-accum", type: "int", default: d.gradAccum, min: 1, help: "micro-batches per optimizer step" },
  { name: "max-steps", type: "int", default: d.maxSteps, min: 0, help: "optimizer steps" },
  {
    name: "epochs",
    type: "float",
    default: d.epochs,
    min: 0,
    help: "train for this many passes over the training tokens instead of --max-steps (0 = off)",
  },
  { name: "lr", type: "float", default: d.lr, above: 0, help: "peak learning rate" },
  { name: "min-lr", type: "float", default: d.minLr, min: 0, help: "learning rate at the end of the cosine decay" },
  { name: "warmup-steps", type: "int", default: d.warmupSteps, min: 0, help: "linear warmup steps" },
  { name: "beta1", type: "float", default: d.beta1, min: 0, below: 1, help: "AdamW beta1" },
  { name: "beta2", type: "float", default: d.beta2, min: 0, below: 1, help: "AdamW beta2" },
  { name: "weight-decay", type: "float", default: d.weightDecay, min: 0, help: "AdamW weight decay (matrices and embeddings only)" },
  { name: "grad-clip", type: "float", default: d.gradClip, min: 0, help: "clip the global gradient norm to this (0 = off)" },
  { name: "dropout", type: "float", default: d.dropout, min: 0, below: 1, help: "dropout probability" },
  {
    name: "eval-interval",
    type: "int",
    default: d.evalInterval,
    min: 1,
    help: "evaluate on validation batches every N steps (and after the last)",
  },
  { name: "eval-steps", type: "int", default: d.evalSteps, min: 1, help: "validation batches per evaluation" },
  { name: "checkpoint-interval", type: "int", default: d.checkpointInterval, min: 1, help: "save a resumable checkpoint every N steps" },
  { name: "seed", type: "int", default: d.seed, help: "random seed for init, batches and dropout" },
  { name: "resume", type: "bool", default: false, help: "continue the run in --out from its latest checkpoint" },
  { name: "overwrite", type: "bool", default: false, help: "replace the model folder in --out (never a folder that holds other files)" },
  { name: "init", type: "string", default: "", help: "start from the weights and tokenizer of this model folder" },
  {
    name: "init-partial",
    type: "bool",
    default: false,
    help: "with --init: load only the tensors whose name and shape match, report the rest",
  },
  { name: "specials-as-text", type: "bool", default: false, help: "treat <|...|> special-token strings in the data as plain text" },
  {
    name: "chat",
    type: "string",
    default: "",
    help: 'chat fine-tuning on a JSONL file of {"messages":[{"role":"user","content":...},{"role":"assistant","content":...}]}: loss only on assistant replies; needs --init DIR (adds <|user|> <|assistant|> <|end|> to a vocabulary that lacks them)',
  },
  {
    name: "lora-rank",
    type: "int",
    default: d.loraRank,
    // a rank below 1 is refused by the run's setup, in words that say what to do instead
    shownDefault: "none, the whole model trains",
    help: "with --init DIR: train a LoRA adapter of this rank (1 or more; 4-16 is usual) on DIR's frozen model instead of the whole model; --out then holds the adapter in PEFT's format (adapter_config.json, adapter_model.safetensors) and names DIR as its base",
  },
  {
    name: "lora-alpha",
    type: "float",
    default: d.loraAlpha,
    above: 0,
    help: "LoRA alpha: the adapter's output is scaled by alpha / rank (PEFT's default 8)",
  },
  {
    name: "lora-dropout",
    type: "float",
    default: d.loraDropout,
    min: 0,
    below: 1,
    help: "dropout on the LoRA adapter's input while training",
  },
  {
    name: "lora-targets",
    type: "string",
    default: d.loraTargets,
    help: "the layers that get LoRA adapters, comma-separated, matched by name suffix as PEFT's target_modules: c_attn, c_proj (attn.c_proj and mlp.c_proj), c_fc, attn.c_proj, mlp.c_proj",
  },
  { name: "sample-tokens", type: "int", default: 300, min: 0, help: "tokens of sample text printed at the end (0 = none)" },
  ...deviceBackendFlags,
  {
    name: "parallel",
    type: "string",
    default: "batch",
    choices: ["batch", "kernels"],
    help: "how --threads share a step: batch = each thread runs the model on its rows of the batch (data parallel), kernels = big kernels are split",
  },
];

export const trainSpec: CommandSpec = {
  name: "train",
  summary: "train a GPT on your text (or resume a run), keeping the best model by validation loss",
  usage: "minigpt train [--data FILE|FOLDER|moby-dick|counting] [--out DIR] [flags]",
  flags,
  examples: [
    "minigpt train                                  # Moby Dick, character level, a few minutes on a laptop",
    "minigpt train --data my-notes/ --out notes-model --max-steps 2000",
    "minigpt train --data counting --out counting --n-layer 2 --n-embd 64 --block-size 19",
    "minigpt train --out notes-model --resume --max-steps 4000",
    "minigpt train --chat chats.jsonl --init notes-model --out notes-chat --max-steps 300",
  ],
};

/** Every train flag but these names a TrainConfig key: --n-layer is nLayer, and so on. */
const notConfig = new Set(["resume", "overwrite", "sample-tokens", "backend", "threads", "parallel"]);

export function trainConfigFromFlags(f: ParsedFlags): { config: TrainConfig; explicit: Partial<TrainConfig> } {
  const config = { ...defaultTrainConfig } as Record<string, unknown>;
  const explicit: Record<string, unknown> = {};
  for (const spec of flags) {
    if (notConfig.has(spec.name)) continue;
    const key = configKey(spec.name);
    if (!(key in defaultTrainConfig)) throw new Error(`train flag --${spec.name} has no TrainConfig key ${key}`);
    const value = spec.type === "bool" ? f.bool(spec.name) : spec.type === "string" ? f.string(spec.name) : f.float(spec.name);
    config[key] = value;
    if (f.has(spec.name)) explicit[key] = value;
  }
  if (f.has("epochs") && f.has("max-steps") && f.float("epochs") > 0)
    fail("give the length of the run as --max-steps or as --epochs, not both");
  if (f.has("epochs") && !f.has("max-steps")) config.maxSteps = 0;
  return { config: config as unknown as TrainConfig, explicit: explicit as Partial<TrainConfig> };
}

export async function runTrain(argv: readonly string[]): Promise<number> {
  const f = parseFlags(trainSpec, argv);
  const { config, explicit } = trainConfigFromFlags(f);
  const progress = new ProgressLine();
  // Ctrl-C (SIGINT) and SIGTERM (kill, a job scheduler, docker stop) both stop the run at the end
  // of the step with a checkpoint; the exit status says which one: 128 + the signal's number.
  // Before training starts they keep their default, ending the process at once: reading and
  // tokenizing the data runs without turning the event loop (a big corpus for minutes), so a
  // handler would run only once the data was ready. Nothing is lost then: the model folder is
  // written only when training starts (OUT, or the folder --overwrite replaces, stays as it was),
  // and a token cache is named only when whole (the next run removes the half-written file).
  let stopStatus = 0; // 0: go on
  let tokenizing = false;
  // the model is saved and its closing sample printing: a signal only stops the sample
  let sampling = false;
  const stopOn = (status: number, name: string) => () => {
    if (stopStatus !== 0) process.exit(stopStatus);
    stopStatus = status;
    if (sampling) return;
    progress.break();
    console.error(`${name}: finishing this step and saving a checkpoint (${name} again to quit without saving)`);
  };
  // a new model folder inside another would put files into that model's folder
  const around = f.bool("resume") ? null : enclosingModelFolder(config.out);
  if (around !== null)
    fail(`--out ${config.out} is inside the model folder ${around}, which belongs to that model; choose a folder outside it`);
  const onSigint = stopOn(130, "Ctrl-C");
  const onSigterm = stopOn(143, "SIGTERM");
  const started = performance.now();
  let logEvery = 1;
  let firstStep = 0;
  // the run's resolved config (a resume's comes from its checkpoint, not from these flags)
  let run = config;
  // set once the model folder exists (it does when training starts): a disk error after that leaves
  // its last checkpoint, to be resumed
  let running = false;
  try {
    const result = await train(
      config,
      {
        resume: f.bool("resume"),
        overrides: explicit,
        overwrite: f.bool("overwrite"),
        parallel: f.string("parallel") as "batch" | "kernels",
      },
      {
        onStart(info) {
          const c = info.config;
          run = c;
          console.error(
            `minigpt train: ${info.resumedFrom !== null ? `resuming ${c.out} at step ${info.resumedFrom}` : `new run in ${c.out}`}`,
          );
          console.error(`config: ${configAsFlags(c)}`);
          if (info.resumeChanges && info.resumeChanges.length > 0) console.error(`resume: ${resumeChangesLine(info.resumeChanges)}`);
          if (info.replacedSchedule && info.resumedFrom !== null)
            console.error(`lr schedule: ${schedulePlanLine(info.schedule, info.replacedSchedule, info.resumedFrom)}`);
          console.error(
            `model: ${counted(info.model.nLayer, "layer")}, ${counted(info.model.nHead, "head")}, ${info.model.nEmbd} wide, block ${info.model.blockSize}, vocab ${info.model.vocabSize}, ${info.model.activation}: ${info.parameters.toLocaleString("en-US")} parameters`,
          );
          console.error(
            `data: ${info.dataset.name}: ${info.dataset.trainTokens.toLocaleString("en-US")} training and ${info.dataset.valTokens.toLocaleString("en-US")} validation tokens (${info.dataset.tokenizer} tokenizer, ${info.dataset.vocabSize} tokens); ${counted(info.totalSteps, "step")}`,
          );
          const be = backend() as { name: string; threads?: number; simd?: string; tile?: string };
          console.error(
            `kernels: ${be.name}${be.simd ? ` (${be.simd} SIMD, ${be.tile} matmul tile)` : ""}, ${be.threads ?? 1} thread(s)${info.dataParallelThreads > 1 ? `, data parallel: each runs the model on ~1/${info.dataParallelThreads} of every batch` : ""}`,
          );
          if (info.lora) {
            const l = info.lora;
            const rows = l.trainableTokens.length;
            console.error(
              `lora: rank ${l.rank}, alpha ${l.alpha} (scaling ${+(l.alpha / l.rank).toPrecision(4)}), dropout ${l.dropout}, on ${(l.targets as string[]).join(", ")}${rows > 0 ? ` and the ${rows} added token row${rows === 1 ? "" : "s"}` : ""}: ${info.trainableParameters.toLocaleString("en-US")} parameters train (${((100 * info.trainableParameters) / info.parameters).toPrecision(2)}%); the base model ${c.init} stays frozen`,
            );
          }
          if (info.initReport) {
            console.error(
              `init-partial: loaded ${info.initReport.loaded.length} tensors, skipped ${info.initReport.skipped.length}, new ${info.initReport.fresh.length}`,
            );
            for (const s of info.initReport.skipped) console.error(`  skipped (shape differs): ${s}`);
            for (const s of info.initReport.fresh) console.error(`  new (not in --init): ${s}`);
          }
          if (info.chatTokensAdded && info.chatTokensAdded.length > 0) {
            console.error(
              `chat: added ${info.chatTokensAdded.join(" ")} to the vocabulary (new embedding rows start as the mean of the others; saved as added tokens)`,
            );
          }
          if (info.piecesAdded && info.piecesAdded.length > 0) {
            const n = info.piecesAdded.length;
            const what = `${info.dataset.tokenizer === "word" ? "word" : "character"}${n === 1 ? "" : "s"}`;
            const shown =
              info.piecesAdded
                .slice(0, 12)
                .map((p) => JSON.stringify(p))
                .join(" ") + (n > 12 ? ` and ${n - 12} more` : "");
            console.error(
              `vocabulary: added ${n} ${what} the data needs (${shown}); their new embedding rows start as the mean of the others`,
            );
          }
          logEvery = Math.max(1, Math.round(info.totalSteps / 20));
          firstStep = info.resumedFrom ?? 0;
          running = true;
          process.on("SIGINT", onSigint);
          process.on("SIGTERM", onSigterm);
        },
        onStep(m, total) {
          const done = m.step / total;
          const avgSec = (performance.now() - started) / 1000 / Math.max(1, m.step - firstStep);
          const eta = formatDuration(avgSec * (total - m.step));
          const val = m.val_loss !== undefined ? ` val ${m.val_loss.toFixed(4)}` : "";
          const acc = m.pattern_accuracy !== undefined ? ` acc ${(m.pattern_accuracy * 100).toFixed(0)}%` : "";
          const line = `${bar(done)} ${String(m.step).padStart(String(total).length)}/${total} loss ${m.loss.toFixed(4)}${val}${acc} lr ${m.lr.toExponential(2)} ${Math.round(m.tokens_per_s).toLocaleString("en-US")} tok/s ETA ${eta}`;
          progress.update(line, m.val_loss !== undefined || m.step % logEvery === 0);
        },
        onMessage(text) {
          progress.break();
          console.error(inFlags(text));
        },
        onTokenizeProgress(p) {
          // said once, before a big text's passes: what Ctrl-C does until the handlers are set
          if (!tokenizing) {
            tokenizing = true;
            console.error(
              "tokenizing the data into the token cache first (Ctrl-C stops at once: nothing is written until training starts)",
            );
          }
          progress.update(tokenizeProgressLine(p), p.done);
        },
        shouldStop: () => stopStatus !== 0,
      },
    );
    progress.break();
    const losses = result.history.map((m) => m.loss);
    const vals = result.history.filter((m) => m.val_loss !== undefined).map((m) => m.val_loss as number);
    if (losses.length > 0) console.error(`train loss ${sparkline(losses)} ${losses[losses.length - 1]?.toFixed(4)}`);
    if (vals.length > 1) console.error(`val loss   ${sparkline(vals)} ${vals[vals.length - 1]?.toFixed(4)}`);
    if (result.interrupted) {
      console.error(`stopped at step ${result.steps}; checkpoint saved. Continue with: minigpt train --out ${config.out} --resume`);
      return stopStatus;
    }
    // a resumed run's time is of its own steps: say how many those were
    const ran = firstStep > 0 ? ` (${counted(result.steps - firstStep, "step")} in this run, resumed at step ${firstStep})` : "";
    console.error(
      `done: ${counted(result.steps, "step")}${ran} in ${formatDuration((performance.now() - started) / 1000)}; best val loss ${result.bestValLoss?.toFixed(4) ?? "n/a"}; model in ${config.out}/ (loss plot: ${config.out}/loss.svg)`,
    );
    const n = f.int("sample-tokens");
    if (run.chat) {
      console.error(`next: minigpt chat --model ${config.out}`);
      return 0;
    }
    if (n > 0 && run.data !== "counting") {
      sampling = true;
      const suppressIds = specialIdsExcept(result.tokenizer, result.specialTargets);
      await printSample(result.model, result.tokenizer, n, suppressIds, () => stopStatus !== 0);
      if (stopStatus !== 0) return stopStatus;
    }
    // the counting task's vocabulary is numbers: "..." would not encode there
    const promptHint = run.data === "counting" ? "3 4 5" : "...";
    console.error(`next: minigpt generate --model ${config.out} --prompt "${promptHint}"`);
    return 0;
  } catch (err) {
    progress.break();
    if (running && err instanceof MinigptError && err.fsCode !== undefined)
      fail(`${errorText(err)}. The last checkpoint is kept: once that is fixed, continue with: minigpt train --out ${config.out} --resume`);
    throw err;
  } finally {
    process.off("SIGINT", onSigint);
    process.off("SIGTERM", onSigterm);
  }
}

/** n tokens of text after the start prompt on stdout, ended early (with its line) once `stop()` says so */
async function printSample(
  model: GPT,
  tokenizer: Tokenizer,
  n: number,
  suppressIds: readonly number[],
  stop: () => boolean,
): Promise<void> {
  const prompt = startPrompt(tokenizer).ids;
  console.error("sample:");
  const streamer = new TextStreamer(tokenizer);
  const ids = generateTokensAsync(model, prompt, { maxNewTokens: n, temperature: 0.8, seed: 1, suppressIds });
  await streamUntil(ids, (id) => process.stdout.write(forStdout(streamer.push(id))), stop);
  process.stdout.write("\n");
}

/** what a resume changed, as flags: "--max-steps 100 -> 200, --data a.txt -> b.txt (...)" */
function resumeChangesLine(changes: NonNullable<StartInfo["resumeChanges"]>): string {
  const shown = (v: unknown) => (v === 0 || v === "" ? "(none)" : String(v));
  const line = changes.map((c) => `--${flagName(c.key)} ${shown(c.from)} -> ${shown(c.to)}`).join(", ");
  const dataNote = "(the batches now come from the new data; the tokenizer and the model stay the run's)";
  return changes.some((c) => c.key === "data") ? `${line} ${dataNote}` : line;
}

/** a resume's new learning-rate plan, in one line */
function schedulePlanLine(now: ScheduleOptions, before: ScheduleOptions, step: number): string {
  const e = (x: number) => x.toExponential(1);
  const was = `was ${e(before.minLr)} at step ${before.decaySteps}`;
  if (!now.from)
    return `warmup to ${e(now.lr)} by step ${now.warmupSteps}, then cosine down to ${e(now.minLr)} at step ${now.decaySteps} (${was})`;
  return `re-planned at step ${step}: cosine from ${e(now.from.lr)} down to --min-lr ${e(now.minLr)} at step ${now.decaySteps} (${was})`;
}

/** a value as one shell word: as is when it is safe unquoted, else in single quotes */
function shellWord(v: string): string {
  return /^[\w@%+=:,./-]+$/.test(v) ? v : `'${v.replaceAll("'", "'\\''")}'`;
}

/**
 * The resolved config as the train flags that give it (a line one can copy): every field is the
 * flag of the same name in kebab case; false switches, empty strings and the unused one of
 * --max-steps / --epochs (0) and the LoRA settings of a run without an adapter are left out.
 */
export function configAsFlags(c: TrainConfig): string {
  const words: string[] = [];
  for (const [key, value] of Object.entries(c) as [string, unknown][]) {
    const flag = `--${flagName(key)}`;
    if (value === false || value === "") continue;
    if ((key === "epochs" || key === "maxSteps") && value === 0) continue;
    // without an adapter the LoRA settings are unused, and --lora-rank 0 given by hand is refused
    if (c.loraRank === 0 && key.startsWith("lora")) continue;
    words.push(value === true ? flag : `${flag} ${shellWord(String(value))}`);
  }
  return words.join(" ");
}
