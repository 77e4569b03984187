// What one core of this machine gives us, sampled over time: is a slow benchmark minute our code or
// the machine? Three probes take turns for --seconds (default 30), each for ~50 ms per sample:
//   clock  a dependent integer chain (bench/machine-probe.as latencyChain): core clock x the share of
//          time this thread runs. Steal time or a lower clock slows it; a busy hyperthread sibling
//          on the same physical core does not (the chain uses one port every 4 cycles).
//   fma    ten independent f32x4 FMA chains, no memory (fmaChains): the core's SIMD FMA throughput,
//          the ceiling of our matmul. A busy sibling shares the FMA ports and the front end with it.
//   matmul minigpt's wasm matmul on 128x256x128 (in cache): how close the kernel runs to that ceiling.
// If fma and matmul swing together while clock stays put, the slow minutes come from another tenant
// sharing the physical core, which no code of ours can change.
//
//   node --import tsx bench/machine.ts [--seconds 30] [--json]
// --json: only a summary line of JSON (medians and 5%/95% points), for bench/run.ts, which samples a
// few seconds in every round of the headline benchmark.
import { readFileSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
import { refBackend } from "../src/kernels/ref/index.js";
import { loadWasmBackend } from "../src/kernels/wasm/loader.js";
import { Tensor } from "../src/tensor/tensor.js";
import { difference } from "../tests/kernel-data.js";
import { arg, expectArgs } from "./args.js";
import { median } from "./stats.js";

expectArgs("bench/machine.ts", ["seconds"], ["json"]);
const json = process.argv.includes("--json");
const seconds = Number(arg("seconds", "30"));
if (!(seconds > 0)) {
  console.error("bench/machine.ts: --seconds must be a positive number");
  process.exit(2);
}

setFlagsFromString("--experimental-wasm-relaxed-simd");
const asc = (await import("assemblyscript/asc")).default;
const source = readFileSync(new URL("./machine-probe.as", import.meta.url), "utf8");
const built: Uint8Array[] = [];
const { error, stderr } = await asc.main(
  ["probe.ts", "--outFile", "probe.wasm", "-O3", "--runtime", "stub", "--enable", "simd", "--enable", "relaxed-simd"],
  {
    readFile: (name: string) => (name === "probe.ts" ? source : null),
    writeFile: (name: string, contents: string | Uint8Array) => {
      if (name === "probe.wasm" && typeof contents !== "string") built.push(contents);
    },
    listFiles: () => [],
  },
);
const binary = built[0];
if (error || !binary) {
  console.error(`bench/machine.ts: could not build the probes: ${String(error)} ${stderr?.toString() ?? ""}`);
  process.exit(1);
}
const probe = new WebAssembly.Instance(new WebAssembly.Module(binary as Uint8Array<ArrayBuffer>), {}).exports as unknown as {
  latencyChain(n: number, seed: number): number;
  fmaChains(n: number, s: number): number;
};

const be = await loadWasmBackend({ threads: 1 });
const [M, K, N] = [128, 256, 128];
const a = Tensor.fromArray(
  Array.from({ length: M * K }, (_, i) => Math.sin(i)),
  [M, K],
);
const b = Tensor.fromArray(
  Array.from({ length: K * N }, (_, i) => Math.cos(i)),
  [K, N],
);
const out = Tensor.zeros([M, N]);

// checked against the reference before it is timed, as every benchmark here does
const want = Tensor.zeros([M, N]);
refBackend.matmul(want.data, a.data, b.data, M, K, N, false);
be.matmul(out.data, a.data, b.data, M, K, N, false);
const { worst } = difference(out.data, want.data, 0, 1e-6 * K);
if (worst > 1) {
  console.error("bench/machine.ts: the wasm matmul disagrees with the reference; not timing it");
  process.exit(1);
}

/** a probe: run(n) does n units of its work; flops(n) (or steps, for the chain) is what it counts */
interface Probe {
  run: (n: number) => void;
  count: (n: number) => number;
  /** the n whose call took ~50 ms last time (calibrated on the fly) */
  n: number;
}
let sink = 0;
const chainProbe: Probe = {
  run: (n) => {
    sink += probe.latencyChain(n, 7);
  },
  count: (n) => n,
  n: 1 << 16,
};
const fmaProbe: Probe = {
  run: (n) => {
    sink += probe.fmaChains(n, 1);
  },
  count: (n) => n * 10 * 8,
  n: 1 << 14,
};
const matmulProbe: Probe = {
  run: (n) => {
    for (let r = 0; r < n; r++) be.matmul(out.data, a.data, b.data, M, K, N, false);
  },
  count: (n) => n * 2 * M * K * N,
  n: 1,
};

/** Run the probe with n growing (x2 to x8) until one call takes >= 50 ms; returns its count per second. */
function rate(p: Probe): number {
  for (;;) {
    const t0 = performance.now();
    p.run(p.n);
    const dt = performance.now() - t0;
    if (dt >= 50) return p.count(p.n) / (dt / 1000);
    p.n = Math.ceil(p.n * (dt > 0 ? Math.min(8, Math.max(2, 50 / dt)) : 8));
  }
}

// warm-up: tier the probes and the kernel up to their optimized code
for (let i = 0; i < 3; i++) for (const p of [chainProbe, fmaProbe, matmulProbe]) rate(p);

interface Sample {
  t: number;
  clock: number; // GHz-equivalent: chain steps/s x 4 cycles per step
  fma: number; // GFLOP/s
  matmul: number; // GFLOP/s
}
const samples: Sample[] = [];
const t0 = performance.now();
if (!json) {
  console.log(`bench/machine.ts: ${seconds} s of samples, probes in turns (~50 ms each); one line per second (medians)`);
  console.log("   s   clock(GHz-eq)   fma GF/s   matmul GF/s   matmul/fma");
}
let second = 0;
let bucket: Sample[] = [];
const line = (s: Sample[], at: number): void => {
  if (json) return;
  const c = median(s.map((x) => x.clock));
  const f = median(s.map((x) => x.fma));
  const m = median(s.map((x) => x.matmul));
  console.log(
    `${String(at).padStart(4)}   ${c.toFixed(2).padStart(12)}   ${f.toFixed(1).padStart(8)}   ${m.toFixed(1).padStart(11)}   ${(m / f).toFixed(2).padStart(10)}`,
  );
};
while (performance.now() - t0 < seconds * 1000) {
  const chain = rate(chainProbe);
  const fma = rate(fmaProbe);
  const mm = rate(matmulProbe);
  const s: Sample = { t: (performance.now() - t0) / 1000, clock: (chain * 4) / 1e9, fma: fma / 1e9, matmul: mm / 1e9 };
  samples.push(s);
  bucket.push(s);
  if (Math.floor(s.t) > second) {
    line(bucket, Math.floor(s.t));
    second = Math.floor(s.t);
    bucket = [];
  }
}
if (sink === 0.5) console.log(""); // keep the probes' results alive

function corr(x: number[], y: number[]): number {
  const mx = x.reduce((p, q) => p + q, 0) / x.length;
  const my = y.reduce((p, q) => p + q, 0) / y.length;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < x.length; i++) {
    const dx = (x[i] as number) - mx;
    const dy = (y[i] as number) - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : 0;
}
const col = (k: keyof Sample): number[] => samples.map((s) => s[k]);
const pct = (v: number[], q: number): number => [...v].sort((p, r) => p - r)[Math.floor(v.length * q)] as number;
const spread = (v: number[]): string => {
  const lo = pct(v, 0.05);
  const hi = pct(v, 0.95);
  return `5%..95% ${lo.toFixed(2)}..${hi.toFixed(2)} (x${(hi / lo).toFixed(2)}), median ${median(v).toFixed(2)}`;
};
if (json) {
  const summary = (k: keyof Sample) => ({ median: median(col(k)), p5: pct(col(k), 0.05), p95: pct(col(k), 0.95) });
  console.log(
    JSON.stringify({
      seconds,
      samples: samples.length,
      clock_ghz: summary("clock"),
      fma_gflops: summary("fma"),
      matmul_gflops: summary("matmul"),
    }),
  );
} else {
  console.log(`\n${samples.length} samples`);
  console.log(`clock  GHz-eq  ${spread(col("clock"))}`);
  console.log(`fma    GF/s    ${spread(col("fma"))}`);
  console.log(`matmul GF/s    ${spread(col("matmul"))}`);
  console.log(`matmul / fma per sample: median ${median(samples.map((s) => s.matmul / s.fma)).toFixed(2)}`);
  console.log(
    `correlation over samples: fma~matmul ${corr(col("fma"), col("matmul")).toFixed(2)}, clock~fma ${corr(col("clock"), col("fma")).toFixed(2)}, clock~matmul ${corr(col("clock"), col("matmul")).toFixed(2)}`,
  );
}
be.dispose?.();
process.exit(0);
