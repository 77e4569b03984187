/**
 * How the wasm backend splits a kernel call over threads: when a call is worth splitting (the
 * thresholds below, each with the measurement behind it), into how many parts and where the parts'
 * boundaries fall, and the per-thread scratch space the kernels take from their caller.
 *
 * Every split cuts only independent outputs (rows, (b, h) pairs, elements at multiples of 4), so a
 * split call gives the bits of one call; loader.ts decides which kernel is cut along what.
 */
import { heap } from "../../tensor/memory.js";

/**
 * split a call over threads from this many floating-point operations on (a pool round trip:
 * ~100-300 µs when a sleeping worker must be woken here, ~1-2 µs with MINIGPT_WASM_SPIN=1)
 */
export const PARALLEL_FLOPS = 2e6;

/** elementwise kernels with exp/sqrt (~20 flops an element) are split from this many elements on */
const PARALLEL_ELEMENTS = 1 << 17;

/**
 * one-token work (a matmul of fewer than 4 rows, the fused attention / MLP blocks) streams its weights
 * from memory; it is split over the threads from this many floats read on (a wake-up costs ~100-300 µs
 * here, reading 1M floats ~0.5 ms on one core). Measured, generating with 2 threads, settings
 * alternated in one process: splitting the 384-wide model's MLP (1.2M floats) made it ~7-20% slower,
 * and GPT-2's blocks (2.4M, 4.7M) were as fast from 2^20 as from 2^21
 */
const PARALLEL_ROWS_B = 1 << 21;
/**
 * the same when the pool spins (MINIGPT_WASM_SPIN=1, a round trip ~1-2 µs): the 384-wide model's
 * blocks (0.6M, 1.2M floats) split from here generated ~1.3x as fast as unsplit on an otherwise idle
 * machine (and ~2.5x slower with another process busy on a core, which is why spinning is opt-in)
 */
const PARALLEL_ROWS_B_SPIN = 1 << 19;

/**
 * a batch of one-token rows (a batched decode step) too small in weights for rowParts is split by its
 * rows from this many on: each thread computes whole rows (bit-neutral), and from two register tiles
 * of 4 rows a thread's arithmetic outweighs the ~100-300 µs wake-up
 */
const PARALLEL_BATCH_ROWS = 8;
/**
 * how much more than an equal share of split one-token work the calling thread takes, in floats read:
 * it starts at once while a sleeping helper first wakes up (2^17 floats ~60 µs of reading; measured
 * 5-15% faster than equal shares on GPT-2's matmuls, 2^19 no better)
 */
const WAKE_FLOATS = 1 << 17;

/**
 * offer half of a call to the waiting data-parallel thread from this many flops on (~0.1-0.3 ms of
 * work; the waiting thread looks for work without sleeping, so it starts within microseconds)
 */
export const PEER_FLOPS = 4e6;

/** elementwise calls are offered from this many elements on (the waiting thread starts within µs) */
export const PEER_ELEMENTS = 1 << 14;

/** The split decisions for a backend whose calls may use `threads` threads (the pool's and its own). */
export class Schedule {
  /** threads a call may be split over now (1 = the calling thread only) */
  threads: number;
  /** per-thread scratch: pointer and size in bytes */
  private scratchPtr: number[] = [];
  private scratchBytes = 0;

  /**
   * @param spins whether the pool's threads spin for work (a round trip of µs, not a wake-up)
   * @param minScratch bytes every thread's scratch has at least (matmul's, which needs it always)
   */
  constructor(
    threads: number,
    private readonly spins: boolean,
    private readonly minScratch: number,
  ) {
    this.threads = threads;
  }

  /** Make sure every usable thread has `bytes` of scratch; returns the pointers, one per thread. */
  scratch(bytes: number): number[] {
    const need = Math.max(bytes, this.minScratch);
    if (need > this.scratchBytes || this.scratchPtr.length < this.threads) {
      for (const p of this.scratchPtr) heap().release(p, this.scratchBytes);
      const size = Math.max(need, this.scratchBytes);
      const n = Math.max(this.threads, this.scratchPtr.length);
      this.scratchPtr = [];
      for (let t = 0; t < n; t++) this.scratchPtr.push(heap().alloc(size));
      this.scratchBytes = size;
    }
    return this.scratchPtr;
  }

  /** parts for work over `units` independent pieces costing `flops` in total */
  parts(units: number, flops: number): number {
    if (this.threads <= 1 || flops < PARALLEL_FLOPS) return 1;
    return Math.max(1, Math.min(this.threads, units));
  }

  /** parts for a matmul of M rows costing `flops` (each part gets >= 8 rows) */
  matmulParts(M: number, flops: number): number {
    if (this.threads <= 1 || flops < PARALLEL_FLOPS) return 1;
    return Math.max(1, Math.min(this.threads, Math.floor(M / 8)));
  }

  /** parts for an elementwise or row-wise call over `units` units of `elems` elements each */
  elementParts(units: number, elems: number): number {
    return this.threads > 1 && units * elems >= PARALLEL_ELEMENTS ? Math.min(this.threads, units) : 1;
  }

  /** parts for one-token work reading `floats` floats, over at most `maxParts` pieces */
  rowParts(floats: number, maxParts: number): number {
    const from = this.spins ? PARALLEL_ROWS_B_SPIN : PARALLEL_ROWS_B;
    return this.threads > 1 && floats >= from ? Math.min(this.threads, maxParts) : 1;
  }

  /** parts for a batch of R one-token rows whose weights rowParts does not split (each part whole rows) */
  batchParts(R: number): number {
    return this.threads > 1 && R >= PARALLEL_BATCH_ROWS ? Math.min(this.threads, Math.floor(R / 4)) : 1;
  }

  /**
   * Boundaries (parts + 1 of them, multiples of `align` inside) that split `units` over `parts`
   * threads for one-token work reading `floats` floats: the calling thread starts at once while a
   * helper first has to wake up, so its share is f, with f·T = wake + (1 - f)·T / (parts - 1).
   * awake: the helpers are already running (they spin for work, or meet the calling thread inside
   * one call: trunk-split.as): equal shares.
   */
  shares(units: number, parts: number, floats: number, align: number, awake = this.spins): number[] {
    // (a spinning pool answers in ~1-2 µs: equal shares)
    const f = Math.min(0.75, (1 + ((parts - 1) * (awake ? 0 : WAKE_FLOATS)) / floats) / parts);
    const bounds = [0];
    for (let t = 1; t < parts; t++) {
      const at = Math.round((units * (f + ((1 - f) * (t - 1)) / (parts - 1))) / align) * align;
      bounds.push(Math.min(units, Math.max(bounds[t - 1] as number, at)));
    }
    bounds.push(units);
    return bounds;
  }
}

/** [start, end) of `parts` near-equal pieces of `units` (empty pieces left out) */
export function ranges(units: number, parts: number): [number, number][] {
  const out: [number, number][] = [];
  for (let t = 0; t < parts; t++) {
    const a = Math.floor((units * t) / parts);
    const b = Math.floor((units * (t + 1)) / parts);
    if (b > a) out.push([a, b]);
  }
  return out;
}

/**
 * [start, end) of `parts` pieces of `units` whose starts are multiples of `align` (the last piece
 * takes the rest; empty pieces left out): element ranges start on a multiple of 4 so that SIMD loops
 * stay aligned.
 */
export function alignedRanges(units: number, parts: number, align: number): [number, number][] {
  const out: [number, number][] = [];
  for (let t = 0; t < parts; t++) {
    const a = Math.min(units, Math.ceil((units * t) / parts / align) * align);
    const b = t === parts - 1 ? units : Math.min(units, Math.ceil((units * (t + 1)) / parts / align) * align);
    if (b > a) out.push([a, b]);
  }
  return out;
}
