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
    const pos0 = this.check(ids);
    const logits = ids.length === 1 ? this.model.decode([this.nextRow(ids)], this.buffers()) : this.model.prefill(ids, this.layers, pos0);
    this.length += ids.length;
    return logits;
  }

  /**
   * `append` on any backend: the kernels are recorded at once (the cache holds the new positions
   * when this returns) and the logits (V, a copy) read back asynchronously, the one readback of a
   * step on a GPU.
   */
  appendAsync(ids: readonly number[]): Promise<Float32Array> {
    const pos0 = this.check(ids);
    const logits =
      ids.length === 1 ? this.model.decodeAsync([this.nextRow(ids)], this.buffers()) : this.model.prefillAsync(ids, this.layers, pos0);
    this.length += ids.length;
    return logits;
  }

  /** the position of the first of `ids`, after checking that they fit in the block */
  private check(ids: readonly number[]): number {
    const Tn = ids.length;
    const pos0 = this.length;
    if (Tn === 0) throw new Error("KVCache.append: no tokens");
    if (pos0 + Tn > this.model.config.blockSize)
      throw new Error(`KVCache.append: ${pos0 + Tn} positions exceed the block size ${this.model.config.blockSize}`);
    return pos0;
  }

  private nextRow(ids: readonly number[]): DecodeRow {
    return this.decodeRow(ids[0] as number);
  }

  private buffers(): DecodeBuffers {
    this.step ??= new DecodeBuffers(this.model.config, 1);
    return this.step;
  }

  /**
   * This sequence's row in a decode step shared with others (GPT.decode of several rows): token `id`
   * at the next position; advance(1) once the step has run.
   */
  decodeRow(id: number): DecodeRow {
    if (this.length >= this.model.config.blockSize) throw new Error(`KVCache: position ${this.length} is past the block size`);
    return { id, pos: this.length, cache: this.layers };
  }

  /**
   * This sequence's rows in a shared step for several tokens at once (a prompt): `ids` at the next
   * positions, in order; only the last one's logits, and only when `lastLogits`. advance(ids.length)
   * once the step has run.
   */
  decodeRows(ids: readonly number[], lastLogits: boolean): DecodeRow[] {
    if (this.length + ids.length > this.model.config.blockSize)
      throw new Error(`KVCache: position ${this.length + ids.length - 1} is past the block size`);
    return ids.map((id, i) => ({ id, pos: this.length + i, cache: this.layers, logits: lastLogits && i === ids.length - 1 }));
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
