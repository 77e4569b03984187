// One setting of a training recipe, paired and nothing else: minigpt (this tree), optionally another
// built checkout (--baseline DIR, e.g. the code before a change) and PyTorch (bench/pytorch_bench.py),
// each in one warm process (--serve), timed in alternating blocks of steps; per pair of neighbouring
// blocks the ratios, and their medians. The paired part of `npm run bench` without its rounds over
// every setting: short enough for a quiet slot (the CPU recipe's 12 pairs of 8 steps: ~1 minute).
//
//   node --import tsx bench/pair.ts [--recipe small|big] [--threads 2] [--parallel batch|kernels]
//        [--grad-shards S] [--torch-threads 2] [--blas-threads 1] [--torch-warmup W] [--pairs 12] [--block 8]
//        [--baseline DIR] [--no-pytorch] [--gap MS]
//
// Defaults: each side's best setting on the 2-core AMD EPYC (docs/benchmarks.md): minigpt wasm 2
// threads data parallel (the bigger recipe as 4 micro-batches, as bench/train-step.ts runs it); torch
// 2 threads with OpenBLAS 1 (CPU recipe) or 2 (bigger recipe). --gap MS: idle before every block
// (a side alone, as if the others ran meanwhile: does idling cost a side its speed?).
import { execSync } from "node:child_process";
import { loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { arg, expectArgs } from "./args.js";
import { median } from "./stats.js";
import { StepServer } from "./step-server.js";

expectArgs(
  "bench/pair.ts",
  ["recipe", "threads", "parallel", "grad-shards", "torch-threads", "blas-threads", "torch-warmup", "pairs", "block", "baseline", "gap"],
  ["no-pytorch"],
);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const recipe = arg("recipe", "small");
if (recipe !== "small" && recipe !== "big") throw new Error(`--recipe ${recipe}: use small or big`);
const small = recipe === "small";
const pairs = Number(arg("pairs", small ? "12" : "3"));
const block = Number(arg("block", small ? "8" : "1"));
const baseline = arg("baseline", "") ? resolve(arg("baseline", "")) : null;
const withTorch = !process.argv.includes("--no-pytorch");
/** ms of idling before each block (a side alone, as if others ran meanwhile) */
const gap = Number(arg("gap", "0"));
const PYTHON = "/usr/bin/python3";

const miniArgs = [
  "--import",
  "tsx",
  join("bench", "train-step.ts"),
  "--recipe",
  recipe,
  "--threads",
  arg("threads", "2"),
  "--parallel",
  arg("parallel", "batch"),
  ...(arg("grad-shards", "") ? ["--grad-shards", arg("grad-shards", "")] : []),
  "--serve",
];
// PyTorch's warm-up: its bigger-recipe steps get faster over the first five or so (17.8, 13.5, 12.9 s
// for steps 3-5 on the AMD EPYC, 2026-12-06); minigpt's are flat after the first
const torchArgs = [
  join("bench", "pytorch_bench.py"),
  "--child",
  `train-${recipe}`,
  "--torch-threads",
  arg("torch-threads", "2"),
  "--serve",
  "--warmup",
  arg("torch-warmup", small ? "3" : "5"),
];
const blas = arg("blas-threads", small ? "1" : "2");
const load = () =>
  loadavg()
    .map((x) => x.toFixed(1))
    .join(" ");
const cpu = (() => {
  try {
    return execSync("lscpu", { encoding: "utf8" }).match(/Model name:\s*(.*)/)?.[1] ?? "?";
  } catch {
    return "?";
  }
})();

const sides: [string, StepServer][] = [];
try {
  // started together: their warm-ups overlap (the bigger recipe's take tens of seconds)
  const starting: [string, Promise<StepServer>][] = [["minigpt", StepServer.start(process.execPath, miniArgs, process.env, repoRoot)]];
  if (baseline) starting.push(["baseline", StepServer.start(process.execPath, miniArgs, process.env, baseline)]);
  if (withTorch) starting.push(["pytorch", StepServer.start(PYTHON, torchArgs, { ...process.env, OPENBLAS_NUM_THREADS: blas }, repoRoot)]);
  const settled = await Promise.allSettled(starting.map(([, p]) => p));
  settled.forEach((r, i) => {
    if (r.status === "fulfilled") sides.push([(starting[i] as [string, unknown])[0], r.value]);
  });
  const failed = settled.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  console.log(`${recipe} recipe, ${pairs} pairs of ${block}-step blocks, CPU ${cpu}, load at start ${load()}`);
  const times = new Map<string, number[]>(sides.map(([name]) => [name, []]));
  // each side's step times by their place in a block (the first step after the others ran may be slower)
  const byPlace = new Map<string, number[][]>(sides.map(([name]) => [name, Array.from({ length: block }, () => [])]));
  for (let i = 0; i < pairs; i++) {
    // who goes first alternates, so no side always runs right after another
    const order = i % 2 === 0 ? sides : [...sides].reverse();
    for (const [name, server] of order) {
      if (gap > 0) await new Promise((r) => setTimeout(r, gap));
      const t = await server.steps(block);
      times.get(name)?.push(median(t));
      for (const [k, x] of t.entries()) byPlace.get(name)?.[k]?.push(x);
    }
  }
  const f = (x: number, d = 2) => x.toFixed(d);
  for (const [name, t] of times)
    console.log(
      `${name}: median ${f(median(t))} ms per step, range ${f(Math.min(...t))}-${f(Math.max(...t))} (block medians); by place in a block: ${(byPlace.get(name) ?? []).map((x) => f(median(x), 1)).join(" ")}`,
    );
  const names = [...times.keys()];
  for (let i = 0; i < names.length; i++)
    for (let j = i + 1; j < names.length; j++) {
      const [a, b] = [times.get(names[i] as string) as number[], times.get(names[j] as string) as number[]];
      const r = a.map((x, k) => x / (b[k] as number)).sort((x, y) => x - y);
      console.log(
        `${names[i]}/${names[j]} per pair: median ${f(median(r), 3)}, range ${f(r[0] as number, 3)}-${f(r[r.length - 1] as number, 3)}`,
      );
    }
  console.log(
    `settings: minigpt ${miniArgs.slice(3).join(" ")}; pytorch ${torchArgs.slice(1).join(" ")} OPENBLAS_NUM_THREADS=${blas}; load at end ${load()}`,
  );
} finally {
  for (const [, s] of sides) s.close();
}
