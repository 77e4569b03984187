// The messages between the page (main.ts) and the model worker (worker.ts). The page never touches a
// model: it sends requests and draws what comes back, so training never freezes it.
import type { GPTConfig } from "minigpt-ts/browser";

export { PRESETS, type Preset } from "./presets.js";

export type TokenizerChoice = "char" | "bpe";

export interface TrainRequest {
  text: string;
  /** what the text is, for the run's label ("pasted text", "notes.txt", "moby-dick") */
  source: string;
  tokenizer: TokenizerChoice;
  /** BPE vocabulary size */
  vocabSize: number;
  preset: number;
  /**
   * train the model loaded in Models further (its weights, tokenizer and shape; batch and learning
   * rate as `minigpt train --init DIR` by default) instead of a new model of PRESETS[preset]
   */
  continueLoaded?: boolean;
  /** the loaded model's config and name (the worker fills them in, so a saved run restores without the model) */
  base?: { label: string; config: GPTConfig };
  maxSteps: number;
  sampleEvery: number;
  seed: number;
}

export interface SamplingSettings {
  temperature: number;
  topK: number;
  topP: number;
  maxTokens: number;
  seed: number;
}

/** the backend a page asks for (web/src/worker/engine.ts): "auto" takes WebGPU only on a hardware GPU adapter */
export type BackendChoice = "auto" | "wasm" | "webgpu";

/** the backend the worker runs models on */
export type Engine =
  | { backend: "webgpu"; adapter: string; software: boolean }
  /** notGpu: why not WebGPU (one phrase) */
  | { backend: "wasm"; simd: string; threads: number; notGpu: string };

export type ToWorker =
  | { type: "hello"; backend: BackendChoice }
  | { type: "estimate"; text: string; tokenizer: TokenizerChoice; vocabSize: number }
  | { type: "train"; request: TrainRequest }
  | { type: "pause" }
  | { type: "resume" }
  | { type: "stop" }
  | { type: "discard" }
  | { type: "generate"; prompt: string; settings: SamplingSettings; explain: boolean }
  | { type: "stopGenerate" }
  /** a user message to a chat-tuned model (the chat template, as `minigpt chat`); stopGenerate stops the reply */
  | { type: "chat"; text: string; system: string; settings: SamplingSettings }
  | { type: "chatReset" }
  | { type: "inspect"; prompt: string }
  | { type: "download" }
  | { type: "load"; name: string; files: Record<string, Uint8Array> | null; zip: Uint8Array | null };

/** one point of the chart */
export interface Metric {
  step: number;
  loss: number;
  valLoss: number | null;
  lr: number;
  tokensPerS: number;
}

export interface PresetEstimate {
  parameters: number;
  /** bytes to train it (weights, gradients, AdamW moments, activations) */
  trainingBytes: number;
  /** expected tokens/s on this machine (estimated from the FLOPs of a step) */
  tokensPerS: number;
}

export type RunStatus = "idle" | "preparing" | "training" | "paused" | "stopped" | "done";

export interface RunSummary {
  status: RunStatus;
  label: string;
  step: number;
  maxSteps: number;
  parameters: number;
  tokenizer: string;
  vocabSize: number;
  metrics: Metric[];
  samples: { step: number; text: string }[];
  /** seconds to the end at the current speed */
  etaS: number | null;
  savedAt: number | null;
}

export interface TopToken {
  token: string;
  p: number;
}

export interface InspectResult {
  tokens: { id: number; text: string }[];
  /** the prompt's tokens before `tokens`, left out: the model sees its context's worth, the last ones */
  leftOut: number;
  /** [layer][head] row-major T x T, T = tokens.length */
  attention: number[][][];
  nLayer: number;
  nHead: number;
  /** the top-5 next tokens after the prompt */
  next: TopToken[];
  analysis: string;
  groups: { name: string; count: number; percent: number }[];
}

export type FromWorker =
  | { type: "ready"; isolated: boolean; engine: Engine }
  | { type: "estimates"; presets: PresetEstimate[]; vocabSize: number; tokens: number }
  | { type: "run"; run: RunSummary }
  /** the steps since the last such message (batched: one message per METRICS_MS, not one per step) */
  | { type: "metrics"; metrics: Metric[]; step: number; etaS: number | null }
  | { type: "sample"; step: number; text: string }
  | { type: "saved"; at: number }
  /** the model generate and inspect use now; `loaded`: from a file (Train can continue it), else the run's */
  | {
      type: "model";
      label: string;
      parameters: number;
      vocabSize: number;
      loaded: boolean;
      /** it is chat-tuned (the chat tokens <|user|> <|assistant|> <|end|>, and it learned to end a reply); it has <|system|> */
      chat: boolean;
      system: boolean;
    }
  /** reply text as it streams, or a note about the message (characters left out, old turns dropped) */
  | { type: "chatDelta"; text: string }
  | { type: "chatNotice"; text: string }
  /** the reply ended: at <|end|>, at the token limit, or stopped (then not kept in the conversation) */
  | { type: "chatDone"; reason: "end" | "length" | "stopped" }
  /** a token's text; with explain, the five likeliest tokens of its step and the one drawn (`chosen`) */
  | { type: "delta"; text: string; top: TopToken[] | null; chosen: string | null }
  | { type: "generated"; reason: "length" | "stopped" | "end" }
  | { type: "inspected"; result: InspectResult }
  | { type: "zip"; name: string; bytes: Uint8Array }
  | { type: "error"; message: string; context: string };
