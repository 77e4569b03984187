// Quality of int8 / int4 weights (docs/benchmarks.md, "Quantized decode"): a float32 model folder
// quantized with `minigpt quantize` (int8, and int4 with groups of 32), each scored with
// `minigpt eval --json` (the validation split of the model's own training data), all through the CLI
// in child processes, as a user would. A quantized model scores on the integer kernels (int8
// activations: src/kernels/ref/quant-int.ts), so the numbers are the decode's.
// Goals: val loss within 0.5% (int8) and 3% (int4) of fp32's on nanoGPT's CPU recipe
// trained 2,000 steps on tiny Shakespeare; make that folder first with
//   node --import tsx bench/quality.ts --seeds 1337 --out tmp/bench/quality
//
//   node --import tsx bench/quant-quality.ts [--model tmp/bench/quality/seed-1337] [--out tmp/bench/quant-quality]
//        [--threads 1]
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { arg, expectArgs } from "./args.js";

expectArgs("bench/quant-quality.ts", ["model", "out", "threads"]);
const repoRoot = resolve(fileURLToPath(new URL("..", import.meta.url)));
const model = resolve(repoRoot, arg("model", "tmp/bench/quality/seed-1337"));
const out = resolve(repoRoot, arg("out", "tmp/bench/quant-quality"));
const threads = arg("threads", "1");
if (!existsSync(join(model, "model.safetensors"))) {
  console.error(`quant-quality: no model in ${model}; train one: node --import tsx bench/quality.ts --seeds 1337 --out tmp/bench/quality`);
  process.exit(1);
}
mkdirSync(out, { recursive: true });

/** the CLI from source; returns stdout. Of its stderr, the line saying the model is quantized is shown. */
function minigpt(args: string[]): string {
  const entry = join(repoRoot, "src/cli/entry.ts");
  const r = spawnSync(process.execPath, ["--import", "tsx", entry, ...args], {
    cwd: repoRoot,
    env: { ...process.env, MINIGPT_THREADS: threads },
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`minigpt ${args.join(" ")} failed:\n${r.stderr}`);
  for (const line of r.stderr.split(/[\r\n]/)) if (/quantized/.test(line)) console.log(`  ${args[0]}: ${line.trim()}`);
  return r.stdout;
}

const variants = [
  { name: "fp32", dir: model, goal: null },
  { name: "int8", dir: join(out, "int8"), goal: 0.005, bits: "8" },
  { name: "int4", dir: join(out, "int4"), goal: 0.03, bits: "4" },
];
for (const v of variants) if (v.bits) minigpt(["quantize", "--model", model, "--out", v.dir, "--bits", v.bits, "--overwrite"]);

const losses = new Map<string, number>();
for (const v of variants) {
  const r = JSON.parse(minigpt(["eval", "--model", v.dir, "--json"])) as { loss: number; tokens: number };
  losses.set(v.name, r.loss);
  const base = losses.get("fp32") as number;
  const rel = r.loss / base - 1;
  const verdict =
    v.goal === null
      ? ""
      : ` (${(rel * 100).toFixed(3)}% vs fp32, goal <= ${v.goal * 100}%: ${Math.abs(rel) <= v.goal ? "met" : "NOT met"})`;
  console.log(`${v.name}: val loss ${r.loss.toFixed(4)} over ${r.tokens} tokens${verdict}`);
}
