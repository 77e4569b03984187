// The timing half of bench/tiles.ts, without Node APIs: it runs in Node and, compiled to
// dist/bench/tiles-core.js, in the page bench/tiles.html.
import { loadWasmBackend, type MatmulTile } from "../src/kernels/wasm/loader.js";
import { heap } from "../src/tensor/memory.js";

/** [layout (0 a·b, 1 a·bᵀ, 2 aᵀ·b), M, K, N] */
export type TileCase = [number, number, number, number];

export interface TileRow {
  label: string;
  /** median GFLOP/s of each tile */
  gflops: Record<MatmulTile, number>;
  /** median over rounds of time(4x8) / time(3x12): > 1 means 3x12 is faster */
  ratio: number;
  /** the two tiles' outputs differ by this much (0: bit-identical) */
  maxAbsDiff: number;
}

const LAYOUTS = ["matmul", "matmulBT", "matmulAT"] as const;
const LABELS = ["a·b", "a·bᵀ", "aᵀ·b"];

function mid(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1] as number;
}

/** One wasm backend per tile (1 thread), each case timed `rounds` times with the tiles in turns. */
export async function timeTiles(cases: TileCase[], rounds: number): Promise<TileRow[]> {
  const tiles: MatmulTile[] = ["4x8", "3x12"];
  const bes = await Promise.all(tiles.map((tile) => loadWasmBackend({ threads: 1, tile })));
  const rows: TileRow[] = [];
  try {
    for (const [layout, M, K, N] of cases) {
      const view = (n: number): Float32Array => {
        const p = heap().alloc(n * 4);
        const v = new Float32Array(heap().memory.buffer, p, n);
        for (let i = 0; i < n; i++) v[i] = Math.sin(i * 0.37 + n);
        return v;
      };
      const a = view(M * K);
      const b = view(K * N);
      const outs = tiles.map(() => view(M * N));
      const fn = LAYOUTS[layout] ?? "matmul";
      const flops = 2 * M * K * N;
      const reps = Math.max(1, Math.round(2e8 / flops));
      const times: number[][] = tiles.map(() => []);
      for (let r = 0; r < rounds; r++) {
        bes.forEach((be, i) => {
          const o = outs[i] as Float32Array;
          be[fn](o, a, b, M, K, N, false);
          const t0 = performance.now();
          for (let k = 0; k < reps; k++) be[fn](o, a, b, M, K, N, false);
          (times[i] as number[]).push((performance.now() - t0) / reps);
        });
      }
      const [o0, o1] = outs as [Float32Array, Float32Array];
      let maxAbsDiff = 0;
      for (let i = 0; i < o0.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs((o0[i] as number) - (o1[i] as number)));
      const [t0, t1] = times as [number[], number[]];
      rows.push({
        label: `${LABELS[layout]} ${M}x${K}x${N}`,
        gflops: { "4x8": flops / mid(t0) / 1e6, "3x12": flops / mid(t1) / 1e6 },
        ratio: mid(t0.map((x, i) => x / (t1[i] as number))),
        maxAbsDiff,
      });
    }
  } finally {
    for (const be of bes) be.dispose();
  }
  return rows;
}
