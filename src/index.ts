/**
 * minigpt's public API. The CLI (src/cli/) and any other consumer import only from here. It is
 * src/browser.ts (what runs anywhere) plus the parts that need Node: files and model folders, text
 * and chat datasets, the trainer (which uses browser.ts's DataParallel for its threads).
 */

export { formatBytes } from "./analyze/analyze.js";
export { analyzeModel, readHistory } from "./analyze/folder.js";
export * from "./browser.js";
export { loadChatDataset } from "./data/chat-dataset.js";
export { type Dataset, loadDataset, TOKEN_CACHE_MIN_BYTES, textSplits, VAL_FRACTION } from "./data/dataset.js";
export {
  BUILTIN_TEXTS,
  describeFolderSource,
  findTextFiles,
  loadTextSource,
  readTextFile,
  type TextFiles,
  type TextSource,
} from "./data/text.js";
export { sourceBytes, textStart } from "./data/text-chunks.js";
export {
  openTokenCache,
  type TokenCache,
  type TokenCacheHeader,
  type TokenCacheOptions,
  type TokenizeProgress,
  tokenCacheDir,
  tokenizerFromTextFiles,
} from "./data/token-cache.js";
export { locatePiece, unencodable } from "./data/vocabulary.js";
export { failFs, isOutOfMemory, outOfMemory, withFs } from "./errors.js";
export { writeFileAtomic } from "./io/atomic.js";
export {
  checkpointNames,
  enclosingModelFolder,
  hasTokenizer,
  isModelFolder,
  loadModelFolder,
  loadModelTokenizer,
  loadTokenizer,
  locateModel,
  type ModelFolder,
  type ModelLocation,
  type QuantizedUse,
  readFolderInfo,
  readModelZip,
  saveTokenizer,
  type TrainingData,
  tokenizerFolder,
  trainingData,
} from "./io/folder.js";
export { loadModel, readModelConfig, readQuantization, saveModel, saveQuantizedModel } from "./io/hf.js";
export { type FolderLock, lockFolder, makeFolder } from "./io/lock.js";
export { hasLoraAdapter, loraBaseFolder, readLoraAdapter, readLoraConfig, writeLoraAdapter } from "./io/lora-folder.js";
export { writeModelFolder } from "./io/new-folder.js";
export { setAsideFolder } from "./io/out-folder.js";
export { readSafetensorsFile, writeSafetensorsFile } from "./io/safetensors-file.js";
export { gpuDevicePresent, type ProbeResult, probeWebGpu } from "./kernels/webgpu/probe.js";
export { ApiError } from "./server/api-error.js";
export type { ContextOverflow, ModelInfo } from "./server/engine.js";
export { type RunningServer, type ServerOptions, startServer } from "./server/server.js";
export {
  estimateLoss,
  estimateLossAsync,
  type StartInfo,
  type StepMetrics,
  type TrainEvents,
  type TrainOptions,
  type TrainResult,
  train,
} from "./train/trainer.js";
