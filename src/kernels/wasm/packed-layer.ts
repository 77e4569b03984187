/**
 * A block's decode matrices packed once for the products of many rows (Backend.packDecodeLayer):
 * matmul-rows.as's packRowsB, 4-column panels in chunks of 256 of rowsTimesB's steps, so a step of 2
 * or more rows reads each matrix as one forward stream with its register tiles held over a chunk
 * (the same madd chain per output: the same bits). One row keeps the row-major matrices (its
 * kernel is slower on panels: docs/benchmark-log.md, "Serving"), so both are held: the trunk's
 * matrices twice.
 *
 * Where the threads split a product over K (the projections of a model wide enough that
 * attentionRows and mlpRows split its weights: decode.ts headCuts, mlpCuts), each thread's share of
 * the rows is its own product with its own step order, so each share is packed on its own, at its
 * rows' offset (a share of rows k0.. starts k0·N floats in, as in the matrix): the kernels offset the
 * packed pointer as they offset the matrix's. The cuts are recorded; a call whose split differs (the
 * thread count changed) reads the row-major matrix instead.
 */
import { heap } from "../../tensor/memory.js";
import type { DecodeMatrices, PackedLayer } from "../backend.js";
import type { KernelCalls } from "./calls.js";
import { headCuts, mlpCuts } from "./decode.js";

type Matrix = keyof DecodeMatrices;

/**
 * No copy is made that would take the heap's live tensors past this (of WebAssembly's 4 GiB): a
 * model that barely fits (GPT-2 large, 3.1 GB of floats) serves from its row-major matrices, with
 * room left for its KV caches, instead of failing to load (and a failed allocation would leave the
 * heap's top past its end).
 */
export const PACK_BUDGET_BYTES = 3 * 2 ** 30;

/** the matrices, in the order of their fields in trunkRowsPart's layer table (decode.as: LAYER_WATTN_PACKED ..) */
export const PACKED_MATRICES: readonly Matrix[] = ["attnWeight", "attnProjWeight", "fcWeight", "mlpProjWeight"];

interface Packed {
  /** the row-major matrix's heap pointer */
  source: number;
  /** the packed copy's */
  at: number;
  /** K's rows where a share's packing starts, and K */
  cuts: readonly number[];
}

export class WasmPackedLayer implements PackedLayer {
  private base: number;

  constructor(
    base: number,
    readonly bytes: number,
    private readonly matrices: ReadonlyMap<Matrix, Packed>,
  ) {
    this.base = base;
  }

  /**
   * The packed copy of `matrix` where it was made from the matrix at `source` with these cuts of K
   * (the call's split over the threads), else 0 (the call reads the row-major matrix).
   */
  pick(matrix: Matrix, source: number, cuts: readonly number[]): number {
    const p = this.matrices.get(matrix);
    if (this.base === 0 || !p || p.source !== source || p.cuts.length !== cuts.length) return 0;
    return p.cuts.every((c, i) => c === cuts[i]) ? p.at : 0;
  }

  release(): void {
    if (this.base !== 0) heap().release(this.base, this.bytes);
    this.base = 0;
  }
}

/**
 * The block's matrices (heap pointers) packed for the current thread count's splits, or null where
 * their widths (C, 3C, H) are not multiples of 8 (as when the panels were 8 wide; they are 4 now) or
 * the heap has no room for them (PACK_BUDGET_BYTES).
 */
export function packLayer(k: KernelCalls, m: Record<Matrix, number>, C: number, nh: number, H: number): WasmPackedLayer | null {
  if (C % 8 !== 0 || H % 8 !== 0) return null;
  const shapes = decodeShapes(k, C, nh, H);
  const bytes = PACKED_MATRICES.reduce((sum, name) => sum + k.x.rowsPackedBytes(shapes[name][0], shapes[name][1]), 0);
  if (heap().stats().liveBytes + bytes > PACK_BUDGET_BYTES) return null;
  const base = heap().alloc(bytes);
  const matrices = new Map<Matrix, Packed>();
  let at = base;
  for (const name of PACKED_MATRICES) {
    const [K, N, cuts] = shapes[name];
    const source = m[name];
    for (let t = 0; t + 1 < cuts.length; t++) {
      const k0 = cuts[t] as number;
      const k1 = cuts[t + 1] as number;
      if (k1 > k0) k.x.packRowsB(at + k0 * N * 4, source + k0 * N * 4, k1 - k0, N);
    }
    matrices.set(name, { source, at, cuts });
    at += k.x.rowsPackedBytes(K, N);
  }
  return new WasmPackedLayer(base, bytes, matrices);
}

/**
 * Each matrix's K, N and the cuts of K where the decode's products split it on the current thread
 * count (the column-split products read all of K in one share; [0, K]: not split)
 */
export function decodeShapes(k: KernelCalls, C: number, nh: number, H: number): Record<Matrix, [number, number, readonly number[]]> {
  return {
    attnWeight: [C, 3 * C, [0, C]],
    attnProjWeight: [C, C, headCuts(k, C, nh).map((h) => (h * C) / nh)],
    fcWeight: [C, H, [0, C]],
    mlpProjWeight: [H, C, mlpCuts(k, C, H)],
  };
}
