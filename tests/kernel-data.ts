// Test data and comparison for the wasm-vs-ref kernel checks, shared by tests/kernels-wasm.test.ts
// (Node) and the browser page tests/browser/kernels.ts (compiled to dist/tests/, loaded by chromium),
// so it uses no Node API. Arrays live in the tensor heap, as the wasm kernels need.
import type { Rng } from "../src/random.js";
import { heap } from "../src/tensor/memory.js";

export function f32(n: number): Float32Array {
  const p = heap().alloc(Math.max(1, n) * 4);
  return new Float32Array(heap().memory.buffer, p, n);
}

export function i32(n: number): Int32Array {
  const p = heap().alloc(Math.max(1, n) * 4);
  return new Int32Array(heap().memory.buffer, p, n);
}

/** n uniform values in (-scale, scale) */
export function rand(rng: Rng, n: number, scale = 1): Float32Array {
  const a = f32(n);
  for (let i = 0; i < n; i++) a[i] = (rng.random() * 2 - 1) * scale;
  return a;
}

export function copy(a: Float32Array): Float32Array {
  const b = f32(a.length);
  b.set(a);
  return b;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] as number));
  return m;
}

export interface Difference {
  /** max |got - want| (Infinity for a NaN or a length mismatch) */
  maxAbsDiff: number;
  /** max over elements of |got - want| / (rel·|want| + abs): <= 1 passes */
  worst: number;
  /** the element where `worst` is, -1 when every element is exact */
  at: number;
}

/** How far got is from want, elementwise, against the tolerance rel·|want| + abs. */
export function difference(got: ArrayLike<number>, want: ArrayLike<number>, rel: number, abs: number): Difference {
  if (got.length !== want.length) return { maxAbsDiff: Infinity, worst: Infinity, at: -1 };
  let maxAbsDiff = 0;
  let worst = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const w = want[i] as number;
    const d = Math.abs((got[i] as number) - w);
    if (Number.isNaN(d)) return { maxAbsDiff: Infinity, worst: Infinity, at: i };
    maxAbsDiff = Math.max(maxAbsDiff, d);
    const tol = rel * Math.abs(w) + abs;
    const r = d === 0 ? 0 : tol > 0 ? d / tol : Infinity;
    if (r > worst) {
      worst = r;
      at = i;
    }
  }
  return { maxAbsDiff, worst, at };
}
