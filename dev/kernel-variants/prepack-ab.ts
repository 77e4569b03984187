// B packed once (panel-major, rowsTimesB's step order: rows-prepacked-b.patch) against matmulRows as
// shipped, in one build that has both: per shape and row count, single calls alternated between the
// two (and each chunk size of the packed kernel), each call's B a different copy (~192 MiB of them
// per variant, so B comes from memory as a decode step's weights do; --warm: one copy). Prints the
// 10th percentile and median of each variant's calls, and checks the packed outputs are bit-identical.
//
//   git apply dev/kernel-variants/rows-prepacked-b.patch && npm run build:wasm
//   node --no-liftoff --import tsx dev/kernel-variants/prepack-ab.ts src/kernels/wasm/build/kernels-relaxed.wasm
//        [--shapes K,N[,LDB] ...] (LDB > N: the first N columns of a K x LDB matrix, as a thread's share of
//        GPT-2's fc; packed, those columns alone) [--rows 1,8,16,24] [--chunks 32,0] (0: all K steps) [--calls 150] [--warm]
import { readFileSync } from "node:fs";
import { setFlagsFromString } from "node:v8";

setFlagsFromString("--experimental-wasm-relaxed-simd");
const argv = process.argv.slice(2);
const flag = (name: string): string[] => argv.flatMap((a, i) => (a === `--${name}` ? [argv[i + 1] ?? ""] : []));
const file = argv.find((a) => a.endsWith(".wasm")) ?? "src/kernels/wasm/build/kernels-relaxed.wasm";
const shapes = (flag("shapes").length ? flag("shapes") : ["384,1152", "384,384", "384,1536", "1536,384", "768,2304", "768,768", "768,3072", "3072,768"]).map((s) =>
  s.split(",").map(Number),
);
const rowCounts = (flag("rows")[0] ?? "1,8,16,24").split(",").map(Number);
const chunks = (flag("chunks")[0] ?? "32,0").split(",").map(Number);
// panel widths: 8 (packRowsB, a tile's columns in one stream) and 4 (packRowsB4: two streams a tile, eight for one row)
const widths = (flag("widths")[0] ?? "8,4").split(",").map(Number);
const calls = Number(flag("calls")[0] ?? 150);
const warm = argv.includes("--warm");
const POOL = 192 * 2 ** 20;

type Kernels = Record<string, (...args: number[]) => number>;
const memory = new WebAssembly.Memory({ initial: 4096, maximum: 65536, shared: true });
const { instance } = await WebAssembly.instantiate(readFileSync(file), { env: { memory } });
const k = instance.exports as unknown as Kernels;
if (!k.matmulRowsPacked) throw new Error(`${file} has no matmulRowsPacked: apply dev/kernel-variants/rows-prepacked-b.patch and build`);

let top = 1 << 20;
function alloc(bytes: number): number {
  const p = top;
  top += (bytes + 63) & ~63;
  if (top > memory.buffer.byteLength) memory.grow(Math.ceil((top - memory.buffer.byteLength) / 65536));
  return p;
}
const f32 = (p: number, n: number) => new Float32Array(memory.buffer, p, n);
const quantile = (xs: number[], q: number) => [...xs].sort((x, y) => x - y)[Math.floor(q * (xs.length - 1))] as number;

console.log(`${file}; ${warm ? "warm B" : "cold B (a different copy each call)"}; ${calls} calls each in turns; ms per call p10 / p50`);
for (const [K = 0, N = 0, L = N] of shapes) {
  top = 1 << 20;
  const Rmax = Math.max(...rowCounts);
  const scratch = alloc(k.rowsScratchBytes?.(Rmax, K) as number);
  const a = alloc(Rmax * K * 4);
  f32(a, Rmax * K).forEach((_, i, v) => {
    v[i] = Math.sin(i * 0.37 + 1);
  });
  const b0 = alloc(K * L * 4);
  f32(b0, K * L).forEach((_, i, v) => {
    v[i] = Math.cos(i * 0.11 + 2);
  });
  // the packed kernels' B: the first N columns
  const bn = alloc(K * N * 4);
  for (let r = 0; r < K; r++) f32(bn + r * N * 4, N).set(f32(b0 + r * L * 4, N));
  const pbytes = k.rowsPackedBytes?.(K, N) as number;
  const packed = widths.map((w) => {
    const p = alloc(pbytes);
    (w === 4 ? k.packRowsB4 : k.packRowsB)?.(p, bn, K, N);
    return p;
  });
  const copies = (src: number, bytes: number) => {
    const list = [src];
    if (!warm)
      while (list.length * bytes < POOL) {
        const c = alloc(bytes);
        new Uint8Array(memory.buffer, c, bytes).set(new Uint8Array(memory.buffer, src, bytes));
        list.push(c);
      }
    return list;
  };
  const bs = copies(b0, K * L * 4);
  const ps = packed.map((p) => copies(p, pbytes));
  const oA = alloc(Rmax * L * 4);
  const oB = alloc(Rmax * N * 4);
  for (const R of rowCounts) {
    let nb = 0;
    const np = widths.map(() => 0);
    const variants: [string, () => void][] = [
      ["shipped", () => k.matmulRows?.(0, oA, a, bs[nb++ % bs.length] as number, R, K, L, K, 0, 0, N, scratch)],
      ...widths.flatMap((w, wi) =>
        chunks.map((c): [string, () => void] => {
          const list = ps[wi] as number[];
          const run = w === 4 ? k.matmulRowsPacked4 : k.matmulRowsPacked;
          return [`p${w} c${c || K}`, () => run?.(oB, a, list[(np[wi] = (np[wi] as number) + 1) % list.length] as number, R, K, N, scratch, c || K)];
        }),
      ),
    ];
    // bit-identity: every packed chunk size against the shipped kernel
    variants[0]?.[1]();
    const want = new Uint32Array(memory.buffer, oA, R * L).slice();
    let bad = 0;
    for (const [, run] of variants.slice(1)) {
      run();
      const got = new Uint32Array(memory.buffer, oB, R * N);
      for (let r = 0; r < R; r++) for (let j = 0; j < N; j++) if (got[r * N + j] !== want[r * L + j]) bad++;
    }
    for (let w = 0; w < 5; w++) for (const [, run] of variants) run();
    const t: number[][] = variants.map(() => []);
    for (let c = 0; c < calls; c++)
      for (const [i, [, run]] of variants.entries()) {
        const s = performance.now();
        run();
        t[i]?.push(performance.now() - s);
      }
    const base = quantile(t[0] as number[], 0.1);
    const gf = (ms: number) => ((2 * R * K * N) / ms / 1e6).toFixed(1);
    console.log(
      `R ${String(R).padStart(2)} ${K}x${N}${L === N ? "" : ` of ${L}`}`.padEnd(22) +
        variants
          .map(([name], i) => {
            const p10 = quantile(t[i] as number[], 0.1);
            return `${name} ${p10.toFixed(3)}/${quantile(t[i] as number[], 0.5).toFixed(3)} (${gf(p10)} GF/s${i ? `, ${(base / p10).toFixed(2)}x` : ""})`;
          })
          .join("  ") +
        `  bits ${bad === 0 ? "identical" : `${bad} differ`}`,
    );
  }
}
