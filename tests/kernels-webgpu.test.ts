// The WebGPU kernels against their ref twins, on random data (seeded) and awkward shapes, through
// tests/kernel-cases.ts (the cases the wasm kernels pass) and a few cases of their own.
//
// Two modes: the parent (run by npm test) starts this file again in a child process with
// SwiftShader's Vulkan driver in its environment (tests/webgpu-env.ts) and skips with one line when
// no adapter can be had; the child (MINIGPT_WEBGPU_CHILD=1) runs every kernel.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { useBackend } from "../src/kernels/index.js";
import { refBackend } from "../src/kernels/ref/index.js";
import { loadWebGpuBackend } from "../src/kernels/webgpu/index.js";
import { gelu, linear } from "../src/ops/index.js";
import { Rng } from "../src/random.js";
import { Tensor } from "../src/tensor/tensor.js";
import { activationCases, attentionCases, type Check, layernormCases, matmulCases, softmaxCrossEntropyCases } from "./kernel-cases.js";
import { copy, difference, f32, i32, maxAbs, rand } from "./kernel-data.js";
import { webgpuEnv, webgpuUnavailable } from "./webgpu-env.js";
import { type Mirror, mirrorBackend } from "./webgpu-mirror.js";

const THIS_FILE = fileURLToPath(import.meta.url);

/** run `cases` with checks held until the GPU results are back, then assert each */
async function deferred(be: Mirror, cases: (check: Check) => void): Promise<void> {
  const held: Parameters<Check>[] = [];
  cases((...args) => held.push(args));
  await be.flush();
  for (const [what, got, want, rel, abs] of held) {
    assert.equal(got.length, want.length, `${what}: length`);
    const { worst, at } = difference(got, want, rel, abs);
    if (worst > 1)
      assert.fail(`${what}: element ${at} got ${got[at]} want ${want[at]} (${worst.toFixed(2)}x the tolerance rel ${rel} abs ${abs})`);
  }
  assert.ok(held.length > 0, "no checks ran");
}

const MATMUL_SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 7, 65],
  [7, 1, 127],
  [3, 65, 7],
  [4, 8, 8],
  [5, 16, 64],
  [65, 127, 33],
  [127, 1023, 9],
  [64, 256, 64],
  [1, 1023, 65],
  [2, 65, 1023],
  [130, 300, 70],
  [9, 0, 5],
];

if (process.env.MINIGPT_WEBGPU_CHILD) {
  const gpu = await loadWebGpuBackend({ allowSoftware: true });
  const be = mirrorBackend(gpu);
  const rng = new Rng(2025);
  describe(`webgpu kernels vs ref (${gpu.adapter.description})`, () => {
    test("matmul, the three layouts, overwriting and accumulating, awkward shapes", () =>
      deferred(be, (check) => matmulCases(be, rng, MATMUL_SHAPES, check)));

    test("linear forward (bias as each output is stored) and backward (dx overwritten or added, dw, db)", () =>
      deferred(be, (check) => {
        for (const [M, K, N] of [
          [1, 7, 5],
          [3, 130, 65],
          [65, 33, 127],
          [130, 64, 192],
        ] as [number, number, number][]) {
          const x = rand(rng, M * K, 2);
          const w = rand(rng, K * N, 0.5);
          const bias = rand(rng, N);
          const out = f32(M * N);
          const want = new Float32Array(M * N);
          be.linearForward(out, x, w, bias, M, K, N);
          refBackend.linearForward(want, x, w, bias, M, K, N);
          check(`linearForward ${M}x${K}x${N}`, out, want, 0, 1e-6 * K * 2 * 0.5 + 1e-6);
          const dy = rand(rng, M * N);
          for (const overwrite of [false, true]) {
            const dx0 = rand(rng, M * K);
            const dw0 = rand(rng, K * N);
            const db0 = rand(rng, N);
            const [dx, dw, db] = [copy(dx0), copy(dw0), copy(db0)];
            const [wdx, wdw, wdb] = [new Float32Array(dx0), new Float32Array(dw0), new Float32Array(db0)];
            be.linearBackward(dx, dw, db, dy, x, w, M, K, N, overwrite);
            refBackend.linearBackward(wdx, wdw, wdb, dy, x, w, M, K, N, overwrite);
            check(`linearBackward dx ${M}x${K}x${N} overwrite=${overwrite}`, dx, wdx, 1e-6, 1e-6 * N * 0.5 + 1e-6);
            check(`linearBackward dw ${M}x${K}x${N}`, dw, wdw, 1e-6, 1e-6 * M * 2 + 1e-6);
            check(`linearBackward db ${M}x${K}x${N}`, db, wdb, 1e-6, 1e-6 * M + 1e-6);
          }
        }
      }));

    test("elementwise: addBias, sumRows, zero, copy, add, accumulate, scale, mul", () =>
      deferred(be, (check) => {
        for (const [rows, cols] of [
          [1, 1],
          [7, 65],
          [127, 3],
          [3, 1023],
        ] as [number, number][]) {
          const n = rows * cols;
          const x = rand(rng, n);
          const y = rand(rng, n);
          const bias = rand(rng, cols);
          const a = copy(x);
          const wa = new Float32Array(x);
          be.addBias(a, bias, rows, cols);
          refBackend.addBias(wa, bias, rows, cols);
          check(`addBias ${rows}x${cols}`, a, wa, 1e-7, 0);
          const s = rand(rng, cols);
          const ws = new Float32Array(s);
          be.sumRows(s, x, rows, cols);
          refBackend.sumRows(ws, x, rows, cols);
          check(`sumRows ${rows}x${cols}`, s, ws, 1e-6, 1e-6 * rows);
          const z = copy(x);
          be.zero(z, n);
          check(`zero ${n}`, z, new Float32Array(n), 0, 0);
          const c = f32(n);
          be.copy(c, x, n);
          check(`copy ${n}`, c, x, 0, 0);
          const sum = f32(n);
          const wsum = new Float32Array(n);
          be.add(sum, x, y, n);
          refBackend.add(wsum, x, y, n);
          check(`add ${n}`, sum, wsum, 0, 0);
          const acc = copy(x);
          const wacc = new Float32Array(x);
          be.accumulate(acc, y, n);
          refBackend.accumulate(wacc, y, n);
          check(`accumulate ${n}`, acc, wacc, 0, 0);
          const sc = copy(x);
          const wsc = new Float32Array(x);
          be.scale(sc, n, 0.37);
          refBackend.scale(wsc, n, 0.37);
          // the GPU takes the factor as an f32: one more rounding than the ref
          check(`scale ${n}`, sc, wsc, 2e-7, 0);
          const m = f32(n);
          const wm = new Float32Array(n);
          be.mul(m, x, y, n);
          refBackend.mul(wm, x, y, n);
          check(`mul ${n}`, m, wm, 0, 0);
        }
      }));

    test("sum of squares into device memory, and clipping by the global norm without a readback", async () => {
      const rt = gpu.runtime;
      const n = 1023;
      const x = rand(rng, n, 3);
      const gx = rt.alloc(n);
      rt.write(gx, x);
      const sums = rt.alloc(2);
      gpu.sumSquaresInto(rt.view(sums, 0, 1), gx, n);
      gpu.sumSquaresInto(rt.view(sums, 1, 1), gx, n);
      const got = await rt.readF32(sums);
      const want = refBackend.sumSquares(x, n);
      assert.ok(Math.abs((got[0] as number) - want) <= 1e-6 * n * 9, `sumSquares ${got[0]} vs ${want}`);
      // norm √(2·want) > 1: scaled by 1/(norm + 1e-6)
      gpu.clipByNorm(gx, n, sums, 2, 1);
      const clipped = await rt.readF32(gx);
      const coef = 1 / (Math.sqrt(2 * want) + 1e-6);
      const { worst } = difference(
        clipped,
        Array.from(x, (v) => v * coef),
        1e-5,
        0,
      );
      assert.ok(worst <= 1, `clipped values off by ${worst}x the tolerance`);
      gpu.clipByNorm(gx, n, sums, 2, 1e9);
      assert.deepEqual(await rt.readF32(gx), clipped, "a norm below the maximum leaves the gradients alone");
    });

    test("layernorm forward and backward", () =>
      deferred(be, (check) =>
        layernormCases(
          be,
          rng,
          [
            [1, 1],
            [1, 7],
            [7, 65],
            [65, 127],
            [3, 1023],
            [2, 768],
            // past 1024 wide a row gets 256 invocations, not 32 (wgsl.ts rowThreads)
            [2, 1025],
          ],
          check,
        ),
      ));

    test("gelu, relu, gelu with its derivative (in place too)", () =>
      deferred(be, (check) => activationCases(be, rng, [1, 7, 65, 1023, 4097], check)));

    test("softmax and cross-entropy (ignored targets)", () =>
      deferred(be, (check) =>
        softmaxCrossEntropyCases(
          be,
          rng,
          [
            [1, 1],
            [1, 7],
            [7, 65],
            [3, 1023],
            [5, 300],
            [2, 1025],
            [1, 4099],
          ],
          check,
        ),
      ));

    test("causal attention forward and backward", () =>
      deferred(be, (check) =>
        attentionCases(
          be,
          rng,
          [
            [1, 1, 4, 1],
            [1, 7, 12, 3],
            [2, 65, 32, 2],
            [1, 127, 64, 4],
            [2, 70, 48, 2],
          ],
          check,
          false,
        ),
      ));

    test("cached attention (generation) and the fused one-token blocks", () =>
      deferred(be, (check) => {
        for (const [Tn, pos0, C, nh] of [
          [1, 0, 8, 2],
          [1, 6, 12, 3],
          [7, 0, 32, 2],
          [1, 64, 64, 4],
          [3, 127, 48, 3],
        ] as [number, number, number, number][]) {
          const Tmax = pos0 + Tn + 2;
          const qkv = rand(rng, Tn * 3 * C, 1.5);
          const kc = rand(rng, Tmax * C, 1.5);
          const vc = rand(rng, Tmax * C, 1.5);
          const out = f32(Tn * C);
          const want = new Float32Array(Tn * C);
          be.attentionCached(out, qkv, kc, vc, Tn, pos0, C, nh);
          refBackend.attentionCached(want, qkv, kc, vc, Tn, pos0, C, nh);
          check(`attentionCached Tn=${Tn} pos0=${pos0} C=${C} nh=${nh}`, out, want, 0, 1e-6 * (C / nh + pos0 + Tn) * 1.5 * 1.5);
        }
        for (const [C, nh, H, pos, relu] of [
          [8, 2, 32, 0, false],
          [12, 3, 48, 5, true],
          [64, 4, 256, 70, false],
        ] as [number, number, number, number, boolean][]) {
          const a = rand(rng, C);
          const wfc = rand(rng, C * H, 0.5);
          const bfc = rand(rng, H);
          const wp = rand(rng, H * C, 0.5);
          const bp = rand(rng, C);
          const [y, h] = [f32(C), f32(H)];
          const [wy, wh] = [new Float32Array(C), new Float32Array(H)];
          be.mlpRows(y, h, a, 1, wfc, bfc, wp, bp, C, H, relu);
          refBackend.mlpRows(wy, wh, a, 1, wfc, bfc, wp, bp, C, H, relu);
          check(`mlpRow C=${C} H=${H} relu=${relu} h`, h, wh, 1e-5, 1e-6 * C);
          check(`mlpRow C=${C} H=${H} relu=${relu} y`, y, wy, 1e-5, 1e-6 * H * maxAbs(wh));

          const Tmax = pos + 3;
          const wattn = rand(rng, C * 3 * C, 0.5);
          const battn = rand(rng, 3 * C);
          const wproj = rand(rng, C * C, 0.5);
          const bproj = rand(rng, C);
          const kc = rand(rng, Tmax * C);
          const vc = rand(rng, Tmax * C);
          const [ry, att, qkv, k2, v2] = [f32(C), f32(C), f32(3 * C), copy(kc), copy(vc)];
          const [wry, watt, wqkv, wk, wv] = [
            new Float32Array(C),
            new Float32Array(C),
            new Float32Array(3 * C),
            new Float32Array(kc),
            new Float32Array(vc),
          ];
          be.attentionRows(ry, att, qkv, a, [{ keys: k2, values: v2, pos }], wattn, battn, wproj, bproj, C, nh);
          refBackend.attentionRows(wry, watt, wqkv, a, [{ keys: wk, values: wv, pos }], wattn, battn, wproj, bproj, C, nh);
          check(`attentionRow C=${C} pos=${pos} k cache`, k2, wk, 1e-5, 1e-6 * C);
          check(`attentionRow C=${C} pos=${pos} v cache`, v2, wv, 1e-5, 1e-6 * C);
          check(`attentionRow C=${C} pos=${pos} att`, att, watt, 1e-5, 1e-5 * C);
          check(`attentionRow C=${C} pos=${pos} y`, ry, wry, 1e-5, 1e-5 * C * C);
        }
      }));

    test("embedding forward and backward (repeated ids add in order)", () =>
      deferred(be, (check) => {
        for (const [N, V, C] of [
          [1, 1, 1],
          [7, 3, 65],
          [65, 10, 7],
          [300, 50, 33],
        ] as [number, number, number][]) {
          const ids = i32(N);
          for (let n = 0; n < N; n++) ids[n] = rng.int(V);
          const table = rand(rng, V * C);
          const out = f32(N * C);
          const want = new Float32Array(N * C);
          be.embeddingForward(out, ids, table, N, C);
          refBackend.embeddingForward(want, ids, table, N, C);
          check(`embeddingForward ${N}x${V}x${C}`, out, want, 0, 0);
          const dout = rand(rng, N * C);
          const d = copy(table);
          const wd = new Float32Array(table);
          be.embeddingBackward(d, dout, ids, N, C);
          refBackend.embeddingBackward(wd, dout, ids, N, C);
          check(`embeddingBackward ${N}x${V}x${C}`, d, wd, 0, 0);
        }
      }));

    test("adamw, with and without weight decay", () =>
      deferred(be, (check) => {
        for (const [n, wd, step] of [
          [1, 0.1, 1],
          [65, 0, 3],
          [1023, 0.1, 10],
        ] as [number, number, number][]) {
          const p = rand(rng, n);
          const g = rand(rng, n);
          const m = rand(rng, n, 0.1);
          const v = f32(n);
          for (let i = 0; i < n; i++) v[i] = rng.random() * 0.01;
          const [wp, wm, wv] = [new Float32Array(p), new Float32Array(m), new Float32Array(v)];
          const [gp, gm, gv] = [copy(p), copy(m), copy(v)];
          const bc1 = 1 - 0.9 ** step;
          const bc2 = 1 - 0.95 ** step;
          const adamwStep = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: wd, bc1, bc2, gradScale: 0.75 };
          be.adamw(gp, g, gm, gv, n, adamwStep);
          refBackend.adamw(wp, g, wm, wv, n, adamwStep);
          check(`adamw p ${n} wd=${wd}`, gp, wp, 1e-6, 1e-7);
          // b1·m and (1-b1)·g may cancel: the bound is on the terms' scale (|g| < 1, |m| < 0.1, v < 0.01)
          check(`adamw m ${n}`, gm, wm, 1e-6, 1e-7);
          check(`adamw v ${n}`, gv, wv, 1e-6, 1e-8);
        }
      }));
  });

  describe("tensors in GPU memory", () => {
    test("ops run on the device with no readback; `await t.read()` reads, sync `data` says how to read", async () => {
      await useBackend("webgpu");
      const x = Tensor.fromArray([1, -2, 3, -4, 5, -6], [2, 3], true);
      const w = Tensor.fromArray([0.5, -1, 2, 0.25, 1, -0.5], [3, 2], true);
      const y = gelu(linear(x, w));
      assert.ok(y.device, "an op's output lives in device memory");
      assert.throws(() => y.data, /in GPU memory .*await t\.read\(\)/);
      assert.throws(() => Tensor.fromArray([1], [1]).item(), /await t\.read\(\)/);
      const got = await y.read();
      await useBackend("ref");
      const xr = Tensor.fromArray([1, -2, 3, -4, 5, -6], [2, 3]);
      const wr = Tensor.fromArray([0.5, -1, 2, 0.25, 1, -0.5], [3, 2]);
      const want = gelu(linear(xr, wr)).data;
      const { worst } = difference(got, want, 1e-6, 1e-7);
      assert.ok(worst <= 1, `gelu(linear) on the GPU off by ${worst}x the tolerance`);
    });
  });
} else {
  test("webgpu kernels vs ref, in a child process on the available adapter", (t) => {
    const why = webgpuUnavailable();
    if (why) {
      t.skip(`webgpu: ${why}`);
      return;
    }
    const r = spawnSync(process.execPath, ["--import", "tsx", "--test-reporter=tap", THIS_FILE], {
      env: webgpuEnv({ MINIGPT_WEBGPU_CHILD: "1" }),
      encoding: "utf8",
      timeout: 300_000,
    });
    if (r.status !== 0) assert.fail(`child failed, exit ${r.status}:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /# fail 0/);
    assert.match(r.stdout, /# pass [1-9]/);
  });
}
