import type { FloatArray } from "../backend.js";

// GPT-2's GELU, the tanh approximation ("gelu_new"):
//   gelu(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
const GELU_K = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

export function geluForward(out: FloatArray, x: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    out[i] = 0.5 * v * (1 + Math.tanh(GELU_K * (v + GELU_A * v * v * v)));
  }
}

export function geluBackward(dx: FloatArray, x: FloatArray, dout: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    const t = Math.tanh(GELU_K * (v + GELU_A * v * v * v));
    const dt = (1 - t * t) * GELU_K * (1 + 3 * GELU_A * v * v);
    const grad = 0.5 * (1 + t) + 0.5 * v * dt;
    dx[i]! += grad * dout[i]!;
  }
}

export function geluForwardGrad(out: FloatArray, dgelu: FloatArray, x: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    const t = Math.tanh(GELU_K * (v + GELU_A * v * v * v));
    const dt = (1 - t * t) * GELU_K * (1 + 3 * GELU_A * v * v);
    out[i] = 0.5 * v * (1 + t);
    dgelu[i] = 0.5 * (1 + t) + 0.5 * v * dt;
  }
}

export function reluForward(out: FloatArray, x: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    out[i] = v > 0 ? v : 0;
  }
}

export function reluBackward(dx: FloatArray, x: FloatArray, dout: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) if (x[i]! > 0) dx[i]! += dout[i]!;
}
