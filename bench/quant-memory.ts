// The memory a loaded quantized model takes against float32 (docs/benchmarks.md, "Quantized
// weights"): GPT-2 124M-shaped folders with random weights (fp32, and int8 / int4 as minigpt quantize
// writes them), each loaded by loadModel in a process of its own, which then decodes 16 tokens. Per
// folder: the process's peak RSS (getrusage's maxrss: the load's peak, start-up included), its RSS
// after the load and after the decode (each after a GC), and the wasm heap's size and live tensor
// bytes. The processes run in turns (fp32, int8, int4; --rounds times), so load on the machine falls
// on each alike; medians, with ranges. --baseline DIR also loads each folder with another checkout's
// sources (the code before a change), in the same turns.
//
//   node --import tsx bench/quant-memory.ts [--dir /tmp/minigpt-quant-memory] [--rounds 3] [--baseline DIR]
//
// The folders are written once into --dir (~0.8 GB) and reused; delete it afterwards.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { arg, expectArgs } from "./args.js";
import { GPT2_SHAPE } from "./shapes.js";
import { median } from "./stats.js";

interface Figures {
  peakRss: number;
  loadedRss: number;
  decodedRss: number;
  heapReserved: number;
  heapLive: number;
  loadSeconds: number;
}

const MB = 1e6;
const child = arg("child", "");

if (child !== "") {
  // one folder, loaded with the sources of `--tree` (this checkout by default)
  const tree = resolve(arg("tree", "."));
  const { loadModel } = await import(join(tree, "src/io/hf.ts"));
  const { useBackend } = await import(join(tree, "src/kernels/index.ts"));
  const { heap } = await import(join(tree, "src/tensor/memory.ts"));
  const { Decoder } = await import(join(tree, "src/generate/generate.ts"));
  await useBackend("wasm", { threads: 1 });
  const gc = globalThis.gc as () => void;
  const t0 = performance.now();
  const model = loadModel(child);
  const loadSeconds = (performance.now() - t0) / 1000;
  gc();
  const loadedRss = process.memoryUsage().rss;
  const decoder = new Decoder(model, [464, 2068, 7586, 21831], { maxNewTokens: 16, temperature: 0 });
  while (decoder.step());
  gc();
  const figures: Figures = {
    peakRss: process.resourceUsage().maxRSS * 1024,
    loadedRss,
    decodedRss: process.memoryUsage().rss,
    heapReserved: heap().stats().reservedBytes,
    heapLive: heap().stats().liveBytes,
    loadSeconds,
  };
  console.log(JSON.stringify(figures));
  process.exit(0);
}

expectArgs("bench/quant-memory.ts", ["dir", "rounds", "baseline", "child", "tree"]);
const dir = resolve(arg("dir", "/tmp/minigpt-quant-memory"));
const rounds = Number(arg("rounds", "3"));
const baseline = arg("baseline", "");

// the folders, written once
const folders = { fp32: join(dir, "fp32"), int8: join(dir, "int8"), int4: join(dir, "int4") };
if (!Object.values(folders).every((f) => existsSync(join(f, "model.safetensors")))) {
  const { saveModel, saveQuantizedModel } = await import("../src/io/hf.js");
  const { useBackend } = await import("../src/kernels/index.js");
  const { makeConfig } = await import("../src/nn/config.js");
  const { GPT } = await import("../src/nn/gpt.js");
  await useBackend("wasm", { threads: 1 });
  const model = new GPT(makeConfig(GPT2_SHAPE), 1337);
  for (const f of Object.values(folders)) mkdirSync(f, { recursive: true });
  saveModel(model, folders.fp32);
  saveQuantizedModel(model, folders.int8, { bits: 8, groupSize: null });
  saveQuantizedModel(model, folders.int4, { bits: 4, groupSize: 32 });
  model.dispose();
  console.log(`wrote the folders into ${dir}`);
}

const trees: [string, string][] = [["this", resolve(".")], ...(baseline ? [["baseline", resolve(baseline)] as [string, string]] : [])];
const results = new Map<string, Figures[]>();
for (let r = 0; r < rounds; r++)
  for (const [variant, folder] of Object.entries(folders))
    for (const [label, tree] of trees) {
      const out = execFileSync(
        process.execPath,
        ["--expose-gc", "--import", "tsx", "bench/quant-memory.ts", "--child", folder, "--tree", tree],
        { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] },
      );
      const key = `${label} ${variant}`;
      results.set(key, [...(results.get(key) ?? []), JSON.parse(out.trim().split("\n").at(-1) as string) as Figures]);
    }

const show = (xs: number[], unit = MB, digits = 0) => {
  const m = median(xs) / unit;
  return `${m.toFixed(digits)} (${(Math.min(...xs) / unit).toFixed(digits)}-${(Math.max(...xs) / unit).toFixed(digits)})`;
};
console.log(`GPT-2 124M shape, random weights; loadModel in its own process, wasm 1 thread; medians of ${rounds} (ranges), MB`);
for (const [key, fs] of results) {
  const col = (k: keyof Figures) => fs.map((f) => f[k]);
  console.log(
    `${key.padEnd(14)} peak RSS ${show(col("peakRss"))}  RSS loaded ${show(col("loadedRss"))}  after 16 tokens ${show(col("decodedRss"))}  wasm heap ${show(col("heapReserved"))} (live tensors ${show(col("heapLive"))})  load ${show(col("loadSeconds"), 1, 1)} s`,
  );
}
