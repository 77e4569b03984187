/**
 * WGSL source builders shared by the kernel files. Every kernel binds its uniform parameters at 0,
 * then its read-only arrays, then its written arrays (GpuRuntime.run's order), and takes an element
 * offset for each array among its parameters, so that an argument can be a view into a bigger buffer.
 */

/** One array argument: its name in WGSL, whether it is written, and its element type. */
interface ArrayArg {
  name: string;
  write?: boolean;
  int?: boolean;
}

/**
 * The declarations of a kernel: struct P with `scalars` (name: type, e.g. "n: u32") followed by one
 * `o_<array>: u32` offset per array, and the bindings in run()'s order (reads first, then writes).
 */
export function declare(scalars: string[], arrays: ArrayArg[]): string {
  const ordered = [...arrays.filter((a) => !a.write), ...arrays.filter((a) => a.write)];
  const fields = [...scalars, ...ordered.map((a) => `o_${a.name}: u32`)];
  const lines = [`struct P { ${fields.join(", ")} }`, "@group(0) @binding(0) var<uniform> p: P;"];
  ordered.forEach((a, k) => {
    const access = a.write ? "read_write" : "read";
    lines.push(`@group(0) @binding(${k + 1}) var<storage, ${access}> ${a.name}: array<${a.int ? "i32" : "f32"}>;`);
  });
  return lines.join("\n");
}

/** The builtins of a 1-D dispatch made with groups1d, and `group`, the flat workgroup index. */
export const ENTRY_1D = "@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32";
export const GROUP_1D = "let group = wid.x + wid.y * nwg.x;";

/**
 * A kernel of one invocation per element i < p.n, 256 to a workgroup. In `body`, `@x` stands for
 * element i of array x (x[p.o_x + i]).
 */
export function mapKernel(scalars: string[], arrays: ArrayArg[], body: string, helpers = ""): string {
  const expanded = body.replace(/@([a-z_][a-z0-9_]*)/gi, (_, name: string) => `${name}[p.o_${name} + i]`);
  return `${declare(["n: u32", ...scalars], arrays)}
${helpers}
@compute @workgroup_size(256)
fn main(${ENTRY_1D}) {
  ${GROUP_1D}
  let i = group * 256u + lid;
  if (i >= p.n) { return; }
  ${expanded}
}`;
}

/** Workgroup-wide sum and max over 256 invocations through workgroup memory `red` (declared by the kernel). */
export const REDUCE_256 = reduceOver(256);

/**
 * Invocations per row of the kernels that give each row a workgroup and reduce over it (LayerNorm,
 * softmax, cross-entropy): 32, one warp, for rows up to 1024 wide, and 256 for longer rows (a GPT-2
 * vocabulary's logits), where a GPU needs them to stay busy. Each halving of a workgroup saves a
 * barrier per reduction step and the idle invocations of short rows; a CPU implementation of WebGPU
 * (SwiftShader: CI's, and the tests') pays dearly for both: LayerNorm of 256 rows of 32 took 1.5 s
 * with 256 invocations a row, 0.07 s with 32.
 */
function rowThreads(cols: number): number {
  return cols <= 1024 ? 32 : 256;
}

/**
 * A row kernel's source for rows `cols` wide: `build(threads)` (see rowThreads), built once per
 * workgroup size. `build` declares reduce_sum and reduce_max with reduceOver(threads) where it needs them.
 */
export function rowKernel(build: (threads: number) => string): (cols: number) => string {
  const built = new Map<number, string>();
  return (cols) => {
    const threads = rowThreads(cols);
    let source = built.get(threads);
    if (source === undefined) {
      source = build(threads);
      built.set(threads, source);
    }
    return source;
  };
}

/** reduce_sum and reduce_max over a workgroup of n (a power of two) invocations, through workgroup memory `red` */
export function reduceOver(n: number): string {
  return `
var<workgroup> red: array<f32, ${n}>;
fn reduce_sum(v: f32, lid: u32) -> f32 {
  workgroupBarrier();
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${n / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn reduce_max(v: f32, lid: u32) -> f32 {
  workgroupBarrier();
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${n / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}`;
}
