/**
 * Every backward kernel against central finite differences of its forward, in float64, on odd shapes
 * (T=7, C=12, nh=3). The scalar checked is L = Σ out·R for a fixed random R, so dL/dout = R.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { refBackend as k } from "../src/kernels/ref/index.js";
import { add, gelu, linear, linearGelu } from "../src/ops/index.js";
import { Rng } from "../src/random.js";
import { scope, Tensor } from "../src/tensor/tensor.js";

const rng = new Rng(42);
const rand = (n: number, s = 1) => Float64Array.from({ length: n }, () => rng.normal() * s);
const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + v * (b[i] as number), 0);

/** numerical dL/dx for every element of x, L = Σ f(x)·R */
function numericGrad(x: Float64Array, R: Float64Array, f: () => Float64Array, h = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const old = x[i] as number;
    x[i] = old + h;
    const up = dot(f(), R);
    x[i] = old - h;
    const down = dot(f(), R);
    x[i] = old;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

function assertClose(label: string, analytic: Float64Array, numeric: Float64Array, tol = 1e-6) {
  let worst = 0;
  for (let i = 0; i < numeric.length; i++) {
    const d = Math.abs((analytic[i] as number) - (numeric[i] as number)) / Math.max(1, Math.abs(numeric[i] as number));
    worst = Math.max(worst, d);
  }
  assert.ok(worst < tol, `${label}: max relative diff ${worst.toExponential(2)} vs finite differences`);
}

test("matmul layouts: backward of a·b via matmulBT and matmulAT", () => {
  const [M, K, N] = [7, 5, 3];
  const a = rand(M * K);
  const b = rand(K * N);
  const R = rand(M * N);
  const f = () => {
    const o = new Float64Array(M * N);
    k.matmul(o, a, b, M, K, N, false);
    return o;
  };
  const da = new Float64Array(M * K);
  k.matmulBT(da, R, b, M, N, K, true);
  const db = new Float64Array(K * N);
  k.matmulAT(db, a, R, K, M, N, true);
  assertClose("da", da, numericGrad(a, R, f));
  assertClose("db", db, numericGrad(b, R, f));
});

test("layernorm backward", () => {
  const [N, C] = [7, 12];
  const x = rand(N * C);
  const w = rand(C);
  const b = rand(C);
  const R = rand(N * C);
  const mean = new Float64Array(N);
  const rstd = new Float64Array(N);
  const f = () => {
    const o = new Float64Array(N * C);
    k.layernormForward(o, mean, rstd, x, w, b, N, C, 1e-5);
    return o;
  };
  f();
  const dx = new Float64Array(N * C);
  const dw = new Float64Array(C);
  const db = new Float64Array(C);
  k.layernormBackward(dx, dw, db, R, x, w, mean, rstd, N, C);
  assertClose("dx", dx, numericGrad(x, R, f));
  assertClose("dw", dw, numericGrad(w, R, f));
  assertClose("db", db, numericGrad(b, R, f));
});

for (const [name, fwd, bwd] of [
  ["gelu", k.geluForward, k.geluBackward],
  ["relu", k.reluForward, k.reluBackward],
] as const) {
  test(`${name} backward`, () => {
    const n = 23;
    const x = rand(n, 2);
    const R = rand(n);
    const f = () => {
      const o = new Float64Array(n);
      fwd(o, x, n);
      return o;
    };
    const dx = new Float64Array(n);
    bwd(dx, x, R, n);
    assertClose("dx", dx, numericGrad(x, R, f));
  });
}

test("geluForwardGrad: its derivative output against finite differences of its gelu output", () => {
  const n = 23;
  const x = rand(n, 2);
  const R = rand(n);
  const f = () => {
    const o = new Float64Array(n);
    k.geluForwardGrad(o, new Float64Array(n), x, n);
    return o;
  };
  const d = new Float64Array(n);
  k.geluForwardGrad(new Float64Array(n), d, x, n);
  assertClose(
    "dx",
    Float64Array.from(d, (v, i) => v * (R[i] as number)),
    numericGrad(x, R, f),
  );
});

test("linearGelu equals gelu(linear(x)): output and every gradient, twice backward", () => {
  const [B, T, K, N] = [2, 3, 5, 7];
  const r = new Rng(3);
  const vals = (n: number) => Array.from({ length: n }, () => r.normal());
  const xv = vals(B * T * K);
  const wv = vals(K * N);
  const bv = vals(N);
  const up = Float32Array.from(vals(B * T * N));
  const run = (fused: boolean) =>
    scope(() => {
      const x = Tensor.fromArray(xv, [B, T, K], true);
      const w = Tensor.fromArray(wv, [K, N], true);
      const b = Tensor.fromArray(bv, [N], true);
      const y = fused ? linearGelu(x, w, b) : gelu(linear(x, w, b));
      const out = [...y.data];
      y.backward(up);
      const once = [x, w, b].map((t) => [...(t.grad as Tensor).data]);
      // the graph can be walked again: gradients add up
      y.backward(up);
      const twice = [x, w, b].map((t) => [...(t.grad as Tensor).data]);
      return { out, once, twice };
    });
  const a = run(true);
  const e = run(false);
  const near = (label: string, got: number[], want: number[]) => {
    for (const [i, g] of got.entries()) {
      const w = want[i] as number;
      assert.ok(Math.abs(g - w) <= 1e-6 * Math.max(1, Math.abs(w)), `${label}[${i}]: ${g} vs ${w}`);
    }
  };
  near("out", a.out, e.out);
  for (const [i, name] of ["dx", "dw", "db"].entries()) {
    near(name, a.once[i] as number[], e.once[i] as number[]);
    near(`${name} twice`, a.twice[i] as number[], e.twice[i] as number[]);
  }
});

test("causal self-attention backward (B=2, T=7, C=12, nh=3)", () => {
  const [B, T, C, nh] = [2, 7, 12, 3];
  const qkv = rand(B * T * 3 * C);
  const R = rand(B * T * C);
  const lse = new Float64Array(B * nh * T);
  const f = () => {
    const o = new Float64Array(B * T * C);
    k.attentionForward(o, lse, qkv, B, T, C, nh);
    return o;
  };
  const out = f();
  const d = new Float64Array(qkv.length);
  k.attentionBackward(d, R, qkv, out, lse, B, T, C, nh);
  assertClose("dqkv", d, numericGrad(qkv, R, f));
});

test("attention is causal: changing a later token does not change earlier outputs", () => {
  const [B, T, C, nh] = [1, 7, 12, 3];
  const qkv = rand(T * 3 * C);
  const lse = new Float64Array(nh * T);
  const o1 = new Float64Array(T * C);
  k.attentionForward(o1, lse, qkv, B, T, C, nh);
  for (let c = 0; c < 3 * C; c++) qkv[6 * 3 * C + c] = (qkv[6 * 3 * C + c] as number) + 1;
  const o2 = new Float64Array(T * C);
  k.attentionForward(o2, lse, qkv, B, T, C, nh);
  assert.deepEqual(o1.slice(0, 6 * C), o2.slice(0, 6 * C));
  assert.notDeepEqual(o1.slice(6 * C), o2.slice(6 * C));
});

test("attentionCached equals the full forward, row by row", () => {
  const [T, C, nh] = [7, 12, 3];
  const qkv = rand(T * 3 * C);
  const full = new Float64Array(T * C);
  k.attentionForward(full, new Float64Array(nh * T), qkv, 1, T, C, nh);
  const kc = new Float64Array(T * C);
  const vc = new Float64Array(T * C);
  for (let t = 0; t < T; t++)
    for (let c = 0; c < C; c++) {
      kc[t * C + c] = qkv[t * 3 * C + C + c] as number;
      vc[t * C + c] = qkv[t * 3 * C + 2 * C + c] as number;
    }
  const out = new Float64Array(3 * C);
  k.attentionCached(out, qkv.subarray(4 * 3 * C, 7 * 3 * C), kc, vc, 3, 4, C, nh);
  for (let i = 0; i < 3 * C; i++) assert.ok(Math.abs((out[i] as number) - (full[4 * C + i] as number)) < 1e-12);
});

test("cross-entropy backward with ignored targets", () => {
  const [N, V] = [7, 11];
  const logits = rand(N * V, 2);
  const targets = Int32Array.from([3, -1, 0, 10, -1, 5, 5]);
  const lse = new Float64Array(N);
  const R = new Float64Array(N).fill(1 / 5);
  const f = () => {
    const l = new Float64Array(N);
    k.crossEntropyForward(l, lse, logits, targets, N, V);
    return l;
  };
  const losses = f();
  assert.equal(losses[1], 0);
  const d = new Float64Array(N * V);
  k.crossEntropyBackward(d, logits, lse, targets, N, V, 1 / 5);
  assertClose("dlogits", d, numericGrad(logits, R, f));
});

test("embedding backward scatter-adds repeated ids", () => {
  const [V, C, N] = [5, 4, 6];
  const table = rand(V * C);
  const ids = Int32Array.from([1, 3, 1, 0, 4, 1]);
  const R = rand(N * C);
  const f = () => {
    const o = new Float64Array(N * C);
    k.embeddingForward(o, ids, table, N, C);
    return o;
  };
  const d = new Float64Array(V * C);
  k.embeddingBackward(d, R, ids, N, C);
  assertClose("dtable", d, numericGrad(table, R, f));
});

test("softmax rows sum to one and match the definition", () => {
  const x = rand(3 * 5, 3);
  const o = new Float64Array(15);
  k.softmax(o, x, 3, 5);
  for (let r = 0; r < 3; r++) {
    const row = [...x.subarray(r * 5, r * 5 + 5)];
    const z = row.reduce((s, v) => s + Math.exp(v), 0);
    for (let c = 0; c < 5; c++) assert.ok(Math.abs((o[r * 5 + c] as number) - Math.exp(row[c] as number) / z) < 1e-12);
  }
});

test("autograd: a tensor used twice collects both gradients", () => {
  scope(() => {
    const x = Tensor.fromArray([1, -2, 3, 0.5, 2, -1], [2, 3], true);
    const w = Tensor.fromArray([0.1, 0.2, -0.3, 0.4, 0.5, -0.6], [3, 2], true);
    // y = x + x, z = y·w, loss via backward with ones: dx = 2·(1·wᵀ)
    const y = add(x, x);
    const z = linear(y, w);
    z.backward(new Float32Array(4).fill(1));
    const rowSums = [0.1 + 0.2, -0.3 + 0.4, 0.5 - 0.6];
    const gx = [...(x.grad as Tensor).data];
    for (let i = 0; i < 6; i++) assert.ok(Math.abs((gx[i] as number) - 2 * (rowSums[i % 3] as number)) < 1e-6, `dx[${i}] = ${gx[i]}`);
  });
});

test("zeroGrad is lazy: the gradient reads as zero, a linear weight's next gradient is written over it, and a gradient nothing wrote reads zero", () => {
  scope(() => {
    const x = Tensor.fromArray([1, -2, 3, 0.5, 2, -1], [2, 3], true);
    const w = Tensor.fromArray([0.1, 0.2, -0.3, 0.4, 0.5, -0.6], [3, 2], true);
    const unused = Tensor.fromArray([7, 8], [2], true);
    const step = () => linear(x, w).backward(new Float32Array(4).fill(1));
    step();
    const first = [...(w.grad as Tensor).data];
    unused.ensureGrad().data.fill(5);
    const buffer = (w.grad as Tensor).data;
    w.zeroGrad();
    unused.zeroGrad();
    // not written yet: the next op that writes all of w's gradient takes the same buffer (it was
    // null, an eager zeroing's "has values", before)
    buffer.fill(123);
    assert.equal(w.freshGrad()?.data, buffer, "freshGrad after zeroGrad: the pending buffer");
    w.zeroGrad();
    step();
    assert.deepEqual([...(w.grad as Tensor).data], first, "the gradient of a second step, written over the stale values");
    assert.deepEqual([...(unused.grad as Tensor).data], [0, 0], "a gradient no op wrote reads as zero");
  });
});
