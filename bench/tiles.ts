// The two matmul register tiles (matmul-tiles.as: kern4x8, kern3x12) timed in turns in one process, on
// the recipes' shapes: which one this engine runs faster. src/kernels/wasm/loader.ts picks the tile
// by V8 version (chooseMatmulTile); this is the measurement behind that choice.
//
//   node --import tsx bench/tiles.ts [--rounds 21] [--browser]
//
// --browser runs the same timing in headless Chromium (/usr/bin/chromium), on a cross-origin-isolated
// page served from the repository (bench/tiles.html, which loads dist/, compiled first).
// Printed per shape: each tile's median GFLOP/s, the median over rounds of time(4x8) / time(3x12)
// (> 1: 3x12 is faster) and the largest difference between the two tiles' outputs (0: bit-identical).
import { arg, expectArgs } from "./args.js";
import { CHROMIUM, openBenchPage } from "./chromium.js";
import { type TileCase, type TileRow, timeTiles } from "./tiles-core.js";

expectArgs("bench/tiles.ts", ["rounds"], ["browser"]);
const rounds = Number(arg("rounds", "21"));
const inBrowser = process.argv.includes("--browser");

// the bigger recipe's linear layers (B·T = 768 of its rows here) in the three layouts, a big a·b,
// and the CPU recipe's first layer
const CASES: TileCase[] = [
  [0, 768, 384, 1152],
  [1, 768, 1152, 384],
  [2, 384, 768, 1152],
  [0, 2048, 384, 1536],
  [0, 768, 128, 384],
];

let rows: TileRow[];
let engine: string;
if (!inBrowser) {
  engine = `Node ${process.version} (V8 ${process.versions.v8})`;
  rows = await timeTiles(CASES, rounds);
} else {
  const opened = await openBenchPage("bench/tiles.html", "minigptTiles");
  if (!opened) {
    console.log(`bench/tiles.ts --browser: ${CHROMIUM} not found (apt-get install chromium); nothing to measure`);
    process.exit(0);
  }
  try {
    engine = await opened.page.evaluate(() => navigator.userAgent);
    type Api = { timeTiles: typeof timeTiles };
    rows = await opened.page.evaluate(([c, r]) => (globalThis as unknown as { minigptTiles: Api }).minigptTiles.timeTiles(c, r), [
      CASES,
      rounds,
    ] as const);
  } finally {
    await opened.close();
  }
}
console.log(`matmul tiles, 1 thread, ${rounds} rounds in turns: ${engine}`);
console.log("| shape | 4x8 GF/s | 3x12 GF/s | time 4x8 / 3x12 | max abs diff |");
console.log("|---|---|---|---|---|");
for (const r of rows) {
  console.log(`| ${r.label} | ${r.gflops["4x8"].toFixed(1)} | ${r.gflops["3x12"].toFixed(1)} | ${r.ratio.toFixed(3)} | ${r.maxAbsDiff} |`);
}
