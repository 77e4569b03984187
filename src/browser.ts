/**
 * minigpt's public API without Node: everything that runs in a browser as it is (no file system,
 * no worker_threads): tensors and autograd, the kernels (wasm with Web Workers, ref, or webgpu
 * through navigator.gpu), the model, AdamW, tokenizers, sampling, the KV cache, the chat template
 * and session, analysis and the learning view, safetensors bytes, data-parallel threads (Web Workers
 * on a cross-origin-isolated page). src/index.ts is this plus the Node parts (files, model folders,
 * datasets, the trainer). tests/browser/model.ts runs it in Chromium.
 */

export {
  type ActivationFigures,
  type AnalyzeOptions,
  activationFloats,
  analyzeConfig,
  analyzeTensors,
  BYTES_PER_FLOAT,
  closedFormParameterCount,
  type DiskFigures,
  diskFigures,
  formatAnalysis,
  formatBytes,
  formatFlops,
  type ModelAnalysis,
  type PackedMatrix,
  parameterFigures,
  quantizedFigures,
} from "./analyze/analyze.js";
export {
  arrayStream,
  type Batch,
  BatchSampler,
  evalWindows,
  readEvalWindows,
  SequenceSampler,
  splitStream,
  splitTokens,
  type TokenStream,
} from "./data/batches.js";
export {
  CHAT_ASSISTANT,
  CHAT_END,
  CHAT_SPECIAL_TOKENS,
  CHAT_SYSTEM,
  CHAT_TEMPLATE_TOKENS,
  CHAT_USER,
  type ChatMessage,
  type ChatRole,
  type ChatTokenIds,
  chatExample,
  chatPrompt,
  chatTokenIds,
  encodeChat,
  parseChatJsonl,
  requireChatTokens,
  requireSystemToken,
  withChatTokens,
} from "./data/chat.js";
export { countingSequence, countingStarts, patternAccuracy } from "./data/counting.js";
export { fail, MinigptError } from "./errors.js";
export { type AttentionPageData, attentionHtml, decodeAttention, encodeAttention } from "./explain/attention-html.js";
export {
  attentionWeights,
  type ExplainLevel,
  explainTrainingStep,
  explainTrainingStepAsync,
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
  traceForwardAsync,
} from "./explain/explain.js";
export { type ChatEvent, type ChatOptions, ChatSession } from "./generate/chat.js";
export {
  type DecodedToken,
  Decoder,
  type GenerateOptions,
  generate,
  generateAsync,
  generateTokens,
  generateTokensAsync,
  nextLogitsUncached,
  nextLogitsUncachedAsync,
  startPrompt,
  streamTokens,
  streamTokensAsync,
  type TokenSink,
} from "./generate/generate.js";
export { KVCache } from "./generate/kvcache.js";
export { argmax, nextTokenProbs, type SamplingOptions, sampleToken, withSuppressed } from "./generate/sample.js";
export { TextStreamer } from "./generate/stream.js";
export { neverLearnedToEndReplies, specialIdsExcept, trainedSpecials, unseenSpecialIds } from "./generate/suppress.js";
export { type GenerateTextOptions, generateText, generateTextAsync, StopString } from "./generate/text.js";
export {
  type LoraAdapter,
  type LoraConfig,
  loraAdapterFromSafetensors,
  loraAdapterTensors,
  loraConfigFromJson,
  loraConfigToJson,
  loraModules,
  mergeLoraLayer,
} from "./io/lora.js";
export {
  type LoadedModel,
  loadModelFiles,
  MODEL_FILE_NAMES,
  type ModelFiles,
  modelFiles,
  modelFilesAsync,
  modelSafetensorsBytes,
  tokenizerFromFiles,
  unzipModelFiles,
  zipModelFiles,
} from "./io/model-zip.js";
export {
  DEFAULT_GROUP_SIZE,
  dequantizeMatrix,
  type QuantBits,
  type QuantizationConfig,
  type QuantizedMatrix,
  quantizationLabel,
  quantizeMatrix,
  weightsFromQuantizedSafetensors,
} from "./io/quantize.js";
export { readSafetensors, type SafeTensor, type SafetensorsFile, toInt32, writeSafetensors } from "./io/safetensors.js";
export { weightsFromSafetensors } from "./io/weights.js";
export { type Backend, type BackendName, type BackendOptions, backend, type FloatArray, refBackend, useBackend } from "./kernels/index.js";
export { type AdapterSummary, findAdapter } from "./kernels/webgpu/device.js";
export { AttentionCache } from "./nn/attention-cache.js";
export { type Activation, configFromHuggingFace, configToHuggingFace, type GPTConfig, makeConfig } from "./nn/config.js";
export { DecodeBuffers, type DecodeRow } from "./nn/decode-step.js";
export { type ForwardOptions, type ForwardResult, GPT, parameterShapes } from "./nn/gpt.js";
export { Linear } from "./nn/linear.js";
export { attachLora, type LoraAttachment, LoraLinear, loraAdapterOf, mergeLora } from "./nn/lora.js";
export * as ops from "./ops/index.js";
export { AdamW, type AdamWOptions, clipForUpdate, clipGradNorm, clipGradNormAsync, defaultAdamW } from "./optim/adamw.js";
export { learningRate, replanSchedule, type ScheduleOptions } from "./optim/schedule.js";
export { Rng, type RngState } from "./random.js";
export { heap, WasmHeap } from "./tensor/memory.js";
export { GpuReadError, isGradEnabled, noGrad, scope, Tensor } from "./tensor/tensor.js";
export {
  BPE_SPECIAL_TOKENS,
  ByteLevelBpe,
  CharTokenizer,
  type CharTokenizerOptions,
  countingTokenizer,
  createTokenizer,
  type DecodeOptions,
  describeChar,
  type EncodeOptions,
  gpt2Tokenizer,
  type Tokenizer,
  type TokenizerKind,
  tokenizerConfigJson,
  tokenizerFromHuggingFaceJson,
  trainBpe,
  WordTokenizer,
} from "./tokenizer/index.js";
export {
  configKey,
  DEFAULT_DATA,
  defaultTrainConfig,
  flagName,
  isTokenizerChoice,
  type RunFacts,
  resolvedConfig,
  TOKENIZER_CHOICES,
  type TokenizerChoice,
  type TrainConfig,
} from "./train/config.js";
export {
  countingAccuracy,
  countingAccuracyAsync,
  type EvalOptions,
  type EvalResult,
  type EvalSplit,
  evaluateCounting,
  evaluateCountingAsync,
  evaluateIds,
  evaluateIdsAsync,
  evaluateWindows,
  evaluateWindowsAsync,
  sampleWindowIndices,
  sampleWindows,
  targetBytes,
} from "./train/evaluate.js";
export { DataParallel, type DataParallelOptions } from "./train/parallel.js";
export { lossPlotSvg } from "./train/plot.js";
export { sparkline } from "./train/sparkline.js";
export { createStepper, type Stepper } from "./train/stepper.js";
export { type Message, Said, said, setting } from "./wording.js";
