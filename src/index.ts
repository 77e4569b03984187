/**
 * minigpt's public API. The CLI (src/cli/) and any other consumer import only from here.
 */

export {
  type ActivationFigures,
  type AnalyzeOptions,
  activationFloats,
  analyzeConfig,
  analyzeModel,
  BYTES_PER_FLOAT,
  closedFormParameterCount,
  formatAnalysis,
  formatBytes,
  formatFlops,
  type ModelAnalysis,
  parameterFigures,
  readHistory,
} from "./analyze/analyze.js";
export { type Batch, BatchSampler, evalWindows, SequenceSampler, splitTokens } from "./data/batches.js";
export {
  CHAT_ASSISTANT,
  CHAT_END,
  CHAT_SPECIAL_TOKENS,
  CHAT_USER,
  type ChatMessage,
  type ChatRole,
  type ChatTokenIds,
  chatExample,
  chatPrompt,
  chatTokenIds,
  encodeChat,
  loadChatDataset,
  parseChatJsonl,
  requireChatTokens,
  withChatTokens,
} from "./data/chat.js";
export { countingSequence, countingStarts, patternAccuracy } from "./data/counting.js";
export { type Dataset, loadDataset } from "./data/dataset.js";
export { BUILTIN_TEXTS, loadTextSource, type TextSource } from "./data/text.js";
export { fail, MinigptError } from "./errors.js";
export {
  attentionHtml,
  attentionWeights,
  type ExplainLevel,
  explainTrainingStep,
  type ForwardTrace,
  fewValues,
  formatTop,
  formatTrace,
  heatmap,
  type StageRecord,
  type StepExplanation,
  shade,
  tokenLabel,
  topTokens,
  traceForward,
} from "./explain/explain.js";
export { type ChatEvent, type ChatOptions, ChatSession } from "./generate/chat.js";
export { type GenerateOptions, generate, generateTokens, nextLogitsUncached } from "./generate/generate.js";
export { KVCache } from "./generate/kvcache.js";
export { argmax, nextTokenProbs, type SamplingOptions, sampleToken, withSuppressed } from "./generate/sample.js";
export { writeFileAtomic } from "./io/atomic.js";
export {
  loadModelFolder,
  loadTokenizer,
  type ModelFolder,
  readFolderInfo,
  saveTokenizer,
  specialIdsExcept,
  unseenSpecialIds,
} from "./io/folder.js";
export { loadModel, readModelConfig, saveModel } from "./io/hf.js";
export { readSafetensors, writeSafetensors } from "./io/safetensors.js";
export { readSafetensorsFile, writeSafetensorsFile } from "./io/safetensors-file.js";
export { type Backend, type BackendName, type BackendOptions, backend, type FloatArray, refBackend, useBackend } from "./kernels/index.js";
export { type Activation, configFromHuggingFace, configToHuggingFace, type GPTConfig, makeConfig } from "./nn/config.js";
export { type ForwardOptions, type ForwardResult, GPT, parameterShapes } from "./nn/gpt.js";
export * as ops from "./ops/index.js";
export { AdamW, type AdamWOptions, clipGradNorm, defaultAdamW } from "./optim/adamw.js";
export { learningRate, type ScheduleOptions } from "./optim/schedule.js";
export { Rng, type RngState } from "./random.js";
export { heap, WasmHeap } from "./tensor/memory.js";
export { isGradEnabled, noGrad, scope, Tensor } from "./tensor/tensor.js";
export {
  ByteLevelBpe,
  CharTokenizer,
  countingTokenizer,
  createTokenizer,
  type EncodeOptions,
  gpt2Tokenizer,
  type Tokenizer,
  type TokenizerKind,
  tokenizerConfigJson,
  tokenizerFromHuggingFaceJson,
  trainBpe,
  WordTokenizer,
} from "./tokenizer/index.js";
export { defaultTrainConfig, type TokenizerChoice, type TrainConfig } from "./train/config.js";
export { type EvalResult, evaluateCounting, evaluateIds } from "./train/evaluate.js";
export { DataParallel } from "./train/parallel.js";
export { lossPlotSvg } from "./train/plot.js";
export { sparkline } from "./train/sparkline.js";
export {
  countingAccuracy,
  estimateLoss,
  type StartInfo,
  type StepMetrics,
  type TrainEvents,
  type TrainResult,
  train,
} from "./train/trainer.js";
