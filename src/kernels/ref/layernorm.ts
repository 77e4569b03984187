import type { FloatArray } from "../backend.js";

/** x (N,C), w (C), b (C) -> out (N,C); mean (N), rstd (N) saved for backward */
export function layernormForward(
  out: FloatArray,
  mean: FloatArray,
  rstd: FloatArray,
  x: FloatArray,
  w: FloatArray,
  b: FloatArray,
  N: number,
  C: number,
  eps: number,
): void {
  for (let n = 0; n < N; n++) {
    const o = n * C;
    let m = 0;
    for (let c = 0; c < C; c++) m += x[o + c]!;
    m /= C;
    let v = 0;
    for (let c = 0; c < C; c++) {
      const d = x[o + c]! - m;
      v += d * d;
    }
    v /= C; // biased variance, as PyTorch's LayerNorm
    const s = 1 / Math.sqrt(v + eps);
    for (let c = 0; c < C; c++) out[o + c] = (x[o + c]! - m) * s * w[c]! + b[c]!;
    mean[n] = m;
    rstd[n] = s;
  }
}

/**
 * With xhat = (x - mean)·rstd and g = dout·w:
 *   dx = rstd · (g - mean(g) - xhat·mean(g·xhat)),  dw += Σ dout·xhat,  db += Σ dout
 */
export function layernormBackward(
  dx: FloatArray,
  dw: FloatArray,
  db: FloatArray,
  dout: FloatArray,
  x: FloatArray,
  w: FloatArray,
  mean: FloatArray,
  rstd: FloatArray,
  N: number,
  C: number,
): void {
  for (let n = 0; n < N; n++) {
    const o = n * C;
    const m = mean[n]!;
    const s = rstd[n]!;
    let gMean = 0;
    let gxMean = 0;
    for (let c = 0; c < C; c++) {
      const xhat = (x[o + c]! - m) * s;
      const g = dout[o + c]! * w[c]!;
      gMean += g;
      gxMean += g * xhat;
    }
    gMean /= C;
    gxMean /= C;
    for (let c = 0; c < C; c++) {
      const xhat = (x[o + c]! - m) * s;
      const d = dout[o + c]!;
      const g = d * w[c]!;
      dx[o + c]! += s * (g - gMean - xhat * gxMean);
      dw[c]! += d * xhat;
      db[c]! += d;
    }
  }
}
