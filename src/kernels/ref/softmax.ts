import type { FloatArray } from "../backend.js";

/** x (rows,cols) -> out (rows,cols), softmax of each row (max subtracted for stability) */
export function softmax(out: FloatArray, x: FloatArray, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let max = -Infinity;
    for (let c = 0; c < cols; c++) if (x[o + c]! > max) max = x[o + c]!;
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += Math.exp(x[o + c]! - max);
    for (let c = 0; c < cols; c++) out[o + c] = Math.exp(x[o + c]! - max) / sum;
  }
}
