/**
 * The token cache on a corpus of any size (src/data/token-cache.ts): how fast a 1 GiB text becomes
 * a complete token cache, vocabulary pass included (source bytes / wall time), with the character
 * tokenizer and with a 4,096-token byte-level BPE; and whether training stays flat in memory: the
 * peak RSS of 50 steps of nanoGPT's CPU recipe on the 1 GiB cache against the same run on tiny
 * Shakespeare. Not run in CI (minutes, and gigabytes of disk).
 *
 * Run: node --import tsx bench/token-cache.ts [--gib 1] [--dir DIR] [--keep] [--kinds char,bpe]
 *        [--baseline CHECKOUT [--rounds N]] [--no-rss]
 *
 * --baseline: time the same caches with the code of another checkout too (e.g. `git worktree add
 * /tmp/before REV`), in turns with this one, N rounds, the order swapped every round: on a shared
 * machine only such pairs say which is faster. --no-rss skips the training runs.
 *
 * The corpus is made here: copies of tiny Shakespeare and Moby Dick, alternating, with 5% of the
 * words swapped for words of a seeded list (so that no two copies are alike and the BPE sees
 * more than two texts' worth of words), written as one file (bigger than the 512 MB that used to be
 * reported as "not valid UTF-8"). Everything it writes is under DIR and removed at the end unless
 * --keep: the corpus (1 GiB), the char cache (2 GiB of uint16) and the BPE cache (~0.6 GiB).
 */
import { spawnSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadTextSource } from "../src/data/text.js";
import { openTokenCache } from "../src/data/token-cache.js";
import { Rng } from "../src/random.js";
import { arg, expectArgs } from "./args.js";

expectArgs("bench/token-cache.ts", ["gib", "dir", "kinds", "baseline", "rounds"], ["keep", "no-rss"]);
const gib = Number(arg("gib", "1"));
const dir = resolve(arg("dir", join(tmpdir(), "minigpt-bench-token-cache")));
const keep = process.argv.includes("--keep");
const kinds = arg("kinds", "char,bpe").split(",") as ("char" | "bpe")[];
if (kinds.some((k) => k !== "char" && k !== "bpe")) throw new Error(`--kinds: char, bpe or both, not ${kinds.join(",")}`);
const baselineDir = arg("baseline", "");
const rounds = Number(arg("rounds", "1"));
const shakespearePath = new URL("../../shared/data/tinyshakespeare/input.txt", import.meta.url).pathname;

/** A seeded list of made-up words, and the corpus file of `bytes` bytes built from the two books. */
function makeCorpus(path: string, bytes: number): void {
  const rng = new Rng(2026);
  const letters = "abcdefghijklmnopqrstuvwxyz";
  const swaps = Array.from({ length: 500 }, () => Array.from({ length: 3 + rng.int(7) }, () => letters[rng.int(26)]).join(""));
  const books = [readFileSync(shakespearePath, "utf8"), loadTextSource("moby-dick").text].map((t) => t.split(/(\s+)/));
  const fd = openSync(path, "w");
  let written = 0;
  for (let copy = 0; written < bytes; copy++) {
    const parts = books[copy % 2] as string[];
    const out = parts.slice();
    // odd indices are the whitespace between words
    for (let i = 0; i < out.length; i += 2) if (out[i] !== "" && rng.int(100) < 5) out[i] = swaps[rng.int(swaps.length)] as string;
    const chunk = Buffer.from(`${out.join("")}\n\n`, "utf8");
    const n = Math.min(chunk.length, bytes - written);
    // cut only at a whole character: back up over UTF-8 continuation bytes
    let end = n;
    while (end < chunk.length && end > 0 && ((chunk[end] as number) & 0xc0) === 0x80) end--;
    writeSync(fd, chunk, 0, end);
    written += end;
    if (end < chunk.length) break;
  }
  closeSync(fd);
}

/**
 * Wall time, and the CPU time of this process (all its threads): on a machine shared with other jobs
 * the wall time is the load's, while the CPU time is close to what the same work costs on a quiet one.
 */
type Open = typeof openTokenCache;

function timeCache(
  kind: "char" | "bpe",
  corpus: string,
  cacheDir: string,
  open: Open = openTokenCache,
  label = "",
): { seconds: number; cpuSeconds: number; tokens: number } {
  rmSync(cacheDir, { recursive: true, force: true });
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  let passes = "";
  const cache = open({
    source: { name: "corpus.txt", files: [corpus], what: corpus },
    kind,
    vocabSize: 4096,
    specialsAsText: false,
    dir: cacheDir,
    onProgress: (p) => {
      if (p.done) passes += ` ${p.pass} ${p.seconds.toFixed(1)} s;`;
    },
  });
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  cache.close();
  console.log(`  ${label}${kind}:${passes} whole ${seconds.toFixed(1)} s, CPU ${cpuSeconds.toFixed(1)} s (all threads)`);
  return { seconds, cpuSeconds, tokens: cache.header.tokens as number };
}

/** Peak RSS (MB) of `minigpt train` with nanoGPT's CPU recipe for 50 steps on `data`. */
function trainRss(data: string, cacheDir: string): number {
  const out = join(dir, `rss-model-${process.hrtime.bigint()}`);
  const report = 'process.on("exit",()=>process.stderr.write("maxrss_kb="+process.resourceUsage().maxRSS+"\\n"))';
  const cli = new URL("../src/cli/entry.ts", import.meta.url).pathname;
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", cli, "train", "--data", data, "--out", out, "--n-layer", "4", "--n-head", "4", "--n-embd", "128"]
      .concat(["--block-size", "64", "--batch-size", "12", "--max-steps", "50", "--dropout", "0", "--tokenizer", "char"])
      .concat(["--eval-interval", "50", "--eval-steps", "20", "--seed", "1337"]),
    {
      encoding: "utf8",
      env: { ...process.env, MINIGPT_CACHE_DIR: cacheDir, NODE_OPTIONS: `--import=data:text/javascript,${encodeURIComponent(report)}` },
    },
  );
  rmSync(out, { recursive: true, force: true });
  const m = /maxrss_kb=(\d+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`train on ${data} failed (${r.status}):\n${r.stderr}`);
  return Number(m[1]) / 1024;
}

mkdirSync(dir, { recursive: true });
const corpus = join(dir, "corpus.txt");
const bytes = Math.round(gib * 2 ** 30);
console.log(
  `token cache benchmark: ${cpus().length} x ${cpus()[0]?.model}, Node ${process.version}, load ${loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")}`,
);
const t = performance.now();
makeCorpus(corpus, bytes);
const size = statSync(corpus).size;
console.log(`corpus: ${corpus}, ${(size / 1e6).toFixed(0)} MB, made in ${((performance.now() - t) / 1000).toFixed(0)} s`);
/** `values`' median */
function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 ? (v[m] as number) : ((v[m - 1] as number) + (v[m] as number)) / 2;
}

/** Baseline and this code in turns: per kind, the medians and the paired ratios of wall and CPU time. */
async function paired(results: string[]): Promise<void> {
  const module = resolve(baselineDir, "src/data/token-cache.ts");
  const baseline = (await import(module)).openTokenCache as Open;
  for (const kind of kinds) {
    const times = { baseline: [] as { seconds: number; cpuSeconds: number }[], current: [] as { seconds: number; cpuSeconds: number }[] };
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? (["baseline", "current"] as const) : (["current", "baseline"] as const);
      for (const which of order)
        times[which].push(
          timeCache(kind, corpus, join(dir, `cache-${kind}`), which === "baseline" ? baseline : openTokenCache, `${which} `),
        );
    }
    const mbs = (r: { seconds: number }) => size / 1e6 / r.seconds;
    const ratios = times.current.map((c, i) => (times.baseline[i] as { seconds: number }).seconds / c.seconds);
    const cpuRatios = times.current.map((c, i) => (times.baseline[i] as { cpuSeconds: number }).cpuSeconds / c.cpuSeconds);
    results.push(
      `${kind === "char" ? "char" : "BPE 4,096"}, ${rounds} pairs: this code ${median(times.current.map(mbs)).toFixed(1)} MB/s, baseline ${median(times.baseline.map(mbs)).toFixed(1)} MB/s (medians); this code faster by ${median(ratios).toFixed(2)}x (range ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}), uses ${(1 / median(cpuRatios)).toFixed(2)}x the CPU time`,
    );
  }
}

try {
  const results: string[] = [];
  if (baselineDir) await paired(results);
  else
    for (const kind of kinds) {
      const r = timeCache(kind, corpus, join(dir, `cache-${kind}`));
      results.push(
        `${kind === "char" ? "char" : "BPE 4,096"}: ${(size / 1e6 / r.seconds).toFixed(1)} MB/s (${r.tokens.toLocaleString("en-US")} tokens in ${r.seconds.toFixed(1)} s; ${(size / 1e6 / r.cpuSeconds).toFixed(1)} MB per CPU second)`,
      );
    }
  // the training runs use the char cache just made
  if (!process.argv.includes("--no-rss") && kinds.includes("char")) {
    const big = trainRss(corpus, join(dir, "cache-char"));
    const small = trainRss(shakespearePath, join(dir, "cache-char"));
    results.push(
      `peak RSS, 50 CPU-recipe steps: ${big.toFixed(0)} MB on the ${gib} GiB cache, ${small.toFixed(0)} MB on tiny Shakespeare (difference ${(big - small).toFixed(0)} MB)`,
    );
  }
  console.log(results.join("\n"));
  console.log(
    `load average at the end: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
} finally {
  if (!keep) rmSync(dir, { recursive: true, force: true });
}
