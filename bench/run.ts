// `npm run bench`: every benchmark in one go, then one side-by-side table minigpt vs PyTorch.
//
//   npm run bench [-- --quick] [-- --no-matmul] [-- --no-pytorch] [-- --only train-small,gen-kv]
//                 [-- --rounds R] [-- --json FILE] [-- --baseline DIR]
//
// 1. matmul GFLOP/s (bench/matmul.ts, validated against the reference before timing);
// 2. minigpt: training steps of nanoGPT's CPU recipe and the bigger recipe (bench/train-step.ts) on the
//    wasm backend with 1 thread and 2 threads (data parallel, the trainer's default, and split kernels;
//    and the ref backend for the small recipe, a few steps), and
//    generation (bench/generate.ts) with and without the KV cache, 1 and 2 threads;
// 3. PyTorch (bench/pytorch_bench.py with /usr/bin/python3) over torch threads {1,2} x OpenBLAS
//    threads {1,2}, skipped with a message when torch is not importable. It runs without
//    OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which some machines set and which pin OpenBLAS to a slower
//    kernel than the one it picks for the CPU (~1.8x slower sgemm on an AVX-512 AMD EPYC); the output
//    names the kernel OpenBLAS used and the CPU (lscpu's model name), since every ratio depends on both.
// Each setting runs in its own child process, so peak RSS is per setting. Ratios compare the best
// setting of each side, measured in this run.
//
// The headline figure (nanoGPT's CPU recipe, minigpt vs PyTorch) is measured in --rounds R rounds
// (default 3, 5 without --quick): each round runs minigpt's three wasm settings and PyTorch's four back
// to back, the side that goes first alternating. This machine's speed swings by up to 2x from one
// minute to the next, so one pass can put the two sides in different minutes; per round the best
// setting of each side gives a ratio, and the table reports each setting's median over the rounds
// and the median of the per-round ratios. Each round also samples bench/machine.ts for 3 s (what a
// core gave then: SIMD FMA ceiling, in-cache matmul, clock), printed next to that round's ratio.
// Then the paired measurement: the best setting of each side, each in one warm process that runs
// steps on request (--serve), in alternating blocks of steps (minigpt, PyTorch, PyTorch, minigpt,
// ...), the other process idle meanwhile; the ratio of each pair of neighbouring blocks, and their
// median. Neighbouring blocks are a second or two apart, so the pairs cancel most of the drift that
// rounds (tens of seconds apart) leave in. The bigger recipe gets the same, in blocks of one step
// (10-20 s each): its first comparison runs each side once, minutes apart.
// --baseline DIR: another checkout of minigpt (built: its wasm in src/kernels/wasm/build/), e.g. the
// code before a change. The paired measurements then run its train-step.ts too, with the same
// setting, in the same turns (minigpt, baseline, PyTorch, ...), and report after/before per pair:
// before and after in one run, on the same machine.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { arg, expectArgs } from "./args.js";
import { median } from "./stats.js";
import { StepServer } from "./step-server.js";

expectArgs("npm run bench", ["rounds", "only", "json", "baseline"], ["quick", "no-matmul", "no-pytorch"]);

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "..");
const argv = process.argv.slice(2);
const quick = argv.includes("--quick");
const rounds = Math.max(1, Number(arg("rounds", quick ? "3" : "5")));
const only = arg("only", "") ? arg("only", "").split(",") : undefined;
const want = (part: string) => !only || only.includes(part);
const PYTHON = "/usr/bin/python3";
const baseline = arg("baseline", "") ? resolve(arg("baseline", "")) : null;

interface Result {
  part: string;
  backend?: string;
  threads?: number;
  torch_threads?: number;
  blas_threads?: number;
  median_ms: number;
  tokens_per_s: number;
  peak_rss_mb: number;
  growth_per_step?: Record<string, number>;
  [key: string]: unknown;
}

const miniSetting = (r: Result | undefined) =>
  r ? (r.backend === "ref" ? "ref" : `wasm ${r.threads}t${r.parallel && (r.threads ?? 1) > 1 ? ` ${r.parallel}` : ""}`) : "";
const torchSetting = (r: Result | undefined) => (r ? `torch ${r.torch_threads}t, BLAS ${r.blas_threads}t` : "");
const fmt = (x: number | undefined, digits = 1) => (x === undefined || !Number.isFinite(x) ? "n/a" : x.toFixed(digits));

function log(text: string): void {
  process.stderr.write(`${text}\n`);
}

const failures: string[] = [];

/** Run a child that prints one JSON object as its last stdout line. */
function child(cmd: string, args: string[], label: string): Result | null {
  log(`bench: ${label}`);
  const t0 = performance.now();
  const p = spawnSync(cmd, args, { cwd: repoRoot, encoding: "utf8", maxBuffer: 64 << 20, stdio: ["ignore", "pipe", "inherit"] });
  if (p.status !== 0) {
    log(`  failed (exit ${p.status}${p.signal ? `, ${p.signal}` : ""})`);
    failures.push(label);
    return null;
  }
  const lines = p.stdout.trim().split("\n");
  const r = JSON.parse(lines[lines.length - 1] as string) as Result;
  log(
    `  ${r.median_ms.toFixed(1)} ms median, ${r.tokens_per_s.toFixed(1)} tokens/s, peak RSS ${r.peak_rss_mb.toFixed(0)} MB (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
  );
  return r;
}

const node = (script: string, args: string[], label: string) =>
  child(process.execPath, ["--expose-gc", "--import", "tsx", join("bench", script), ...args], label);

/** lscpu's "Model name" (what `os.cpus()` reports when lscpu is missing) */
function cpuModel(): string {
  const p = spawnSync("lscpu", [], { encoding: "utf8" });
  const line = p.status === 0 ? p.stdout.split("\n").find((l) => l.startsWith("Model name:")) : undefined;
  return line ? line.slice("Model name:".length).trim() : (cpus()[0]?.model ?? "unknown");
}
const loadNow = () =>
  loadavg()
    .map((x) => x.toFixed(1))
    .join(" ");

const started = performance.now();
const cpu = cpuModel();
const loadAtStart = loadNow();
log(`minigpt bench${quick ? " (quick)" : ""}: Node ${process.version}, ${cpus().length} x ${cpu}, load average ${loadAtStart}`);

// 1. matmul: its own table, printed as it goes
if (!argv.includes("--no-matmul") && want("matmul")) {
  log("bench: matmul (bench/matmul.ts)");
  const p = spawnSync(process.execPath, ["--import", "tsx", "bench/matmul.ts", ...(quick ? ["--quick"] : [])], {
    cwd: repoRoot,
    stdio: "inherit",
  });
  if (p.status !== 0) log(`  matmul benchmark failed (exit ${p.status})`);
}

// 2. minigpt
const mini: Result[] = [];
const add = (r: Result | null) => {
  if (r) mini.push(r);
};
const miniKey = (r: Result) => `${r.part} ${r.backend} ${r.threads} ${r.parallel}`;
const torchKey = (r: Result) => `${r.part} ${r.torch_threads} ${r.blas_threads}`;
/** one result per setting: the first round's, with median_ms and tokens_per_s the medians over rounds */
function mergeRounds(perRound: Result[][], key: (r: Result) => string): Result[] {
  const groups = new Map<string, Result[]>();
  for (const rs of perRound) for (const r of rs) groups.set(key(r), [...(groups.get(key(r)) ?? []), r]);
  return [...groups.values()].map((g) => ({
    ...(g[0] as Result),
    median_ms: median(g.map((r) => r.median_ms)),
    tokens_per_s: median(g.map((r) => r.tokens_per_s)),
    peak_rss_mb: Math.max(...g.map((r) => r.peak_rss_mb)),
    rounds_ms: g.map((r) => r.median_ms),
  }));
}
// warm-up steps, as many as PyTorch's side takes (bench/pytorch_bench.py PLAN; the bigger recipe's
// PyTorch steps get faster over the first few)
const smallWarmup = quick ? "3" : "5";
const smallSteps = ["--warmup", smallWarmup, "--steps", quick ? "10" : "30"];
const bigWarmup = quick ? "2" : "3";
const bigSteps = ["--warmup", bigWarmup, "--steps", quick ? "1" : "3"];
const threadSettings = [1, 2];
// training on 2 threads both ways: data parallel (the trainer's default) and split kernels
const trainSettings: [number, string][] = [
  [1, "batch"],
  [2, "batch"],
  [2, "kernels"],
];
// PyTorch's side of one train-small round: the full torch x OpenBLAS thread grid
function torchTrainSmall(): Result[] {
  log("bench: PyTorch (bench/pytorch_bench.py --parts train-small)");
  const p = spawnSync(PYTHON, [join("bench", "pytorch_bench.py"), "--parts", "train-small", ...(quick ? ["--quick"] : [])], {
    cwd: repoRoot,
    encoding: "utf8",
    maxBuffer: 64 << 20,
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (p.status !== 0) {
    failures.push("PyTorch train-small");
    return [];
  }
  return (JSON.parse(p.stdout) as { results: Result[] }).results.filter((r) => typeof r.median_ms === "number");
}
const haveTorch = !argv.includes("--no-pytorch") && spawnSync(PYTHON, ["-c", "import torch"], { stdio: "ignore" }).status === 0;

/** bench/pytorch_bench.py --info: what the PyTorch side runs on */
interface TorchInfo {
  torch: string;
  blas: string;
  blas_core?: string;
  cpu: string;
  openblas_env_removed: string[];
}
function torchInfo(): TorchInfo | null {
  const p = spawnSync(PYTHON, [join("bench", "pytorch_bench.py"), "--info"], {
    cwd: repoRoot,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  return p.status === 0 ? (JSON.parse(p.stdout) as TorchInfo) : null;
}
const torchAbout = haveTorch ? torchInfo() : null;
const torchLine = torchAbout
  ? `PyTorch ${torchAbout.torch}, ${torchAbout.blas}${torchAbout.blas_core ? ` kernel ${torchAbout.blas_core}` : ""} (${
      torchAbout.openblas_env_removed.length > 0
        ? `run without ${torchAbout.openblas_env_removed.join(", ")}`
        : "no OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE set"
    }), CPU ${torchAbout.cpu}`
  : "";
if (torchLine) log(torchLine);

interface MachineState {
  clock_ghz: { median: number };
  fma_gflops: { median: number };
  matmul_gflops: { median: number };
}
/** a few seconds of bench/machine.ts: what a core gave at the time (the machine's speed swings) */
function machineState(): MachineState | null {
  const p = spawnSync(process.execPath, ["--import", "tsx", "bench/machine.ts", "--seconds", "3", "--json"], {
    cwd: repoRoot,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (p.status !== 0) return null;
  const lines = p.stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1] as string) as MachineState;
}

interface Paired {
  part: string;
  mini: string;
  torch: string;
  block: number;
  /** per pair: minigpt's and PyTorch's block medians (ms), and the --baseline checkout's */
  pairs: { mini: number; torch: number; base?: number }[];
}

/**
 * minigpt's and PyTorch's best settings of a training part timed in alternating blocks (see the
 * header): train-small in blocks of 8 steps (12 pairs with --quick, 24 without), train-big in blocks
 * of one step (a step takes 10-20 s; 3 pairs with --quick, 6 without)
 */
async function pairedTrain(part: "train-small" | "train-big", m: Result, t: Result): Promise<Paired | null> {
  const small = part === "train-small";
  const block = small ? 8 : 1;
  const count = small ? (quick ? 12 : 24) : quick ? 3 : 6;
  const miniArgs = [
    "--recipe",
    small ? "small" : "big",
    "--backend",
    "wasm",
    "--threads",
    String(m.threads),
    "--parallel",
    String(m.parallel),
    "--warmup",
    small ? smallWarmup : bigWarmup,
    ...(small ? [] : ["--grad-accum", String(m.grad_accum ?? 4)]),
    "--serve",
  ];
  const torchArgs = [
    join("bench", "pytorch_bench.py"),
    "--child",
    part,
    "--torch-threads",
    String(t.torch_threads),
    "--serve",
    ...(quick ? ["--quick"] : []),
  ];
  log(`bench: ${part} paired, ${count} pairs of ${block}-step blocks: minigpt ${miniSetting(m)} vs PyTorch ${torchSetting(t)}`);
  let a: StepServer | null = null;
  let b: StepServer | null = null;
  let c: StepServer | null = null;
  try {
    const miniCmd = ["--import", "tsx", join("bench", "train-step.ts"), ...miniArgs];
    a = await StepServer.start(process.execPath, miniCmd, process.env, repoRoot);
    b = await StepServer.start(PYTHON, torchArgs, { ...process.env, OPENBLAS_NUM_THREADS: String(t.blas_threads) }, repoRoot);
    if (baseline) c = await StepServer.start(process.execPath, miniCmd, process.env, baseline);
    const pairs: Paired["pairs"] = [];
    for (let i = 0; i < count; i++) {
      // who goes first alternates, so neither side always runs right after the other
      const order = i % 2 === 0 ? [a, c, b] : [b, c, a];
      const times = new Map<StepServer, number>();
      for (const server of order) if (server) times.set(server, median(await server.steps(block)));
      pairs.push({ mini: times.get(a) as number, torch: times.get(b) as number, ...(c ? { base: times.get(c) as number } : {}) });
    }
    return { part, mini: miniSetting(m), torch: torchSetting(t), block, pairs };
  } catch (e) {
    log(`  failed: ${e instanceof Error ? e.message : String(e)}`);
    failures.push(`${part} paired`);
    return null;
  } finally {
    a?.close();
    b?.close();
    c?.close();
  }
}

/** per round of train-small: every minigpt and PyTorch result of that round, and the machine's state */
const smallRounds: { mini: Result[]; torch: Result[]; machine: MachineState | null }[] = [];
if (want("train-small")) {
  for (let round = 0; round < rounds; round++) {
    log(`bench: train-small round ${round + 1} of ${rounds}`);
    const r = { mini: [] as Result[], torch: [] as Result[], machine: machineState() };
    const runMini = () => {
      // every wasm setting in every round, so that each one's median is over the same minutes
      for (const [t, how] of trainSettings) {
        const res = node(
          "train-step.ts",
          ["--recipe", "small", "--backend", "wasm", "--threads", String(t), "--parallel", how, ...smallSteps],
          `minigpt train-small wasm ${t} thread(s)${t > 1 ? `, parallel ${how}` : ""}`,
        );
        if (res) r.mini.push(res);
      }
    };
    const runTorch = () => {
      if (haveTorch) r.torch.push(...torchTrainSmall());
    };
    if (round % 2 === 0) {
      runMini();
      runTorch();
    } else {
      runTorch();
      runMini();
    }
    smallRounds.push(r);
  }
  // each setting once in the tables: its median over the rounds
  for (const m of mergeRounds(
    smallRounds.map((r) => r.mini),
    miniKey,
  ))
    mini.push(m);
  add(
    node(
      "train-step.ts",
      ["--recipe", "small", "--backend", "ref", "--warmup", "1", "--steps", quick ? "1" : "3"],
      "minigpt train-small ref",
    ),
  );
}

if (want("train-big")) {
  for (const [t, how] of trainSettings)
    add(
      node(
        "train-step.ts",
        ["--recipe", "big", "--backend", "wasm", "--threads", String(t), "--parallel", how, ...bigSteps],
        `minigpt train-big wasm ${t} thread(s)${t > 1 ? `, parallel ${how}` : ""}`,
      ),
    );
}
for (const part of ["gen-cache", "gen-nocache", "gen-kv"]) {
  if (!want(part) && !(part !== "gen-kv" && want("gen-big"))) continue;
  const runs = quick || part === "gen-kv" ? "1" : "3";
  for (const t of threadSettings)
    add(
      node(
        "generate.ts",
        ["--part", part, "--backend", "wasm", "--threads", String(t), "--runs", runs],
        `minigpt ${part} wasm ${t} thread(s)`,
      ),
    );
}

// 3. PyTorch
interface TorchRun {
  results: Result[];
  best: Record<string, Result>;
}
let torch = null as TorchRun | null;
let torchNote = "";
if (argv.includes("--no-pytorch")) {
  torchNote = "PyTorch skipped (--no-pytorch)";
} else if (spawnSync(PYTHON, ["-c", "import torch"], { stdio: "ignore" }).status !== 0) {
  torchNote = `PyTorch skipped: \`${PYTHON} -c "import torch"\` failed (install Debian's python3-torch with libopenblas0-pthread)`;
} else {
  const parts = ["train-big", "gen-nocache", "gen-kv"].filter(
    (p) => want(p) || (p === "gen-nocache" && (want("gen-cache") || want("gen-big"))),
  );
  // the full grid torch threads {1,2} x OpenBLAS threads {1,2}; with --quick only 1x1 and 2x2 (the two
  // settings that were best for these parts here). train-small ran in the rounds above.
  const passes: [string[], string[]][] = [[parts, quick ? ["--settings", "1x1,2x2"] : []]];
  for (const [ps, extra] of passes) {
    if (ps.length === 0) continue;
    log(`bench: PyTorch (bench/pytorch_bench.py --parts ${ps.join(",")} ${extra.join(" ")})`);
    const p = spawnSync(PYTHON, [join("bench", "pytorch_bench.py"), "--parts", ps.join(","), ...extra, ...(quick ? ["--quick"] : [])], {
      cwd: repoRoot,
      encoding: "utf8",
      maxBuffer: 64 << 20,
      stdio: ["ignore", "pipe", "inherit"],
    });
    if (p.status !== 0) {
      torchNote = `PyTorch benchmark failed (exit ${p.status})`;
      continue;
    }
    const r = JSON.parse(p.stdout) as TorchRun;
    const prev: TorchRun | null = torch;
    torch = prev ? { results: [...prev.results, ...r.results], best: { ...prev.best, ...r.best } } : r;
  }
}
// train-small's PyTorch results come from the rounds
const torchSmall = mergeRounds(
  smallRounds.map((r) => r.torch),
  torchKey,
);
if (torchSmall.length > 0) {
  const bestSmall = [...torchSmall].sort((a, b) => a.median_ms - b.median_ms)[0] as Result;
  const prev: TorchRun | null = torch;
  torch = {
    results: [...torchSmall, ...(prev?.results ?? [])],
    best: { ...(prev?.best ?? {}), "train-small": bestSmall },
  };
}
if (torchNote) log(torchNote);

// the paired measurements of the two training ratios (see the header)
const paired: Paired[] = [];
for (const part of ["train-small", "train-big"] as const) {
  const m = best(part, (r) => r.backend === "wasm");
  const t = torch?.best[part];
  const p = m && t ? await pairedTrain(part, m, t) : null;
  if (p) paired.push(p);
}

// 4. the table
function best(part: string, filter: (r: Result) => boolean = () => true): Result | undefined {
  return mini.filter((r) => r.part === part && filter(r)).sort((a, b) => a.median_ms - b.median_ms)[0];
}

interface Row {
  what: string;
  unit: string;
  mini?: Result;
  torch?: Result;
  value: (r: Result) => number;
  goal: string;
}
const rows: Row[] = [
  {
    what: "train step, nanoGPT CPU recipe (4L 128w, B12 T64)",
    unit: "ms/step",
    mini: best("train-small", (r) => r.backend === "wasm"),
    torch: torch?.best["train-small"],
    value: (r) => r.median_ms,
    goal: "<= 1.0",
  },
  {
    what: `train step, bigger recipe (6L 384w, B64 T256)${(best("train-big")?.grad_accum as number) > 1 ? `, minigpt as ${best("train-big")?.grad_accum} micro-batches` : ""}`,
    unit: "ms/step",
    mini: best("train-big"),
    torch: torch?.best["train-big"],
    value: (r) => r.median_ms,
    goal: "<= 1.5",
  },
  {
    what: "generate 250, bigger recipe: minigpt KV cache vs nanoGPT-style",
    unit: "ms/token",
    mini: best("gen-cache"),
    torch: torch?.best["gen-nocache"],
    value: (r) => r.median_ms / (r.tokens as number),
    goal: "<= 0.1 (10x)",
  },
  {
    what: "generate 250, bigger recipe: both without cache",
    unit: "ms/token",
    mini: best("gen-nocache"),
    torch: torch?.best["gen-nocache"],
    value: (r) => r.median_ms / (r.tokens as number),
    goal: "",
  },
  {
    what: "generate 200, GPT-2 124M shape, both KV cache",
    unit: "ms/token",
    mini: best("gen-kv"),
    torch: torch?.best["gen-kv"],
    value: (r) => r.median_ms / (r.tokens as number),
    goal: "<= 1.0",
  },
];

const header = ["benchmark", "unit", "minigpt (best)", "PyTorch (best)", "minigpt/PyTorch", "goal", "peak RSS minigpt / PyTorch"];
const table: string[][] = [];
for (const row of rows) {
  if (!row.mini && !row.torch) continue;
  const m = row.mini ? row.value(row.mini) : undefined;
  const t = row.torch ? row.value(row.torch) : undefined;
  table.push([
    row.what,
    row.unit,
    row.mini ? `${fmt(m)} (${miniSetting(row.mini)})` : "n/a",
    row.torch ? `${fmt(t)} (${torchSetting(row.torch)})` : "n/a",
    m !== undefined && t !== undefined ? fmt(m / t, 2) : "n/a",
    row.goal,
    `${fmt(row.mini?.peak_rss_mb, 0)} / ${fmt(row.torch?.peak_rss_mb, 0)} MB`,
  ]);
}
const out: string[] = [];
out.push("");
out.push(
  `machine: ${cpus().length} x ${cpu} (lscpu), Node ${process.version}; load average ${loadAtStart} at the start, ${loadNow()} at the end`,
);
if (torchLine) out.push(torchLine);
out.push("");
out.push(`| ${header.join(" | ")} |`);
out.push(`|${header.map(() => "---").join("|")}|`);
for (const r of table) out.push(`| ${r.join(" | ")} |`);

// the headline ratio round by round (best setting of each side within the round)
const roundRatios: number[] = [];
for (const [i, r] of smallRounds.entries()) {
  const m = r.mini.filter((x) => x.backend === "wasm").sort((a, b) => a.median_ms - b.median_ms)[0];
  const t = [...r.torch].sort((a, b) => a.median_ms - b.median_ms)[0];
  if (!m || !t) continue;
  roundRatios.push(m.median_ms / t.median_ms);
  const ms = r.machine;
  const state = ms
    ? `; a core gave ${fmt(ms.fma_gflops.median)} GF/s of SIMD FMA, ${fmt(ms.matmul_gflops.median)} of in-cache matmul, clock ${fmt(ms.clock_ghz.median, 2)} GHz-eq (bench/machine.ts, 3 s)`
    : "";
  out.push(
    `${i === 0 ? "\n" : ""}train-small round ${i + 1}: minigpt ${fmt(m.median_ms)} ms (${miniSetting(m)}), PyTorch ${fmt(t.median_ms)} ms (${torchSetting(t)}), ratio ${fmt(m.median_ms / t.median_ms, 2)}${state}`,
  );
}
if (roundRatios.length > 0)
  out.push(
    `train-small minigpt/PyTorch over ${roundRatios.length} round(s): median ${fmt(median(roundRatios), 2)}, range ${fmt(Math.min(...roundRatios), 2)}-${fmt(Math.max(...roundRatios), 2)} (goal <= 1.0)`,
  );
for (const p of paired) {
  if (p.pairs.length === 0) continue;
  const ratios = p.pairs.map((x) => x.mini / x.torch).sort((x, y) => x - y);
  const q = (f: number) => ratios[Math.min(ratios.length - 1, Math.floor(f * ratios.length))] as number;
  out.push(
    `${p.part} paired, ${p.mini} vs ${p.torch}, ${p.pairs.length} pairs of ${p.block}-step blocks in turns: minigpt ${fmt(median(p.pairs.map((x) => x.mini)))} ms, PyTorch ${fmt(median(p.pairs.map((x) => x.torch)))} ms (medians); minigpt/PyTorch per pair: median ${fmt(median(ratios), 2)}, middle half ${fmt(q(0.25), 2)}-${fmt(q(0.75), 2)}, range ${fmt(ratios[0], 2)}-${fmt(ratios[ratios.length - 1], 2)} (goal ${p.part === "train-small" ? "<= 1.0" : "<= 1.5"})`,
  );
  const bases = p.pairs.filter((x) => x.base !== undefined);
  if (bases.length > 0) {
    const vsBase = bases.map((x) => x.mini / (x.base as number)).sort((x, y) => x - y);
    const baseRatios = bases.map((x) => (x.base as number) / x.torch);
    out.push(
      `  baseline ${baseline} in the same turns: ${fmt(median(bases.map((x) => x.base as number)))} ms (median), baseline/PyTorch per pair median ${fmt(median(baseRatios), 2)}; minigpt/baseline per pair: median ${fmt(median(vsBase), 3)}, range ${fmt(vsBase[0], 3)}-${fmt(vsBase[vsBase.length - 1], 3)}`,
    );
  }
}

// every setting, for the record
out.push("");
out.push("| minigpt setting | ms (median) | tokens/s | peak RSS MB | growth/step after warm-up: wasm heap / JS heap |");
out.push("|---|---|---|---|---|");
for (const r of mini) {
  const g = r.growth_per_step;
  out.push(
    `| ${r.part} ${miniSetting(r)} | ${fmt(r.median_ms)} | ${fmt(r.tokens_per_s)} | ${fmt(r.peak_rss_mb, 0)} | ${g ? `${fmt(g.wasm_reserved, 0)} B / ${fmt(g.js_heap_used, 0)} B` : ""} |`,
  );
}
if (torch) {
  out.push("");
  out.push("| PyTorch setting | ms (median) | tokens/s | peak RSS MB |");
  out.push("|---|---|---|---|");
  for (const r of torch.results) {
    if (typeof r.median_ms !== "number") out.push(`| ${r.part} ${torchSetting(r)} | failed | | |`);
    else out.push(`| ${r.part} ${torchSetting(r)} | ${fmt(r.median_ms)} | ${fmt(r.tokens_per_s)} | ${fmt(r.peak_rss_mb, 0)} |`);
  }
}
if (torchNote) out.push("", torchNote);
if (failures.length > 0) out.push("", `failed (see the error above in the log): ${failures.join("; ")}`);
const small = best("train-small", (r) => r.backend === "wasm");
if (small?.growth_per_step) {
  const g = small.growth_per_step;
  const bytes = Math.max(g.wasm_reserved ?? 0, 0) + Math.max(g.js_heap_used ?? 0, 0) + Math.max(g.external ?? 0, 0);
  out.push(
    "",
    `memory growth per training step after warm-up (train-small, ${miniSetting(small)}): wasm heap ${fmt(g.wasm_reserved, 0)} B, JS heap ${fmt(g.js_heap_used, 0)} B, external ${fmt(g.external, 0)} B, RSS ${fmt(g.rss, 0)} B (goal: < 1 MB; ${bytes < 2 ** 20 ? "met" : "not met"})`,
  );
}
out.push("", `total ${((performance.now() - started) / 1000).toFixed(0)} s${quick ? " (--quick)" : ""}`);
console.log(out.join("\n"));

const jsonPath = arg("json", "") || join(repoRoot, "tmp", "bench", `results-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
mkdirSync(dirname(jsonPath), { recursive: true });
writeFileSync(
  jsonPath,
  `${JSON.stringify({ quick, node: process.version, cpu, load_average: { start: loadAtStart, end: loadNow() }, pytorch_info: torchAbout, minigpt: mini, pytorch: torch, trainSmallRounds: smallRounds, trainSmallPaired: paired.find((p) => p.part === "train-small") ?? null, trainBigPaired: paired.find((p) => p.part === "train-big") ?? null, note: torchNote }, null, 1)}\n`,
);
log(`results: ${jsonPath}`);
