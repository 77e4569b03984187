/**
 * Setting up a training run, before its first step: the settings, tokenizer, dataset, model and
 * optimizer to start from. One function per way a run starts (a fresh model, init, initPartial,
 * chat, resume) says what that start decides; `setUp` then builds what they all share.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { withChatTokens } from "../data/chat.js";
import { type Dataset, loadDataset } from "../data/dataset.js";
import { fail } from "../errors.js";
import { trainedSpecials } from "../generate/suppress.js";
import { hasTokenizer, loadModelFolder, loadTokenizer, type ModelFolder, readFolderInfo, tokenizerFolder } from "../io/folder.js";
import { readQuantization } from "../io/hf.js";
import { loraModules } from "../io/lora.js";
import { ADAPTER_WEIGHTS } from "../io/lora-folder.js";
import { type QuantizationConfig, quantizationLabel } from "../io/quantize.js";
import { backend } from "../kernels/index.js";
import { type GPTConfig, makeConfig } from "../nn/config.js";
import { GPT } from "../nn/gpt.js";
import { attachLora } from "../nn/lora.js";
import { initNewEmbeddingRows } from "../nn/vocabulary.js";
import { AdamW } from "../optim/adamw.js";
import { Rng } from "../random.js";
import type { Tensor } from "../tensor/tensor.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { said, setting } from "../wording.js";
import { type LoadedCheckpoint, loadLatestCheckpoint, restoreOptimizer } from "./checkpoint.js";
import {
  DEFAULT_DATA,
  defaultTrainConfig,
  isTokenizerChoice,
  RESUME_OVERRIDABLE,
  resolvedConfig,
  TOKENIZER_CHOICES,
  type TrainConfig,
} from "./config.js";
import { loadTrainedWeights, loraAdapter, type Trained, wholeModel } from "./trained.js";
import type { StartInfo, TrainEvents } from "./trainer.js";

/** What a start mode decides before the dataset and model are built. */
interface Start {
  config: TrainConfig;
  /** the tokenizer the run keeps (undefined: the dataset builds or trains one by config.tokenizer) */
  tokenizer?: Tokenizer;
  /** special tokens the model learned to predict before this run (resume: the run's own record) */
  earlierTargets: readonly string[];
  /** resume: the checkpoint the run continues from */
  resumed: LoadedCheckpoint | null;
  /** init, initPartial, chat: the model folder the weights come from */
  initFolder: ModelFolder | null;
  resumeChanges?: StartInfo["resumeChanges"];
  /** a resumed run saved before the config had gradShards: the shards it continues with */
  legacyShards: number | null;
  chatTokensAdded?: string[];
}

/** A run ready for its first step. */
interface RunSetup {
  config: TrainConfig;
  dataset: Dataset;
  model: GPT;
  /** what trains: the whole model, or a LoRA adapter on it */
  trained: Trained;
  optimizer: AdamW;
  resumed: LoadedCheckpoint | null;
  resumeChanges: StartInfo["resumeChanges"];
  initReport: StartInfo["initReport"];
  chatTokensAdded: string[] | undefined;
  piecesAdded: readonly string[] | undefined;
  specialTargets: readonly string[];
  legacyShards: number | null;
}

/** Resolve the model and optimizer to start from: fresh, init, initPartial, chat or resume. */
export function setUp(config: TrainConfig, resume: boolean, overrides: Partial<TrainConfig>, events: TrainEvents): RunSetup {
  const start = resume ? resumeStart(config, overrides) : newRunStart(config, overrides);
  return buildRun(start, resume, overrides, events);
}

/** resume: the run's saved settings, with only the RESUME_OVERRIDABLE ones changed. */
function resumeStart(requested: TrainConfig, overrides: Partial<TrainConfig>): Start {
  const resumed = loadLatestCheckpoint(requested.out);
  let legacyShards: number | null = null;
  let saved = resumed.state.config as unknown as TrainConfig;
  if (saved.gradShards === undefined) {
    // saved before runs recorded their shards: its threads decided (see legacyShards in the trainer)
    const asked = overrides.gradShards ?? defaultTrainConfig.gradShards;
    saved = { ...saved, gradShards: saved.batchSize % asked === 0 ? asked : 1 };
    legacyShards = saved.gradShards;
  }
  // saved before runs could train LoRA adapters: a run of the whole model
  saved = { ...LORA_OFF, ...saved };
  for (const [key, value] of Object.entries(overrides) as [keyof TrainConfig, unknown][]) {
    if (RESUME_OVERRIDABLE.includes(key) || key === "out") continue;
    // the same tokenizer folder named from another folder is the same one
    if (key === "tokenizer" && typeof value === "string" && resolve(value) === resolve(String(saved[key]))) continue;
    if (JSON.stringify(saved[key]) !== JSON.stringify(value)) {
      fail(
        said`${setting("resume")} continues the run in ${requested.out} with its saved settings; ${setting(key)} was ${JSON.stringify(saved[key])}, not ${JSON.stringify(value)} (start a new ${setting("out")} to change it)`,
      );
    }
  }
  const allowed: Partial<TrainConfig> = Object.fromEntries(
    Object.entries(overrides).filter(([k]) => RESUME_OVERRIDABLE.includes(k as keyof TrainConfig)),
  );
  // the run's length in the other unit replaces the saved one (epochs win when both are set)
  if (allowed.epochs !== undefined && allowed.maxSteps === undefined) allowed.maxSteps = 0;
  if (allowed.maxSteps !== undefined && allowed.epochs === undefined) allowed.epochs = 0;
  if (allowed.data !== undefined) allowed.data = resumedData(saved, allowed.data);
  const config = { ...saved, ...allowed, out: requested.out };
  const resumeChanges = RESUME_OVERRIDABLE.filter((k) => JSON.stringify(saved[k]) !== JSON.stringify(config[k])).map((k) => ({
    key: k,
    from: saved[k],
    to: config[k],
  }));
  const tokenizer = loadTokenizer(config.out);
  const earlierTargets = trainedSpecials(readFolderInfo(config.out), tokenizer);
  return { config, tokenizer, earlierTargets, resumed, initFolder: null, resumeChanges, legacyShards };
}

/** data given on resume: text may replace text (saved absolute); the counting task stays itself */
function resumedData(saved: TrainConfig, data: string): string {
  if (saved.chat)
    fail(said`${setting("data")} does not apply with ${setting("chat")}: the conversations in ${saved.chat} are the training data`);
  const path = data !== "counting" && existsSync(data) ? resolve(data) : data;
  if (path !== saved.data && (path === "counting" || saved.data === "counting"))
    fail(
      said`${setting("resume")} cannot change ${setting("data")} between the counting task and text (the run's is ${saved.data}); start a new ${setting("out")}`,
    );
  return path;
}

/** A new run: the settings every new run resolves, then its start mode. */
function newRunStart(requested: TrainConfig, overrides: Partial<TrainConfig>): Start {
  const settings = newRunSettings(requested, overrides);
  const config = loraSettings(settings.config, overrides);
  const tokenizer = settings.tokenizer;
  if (!config.init) {
    if (config.chat)
      fail(said`${setting("chat")} fine-tunes an existing model: give ${setting("init")} DIR (a model folder to start from)`);
    return freshStart(config, tokenizer);
  }
  const init = initStart(config, overrides);
  return config.chat ? chatStart(init, overrides) : init;
}

/** Defaults and paths of a new run, and the tokenizer folder it names (if it names one). */
function newRunSettings(requested: TrainConfig, overrides: Partial<TrainConfig>): { config: TrainConfig; tokenizer?: Tokenizer } {
  let config = requested;
  let tokenizer: Tokenizer | undefined;
  if (!config.data && !config.chat) config = { ...config, data: DEFAULT_DATA };
  // paths are saved absolute, so that resume works from any folder
  if (config.data !== "counting" && existsSync(config.data)) config = { ...config, data: resolve(config.data) };
  // the default split needs a batch it divides; an odd batch is not cut (a gradShards given must divide it)
  if (overrides.gradShards === undefined && config.batchSize % config.gradShards !== 0) config = { ...config, gradShards: 1 };
  if (config.data === "counting" && !config.init) {
    // the task's numbers are words of its own vocabulary
    if (overrides.tokenizer !== undefined && overrides.tokenizer !== "word")
      fail(
        said`${setting("tokenizer")} ${overrides.tokenizer} does not apply to ${setting("data")} counting, which has its own word tokenizer`,
      );
  } else if (!isTokenizerChoice(config.tokenizer)) {
    if (config.init)
      fail(
        said`${setting("tokenizer")} ${config.tokenizer} does not apply with ${setting("init")}: the model keeps ${config.init}'s tokenizer`,
      );
    if (!hasTokenizer(tokenizerFolder(config.tokenizer)))
      fail(
        said`${setting("tokenizer")} ${config.tokenizer} is neither ${TOKENIZER_CHOICES.join(", ")} nor a folder with a tokenizer.json (or Hugging Face's vocab.json and merges.txt; make one with: minigpt tokenizer train --out DIR)`,
      );
    config = { ...config, tokenizer: resolve(tokenizerFolder(config.tokenizer)) };
    tokenizer = loadTokenizer(config.tokenizer);
  }
  return { config, tokenizer };
}

/** A fresh model: random weights, the architecture the settings give. */
function freshStart(config: TrainConfig, tokenizer: Tokenizer | undefined): Start {
  return { config, tokenizer, earlierTargets: [], resumed: null, initFolder: null, legacyShards: null };
}

/**
 * init: a model folder's weights and tokenizer, and its architecture, which a setting may not
 * contradict; initPartial: the architecture the settings give, with the folder's tensors whose
 * shapes still match (see loadPartialWeights).
 */
function initStart(requested: TrainConfig, overrides: Partial<TrainConfig>): Start {
  let config = requested;
  // said before loading the folder (whose notices would come first)
  if (config.loraRank === 0 && existsSync(join(config.init, "config.json")) && readQuantization(config.init))
    refuseQuantizedInit(config.init);
  const initFolder = loadModelFolder(config.init, undefined, "quiet");
  const tokenizer = initFolder.tokenizer;
  const earlierTargets = trainedSpecials(initFolder.info, tokenizer);
  if (overrides.tokenizer !== undefined && overrides.tokenizer !== tokenizer.kind)
    fail(
      said`${setting("tokenizer")} ${overrides.tokenizer} does not apply with ${setting("init")}: the model keeps ${config.init}'s ${tokenizer.kind} tokenizer`,
    );
  if (!config.initPartial) {
    // continuing a model: its architecture is the folder's, whatever the defaults say, and a flag
    // that asks for another one is a mistake, not something to ignore
    const m = initFolder.model.config;
    const folderValues: Partial<TrainConfig> = {
      nLayer: m.nLayer,
      nHead: m.nHead,
      nEmbd: m.nEmbd,
      nInner: m.nInner,
      activation: m.activation,
      blockSize: m.blockSize,
    };
    for (const [key, value] of Object.entries(folderValues) as [keyof TrainConfig, unknown][]) {
      const asked = overrides[key];
      if (asked === undefined || asked === value || (key === "nInner" && asked === 0)) continue;
      fail(
        said`${setting(key)} ${String(asked)} does not apply with ${setting("init")}: the model keeps ${config.init}'s ${String(value)}; to change its shape, add ${setting("initPartial")} (loads the tensors whose shapes still match)`,
      );
    }
    config = { ...config, ...folderValues };
  }
  return { config, tokenizer, earlierTargets, resumed: null, initFolder, legacyShards: null };
}

/** chat: an init start on conversations, its vocabulary given <|user|> <|assistant|> <|end|> if it lacks them (e.g. GPT-2's). */
function chatStart(init: Start, overrides: Partial<TrainConfig>): Start {
  const { config } = init;
  if (overrides.data !== undefined)
    fail(said`${setting("data")} does not apply with ${setting("chat")}: the conversations in ${config.chat} are the training data`);
  if (config.initPartial) fail(said`${setting("chat")} and ${setting("initPartial")} cannot be combined`);
  const extended = withChatTokens(init.tokenizer as Tokenizer);
  return { ...init, tokenizer: extended.tokenizer, chatTokensAdded: extended.added };
}

/** What every start shares: the dataset, the model with its starting weights, and the optimizer. */
function buildRun(start: Start, resume: boolean, overrides: Partial<TrainConfig>, events: TrainEvents): RunSetup {
  const { resumed, initFolder } = start;
  let config = start.config;
  const lora = config.loraRank > 0;
  // the model the run starts from: init's; a resumed LoRA run's base again (its checkpoints hold only the adapter)
  const base = initFolder ?? (lora && resumed ? loraBase(config) : null);
  // said here with the settings' names (makeConfig would say it with the model config's)
  if (!initFolder && config.nEmbd % config.nHead !== 0)
    fail(
      said`${setting("nEmbd")} ${config.nEmbd} must be divisible by ${setting("nHead")} ${config.nHead} (each head gets n-embd / n-head channels)`,
    );
  const dataset = loadDataset({
    data: config.data,
    blockSize: config.blockSize,
    batchSize: config.batchSize,
    tokenizer: start.tokenizer,
    tokenizerKind: isTokenizerChoice(config.tokenizer) ? config.tokenizer : "char",
    vocabSize: config.vocabSize,
    specialsAsText: config.specialsAsText,
    chat: config.chat || undefined,
    vocabulary: {
      grow: initFolder !== null,
      hint: resume
        ? said`a resumed run keeps its vocabulary; to train on this data, fine-tune from the run (adds what the data needs): ${setting("init")} ${config.out} ${setting("out")} NEW`
        : said`${setting("tokenizer")} char builds the vocabulary from the data`,
    },
    onTokenizeProgress: events.onTokenizeProgress,
    onMessage: events.onMessage,
  });
  const modelConfig =
    base && !config.initPartial
      ? {
          ...base.model.config,
          dropout: config.dropout,
          vocabSize: Math.max(base.model.config.vocabSize, dataset.tokenizer.vocabSize),
        }
      : makeConfig({
          vocabSize: dataset.tokenizer.vocabSize,
          blockSize: config.blockSize,
          nLayer: config.nLayer,
          nHead: config.nHead,
          nEmbd: config.nEmbd,
          nInner: config.nInner > 0 ? config.nInner : 4 * config.nEmbd,
          dropout: config.dropout,
          activation: config.activation,
        });
  if (dataset.batchT > modelConfig.blockSize)
    fail(said`${setting("blockSize")} ${dataset.batchT} exceeds the model's ${modelConfig.blockSize} positions`);
  config = resolvedConfig(config, {
    tokenizerKind: dataset.tokenizer.kind,
    vocabSize: dataset.tokenizer.vocabSize,
    nInner: modelConfig.nInner,
  });
  // a size asked of a tokenizer this run does not train is a mistake, not something to ignore
  const trainsTokenizer = !resume && config.tokenizer === "bpe" && !config.init;
  if (!resume && !trainsTokenizer && overrides.vocabSize !== undefined && overrides.vocabSize !== config.vocabSize)
    fail(
      said`${setting("vocabSize")} ${overrides.vocabSize} does not apply: this run's ${dataset.tokenizer.kind} tokenizer has ${config.vocabSize} tokens (${setting("vocabSize")} sizes the one ${setting("tokenizer")} bpe trains)`,
    );
  const baseVocab = base?.model.config.vocabSize ?? modelConfig.vocabSize;
  // QLoRA: the frozen base of a LoRA run from a quantized folder keeps its int8/int4 matrices, handed
  // over from the loaded folder as they are (no float copy of them is made)
  const qlora = lora && !config.initPartial && base?.quantization !== undefined && !base.lora;
  if (qlora) checkQuantizedVocabulary(modelConfig, base);
  const model = new GPT(modelConfig, config.seed, undefined, qlora ? base.model.takeQuantized() : undefined);
  let initReport: StartInfo["initReport"];
  if (resumed && !lora) {
    model.loadWeights(resumed.weights, `${resumed.dir}/model.safetensors`);
  } else if (base) {
    if (config.initPartial) initReport = loadPartialWeights(model, base);
    else loadInitWeights(model, base, lora);
    if (qlora)
      events.onMessage?.(
        `QLoRA: the base's ${quantizationLabel(base.quantization as QuantizationConfig)} weights stay quantized (eval and sampling read them); the adapter trains on their dequantized values`,
      );
    base.model.dispose();
  }
  let trained = wholeModel(model);
  if (lora) {
    trained = startLora(model, config, baseVocab);
    if (resumed) loadTrainedWeights(trained.params, resumed.weights, `${resumed.dir}/${ADAPTER_WEIGHTS}`);
  }
  const optimizer = new AdamW(trained.params, {
    lr: config.lr,
    beta1: config.beta1,
    beta2: config.beta2,
    eps: 1e-8,
    weightDecay: config.weightDecay,
  });
  if (resumed) restoreOptimizer(optimizer, resumed);
  const seen = new Set([...start.earlierTargets, ...dataset.specialTargets]);
  const specialTargets = dataset.tokenizer.specialTokens.filter((t) => seen.has(t));
  return {
    config,
    dataset,
    model,
    trained,
    optimizer,
    resumed,
    resumeChanges: start.resumeChanges,
    initReport,
    chatTokensAdded: start.chatTokensAdded,
    piecesAdded: dataset.addedPieces,
    specialTargets,
    legacyShards: start.legacyShards,
  };
}

/** train from a quantized folder without LoRA: one line saying what works */
function refuseQuantizedInit(dir: string): never {
  return fail(
    said`${dir} holds quantized weights, which train fine-tunes only with a LoRA adapter (${setting("loraRank")} r: the base stays quantized); for full training give ${setting("init")} the fp32 model it was quantized from`,
  );
}

/**
 * QLoRA: the base's matrices stay quantized; eval and sampling during the run read them with the
 * integer kernels, the tape (the adapters' backward pass) their dequantized floats
 * (nn/quantized.ts). Its embedding cannot grow, so tokens the data adds are refused.
 */
function checkQuantizedVocabulary(modelConfig: GPTConfig, base: ModelFolder): void {
  const baseVocab = base.model.config.vocabSize;
  if (modelConfig.vocabSize > baseVocab)
    fail(
      said`the data needs ${modelConfig.vocabSize - baseVocab} token(s) that the quantized model ${base.dir} does not have (its ${baseVocab}-token embedding cannot grow); fine-tune its fp32 original, or train on text its tokenizer covers`,
    );
}

/** a parameter of the init folder's model as a float tensor (a matrix it holds quantized: a float copy, gone with it) */
function initParam(initFolder: ModelFolder, name: string): Tensor | undefined {
  const m = initFolder.model;
  return m.params.get(name) ?? (m.quantized.has(name) ? m.floatWeight(name) : undefined);
}

/** init: every tensor of the folder's model (the embedding may have grown by added tokens). */
function loadInitWeights(model: GPT, initFolder: ModelFolder, lora: boolean): void {
  if (initFolder.quantization && !initFolder.lora && !lora) refuseQuantizedInit(initFolder.dir);
  for (const [name, t] of model.params) {
    const s = initParam(initFolder, name) as Tensor;
    if (s.size === t.size) backend().copy(t.storage, s.storage, t.size);
    else initNewEmbeddingRows(t, s);
  }
}

/** initPartial: the folder's tensors whose shapes still match; which were loaded, skipped and new. */
function loadPartialWeights(model: GPT, initFolder: ModelFolder): NonNullable<StartInfo["initReport"]> {
  const initReport = { loaded: [] as string[], skipped: [] as string[], fresh: [] as string[] };
  for (const [name, t] of model.params) {
    const s = initParam(initFolder, name);
    if (!s) initReport.fresh.push(name);
    else if (name === "transformer.wte.weight" && s.shape[1] === t.shape[1] && s.size < t.size) {
      // the vocabulary grew (tokens the data needs): the old rows, and new ones as for init
      initNewEmbeddingRows(t, s);
      initReport.loaded.push(name);
    } else if (s.shape.join() !== t.shape.join()) initReport.skipped.push(`${name} [${s.shape.join(", ")}] -> [${t.shape.join(", ")}]`);
    else {
      backend().copy(t.storage, s.storage, t.size);
      initReport.loaded.push(name);
    }
  }
  return initReport;
}

/** the LoRA settings of a run that trains the whole model (runs saved before LoRA training existed) */
const LORA_OFF: Pick<TrainConfig, "loraRank" | "loraAlpha" | "loraDropout" | "loraTargets"> = {
  loraRank: 0,
  loraAlpha: defaultTrainConfig.loraAlpha,
  loraDropout: defaultTrainConfig.loraDropout,
  loraTargets: defaultTrainConfig.loraTargets,
};

/**
 * A new run's LoRA settings, checked (an adapter needs a model to adapt, the other settings an
 * adapter); a LoRA run names its base by an absolute path, so that resume finds it from any folder.
 */
function loraSettings(config: TrainConfig, overrides: Partial<TrainConfig>): TrainConfig {
  if (overrides.loraRank !== undefined && overrides.loraRank < 1)
    fail(
      said`${setting("loraRank")} ${overrides.loraRank}: an adapter's rank must be at least 1 (4 to 16 is usual; leave it out to train the whole model)`,
    );
  if (config.loraRank === 0) {
    const given = (["loraAlpha", "loraDropout", "loraTargets"] as const).find((k) => overrides[k] !== undefined);
    if (given) fail(said`${setting(given)} applies to LoRA training: give ${setting("loraRank")} too (e.g. 8)`);
    return config;
  }
  if (!config.init)
    fail(
      said`${setting("loraRank")} trains an adapter on an existing model: give ${setting("init")} DIR (the base model; on random weights an adapter would only learn less than training the whole model)`,
    );
  if (config.initPartial)
    fail(said`${setting("loraRank")} and ${setting("initPartial")} cannot be combined: a LoRA adapter keeps its base model's shape`);
  return { ...config, init: resolve(config.init) };
}

/** the base model of a resumed LoRA run: its init folder, which must still be there */
function loraBase(config: TrainConfig): ModelFolder {
  if (!existsSync(config.init))
    fail(
      said`${config.out} is a LoRA adapter on the model ${config.init}, which is not there any more; put that model folder back to resume`,
    );
  return loadModelFolder(config.init, undefined, "quiet");
}

/**
 * The run's LoRA adapter on `model` (frozen): on config.loraTargets, A drawn from the run's seed, B
 * zero; the rows of wte after the base's `baseVocab` (tokens this fine-tune added) train with it.
 */
function startLora(model: GPT, config: TrainConfig, baseVocab: number): Trained {
  const targets = config.loraTargets
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
  if (targets.length === 0) fail(said`${setting("loraTargets")} names no layer: give e.g. c_attn`);
  for (const t of targets)
    if (loraModules(model.config, [t]).length === 0)
      fail(
        said`${setting("loraTargets")}: ${t} matches no layer of the model; GPT-2's are attn.c_attn, attn.c_proj, mlp.c_fc and mlp.c_proj, and a name matches those it ends (c_proj: both)`,
      );
  const tokens = Array.from({ length: model.config.vocabSize - baseVocab }, (_, i) => baseVocab + i);
  const config_ = {
    rank: config.loraRank,
    alpha: config.loraAlpha,
    dropout: config.loraDropout,
    targets,
    base: config.init,
    trainableTokens: tokens,
  };
  return loraAdapter(model, attachLora(model, config_, new Rng(config.seed)), config.init);
}
