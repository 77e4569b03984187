import { existsSync } from "node:fs";
import { resolve } from "node:path";
import {
  type Batch,
  BUILTIN_TEXTS,
  describeFolderSource,
  type EvalResult,
  type EvalSplit,
  evaluateCountingAsync,
  evaluateWindowsAsync,
  evalWindows,
  fail,
  findTextFiles,
  type GPT,
  loadModelFolder,
  loadTextSource,
  locatePiece,
  openTokenCache,
  outOfMemory,
  readEvalWindows,
  sampleWindowIndices,
  sampleWindows,
  sourceBytes,
  splitStream,
  TOKEN_CACHE_MIN_BYTES,
  type Tokenizer,
  targetBytes,
  textSplits,
  trainingData,
  unencodable,
  VAL_FRACTION,
} from "../index.js";
import { deviceBackendFlags, modelFlag } from "./common.js";
import { counted } from "./counted.js";
import { type CommandSpec, parseFlags } from "./flags.js";
import { bar, formatDuration, ProgressLine, tokenizeProgressLine } from "./progress.js";

const valPercent = `${Math.round(VAL_FRACTION * 100)}%`;

export const evalSpec: CommandSpec = {
  name: "eval",
  summary: "loss, perplexity and bits per byte of a model on a text (by default the part of its training data it never trained on)",
  usage: "minigpt eval [--model DIR] [--data FILE|FOLDER|moby-dick|counting] [--split val|train|all] [--eval-tokens N] [--json]",
  flags: [
    modelFlag(),
    {
      name: "data",
      type: "string",
      default: "",
      help: "text to score: a file, a folder of .txt files, moby-dick or counting (default: the data the model was trained on, as its config.json records; moby-dick when it records none)",
    },
    {
      name: "split",
      type: "string",
      default: "",
      choices: ["", "val", "train", "all"],
      help: `which part of the text, cut as training cuts it: val = the last ${valPercent} of its tokens (training holds them out), train = the rest, all (default: val of the model's own training data, all of any other text)`,
    },
    {
      name: "eval-tokens",
      type: "int",
      default: 0,
      min: 0,
      help: "score a sample of about N tokens: whole windows spread evenly over the split (0 = every token)",
    },
    {
      name: "batch-size",
      type: "int",
      default: 16,
      min: 1,
      help: "windows scored together; memory grows with it (each window is the model's block of tokens)",
    },
    {
      name: "json",
      type: "bool",
      default: false,
      help: 'print {"loss","perplexity","tokens","bits_per_byte","data","split"} as JSON, and "pattern_accuracy" on the counting task (progress stays on stderr)',
    },
    { name: "specials-as-text", type: "bool", default: false, help: "treat <|...|> strings in the text as plain text" },
    ...deviceBackendFlags,
  ],
  examples: [
    "minigpt eval --model out                     # the validation split of what out/ was trained on",
    "minigpt eval --model out --data notes.txt --eval-tokens 100000 --json",
  ],
};

const SPLIT_WORDS: Record<EvalSplit, string> = {
  val: `its validation split (the last ${valPercent} of its tokens, which training holds out)`,
  train: `its training split (all but the last ${valPercent} of its tokens)`,
  all: "all of it",
};

/** "no tokens", "1 token", "5 tokens" */
function tokenCount(n: number): string {
  return n === 0 ? "no tokens" : counted(n, "token");
}

export async function runEval(argv: readonly string[]): Promise<number> {
  const f = parseFlags(evalSpec, argv);
  const dir = f.string("model");
  const { model, tokenizer, info } = loadModelFolder(dir, undefined, "score");
  const trained = trainingData(info);
  let data = f.string("data");
  let specialsAsText = f.bool("specials-as-text");
  let own = false;
  if (trained.kind === "text") {
    const same = data === "" || data === trained.source || (existsSync(data) && resolve(data) === resolve(trained.source));
    if (same) {
      own = true;
      data = trained.source;
      if (!f.has("specials-as-text")) specialsAsText = trained.specialsAsText;
      if (!(BUILTIN_TEXTS as readonly string[]).includes(data) && data !== "counting" && !existsSync(data))
        fail(`${dir} was trained on ${data}, which is no longer there; give the text to score with --data`);
    }
  } else if (data === "") {
    if (trained.kind === "chat")
      fail(`${dir} was fine-tuned on the conversations in ${trained.file}; eval scores plain text: give one with --data FILE`);
    data = "moby-dick";
  }
  const split = (f.string("split") || (own ? "val" : "all")) as EvalSplit;
  const whose = own
    ? " (the model's training data)"
    : trained.kind === "unknown" && !f.has("data")
      ? " (the folder records no training data)"
      : "";
  const scored = `${data}${whose}, ${SPLIT_WORDS[split]}`;

  let result: EvalResult;
  if (data === "counting") {
    process.stderr.write(`eval: ${scored}\n`);
    result = await evaluateCountingAsync(model, split);
  } else if (isBigText(data)) {
    result = await evalBigText(model, tokenizer, {
      data,
      split,
      scored,
      specialsAsText,
      sample: f.int("eval-tokens"),
      dir: f.string("model"),
      batchSize: f.int("batch-size"),
    });
  } else {
    const source = loadTextSource(data);
    const files = describeFolderSource(source);
    if (files) process.stderr.write(`files: ${files}\n`);
    // a model made before byte fallback cannot read every character: say where, and what helps
    const unknown = (piece: string) =>
      unencodable(
        locatePiece(source.files, piece, tokenizer.kind),
        tokenizer,
        piece,
        `a fine-tune on this text adds what it needs: minigpt train --init ${f.string("model")} --data ${data} --out NEW`,
      );
    const { ids, train, val } = textSplits(source, tokenizer, specialsAsText, unknown);
    const part = split === "val" ? val : split === "train" ? train : ids;
    const windows = evalWindows(part, model.config.blockSize);
    if (windows.length === 0) fail(`${scored} has ${tokenCount(part.length)}; scoring needs at least 2 (try --split all or more text)`);
    const chosen = f.int("eval-tokens") > 0 ? sampleWindows(windows, f.int("eval-tokens")) : windows;
    const bytes = split === "all" && chosen === windows ? new TextEncoder().encode(source.text).length : targetBytes(chosen, tokenizer);
    const total = chosen.reduce((n, w) => n + w.x.length, 0);
    const sample = chosen.length < windows.length ? `, a sample of ${chosen.length} of its ${windows.length} windows` : "";
    process.stderr.write(`eval: ${scored}: ${total.toLocaleString("en-US")} tokens to predict${sample}\n`);
    result = await scoreWindows(model, chosen, bytes, f.int("batch-size"));
  }
  if (f.bool("json")) {
    process.stdout.write(`${JSON.stringify({ ...result, data, split })}\n`);
  } else {
    process.stdout.write(
      `loss ${result.loss.toFixed(4)}  perplexity ${result.perplexity.toFixed(2)}  bits/byte ${result.bits_per_byte.toFixed(4)}  over ${result.tokens.toLocaleString("en-US")} predicted tokens` +
        (result.pattern_accuracy !== undefined ? `  pattern accuracy ${(result.pattern_accuracy * 100).toFixed(1)}%` : "") +
        "\n",
    );
  }
  return 0;
}

/** a text of TOKEN_CACHE_MIN_BYTES or more: scored from the token cache, as train reads it */
function isBigText(data: string): boolean {
  if (!existsSync(data)) return false;
  return sourceBytes(findTextFiles(data).files) >= TOKEN_CACHE_MIN_BYTES;
}

/** Windows of a split read from the token cache: only those scored are read (a sample, with --eval-tokens). */
const MAX_SCORED_TOKENS = 16 << 20;

async function evalBigText(
  model: GPT,
  tokenizer: Tokenizer,
  o: { data: string; split: EvalSplit; scored: string; specialsAsText: boolean; sample: number; dir: string; batchSize: number },
): Promise<EvalResult> {
  const source = findTextFiles(o.data);
  const line = new ProgressLine();
  const cache = openTokenCache({
    source,
    tokenizer,
    kind: "char",
    vocabSize: tokenizer.vocabSize,
    specialsAsText: o.specialsAsText,
    onUnknown: (piece) =>
      unencodable(
        locatePiece(source.files, piece, tokenizer.kind),
        tokenizer,
        piece,
        `a fine-tune on this text adds what it needs: minigpt train --init ${o.dir} --data ${o.data} --out NEW`,
      ),
    onProgress: (p) => line.update(tokenizeProgressLine(p), p.done),
    onMessage: (m) => {
      line.break();
      process.stderr.write(`${m}\n`);
    },
  });
  try {
    const { train, val } = splitStream(cache.tokens, VAL_FRACTION);
    const part = o.split === "val" ? val : o.split === "train" ? train : cache.tokens;
    const T = model.config.blockSize;
    const targets = part.length - 1;
    let count = 0;
    const chosen = readEvalWindows(part, T, (n) => {
      count = n;
      const picked = o.sample > 0 ? sampleWindowIndices(n, targets, T, o.sample) : null;
      const tokens = picked === null ? targets : picked.length * T;
      if (tokens > MAX_SCORED_TOKENS)
        fail(
          `${o.scored} has ${targets.toLocaleString("en-US")} tokens to predict; score a sample of them with --eval-tokens N (up to ${MAX_SCORED_TOKENS.toLocaleString("en-US")})`,
        );
      return picked;
    });
    if (chosen.length === 0) fail(`${o.scored} has ${tokenCount(part.length)}; scoring needs at least 2 (try --split all or more text)`);
    // every id of the text: its UTF-8 bytes are those of the targets and of the first token
    let bytes = targetBytes(chosen, tokenizer);
    if (o.split === "all" && chosen.length === count) bytes += tokenizer.tokenBytes((chosen[0] as Batch).x[0] as number).length;
    const total = chosen.reduce((n, w) => n + w.x.length, 0);
    const sample = chosen.length < count ? `, a sample of ${chosen.length} of its ${count} windows` : "";
    process.stderr.write(`eval: ${o.scored}: ${total.toLocaleString("en-US")} tokens to predict${sample}\n`);
    return await scoreWindows(model, chosen, bytes, o.batchSize);
  } finally {
    cache.close();
  }
}

/**
 * The windows' loss, batchSize windows at a time. Out of tensor memory names what grows it: the
 * windows scored together, each the model's block of tokens with logits over its vocabulary.
 */
async function scoreWindows(model: GPT, windows: readonly Batch[], bytes: number, batchSize: number): Promise<EvalResult> {
  try {
    return await evaluateWindowsAsync(model, windows, bytes, { batchSize, onProgress: progressReporter() });
  } catch (e) {
    const { blockSize, vocabSize } = model.config;
    const window = `the model's ${blockSize} tokens, each with logits over its ${vocabSize}-token vocabulary`;
    throw outOfMemory(
      e,
      Math.min(batchSize, windows.length) > 1
        ? `Scoring's memory grows with --batch-size ${batchSize} (windows of ${window}, scored together): lower it`
        : `Scoring one window (${window}) needs more: the model is too big to score here`,
    );
  }
}

/**
 * The progress line on stderr: redrawn in place on a terminal at most 10 times a second; otherwise
 * a line every 5 seconds. The last one always stays.
 */
function progressReporter(): (done: number, total: number) => void {
  const line = new ProgressLine();
  const started = performance.now();
  let lastDraw = Number.NEGATIVE_INFINITY;
  let lastLog = started;
  return (done, total) => {
    const now = performance.now();
    const finished = done >= total;
    const log = finished || now - lastLog > 5000;
    if (!log && now - lastDraw < 100) return;
    const seconds = (now - started) / 1000;
    const eta = finished ? `in ${formatDuration(seconds)}` : `ETA ${formatDuration((seconds / done) * (total - done))}`;
    line.update(`${bar(done / total)} ${done.toLocaleString("en-US")}/${total.toLocaleString("en-US")} tokens ${eta}`, log);
    lastDraw = now;
    if (log) lastLog = now;
  };
}
