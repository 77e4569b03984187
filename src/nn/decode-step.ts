/**
 * A one-token decode step: R rows, each the next token of its own sequence, at that sequence's own
 * position against its own KV cache (ragged: the rows' positions and cache lengths differ). Rows of
 * one sequence at consecutive positions, in order, are a prompt fed in one step (each row writes its
 * k and v before the next one reads them).
 * DecodeRow says what a row is; DecodeBuffers hold the step's activations.
 */
import type { KernelArray } from "../kernels/index.js";
import { Tensor } from "../tensor/tensor.js";
import type { AttentionCache } from "./attention-cache.js";
import type { GPTConfig } from "./config.js";

export interface DecodeRow {
  /** the token fed in */
  id: number;
  /** its position (= how many positions the sequence's cache holds) */
  pos: number;
  /** the sequence's cache, one per layer */
  cache: readonly AttentionCache[];
  /**
   * false: the row's logits are not wanted (a prompt token before the last, its k and v only): the
   * LM head skips it, and the step's logits hold only the other rows, in order. Default true.
   */
  logits?: boolean;
}

/**
 * The activations of a one-token decode step for up to `capacity` rows (one new token of each of
 * that many sequences), allocated once and reused for every step: no tensors, tape or scope per
 * token. Each is (rows, width) row-major; a step uses the first R rows.
 */
export class DecodeBuffers {
  readonly capacity: number;
  /** residual stream (R,C) */
  readonly x: Tensor;
  /** layer-norm output (R,C) */
  readonly a: Tensor;
  /** layer-norm statistics (R) */
  readonly mean: Tensor;
  readonly rstd: Tensor;
  /** q, k, v (R,3C) */
  readonly qkv: Tensor;
  /** attention output, heads side by side (R,C) */
  readonly att: Tensor;
  /** attention or MLP output, added to x (R,C) */
  readonly y: Tensor;
  /** MLP hidden units after the activation (R,nInner) */
  readonly h: Tensor;
  /** next-token logits (R,V) */
  readonly logits: Tensor;

  constructor(config: GPTConfig, capacity: number) {
    const { nEmbd: C, nInner, vocabSize: V } = config;
    const buf = (width: number) => new Tensor([capacity, width], "f32", false, false);
    this.capacity = capacity;
    this.x = buf(C);
    this.a = buf(C);
    this.mean = buf(1);
    this.rstd = buf(1);
    this.qkv = buf(3 * C);
    this.att = buf(C);
    this.y = buf(C);
    this.h = buf(nInner);
    this.logits = buf(V);
  }

  /** row r of buffer t, in place (a view for one kernel call) */
  static row(t: Tensor, r: number): KernelArray {
    const width = t.shape[1] as number;
    return t.slice(r * width, width);
  }

  dispose(): void {
    for (const t of [this.x, this.a, this.mean, this.rstd, this.qkv, this.att, this.y, this.h, this.logits]) t.dispose();
  }
}
