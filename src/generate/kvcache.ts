/**
 * Incremental decoding with a key/value cache: each layer keeps the k and v rows of every position
 * seen so far (src/nn/attention-cache.ts), so a new token costs one row through the network instead
 * of the whole context. The model does the work (GPT.prefill for several new tokens, GPT.decode for
 * one); this is one sequence's cache and length.
 *
 * Past the block size the reference semantics are nanoGPT's: the model sees the last blockSize
 * tokens at positions 0..blockSize-1. Learned absolute positions mean every cached row changes when
 * the window slides, so the cache cannot be shifted; instead it is re-filled from the window (one
 * batched prefill per token). Output is therefore identical to the uncached model everywhere; only
 * speed differs past the block size. See docs/generation.md.
 */
import { AttentionCache } from "../nn/attention-cache.js";
import { DecodeBuffers, type DecodeRow } from "../nn/decode-step.js";
import type { GPT } from "../nn/gpt.js";

export class KVCache {
  readonly model: GPT;
  /** one per layer: k and v rows (blockSize, C) */
  readonly layers: readonly AttentionCache[];
  /** the one-row decode's activations, allocated on the first single-token step */
  private step: DecodeBuffers | null = null;
  /** how many positions are filled */
  length = 0;

  constructor(model: GPT) {
    this.model = model;
    const { nLayer, blockSize, nEmbd } = model.config;
    this.layers = Array.from({ length: nLayer }, () => new AttentionCache(blockSize, nEmbd));
  }

  reset(): void {
    this.length = 0;
  }

  /**
   * Run `ids` (appended after the cached positions) through the model; returns the logits (V) of
   * the last one. Throws if they do not fit in the block.
   */
  append(ids: readonly number[]): Float32Array {
    const logits = this.appendView(ids);
    return ids.length === 1 ? logits.slice() : logits;
  }

  /**
   * `append` without the copy for a single token: the returned logits are a view of the cache's own
   * buffer, overwritten by the next call (the generation loop samples from it at once).
   */
  appendView(ids: readonly number[]): Float32Array {
    const c = this.model.config;
    const Tn = ids.length;
    const pos0 = this.length;
    if (Tn === 0) throw new Error("KVCache.append: no tokens");
    if (pos0 + Tn > c.blockSize) throw new Error(`KVCache.append: ${pos0 + Tn} positions exceed the block size ${c.blockSize}`);
    let logits: Float32Array;
    if (Tn === 1) {
      this.step ??= new DecodeBuffers(c, 1);
      logits = this.model.decode([this.decodeRow(ids[0] as number)], this.step);
    } else logits = this.model.prefill(ids, this.layers, pos0);
    this.length += Tn;
    return logits;
  }

  /**
   * This sequence's row in a decode step shared with others (GPT.decode of several rows): token `id`
   * at the next position; advance(1) once the step has run.
   */
  decodeRow(id: number): DecodeRow {
    if (this.length >= this.model.config.blockSize) throw new Error(`KVCache: position ${this.length} is past the block size`);
    return { id, pos: this.length, cache: this.layers };
  }

  /** `n` more positions were filled by a step run outside append (see decodeRow) */
  advance(n: number): void {
    this.length += n;
  }

  dispose(): void {
    for (const layer of this.layers) layer.dispose();
    this.step?.dispose();
    this.step = null;
  }
}
