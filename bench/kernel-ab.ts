// A/B of two (or more) builds of the wasm kernels in one process, on one shared memory, their timings
// taken in turns: the way to tell whether a kernel change helps on a machine whose speed drifts by 2x
// from one minute to the next (separate runs cannot). For each case, every build's output is compared
// with the first build's before timing; then `--rounds` rounds, each timing every build once in turn.
// Reported: each build's median, and the median of the per-round ratios first/other (> 1: the other
// build is faster).
//
//   npm run build:wasm && cp src/kernels/wasm/build/kernels-relaxed.wasm /tmp/A.wasm   # baseline
//   ... edit src/kernels/wasm/assembly/*.as ...
//   npm run build:wasm && cp src/kernels/wasm/build/kernels-relaxed.wasm /tmp/B.wasm
//   node --import tsx bench/kernel-ab.ts /tmp/A.wasm /tmp/B.wasm [--only SUBSTRING] [--rounds N]
//        [--mm KIND,M,K,N ...]   (KIND 0 a·b, 1 a·bᵀ, 2 aᵀ·b; replaces the default cases)
//        [--rows KIND,M,K,N ...] (the same through matmulRows: a batched decode step's M rows)
//        [--packed M,K,N ...]    (a·b for M >= 2 rows from B packed once by each build's own packRowsB,
//                                 as a server's decode step reads its weights: matmulRowsPacked)
//        [--cold]                (each call's B a different copy, 256 MiB of them: B comes from memory,
//                                 as a decode step's weights do, not from the last level cache)
//
// Default cases: the matmuls of nanoGPT's CPU recipe (B·T = 768 rows, C = 128) in the layouts
// training uses, GELU forward/backward/forward with gelu', attention forward/backward (B 12, T 64, 4 heads, and the bigger
// recipe's B 2, T 256, C 384, 6 heads), LayerNorm forward/backward, AdamW and the bias
// gradient (sumRows). The builds must share the kernels' exported signatures.
import { readFileSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
import { expectArgs } from "./args.js";
import { median } from "./stats.js";

setFlagsFromString("--experimental-wasm-relaxed-simd");

expectArgs("bench/kernel-ab.ts", ["only", "rounds", "mm", "rows", "packed"], ["cold"], true);
const argv = process.argv.slice(2);
const flag = (name: string): string[] => argv.flatMap((a, i) => (a === `--${name}` ? [argv[i + 1] ?? ""] : []));
const files = argv.filter((a) => a.endsWith(".wasm"));
if (files.length < 2) {
  console.error("usage: node --import tsx bench/kernel-ab.ts A.wasm B.wasm [--only S] [--rounds N] [--mm KIND,M,K,N]");
  process.exit(2);
}
const only = flag("only")[0];
const rounds = Number(flag("rounds")[0] ?? 9);
const cold = argv.includes("--cold");

type Kernels = Record<string, (...args: number[]) => number>;
const memory = new WebAssembly.Memory({ initial: 4096, maximum: 65536, shared: true });
const builds: Kernels[] = [];
for (const f of files) {
  const { instance } = await WebAssembly.instantiate(readFileSync(f), { env: { memory } });
  builds.push(instance.exports as unknown as Kernels);
}
const first = builds[0] as Kernels;

// a bump allocator above the 1 MiB the kernels keep for static data
let top = 1 << 20;
function alloc(floats: number): number {
  const p = top;
  top += (floats * 4 + 63) & ~63;
  // the LM head's 50,257 x 768 floats and more: grow past the initial 256 MiB
  if (top > memory.buffer.byteLength) memory.grow(Math.ceil((top - memory.buffer.byteLength) / 65536));
  return p;
}
function filled(floats: number): number {
  const p = alloc(floats);
  const v = new Float32Array(memory.buffer, p, floats);
  for (let i = 0; i < floats; i++) v[i] = Math.sin(i * 0.37 + p);
  return p;
}
const scratch = alloc((first.matmulScratchBytes?.() ?? 0) / 4 + 64);

interface Case {
  label: string;
  /** work per call: flops (GF/s is printed) or elements (ns per element is printed) */
  work: number;
  perElement: boolean;
  /** the output region compared across builds */
  out: [number, number];
  run: (k: Kernels) => void;
  /** restores the inputs before each validating call (for kernels that update their inputs in place) */
  reset?: () => void;
}
const cases: Case[] = [];

function mm(label: string, kind: number, M: number, K: number, N: number, rows = false): void {
  const a = filled(M * K);
  const b0 = filled(K * N);
  // --cold: copies of B (the same values) taken in turns, so that none is still in cache
  const bs = [b0];
  if (cold) {
    while (bs.length * K * N * 4 < 256 * 2 ** 20) {
      const c = alloc(K * N);
      new Float32Array(memory.buffer, c, K * N).set(new Float32Array(memory.buffer, b0, K * N));
      bs.push(c);
    }
  }
  let next = 0;
  const nextB = () => bs[next++ % bs.length] as number;
  const o = alloc(M * N);
  const lda = kind === 2 ? M : K;
  cases.push({
    label: `${label} ${["a·b", "a·bᵀ", "aᵀ·b"][kind]} ${M}x${K}x${N}${cold ? " cold" : ""}`,
    work: 2 * M * K * N,
    perElement: false,
    out: [o, M * N],
    run: rows
      ? (k) => k.matmulRows?.(kind, o, a, nextB(), M, K, N, lda, 0, 0, N, scratch)
      : (k) => k.matmul?.(kind, o, a, nextB(), M, K, N, lda, 0, scratch, 0),
  });
}

/** a·b from B packed by each build's packRowsB (its own layout), --cold: copies of it in turns */
function packedRows(M: number, K: number, N: number): void {
  const a = filled(M * K);
  const b = filled(K * N);
  const copies = builds.map((k) => {
    const ps: number[] = [];
    do {
      const p = alloc(K * N);
      k.packRowsB?.(p, b, K, N);
      ps.push(p);
    } while (cold && ps.length * K * N * 4 * builds.length < 256 * 2 ** 20);
    return ps;
  });
  let next = 0;
  const o = alloc(M * N);
  cases.push({
    label: `matmulRowsPacked a·b ${M}x${K}x${N}${cold ? " cold" : ""}`,
    work: 2 * M * K * N,
    perElement: false,
    out: [o, M * N],
    run: (k) => {
      const ps = copies[builds.indexOf(k)] as number[];
      k.matmulRowsPacked?.(o, a, ps[next++ % ps.length] as number, M, K, N, scratch);
    },
  });
}

const customPacked = flag("packed").map((s) => s.split(",").map(Number));
for (const [M, K, N] of customPacked) packedRows(M ?? 2, K ?? 1, N ?? 8);
const custom = flag("mm").map((s) => s.split(",").map(Number));
for (const [kind, M, K, N] of custom) mm("matmul", kind ?? 0, M ?? 1, K ?? 1, N ?? 1);
const customRows = flag("rows").map((s) => s.split(",").map(Number));
for (const [kind, M, K, N] of customRows) mm("matmulRows", kind ?? 0, M ?? 1, K ?? 1, N ?? 1, true);
if (custom.length === 0 && customRows.length === 0 && customPacked.length === 0) {
  const R = 768;
  const C = 128;
  mm("qkv", 0, R, C, 3 * C);
  mm("attn proj", 0, R, C, C);
  mm("fc", 0, R, C, 4 * C);
  mm("mlp proj", 0, R, 4 * C, C);
  mm("logits", 1, R, C, 65);
  mm("dx fc", 1, R, 4 * C, C);
  mm("dx qkv", 1, R, 3 * C, C);
  mm("dW fc", 2, C, R, 4 * C);
  mm("dW proj", 2, 4 * C, R, C);
  mm("dW qkv", 2, C, R, 3 * C);
  const n = R * 4 * C;
  const x = filled(n);
  const g = filled(n);
  const y = alloc(n);
  const dx = alloc(n);
  cases.push({ label: "gelu forward", work: n, perElement: true, out: [y, n], run: (k) => k.geluForward?.(y, x, n) });
  cases.push({
    label: "gelu backward",
    work: n,
    perElement: true,
    out: [dx, n],
    run: (k) => {
      new Float32Array(memory.buffer, dx, n).fill(0);
      k.geluBackward?.(dx, x, g, n);
    },
  });
  const dg = alloc(n);
  cases.push({
    label: "gelu forward with gelu'",
    work: n,
    perElement: true,
    out: [dg, n],
    run: (k) => k.geluForwardGrad?.(y, dg, x, n),
  });
  // attention on the CPU recipe's shape and on two rows of the bigger recipe's (T 256, C 384, 6 heads)
  for (const [B, T, AC, nh] of [
    [12, 64, C, 4],
    [2, 256, 384, 6],
  ] as const) {
    const shape = `B ${B} T ${T} C ${AC} nh ${nh}`;
    const qkv = filled(B * T * 3 * AC);
    const att = alloc(B * T * AC);
    const lse = alloc(B * nh * T);
    const dqkv = alloc(B * T * 3 * AC);
    const dout = filled(B * T * AC);
    // the most scratch any build asks for (a build may lay its scratch out differently)
    const as = alloc(Math.max(...builds.map((k) => k.attentionScratchBytes?.(T, AC, nh) ?? 0)) / 4 + 64);
    const af = 4 * B * nh * T * T * (AC / nh); // as if not causal
    // (probs 0: the probabilities recomputed, and overwrite 0, as on every build before those arguments came)
    cases.push({
      label: `attention forward, ${shape} (GF/s as if dense)`,
      work: af,
      perElement: false,
      out: [att, B * T * AC],
      run: (k) => k.attentionForward?.(att, lse, 0, qkv, B, T, AC, nh, 0, B * nh, as),
    });
    cases.push({
      label: `attention backward, ${shape} (GF/s as if dense)`,
      work: 2 * af,
      perElement: false,
      out: [dqkv, B * T * 3 * AC],
      run: (k) => {
        new Float32Array(memory.buffer, dqkv, B * T * 3 * AC).fill(0);
        k.attentionBackward?.(dqkv, dout, qkv, att, lse, 0, 0, B, T, AC, nh, 0, B * nh, as);
      },
    });
  }
  // LayerNorm on the recipe's rows, forward and backward (gradients added into zeroed buffers)
  const lx = filled(R * C);
  const lw = filled(C);
  const lb = filled(C);
  const lo = alloc(R * C);
  const mean = alloc(R);
  const rstd = alloc(R);
  cases.push({
    label: "layernorm forward 768x128",
    work: R * C,
    perElement: true,
    out: [lo, R * C],
    run: (k) => k.layernormForward?.(lo, mean, rstd, lx, lw, lb, R, C, 1e-5),
  });
  const ldx = alloc(R * C + 2 * C);
  const ldout = filled(R * C);
  cases.push({
    label: "layernorm backward 768x128",
    work: R * C,
    perElement: true,
    out: [ldx, R * C + 2 * C],
    run: (k) => {
      new Float32Array(memory.buffer, ldx, R * C + 2 * C).fill(0);
      k.layernormBackward?.(ldx, ldx + 4 * R * C, ldx + 4 * (R * C + C), ldout, lx, lw, mean, rstd, R, C);
    },
  });
  // AdamW over the recipe's 0.8M parameters (p, m, v updated in place: restored before validating)
  const np = 800_000;
  const ap = filled(np);
  const ag = filled(np);
  const am = filled(np);
  const av = alloc(np);
  const saved = [ap, am, av].map((q) => new Float32Array(memory.buffer, q, np).slice());
  cases.push({
    label: "adamw 0.8M",
    work: np,
    perElement: true,
    out: [ap, np],
    run: (k) => k.adamw?.(ap, ag, am, av, np, 1e-3, 0.9, 0.99, 1e-8, 0.1, 0.5, 0.3),
    reset: () => {
      for (const [i, q] of [ap, am, av].entries()) new Float32Array(memory.buffer, q, np).set(saved[i] as Float32Array);
    },
  });
  const db = alloc(4 * C);
  cases.push({
    label: "sumRows 768x512",
    work: n,
    perElement: true,
    out: [db, 4 * C],
    run: (k) => {
      new Float32Array(memory.buffer, db, 4 * C).fill(0);
      k.sumRows?.(db, x, R, 4 * C, scratch);
    },
  });
  // the bigger recipe's fc bias gradient: rows longer than a page
  const nb = 1024 * 1536;
  const xb = filled(nb);
  const dbb = alloc(1536);
  cases.push({
    label: "sumRows 1024x1536",
    work: nb,
    perElement: true,
    out: [dbb, 1536],
    run: (k) => {
      new Float32Array(memory.buffer, dbb, 1536).fill(0);
      k.sumRows?.(dbb, xb, 1024, 1536, scratch);
    },
  });
}

console.log(`builds: ${files.map((f, i) => `${String.fromCharCode(65 + i)} = ${f}`).join(", ")}; ${rounds} rounds in turns`);
for (const c of cases) {
  if (only && !c.label.includes(only)) continue;
  // validate: every build against the first
  const [op, on] = c.out;
  c.reset?.();
  c.run(first);
  const want = new Float32Array(memory.buffer, op, on).slice();
  let scale = 0;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  const diffs = builds.map((k) => {
    c.reset?.();
    c.run(k);
    const got = new Float32Array(memory.buffer, op, on);
    let d = 0;
    for (let i = 0; i < on; i++) d = Math.max(d, Math.abs((got[i] as number) - (want[i] as number)));
    return d;
  });
  // time: calls per sample so that a sample takes ~20-50 ms
  const t0 = performance.now();
  c.run(first);
  const reps = Math.max(1, Math.round(30 / Math.max(performance.now() - t0, 0.01)));
  const t: number[][] = builds.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (const [i, k] of builds.entries()) {
      const s = performance.now();
      for (let j = 0; j < reps; j++) c.run(k);
      t[i]?.push((performance.now() - s) / reps);
    }
  }
  const rate = (ms: number) => (c.perElement ? `${((ms * 1e6) / c.work).toFixed(2)} ns/el` : `${(c.work / ms / 1e6).toFixed(1)} GF/s`);
  const t0s = t[0] as number[];
  const ratios = t.slice(1).map((ti) => median(t0s.map((x, r) => x / (ti[r] as number))).toFixed(3));
  console.log(
    `${c.label.padEnd(40)} ${t.map((ti) => rate(median(ti)).padStart(12)).join(" ")}   A/other ${ratios.join(" ")}   max|diff| ${diffs
      .slice(1)
      .map((d) => `${d.toExponential(1)} (of ${scale.toExponential(1)})`)
      .join(" ")}`,
  );
}
