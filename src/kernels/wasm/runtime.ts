/**
 * What the runtime offers the wasm kernels, and the compiled modules: whether it has SIMD and relaxed
 * SIMD (Node 20 needs a V8 flag for the latter, set here before the first compile), which build and
 * which matmul tile to use (environment overrides, else by engine), and reading + compiling the .wasm
 * (from disk in Node, fetched next to this module in a browser).
 */
import { inNode } from "./platform.js";

export type SimdFlavour = "plain" | "relaxed";

/** matmul's register tile (matmul-tiles.as: kern4x8, kern3x12); both give bit-identical results */
export type MatmulTile = "4x8" | "3x12";

// (v128, v128, v128) -> v128 : f32x4.relaxed_madd
const RELAXED_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00, 0x0a,
  0x0d, 0x01, 0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfd, 0x85, 0x02, 0x0b,
]);
// () -> v128 : v128.const 0
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00, 0x0a, 0x16, 0x01, 0x14,
  0x00, 0xfd, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b,
]);

/** Whether this runtime has WebAssembly SIMD at all (the kernels need it). */
export function simdSupported(): boolean {
  return WebAssembly.validate(SIMD_PROBE);
}

/** the one attempt at turning the flag on; concurrent loads all wait for it */
let relaxedFlag: Promise<void> | null = null;

/** Node 20 compiles relaxed SIMD only with --experimental-wasm-relaxed-simd; set it before the first compile. */
function enableRelaxedFlag(): Promise<void> {
  relaxedFlag ??= (async () => {
    if (!inNode || WebAssembly.validate(RELAXED_PROBE)) return;
    try {
      const v8 = await import("node:v8");
      v8.setFlagsFromString("--experimental-wasm-relaxed-simd");
    } catch {
      // not Node, or the flag is gone: the validate check decides
    }
  })();
  return relaxedFlag;
}

/** Whether this runtime compiles relaxed SIMD (turning Node 20's experimental flag on first). */
export async function relaxedSimdSupported(): Promise<boolean> {
  await enableRelaxedFlag();
  return WebAssembly.validate(RELAXED_PROBE);
}

async function readWasm(name: string): Promise<Uint8Array<ArrayBuffer>> {
  if (!inNode) {
    // a browser: next to this module (dist/src/kernels/wasm/build/, where the build copies it). Each
    // URL written out whole, so a bundler (Vite) emits exactly the two builds as assets.
    const url =
      name === "kernels-relaxed.wasm"
        ? new URL("./build/kernels-relaxed.wasm", import.meta.url)
        : new URL("./build/kernels-simd.wasm", import.meta.url);
    const res = await fetch(url);
    if (!res.ok) throw new Error(`wasm backend: fetching ${url} failed: HTTP ${res.status}; run "npm run build"`);
    return new Uint8Array(await res.arrayBuffer());
  }
  const { readFile } = await import("node:fs/promises");
  // next to this file (src/ via tsx, or dist/ where the build copies it), else the package's src/
  // (import.meta.url through a variable: a bundler would otherwise ship every file of both folders)
  const here = import.meta.url;
  const candidates = [new URL(`./build/${name}`, here), new URL(`../../../../src/kernels/wasm/build/${name}`, here)];
  for (const url of candidates) {
    try {
      return new Uint8Array(await readFile(url));
    } catch {
      // try the next
    }
  }
  throw new Error(`wasm backend: ${name} not found next to ${import.meta.url}; run "npm run build:wasm"`);
}

const compiled = new Map<SimdFlavour, WebAssembly.Module>();

/** The compiled kernels of one build (compiled once per process or page). */
export async function compile(flavour: SimdFlavour): Promise<WebAssembly.Module> {
  if (flavour === "relaxed") await enableRelaxedFlag();
  let m = compiled.get(flavour);
  if (!m) {
    m = await WebAssembly.compile(await readWasm(flavour === "relaxed" ? "kernels-relaxed.wasm" : "kernels-simd.wasm"));
    compiled.set(flavour, m);
  }
  return m;
}

/** Which SIMD flavour to use: MINIGPT_WASM_SIMD, else relaxed when available. */
export async function chooseSimd(): Promise<SimdFlavour> {
  const want = typeof process !== "undefined" ? process.env.MINIGPT_WASM_SIMD : undefined;
  const relaxed = await relaxedSimdSupported();
  if (want === "plain") return "plain";
  if (want === "relaxed") {
    if (!relaxed) throw new Error("MINIGPT_WASM_SIMD=relaxed but this runtime has no relaxed SIMD");
    return "relaxed";
  }
  if (want !== undefined && want !== "") throw new Error(`MINIGPT_WASM_SIMD=${want}: use plain or relaxed`);
  return relaxed ? "relaxed" : "plain";
}

/**
 * Which matmul tile to use: MINIGPT_MATMUL_TILE (4x8 or 3x12), else 3x12 where V8 is 12 or newer
 * (Node 22+, Chrome/Chromium/Edge 120+) and 4x8 elsewhere. Why by V8 version: the 3x12 loop does more
 * FMAs per iteration of fixed cost, but Node 20's V8 (11.3) schedules it no faster than 4x8 (time
 * ratios 0.92-1.06), while Node 22's (12.4) runs it 3-17% faster on the recipes' shapes and
 * Chromium 156's 0.97-1.15x as fast (bench/tiles.ts; docs/benchmarks.md). Other browsers' engines
 * are not measured: 4x8.
 */
export function chooseMatmulTile(): MatmulTile {
  const want = typeof process !== "undefined" ? process.env?.MINIGPT_MATMUL_TILE : undefined;
  if (want === "4x8" || want === "3x12") return want;
  if (want !== undefined && want !== "") throw new Error(`MINIGPT_MATMUL_TILE=${want}: use 4x8 or 3x12`);
  return v8Major() >= 12 ? "3x12" : "4x8";
}

/** V8's major version: Node's process.versions.v8, or a Chromium browser's (Chrome NNN ships V8 NN.N); NaN elsewhere */
function v8Major(): number {
  if (inNode) return Number.parseInt(process.versions.v8 ?? "", 10);
  const ua = (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent ?? "";
  const chrome = /Chrom(?:e|ium)\/(\d+)/.exec(ua);
  return chrome ? Math.floor(Number(chrome[1]) / 10) : Number.NaN;
}
