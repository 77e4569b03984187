import { MinigptError } from "../errors.js";
import type { DecodeRow } from "../nn/decode-step.js";
import type { GPT } from "../nn/gpt.js";
import { Rng } from "../random.js";
import { noGrad, scope, Tensor } from "../tensor/tensor.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { KVCache } from "./kvcache.js";
import { defaultSampling, type SamplingOptions, sampleToken, withSuppressed } from "./sample.js";

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  seed: number;
  /** use the KV cache (default); false runs the whole window through the model for every token */
  cache: boolean;
  /** token ids that end generation (not emitted), e.g. <|end|> or <|endoftext|> */
  stopIds: readonly number[];
  /**
   * token ids never sampled: the special tokens the model was never trained to predict (see
   * unseenSpecialIds), whose logits are noise the loss never pushed down
   */
  suppressIds: readonly number[];
}

export const defaultGenerate: GenerateOptions = {
  ...defaultSampling,
  maxNewTokens: 200,
  seed: 1337,
  cache: true,
  stopIds: [],
  suppressIds: [],
};

/** Logits (V) of the next token after `window` (≤ blockSize ids), without a cache. */
export function nextLogitsUncached(model: GPT, window: readonly number[]): Float32Array {
  const logits = windowLogits(model, window);
  try {
    const V = model.config.vocabSize;
    return logits.data.slice((window.length - 1) * V, window.length * V);
  } finally {
    logits.dispose();
  }
}

/** nextLogitsUncached on any backend, read back asynchronously */
export function nextLogitsUncachedAsync(model: GPT, window: readonly number[]): Promise<Float32Array> {
  const logits = windowLogits(model, window);
  const V = model.config.vocabSize;
  const last = logits.read((window.length - 1) * V, V); // ordered before its storage is reused
  logits.dispose();
  return last;
}

/** the logits (1,T,V) of every position of `window`: a tensor the caller disposes */
function windowLogits(model: GPT, window: readonly number[]): Tensor {
  return noGrad(() => scope(() => model.forward(Tensor.ints(window, [1, window.length])).logits));
}

/**
 * One sequence being decoded: the prompt, its KV cache and random stream. Each step() samples one
 * token, so a caller can interleave many sequences (the server's worker decodes its requests in
 * turn) or stream them one at a time (generateTokens). The model sees at most the last blockSize
 * tokens (nanoGPT's semantics).
 */
export class Decoder {
  readonly ids: number[];
  /** how many tokens step() has produced */
  produced = 0;
  /** true once a stop id was drawn or maxNewTokens were produced */
  done = false;
  private readonly o: GenerateOptions;
  private readonly rng: Rng;
  private readonly cache: KVCache | null;

  constructor(
    readonly model: GPT,
    prompt: readonly number[],
    options: Partial<GenerateOptions> = {},
  ) {
    this.o = { ...defaultGenerate, ...options };
    if (prompt.length === 0) throw new MinigptError('the prompt is empty: give at least one token (e.g. --prompt "\\n")');
    this.rng = new Rng(this.o.seed);
    this.ids = [...prompt];
    this.cache = this.o.cache ? new KVCache(model) : null;
  }

  /**
   * The next token and the raw logits (V) it was drawn from (a view, valid until the next step);
   * null when the sequence is done (a stop id drawn, which is not emitted, or maxNewTokens reached).
   */
  step(): DecodedToken | null {
    if (this.finished()) return null;
    const feed = this.feed();
    return this.take(this.cache ? this.cache.appendView(feed) : nextLogitsUncached(this.model, feed));
  }

  /**
   * step() on any backend: the model's kernels are recorded at once and the logits read back
   * asynchronously (on a GPU, the one readback of a token); sampling is on the CPU. The returned
   * logits are a copy.
   */
  async stepAsync(): Promise<DecodedToken | null> {
    if (this.finished()) return null;
    const feed = this.feed();
    return this.take(await (this.cache ? this.cache.appendAsync(feed) : nextLogitsUncachedAsync(this.model, feed)));
  }

  /**
   * The ids the next step runs through the model: with the cache, those after its cached positions
   * (the whole window, after emptying it, on the first step or once the window slid past the block
   * size); without, the whole window.
   */
  private feed(): number[] {
    const T = this.model.config.blockSize;
    const { cache, ids } = this;
    if (!cache) return ids.slice(-T);
    if (cache.length > 0 && ids.length <= T) return ids.slice(cache.length);
    cache.reset();
    return ids.slice(-T);
  }

  /**
   * For a step shared with other sequences (GPT.decode of several rows: the server's batch): the
   * rows this sequence feeds (its next token, or the next at most `limit` tokens of its prompt, the
   * last of which wants logits only once the prompt is all in), or null when its next step cannot
   * be shared (done, past the block size, no cache): then step() does it alone. After the shared
   * decode, stepWith(the rows' count, the last row's logits or null) finishes the step as step()
   * would have.
   */
  decodeRows(limit: number): DecodeRow[] | null {
    const { cache, ids } = this;
    if (this.finished() || !cache || ids.length > this.model.config.blockSize) return null;
    const n = Math.min(limit, ids.length - cache.length);
    if (n < 1) return null;
    return cache.decodeRows(ids.slice(cache.length, cache.length + n), cache.length + n === ids.length);
  }

  /**
   * The step after a shared decode of decodeRows' `n` rows: `logits` (V) are its last row's, or
   * null when they were part of the prompt only; then there is no token yet (undefined).
   */
  stepWith(n: number, logits: Float32Array | null): DecodedToken | null | undefined {
    (this.cache as KVCache).advance(n);
    return logits ? this.take(logits) : undefined;
  }

  private finished(): boolean {
    if (this.done || this.produced >= this.o.maxNewTokens) this.done = true;
    return this.done;
  }

  /** sample the next token from `logits` and append it (a stop id ends the sequence instead) */
  private take(logits: Float32Array): DecodedToken | null {
    const next = sampleToken(withSuppressed(logits, this.o.suppressIds), this.o, this.rng);
    if (this.o.stopIds.includes(next)) {
      this.done = true;
      return null;
    }
    this.ids.push(next);
    this.produced++;
    return { id: next, logits };
  }

  /** frees the KV cache (the decoder cannot step after this) */
  dispose(): void {
    this.done = true;
    this.cache?.dispose();
  }
}

/** a step's token and the raw logits (V) it was drawn from */
export interface DecodedToken {
  id: number;
  logits: Float32Array;
}

/**
 * What a streamed generation makes of its new tokens (the ids themselves, text ended by a stop
 * string, a chat turn's events, the playground's text with each token's top candidates): push gives
 * what to yield for each token and may end the generation early (`stopped`); end() gives what is
 * left once the model has stopped.
 */
export interface TokenSink<T> {
  /** `token.logits` is valid only during the call (see Decoder.step) */
  push(token: DecodedToken): readonly T[];
  readonly stopped: boolean;
  end(): readonly T[];
}

/**
 * The generation loop's one step, shared by streamTokens and streamTokensAsync (they differ only in
 * how the decoder's step arrives): what to yield after `step` (null: the model stopped), and
 * whether more steps follow.
 */
function sinkStep<T>(sink: TokenSink<T>, step: DecodedToken | null): { out: readonly T[]; more: boolean } {
  if (!step) return { out: sink.end(), more: false };
  const out = sink.push(step);
  return { out, more: !sink.stopped };
}

/**
 * Sample up to maxNewTokens after `prompt` and yield what `sink` makes of each new token as soon as
 * it exists (streaming). The model sees at most the last blockSize tokens (nanoGPT's semantics).
 */
export function* streamTokens<T>(
  model: GPT,
  prompt: readonly number[],
  options: Partial<GenerateOptions>,
  sink: TokenSink<T>,
): Generator<T> {
  const decoder = new Decoder(model, prompt, options);
  try {
    for (let more = true; more; ) {
      const step = sinkStep(sink, decoder.step());
      yield* step.out;
      more = step.more;
    }
  } finally {
    decoder.dispose();
  }
}

/**
 * streamTokens on any backend, the GPU's included: each token's logits are read back
 * (asynchronously, once per token) and sampled before its step. Same output as streamTokens on the
 * same backend.
 */
export async function* streamTokensAsync<T>(
  model: GPT,
  prompt: readonly number[],
  options: Partial<GenerateOptions>,
  sink: TokenSink<T>,
): AsyncGenerator<T> {
  const decoder = new Decoder(model, prompt, options);
  try {
    for (let more = true; more; ) {
      const step = sinkStep(sink, await decoder.stepAsync());
      yield* step.out;
      more = step.more;
    }
  } finally {
    decoder.dispose();
  }
}

/** the sink of a plain generation: every new token id */
const tokenIds: TokenSink<number> = { push: (token) => [token.id], stopped: false, end: () => [] };

/**
 * Sample up to maxNewTokens after `prompt`, yielding each new token id as soon as it exists
 * (streaming). The model sees at most the last blockSize tokens (nanoGPT's semantics).
 */
export function generateTokens(model: GPT, prompt: readonly number[], options: Partial<GenerateOptions> = {}): Generator<number> {
  return streamTokens(model, prompt, options, tokenIds);
}

export function generate(model: GPT, prompt: readonly number[], options: Partial<GenerateOptions> = {}): number[] {
  return [...generateTokens(model, prompt, options)];
}

/**
 * generateTokens on any backend, the GPU's included (see streamTokensAsync). Same tokens as
 * generateTokens on the same backend.
 */
export function generateTokensAsync(model: GPT, prompt: readonly number[], options: Partial<GenerateOptions> = {}): AsyncGenerator<number> {
  return streamTokensAsync(model, prompt, options, tokenIds);
}

/** generate on any backend, the GPU's included (see generateTokensAsync) */
export async function generateAsync(model: GPT, prompt: readonly number[], options: Partial<GenerateOptions> = {}): Promise<number[]> {
  const ids: number[] = [];
  for await (const id of generateTokensAsync(model, prompt, options)) ids.push(id);
  return ids;
}

/**
 * A prompt for generating from nothing: a newline, where texts and paragraphs start; when the
 * vocabulary has none (a character model trained on a single line), a space, else its first
 * ordinary token. `text` is what the prompt decodes to.
 */
export function startPrompt(tokenizer: Tokenizer): { ids: number[]; text: string } {
  for (const text of ["\n", " "]) {
    try {
      const ids = tokenizer.encode(text, { specialsAsText: true });
      if (ids.length > 0) return { ids, text };
    } catch (e) {
      // a character vocabulary without this character: try the next
      if (!(e instanceof MinigptError)) throw e;
    }
  }
  const specials = new Set(tokenizer.specialTokens.map((s) => tokenizer.specialTokenId(s)));
  for (let id = 0; id < tokenizer.vocabSize; id++) if (!specials.has(id)) return { ids: [id], text: tokenizer.decode([id]) };
  return { ids: [0], text: tokenizer.decode([0]) };
}
