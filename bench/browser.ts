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
import { existsSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serve } from "../tests/static-server.js";
import { arg, expectArgs } from "./args.js";
import type { BrowserResult, BrowserRun } from "./browser-worker.js";
import { median } from "./stats.js";

expectArgs("bench/browser.ts", ["recipe", "rounds", "steps", "warmup"]);
const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const CHROMIUM = "/usr/bin/chromium";
const recipe = arg("recipe", "small");
if (recipe !== "small" && recipe !== "big") {
  console.error(`bench/browser.ts: --recipe ${recipe}: use small or big`);
  process.exit(2);
}
const rounds = Number(arg("rounds", "3"));
const steps = Number(arg("steps", recipe === "small" ? "20" : "3"));
const warmup = Number(arg("warmup", recipe === "small" ? "5" : "3"));

if (!existsSync(CHROMIUM)) {
  console.log(`bench/browser.ts: ${CHROMIUM} not found (apt-get install chromium); nothing to measure`);
  process.exit(0);
}
// the page loads dist/: compile (a no-op in effect when nothing changed) and build the wasm if missing
if (!existsSync(join(ROOT, "dist/src/kernels/wasm/build/kernels-relaxed.wasm"))) {
  const b = spawnSync("npm", ["run", "build"], { cwd: ROOT, stdio: "inherit" });
  if (b.status !== 0) process.exit(1);
} else {
  const t = spawnSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  if (t.status !== 0) console.log(`tsc reported errors (dist/ may be stale):\n${t.stdout}`);
}

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

const server = await serve(ROOT);
const browser = await chromium.launch({ executablePath: CHROMIUM });
try {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/bench/browser.html`);
  await page.waitForFunction(() => "minigptBench" in globalThis);
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
  await browser.close();
  server.closeAllConnections();
  server.close();
}
