import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { backend, DataParallel, defaultTrainConfig, GPT, makeConfig, Rng, refBackend, scope, Tensor, train, withFs } from "../index.js";
import { backendFlags } from "./common.js";
import { type CommandSpec, parseFlags } from "./flags.js";

export const selftestSpec: CommandSpec = {
  name: "selftest",
  summary: "check this installation: kernels, a gradient check, and a short training run on the counting task",
  usage: "minigpt selftest",
  flags: [...backendFlags, { name: "steps", type: "int", default: 300, min: 1, help: "training steps of the counting run" }],
  examples: [
    "minigpt selftest                               # the wasm kernels (about 10 s on 2 cores)",
    "minigpt selftest --backend ref --steps 100     # the plain TypeScript kernels (about 25 s)",
  ],
};

/** The active backend's matmul on tensors in the heap against the reference loop, scaled by its tolerance. */
function matmulAgreement(): number {
  const [M, K, N] = [67, 129, 33];
  const rng = new Rng(3);
  const a = Tensor.fromArray(
    Float32Array.from({ length: M * K }, () => rng.normal()),
    [M, K],
  );
  const b = Tensor.fromArray(
    Float32Array.from({ length: K * N }, () => rng.normal()),
    [K, N],
  );
  const fast = new Tensor([M, N]);
  const ref = new Float32Array(M * N);
  backend().matmul(fast.data, a.data, b.data, M, K, N, false);
  refBackend.matmul(ref, a.data, b.data, M, K, N, false);
  const maxAbs = (x: Float32Array) => x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const tolerance = K * maxAbs(a.data) * maxAbs(b.data);
  let worst = 0;
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs((fast.data[i] as number) - (ref[i] as number)) / tolerance);
  for (const t of [a, b, fast]) t.dispose();
  return worst;
}

/** Largest |analytic - numeric| / max(1, |numeric|) of the attention backward against finite differences. */
function attentionGradCheck(): number {
  const [B, T, C, nh] = [1, 5, 8, 2];
  const rng = new Rng(7);
  const qkv = Float64Array.from({ length: B * T * 3 * C }, () => rng.normal());
  const R = Float64Array.from({ length: B * T * C }, () => rng.normal());
  const lse = new Float64Array(B * nh * T);
  const f = () => {
    const o = new Float64Array(B * T * C);
    refBackend.attentionForward(o, lse, qkv, B, T, C, nh);
    return o.reduce((s, v, i) => s + v * (R[i] as number), 0);
  };
  const out = new Float64Array(B * T * C);
  refBackend.attentionForward(out, lse, qkv, B, T, C, nh);
  const grad = new Float64Array(qkv.length);
  refBackend.attentionBackward(grad, R, qkv, out, lse, B, T, C, nh);
  let worst = 0;
  for (let i = 0; i < qkv.length; i++) {
    const old = qkv[i] as number;
    qkv[i] = old + 1e-6;
    const up = f();
    qkv[i] = old - 1e-6;
    const down = f();
    qkv[i] = old;
    const numeric = (up - down) / 2e-6;
    worst = Math.max(worst, Math.abs((grad[i] as number) - numeric) / Math.max(1, Math.abs(numeric)));
  }
  return worst;
}

/**
 * Data-parallel training against one thread: the gradient of one batch split over the backend's
 * threads (replicas in worker threads) vs computed whole on this thread, relative to the largest
 * gradient entry. null when there is only one thread (nothing to compare).
 */
async function dataParallelAgreement(): Promise<{ threads: number; worst: number } | null> {
  const threads = (backend() as { threads?: number }).threads ?? 1;
  const T = 12;
  const model = new GPT(makeConfig({ vocabSize: 29, nLayer: 2, nHead: 2, nEmbd: 16, blockSize: T, dropout: 0 }), 5);
  const dp = await DataParallel.create(model, threads);
  if (!dp) {
    model.dispose();
    return null;
  }
  try {
    const rng = new Rng(9);
    const B = 5;
    const x = Tensor.ints(
      Int32Array.from({ length: B * T }, () => rng.int(29)),
      [B, T],
    );
    const y = Tensor.ints(
      Int32Array.from({ length: B * T }, () => rng.int(29)),
      [B, T],
    );
    model.zeroGrad();
    scope(() => (model.forward(x, { targets: y }).loss as Tensor).backward());
    const whole = [...model.params.values()].map((t) => Float32Array.from((t.grad as Tensor).data));
    model.zeroGrad();
    dp.forwardBackward(x, y, 1);
    let diff = 0;
    let scale = 0;
    [...model.params.values()].forEach((t, i) => {
      const w = whole[i] as Float32Array;
      const g = (t.grad as Tensor).data;
      for (let j = 0; j < w.length; j++) {
        diff = Math.max(diff, Math.abs((g[j] as number) - (w[j] as number)));
        scale = Math.max(scale, Math.abs(w[j] as number));
      }
    });
    x.dispose();
    y.dispose();
    return { threads: dp.threads, worst: diff / scale };
  } finally {
    dp.dispose();
    model.dispose();
  }
}

export async function runSelftest(argv: readonly string[]): Promise<number> {
  const f = parseFlags(selftestSpec, argv);
  let failed = 0;
  const report = (ok: boolean, what: string) => {
    if (!ok) failed++;
    console.log(`${ok ? "PASS" : "FAIL"}  ${what}`);
  };
  const mm = matmulAgreement();
  report(
    mm <= 1e-6,
    `${backend().name} backend: matmul (67x129x33) vs the reference kernels: max |diff| / (K·max|A|·max|B|) = ${mm.toExponential(2)} (must be <= 1e-6)`,
  );
  const g = attentionGradCheck();
  report(g < 1e-6, `attention backward vs finite differences: max relative diff ${g.toExponential(2)}`);
  const dp = await dataParallelAgreement();
  if (dp) {
    report(
      dp.worst <= 1e-5,
      `data-parallel training on ${dp.threads} threads vs one: max |gradient diff| / max |gradient| = ${dp.worst.toExponential(2)} (must be <= 1e-5)`,
    );
  }
  const out = withFs(`cannot create a temporary folder in ${tmpdir()}`, () => mkdtempSync(join(tmpdir(), "minigpt-selftest-")));
  try {
    const steps = f.int("steps");
    const t0 = performance.now();
    const result = await train({
      ...defaultTrainConfig,
      data: "counting",
      out,
      nLayer: 2,
      nHead: 2,
      nEmbd: 48,
      blockSize: 19,
      batchSize: 32,
      maxSteps: steps,
      lr: 3e-3,
      minLr: 3e-4,
      warmupSteps: 20,
      evalInterval: steps,
      evalSteps: 1,
      checkpointInterval: steps,
      weightDecay: 0,
    });
    const acc = result.patternAccuracy ?? 0;
    report(
      acc === 1,
      `counting task: ${steps} steps in ${((performance.now() - t0) / 1000).toFixed(1)}s, pattern accuracy ${(acc * 100).toFixed(0)}% on held-out starts (val loss ${result.lastValLoss?.toFixed(3)})`,
    );
    result.model.dispose();
  } finally {
    withFs(`cannot remove the temporary folder ${out}`, () => rmSync(out, { recursive: true, force: true }));
  }
  console.log(failed === 0 ? "all checks passed" : `${failed} check(s) failed`);
  return failed === 0 ? 0 : 1;
}
