import type { FloatArray } from "../backend.js";

/** out (rows,cols) += bias (cols) */
export function addBias(out: FloatArray, bias: FloatArray, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) out[o + c]! += bias[c]!;
  }
}

/** x (rows,cols) -> out (cols) += column sums */
export function sumRows(out: FloatArray, x: FloatArray, rows: number, cols: number): void {
  const acc = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) acc[c]! += x[o + c]!;
  }
  for (let c = 0; c < cols; c++) out[c]! += acc[c]!;
}

export function zero(x: FloatArray, n: number): void {
  x.fill(0, 0, n);
}

export function copy(dst: FloatArray, src: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) dst[i] = src[i]!;
}

export function add(out: FloatArray, a: FloatArray, b: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) out[i] = a[i]! + b[i]!;
}

export function accumulate(dst: FloatArray, src: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) dst[i]! += src[i]!;
}

export function scale(x: FloatArray, n: number, s: number): void {
  for (let i = 0; i < n; i++) x[i]! *= s;
}

export function sumSquares(x: FloatArray, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    s += v * v;
  }
  return s;
}

export function mul(out: FloatArray, x: FloatArray, mask: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) out[i] = x[i]! * mask[i]!;
}
