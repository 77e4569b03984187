import type { FloatArray } from "../backend.js";

/** ids (N), table (V,C) -> out (N,C) */
export function embeddingForward(out: FloatArray, ids: Int32Array, table: FloatArray, N: number, C: number): void {
  for (let n = 0; n < N; n++) {
    const src = ids[n]! * C;
    const dst = n * C;
    for (let c = 0; c < C; c++) out[dst + c] = table[src + c]!;
  }
}

/** dtable (V,C) += rows of dout (N,C) scattered to ids (a row used twice collects both) */
export function embeddingBackward(dtable: FloatArray, dout: FloatArray, ids: Int32Array, N: number, C: number): void {
  for (let n = 0; n < N; n++) {
    const dst = ids[n]! * C;
    const src = n * C;
    for (let c = 0; c < C; c++) dtable[dst + c]! += dout[src + c]!;
  }
}
