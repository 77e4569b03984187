/**
 * The ops LoRA training adds, against the ops they stand for: linearLora (one op for x·W + b +
 * s·(xa·Aᵀ)·Bᵀ) against linear + two matmuls + scale + add, with the adapter's input x itself and
 * x through another op (as with the adapter's dropout); the tied table's trainable tail
 * (embeddingTail, matmulTransposedTail) against the plain lookup and LM head with the whole table
 * training: the same outputs, and the tail's gradient is the last rows of the table's.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { add, embedding, embeddingTail, linear, linearLora, matmulTransposed, matmulTransposedTail, scale } from "../src/ops/index.js";
import { Rng } from "../src/random.js";
import { scope, Tensor } from "../src/tensor/tensor.js";

const r = new Rng(11);
const vals = (n: number) => Array.from({ length: n }, () => r.normal());

function near(label: string, got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5): void {
  assert.equal(got.length, want.length, label);
  for (let i = 0; i < want.length; i++) {
    const w = want[i] as number;
    assert.ok(Math.abs((got[i] as number) - w) <= tol * Math.max(1, Math.abs(w)), `${label}[${i}]: ${got[i]} vs ${w}`);
  }
}

for (const through of [false, true])
  test(`linearLora equals linear + s·(xa·Aᵀ)·Bᵀ: output and the gradients of x, W, b, A, B (xa ${through ? "= another op of x" : "= x"})`, () => {
    const [Bn, T, K, N, R] = [2, 3, 6, 5, 2];
    const s = 1.75;
    const xv = vals(Bn * T * K);
    const wv = vals(K * N);
    const bv = vals(N);
    const av = vals(R * K);
    const bmv = vals(N * R);
    const up = Float32Array.from(vals(Bn * T * N));
    const run = (fused: boolean) =>
      scope(() => {
        const x = Tensor.fromArray(xv, [Bn, T, K], true);
        const w = Tensor.fromArray(wv, [K, N], true);
        const b = Tensor.fromArray(bv, [N], true);
        const a = Tensor.fromArray(av, [R, K], true);
        const bm = Tensor.fromArray(bmv, [N, R], true);
        const xa = through ? scale(x, 0.5) : x;
        const y = fused ? linearLora(x, xa, w, b, a, bm, s) : add(linear(x, w, b), matmulTransposed(scale(matmulTransposed(xa, a), s), bm));
        const out = [...y.data];
        y.backward(up);
        return { out, grads: [x, w, b, a, bm].map((t) => [...(t.grad as Tensor).data]) };
      });
    const f = run(true);
    const e = run(false);
    near("out", f.out, e.out);
    for (const [i, name] of ["dx", "dW", "db", "dA", "dB"].entries()) near(name, f.grads[i] as number[], e.grads[i] as number[]);
  });

test("the trainable tail of a tied table: lookup and LM head as the plain ops, its gradient the table's last rows'", () => {
  const [V, C, n, M] = [9, 4, 3, 5];
  const tv = vals(V * C);
  const xv = vals(M * C);
  const ids = [0, 8, 6, 2, 8];
  const upE = Float32Array.from(vals(M * C));
  const upH = Float32Array.from(vals(M * V));
  const run = (tail: boolean) =>
    scope(() => {
      const table = Tensor.fromArray(tv, [V, C], !tail);
      const rows = tail ? Tensor.view(table.ptr + (V - n) * C * 4, [n, C], "f32", true) : null;
      const id = Tensor.ints(ids, [M]);
      const e = rows ? embeddingTail(table, id, rows) : embedding(table, id);
      const x = Tensor.fromArray(xv, [M, C], true);
      const h = rows ? matmulTransposedTail(x, table, rows) : matmulTransposed(x, table);
      const outs = [...e.data, ...h.data];
      e.backward(upE);
      h.backward(upH);
      const g = (rows ?? table).grad as Tensor;
      return { outs, dTail: [...g.data.subarray(g.size - n * C)], dx: [...(x.grad as Tensor).data] };
    });
  const t = run(true);
  const p = run(false);
  near("outputs", t.outs, p.outs);
  near("tail rows' gradient", t.dTail, p.dTail);
  near("dx", t.dx, p.dx);
});
