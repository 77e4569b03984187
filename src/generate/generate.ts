import { MinigptError } from "../errors.js";
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
  return noGrad(() =>
    scope(() => {
      const { logits } = model.forward(Tensor.ints(window, [1, window.length]));
      const V = model.config.vocabSize;
      return logits.data.slice((window.length - 1) * V, window.length * V);
    }),
  );
}

/**
 * Sample up to maxNewTokens after `prompt`, yielding each new token id as soon as it exists
 * (streaming). The model sees at most the last blockSize tokens (nanoGPT's semantics).
 */
export function* generateTokens(model: GPT, prompt: readonly number[], options: Partial<GenerateOptions> = {}): Generator<number> {
  const o = { ...defaultGenerate, ...options };
  if (prompt.length === 0) throw new MinigptError('the prompt is empty: give at least one token (e.g. --prompt "\\n")');
  const T = model.config.blockSize;
  const rng = new Rng(o.seed);
  const ids = [...prompt];
  const cache = o.cache ? new KVCache(model) : null;
  try {
    for (let n = 0; n < o.maxNewTokens; n++) {
      let logits: Float32Array;
      if (!cache) {
        logits = nextLogitsUncached(model, ids.slice(-T));
      } else if (cache.length > 0 && ids.length <= T) {
        logits = cache.appendView(ids.slice(cache.length));
      } else {
        // first call, or the window slid past the block size: prefill the window afresh
        cache.reset();
        logits = cache.append(ids.slice(-T));
      }
      const next = sampleToken(withSuppressed(logits, o.suppressIds), o, rng);
      if (o.stopIds.includes(next)) return;
      ids.push(next);
      yield next;
    }
  } finally {
    cache?.dispose();
  }
}

export function generate(model: GPT, prompt: readonly number[], options: Partial<GenerateOptions> = {}): number[] {
  return [...generateTokens(model, prompt, options)];
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
