/**
 * GELU (tanh approximation, GPT-2's "gelu_new") and ReLU on the GPU; twins of src/kernels/ref/activations.ts.
 *   gelu(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
 */
import { type GpuArray, type GpuRuntime, groups1d } from "./runtime.js";
import { mapKernel } from "./wgsl.js";

// With s = sigmoid(2u) = (1 + tanh u)/2, u = √(2/π)·(x + 0.044715·x³):  gelu = x·s and
// gelu' = s + 2·x·s·(1-s)·√(2/π)·(1 + 3·0.044715·x²). Written with the sigmoid, not 1 + tanh(u),
// because 1 + tanh(u) cancels to a few bits for x below about -2 in fp32.
const GELU = `
const GELU_K = ${Math.sqrt(2 / Math.PI)};
const GELU_A = 0.044715;
fn gelu_u(v: f32) -> f32 { return clamp(GELU_K * (v + GELU_A * v * v * v), -40.0, 40.0); }
fn gelu(v: f32) -> f32 { return v / (1.0 + exp(-2.0 * gelu_u(v))); }
fn gelu_grad(v: f32) -> f32 {
  let u = gelu_u(v);
  let s = 1.0 / (1.0 + exp(-2.0 * u));
  let r = 1.0 / (1.0 + exp(2.0 * u));
  return s + 2.0 * v * s * r * GELU_K * (1.0 + 3.0 * GELU_A * v * v);
}`;

const GELU_FORWARD = mapKernel([], [{ name: "x" }, { name: "out", write: true }], "@out = gelu(@x);", GELU);
const GELU_BACKWARD = mapKernel(
  [],
  [{ name: "x" }, { name: "dout" }, { name: "dx", write: true }],
  "@dx = @dx + gelu_grad(@x) * @dout;",
  GELU,
);
// dgelu may be x itself (in place): x is then read through dgelu, so one binding serves both
const GELU_FORWARD_GRAD = mapKernel(
  [],
  [{ name: "x" }, { name: "out", write: true }, { name: "dgelu", write: true }],
  "let v = @x; @out = gelu(v); @dgelu = gelu_grad(v);",
  GELU,
);
const GELU_FORWARD_GRAD_INPLACE = mapKernel(
  [],
  [
    { name: "out", write: true },
    { name: "dgelu", write: true },
  ],
  "let v = @dgelu; @out = gelu(v); @dgelu = gelu_grad(v);",
  GELU,
);
const RELU_FORWARD = mapKernel([], [{ name: "x" }, { name: "out", write: true }], "@out = max(@x, 0.0);");
const RELU_BACKWARD = mapKernel([], [{ name: "x" }, { name: "dout" }, { name: "dx", write: true }], "if (@x > 0.0) { @dx = @dx + @dout; }");

const n1 = (n: number) => [{ u32: n }];

export function geluForward(rt: GpuRuntime, out: GpuArray, x: GpuArray, n: number): void {
  rt.run(GELU_FORWARD, groups1d(n, 256), n1(n), [x], [out]);
}
export function geluBackward(rt: GpuRuntime, dx: GpuArray, x: GpuArray, dout: GpuArray, n: number): void {
  rt.run(GELU_BACKWARD, groups1d(n, 256), n1(n), [x, dout], [dx]);
}
export function geluForwardGrad(rt: GpuRuntime, out: GpuArray, dgelu: GpuArray, x: GpuArray, n: number): void {
  if (dgelu.buffer === x.buffer && dgelu.offset === x.offset) rt.run(GELU_FORWARD_GRAD_INPLACE, groups1d(n, 256), n1(n), [], [out, dgelu]);
  else rt.run(GELU_FORWARD_GRAD, groups1d(n, 256), n1(n), [x], [out, dgelu]);
}
export function reluForward(rt: GpuRuntime, out: GpuArray, x: GpuArray, n: number): void {
  rt.run(RELU_FORWARD, groups1d(n, 256), n1(n), [x], [out]);
}
export function reluBackward(rt: GpuRuntime, dx: GpuArray, x: GpuArray, dout: GpuArray, n: number): void {
  rt.run(RELU_BACKWARD, groups1d(n, 256), n1(n), [x, dout], [dx]);
}
