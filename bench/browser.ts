// nanoGPT's CPU recipe trained in Chromium (a module worker on a cross-origin-isolated page, as a web
// app would run it) against the same step in Node, in turns, so both see the same minutes:
//
//   node --import tsx bench/browser.ts [--recipe small|big] [--rounds 3] [--steps N] [--warmup W]
//
// Each round runs Node's `bench/train-step.ts --recipe R --threads 2` (data parallel), then in
// Chromium: 2 threads data parallel, 2 threads with kernels split, 1 thread (the bigger recipe:
// data parallel only; steps 3 and warm-up 3 by default, 20 and 5 for the CPU recipe). Prints each setting's
// median ms/step per round and the browser/Node ratio. Needs /usr/bin/chromium (Debian's package)
// and dist/ (compiled here when older than the sources).
import { spawnSync } from "node:child_process";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { arg, expectArgs } from "./args.js";
import type { BrowserResult, BrowserRun } from "./browser-worker.js";
import { CHROMIUM, openBenchPage } from "./chromium.js";
import { median } from "./stats.js";

expectArgs("bench/browser.ts", ["recipe", "rounds", "steps", "warmup"]);
const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const recipe = arg("recipe", "small");
if (recipe !== "small" && recipe !== "big") {
  console.error(`bench/browser.ts: --recipe ${recipe}: use small or big`);
  process.exit(2);
}
const rounds = Number(arg("rounds", "3"));
const steps = Number(arg("steps", recipe === "small" ? "20" : "3"));
const warmup = Number(arg("warmup", recipe === "small" ? "5" : "3"));

function nodeStep(): number {
  const r = spawnSync(
    process.execPath,
    [
      "--expose-gc",
      "--import",
      "tsx",
      "bench/train-step.ts",
      "--recipe",
      recipe,
      "--threads",
      "2",
      "--steps",
      String(steps),
      "--warmup",
      String(warmup),
    ],
    { cwd: ROOT, encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`bench/train-step.ts failed:\n${r.stderr}`);
  return (JSON.parse(r.stdout) as { median_ms: number }).median_ms;
}

const opened = await openBenchPage("bench/browser.html", "minigptBench");
if (!opened) {
  console.log(`bench/browser.ts: ${CHROMIUM} not found (apt-get install chromium); nothing to measure`);
  process.exit(0);
}
const { page } = opened;
try {
  const inBrowser = async (o: BrowserRun): Promise<BrowserResult> =>
    page.evaluate(
      (x) => (globalThis as unknown as { minigptBench: { run(o: BrowserRun): Promise<BrowserResult> } }).minigptBench.run(x),
      o,
    );
  const all = [
    { label: "chromium worker, 2 threads, data parallel", run: { recipe, threads: 2, parallel: "batch", warmup, steps } },
    { label: "chromium worker, 2 threads, kernels split", run: { recipe, threads: 2, parallel: "kernels", warmup, steps } },
    { label: "chromium worker, 1 thread", run: { recipe, threads: 1, parallel: "kernels", warmup, steps } },
  ] as const;
  const settings = recipe === "small" ? all : all.slice(0, 1);
  const table = new Map<string, number[]>([
    ["node, 2 threads, data parallel", []],
    ...settings.map((s) => [s.label, []] as [string, number[]]),
  ]);
  const what =
    recipe === "small"
      ? "nanoGPT CPU recipe (4L 128w, B12 T64, vocab 65)"
      : "bigger recipe (6L 384w, B64 T256 as 4 micro-batches of 16, vocab 65)";
  console.log(`${what}, ms per training step, median of ${steps} after ${warmup} warm-up, ${rounds} rounds in turns`);
  for (let r = 1; r <= rounds; r++) {
    const node = nodeStep();
    table.get("node, 2 threads, data parallel")?.push(node);
    const line = [`round ${r}: node ${node.toFixed(1)}`];
    for (const s of settings) {
      const res = await inBrowser({ ...s.run });
      if (s.run.parallel === "batch" && !res.dataParallel) throw new Error("DataParallel.create gave no replicas in the worker");
      const ms = median(res.times);
      table.get(s.label)?.push(ms);
      line.push(`${s.label.replace("chromium worker, ", "")} ${ms.toFixed(1)} (${res.simd} SIMD, ${res.tile} tile)`);
    }
    console.log(line.join("; "));
  }
  const nodeMs = median(table.get("node, 2 threads, data parallel") as number[]);
  console.log("");
  console.log("| setting | ms/step (median over rounds) | / Node 2t data parallel |");
  console.log("|---|---|---|");
  for (const [label, ms] of table) console.log(`| ${label} | ${median(ms).toFixed(1)} | ${(median(ms) / nodeMs).toFixed(2)} |`);
} finally {
  await opened.close();
}
