/**
 * Elementwise kernels and small reductions on the GPU; twins of src/kernels/ref/elementwise.ts.
 * Each is one invocation per element (mapKernel), except the column sums (one invocation per
 * column walking the rows, in the ref's order) and the sum of squares (one workgroup).
 */
import { type GpuArray, type GpuRuntime, groups1d, type Param } from "./runtime.js";
import { declare, ENTRY_1D, GROUP_1D, mapKernel, REDUCE_256 } from "./wgsl.js";

const ZERO = mapKernel([], [{ name: "x", write: true }], "@x = 0.0;");
const COPY = mapKernel([], [{ name: "src" }, { name: "dst", write: true }], "@dst = @src;");
const ADD = mapKernel([], [{ name: "a" }, { name: "b" }, { name: "out", write: true }], "@out = @a + @b;");
const ACCUMULATE = mapKernel([], [{ name: "src" }, { name: "dst", write: true }], "@dst = @dst + @src;");
const SCALE = mapKernel(["s: f32"], [{ name: "x", write: true }], "@x = @x * p.s;");
const MUL = mapKernel([], [{ name: "x" }, { name: "mask" }, { name: "out", write: true }], "@out = @x * @mask;");
const ADD_BIAS = mapKernel(["cols: u32"], [{ name: "bias" }, { name: "out", write: true }], "@out = @out + bias[p.o_bias + i % p.cols];");

function map(rt: GpuRuntime, code: string, n: number, scalars: Param[], reads: GpuArray[], writes: GpuArray[]): void {
  rt.run(code, groups1d(n, 256), [{ u32: n }, ...scalars], reads, writes);
}

export function zero(rt: GpuRuntime, x: GpuArray, n: number): void {
  map(rt, ZERO, n, [], [], [x]);
}
export function copy(rt: GpuRuntime, dst: GpuArray, src: GpuArray, n: number): void {
  map(rt, COPY, n, [], [src], [dst]);
}
export function add(rt: GpuRuntime, out: GpuArray, a: GpuArray, b: GpuArray, n: number): void {
  map(rt, ADD, n, [], [a, b], [out]);
}
export function accumulate(rt: GpuRuntime, dst: GpuArray, src: GpuArray, n: number): void {
  map(rt, ACCUMULATE, n, [], [src], [dst]);
}
export function scale(rt: GpuRuntime, x: GpuArray, n: number, s: number): void {
  map(rt, SCALE, n, [{ f32: s }], [], [x]);
}
export function mul(rt: GpuRuntime, out: GpuArray, x: GpuArray, mask: GpuArray, n: number): void {
  map(rt, MUL, n, [], [x, mask], [out]);
}
/** out (rows,cols) += bias (cols) */
export function addBias(rt: GpuRuntime, out: GpuArray, bias: GpuArray, rows: number, cols: number): void {
  map(rt, ADD_BIAS, rows * cols, [{ u32: cols }], [bias], [out]);
}

const SUM_ROWS = `${declare(["rows: u32", "cols: u32"], [{ name: "x" }, { name: "out", write: true }])}
@compute @workgroup_size(256)
fn main(${ENTRY_1D}) {
  ${GROUP_1D}
  let c = group * 256u + lid;
  if (c >= p.cols) { return; }
  var s = 0.0;
  for (var r = 0u; r < p.rows; r = r + 1u) { s = s + x[p.o_x + r * p.cols + c]; }
  out[p.o_out + c] = out[p.o_out + c] + s;
}`;

/** x (rows,cols) -> out (cols) += column sums */
export function sumRows(rt: GpuRuntime, out: GpuArray, x: GpuArray, rows: number, cols: number): void {
  rt.run(SUM_ROWS, groups1d(cols, 256), [{ u32: rows }, { u32: cols }], [x], [out]);
}

const SUM_SQUARES = `${declare(["n: u32"], [{ name: "x" }, { name: "out", write: true }])}
${REDUCE_256}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var i = lid; i < p.n; i = i + 256u) { let v = x[p.o_x + i]; s = fma(v, v, s); }
  let total = reduce_sum(s, lid);
  if (lid == 0u) { out[p.o_out] = total; }
}`;

/** out[0] = Σ x² (fp32; the ref sums in float64) */
export function sumSquares(rt: GpuRuntime, out: GpuArray, x: GpuArray, n: number): void {
  rt.run(SUM_SQUARES, [1], [{ u32: n }], [x], [out]);
}

const CLIP = mapKernel(
  ["count: u32", "max_norm: f32"],
  [{ name: "sums" }, { name: "x", write: true }],
  `var sq = 0.0;
  for (var k = 0u; k < p.count; k = k + 1u) { sq = sq + sums[p.o_sums + k]; }
  let coef = p.max_norm / (sqrt(sq) + 1e-6);
  // as the CPU's clipGradNorm: a norm that is not finite (inf, NaN) leaves the gradients alone
  if (coef < 1.0 && sq <= 3.4028234e38) { @x = @x * coef; }`,
);

/**
 * Global-norm clipping without a readback: `sums` (count) holds each gradient's sum of squares
 * (sumSquares into its element k), and x (n) is scaled by maxNorm/(norm + 1e-6) when that is below 1
 * (PyTorch's clip_grad_norm_; src/optim/adamw.ts clipGradNorm on the CPU).
 */
export function clipByNorm(rt: GpuRuntime, x: GpuArray, n: number, sums: GpuArray, count: number, maxNorm: number): void {
  map(rt, CLIP, n, [{ u32: count }, { f32: maxNorm }], [sums], [x]);
}
