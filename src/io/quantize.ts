/**
 * Weight-only quantization of a GPT-2 model's matrices (docs/quantization.md is the format's page),
 * without the file system (the browser uses it as it is).
 *
 * A matrix W maps `in` inputs to `out` outputs. Its values are cut into groups along the input
 * axis: group g of output o holds W[g·G .. g·G+G) of o's inputs (the last group may be shorter),
 * and has one scale s = max|w| / qmax (qmax 127 for int8, 7 for int4), stored as float16 rounded
 * up, so |w| / s never exceeds qmax and q = round(w / s) needs no clamp. Dequantized, w ≈ q·s,
 * within s/2 of the original.
 *
 *   int8: one group per output (G = in): q in -127..127, one I8 per value, scales (out)
 *   int4: groups of G (default 32) inputs: q in -7..7 stored as a 4-bit two's complement (-8..7),
 *         two inputs per byte (input 2k in the low nibble, 2k+1 in the high one), U8
 *
 * Two storage orders, the matrices' own:
 *   Conv1D weights (c_attn, c_proj, c_fc), stored (in, out):  int8 q (in, out), scales (out)
 *                                                             int4 q (ceil(in/2), out), scales (ceil(in/G), out)
 *   the tied embedding wte (V, C), the LM head's (out, in):   int8 q (V, C), scales (V)
 *                                                             int4 q (V, ceil(C/2)), scales (V, ceil(C/G))
 * Everything else (wpe, LayerNorms, biases) stays float32. Each matrix's scales are the tensor
 * NAME_scale beside NAME (e.g. transformer.h.0.attn.c_attn.weight_scale), and config.json says
 * quantization_config: {quant_method: "minigpt", bits, group_size, scale_dtype: "float16"}.
 */
import { fail } from "../errors.js";
import type { GPTConfig } from "../nn/config.js";
import { parameterShapes } from "../nn/gpt.js";
import { f16ToF32, f32ToF16, type SafetensorsFile, type TensorToWrite } from "./safetensors.js";
import { checkFinite, weightsFromSafetensors } from "./weights.js";

export type QuantBits = 8 | 4;

/** config.json's quantization_config, in minigpt's words */
export interface QuantizationConfig {
  bits: QuantBits;
  /** inputs per scale: int4's G; int8 has one scale per output (group_size null in config.json) */
  groupSize: number | null;
}

export const DEFAULT_GROUP_SIZE = 32;

/** Which way a matrix is stored: Conv1D's (in, out) or the embedding's (out, in). */
export type QuantLayout = "in-out" | "out-in";

export interface QuantizedMatrix {
  bits: QuantBits;
  /** inputs per scale (int8: in) */
  groupSize: number;
  layout: QuantLayout;
  inFeatures: number;
  outFeatures: number;
  /** int8: Int8Array of in·out; int4: Uint8Array of ceil(in/2)·out, two inputs per byte */
  q: Int8Array | Uint8Array;
  /** float16 values held as float32: (groups, out) for "in-out", (out, groups) for "out-in" */
  scales: Float32Array;
}

const QMAX: Record<QuantBits, number> = { 8: 127, 4: 7 };

/** the matrices quantize() converts: the Conv1D weights and wte; the rest stays float32 */
export function isQuantizedName(name: string): boolean {
  return name === "transformer.wte.weight" || /^transformer\.h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/.test(name);
}

function scaleName(name: string): string {
  return `${name}_scale`;
}

/** the scale's index of input i of output o */
function scaleIndex(layout: QuantLayout, groups: number, out: number, g: number, o: number): number {
  return layout === "in-out" ? g * out + o : o * groups + g;
}

/** the byte of input i of output o: int8 one per value, int4 two inputs per byte */
function valueIndex(layout: QuantLayout, bits: QuantBits, inF: number, out: number, i: number, o: number): number {
  const row = bits === 8 ? i : i >> 1;
  const rowLength = bits === 8 ? inF : Math.ceil(inF / 2);
  return layout === "in-out" ? row * out + o : o * rowLength + row;
}

/** the integer stored for input i of output o (int4: the sign-extended nibble) */
export function quantizedValue(m: QuantizedMatrix, i: number, o: number): number {
  const k = valueIndex(m.layout, m.bits, m.inFeatures, m.outFeatures, i, o);
  return m.bits === 8 ? m.q[k]! : ((m.q[k]! >> (i & 1 ? 4 : 0)) << 28) >> 28;
}

/** the scale of group g (inputs g·G ..) of output o */
export function quantizedScale(m: QuantizedMatrix, g: number, o: number): number {
  return m.scales[scaleIndex(m.layout, Math.ceil(m.inFeatures / m.groupSize), m.outFeatures, g, o)]!;
}

/** the smallest float16 at or above x (x >= 0): a scale rounded up never lets |w|/s pass qmax */
function f16AtLeast(x: number): number {
  const one = new Float32Array([x]);
  const bits = f32ToF16(one);
  let h = f16ToF32(bits)[0]!;
  if (h < x) {
    bits[0] = bits[0]! + 1; // the next half up (x > 0, so the bits count up with the value)
    h = f16ToF32(bits)[0]!;
  }
  return h;
}

/** w: the float32 matrix in `layout` order -> its quantized form */
export function quantizeMatrix(
  w: Float32Array,
  inFeatures: number,
  outFeatures: number,
  layout: QuantLayout,
  bits: QuantBits,
  groupSize: number,
): QuantizedMatrix {
  const G = bits === 8 ? inFeatures : groupSize;
  const groups = Math.ceil(inFeatures / G);
  const qmax = QMAX[bits];
  const scales = new Float32Array(groups * outFeatures);
  const q = bits === 8 ? new Int8Array(inFeatures * outFeatures) : new Uint8Array(Math.ceil(inFeatures / 2) * outFeatures);
  const at = (i: number, o: number) => (layout === "in-out" ? i * outFeatures + o : o * inFeatures + i);
  for (let o = 0; o < outFeatures; o++)
    for (let g = 0; g < groups; g++) {
      const end = Math.min(inFeatures, (g + 1) * G);
      let maxAbs = 0;
      for (let i = g * G; i < end; i++) maxAbs = Math.max(maxAbs, Math.abs(w[at(i, o)]!));
      const s = f16AtLeast(maxAbs / qmax);
      if (!Number.isFinite(s)) fail(`a weight of ${maxAbs} is too large for float16 scales (at most ${65504 * qmax})`);
      scales[scaleIndex(layout, groups, outFeatures, g, o)] = s;
      for (let i = g * G; i < end; i++) {
        const v = s === 0 ? 0 : Math.round(w[at(i, o)]! / s);
        const k = valueIndex(layout, bits, inFeatures, outFeatures, i, o);
        if (bits === 8) q[k] = v;
        else q[k] = q[k]! | ((v & 0xf) << (i & 1 ? 4 : 0));
      }
    }
  return { bits, groupSize: G, layout, inFeatures, outFeatures, q, scales };
}

/** q·s for every value, in the matrix's own layout */
export function dequantizeMatrix(m: QuantizedMatrix): Float32Array {
  const { bits, groupSize: G, layout, inFeatures: IN, outFeatures: OUT, q, scales } = m;
  const groups = Math.ceil(IN / G);
  const w = new Float32Array(IN * OUT);
  for (let o = 0; o < OUT; o++)
    for (let i = 0; i < IN; i++) {
      const k = valueIndex(layout, bits, IN, OUT, i, o);
      const v = bits === 8 ? q[k]! : ((q[k]! >> (i & 1 ? 4 : 0)) << 28) >> 28; // sign-extend the nibble
      w[layout === "in-out" ? i * OUT + o : o * IN + i] = v * scales[scaleIndex(layout, groups, OUT, Math.floor(i / G), o)]!;
    }
  return w;
}

/** (in, out, layout) of a quantized parameter by its name and shape */
function matrixShape(name: string, shape: readonly number[]): { inFeatures: number; outFeatures: number; layout: QuantLayout } {
  const [rows, cols] = shape as [number, number];
  return name === "transformer.wte.weight"
    ? { inFeatures: cols, outFeatures: rows, layout: "out-in" }
    : { inFeatures: rows, outFeatures: cols, layout: "in-out" };
}

/** the stored shapes of a quantized matrix's values and scales */
function storedShapes(m: Pick<QuantizedMatrix, "bits" | "groupSize" | "layout" | "inFeatures" | "outFeatures">): {
  q: number[];
  scales: number[];
} {
  const { bits, layout, inFeatures: IN, outFeatures: OUT } = m;
  const packed = bits === 8 ? IN : Math.ceil(IN / 2);
  const groups = Math.ceil(IN / m.groupSize);
  const byLayout = (a: number, b: number) => (layout === "in-out" ? [a, b] : [b, a]);
  return { q: byLayout(packed, OUT), scales: bits === 8 ? [OUT] : byLayout(groups, OUT) };
}

/** quantization_config as config.json holds it */
export function quantizationConfigJson(q: QuantizationConfig): Record<string, unknown> {
  return { quant_method: "minigpt", bits: q.bits, group_size: q.groupSize, scale_dtype: "float16" };
}

/** "int8" or "int4 (groups of 32)" */
export function quantizationLabel(q: QuantizationConfig): string {
  return q.bits === 8 ? "int8" : `int4 (groups of ${q.groupSize})`;
}

/** config.json's quantization_config -> QuantizationConfig (undefined: not quantized) */
export function quantizationFromConfig(config: Record<string, unknown>, label: string): QuantizationConfig | undefined {
  const raw = config.quantization_config;
  if (raw === undefined || raw === null) return undefined;
  const q = raw as Record<string, unknown>;
  if (q.quant_method !== "minigpt")
    fail(
      `${label}: quantization_config says quant_method ${JSON.stringify(q.quant_method)}; minigpt reads its own int8/int4 format only (quant_method "minigpt"): load an unquantized model`,
    );
  if (q.bits !== 8 && q.bits !== 4) fail(`${label}: quantization_config.bits must be 8 or 4, got ${JSON.stringify(q.bits)}`);
  if (q.scale_dtype !== "float16")
    fail(`${label}: quantization_config.scale_dtype must be "float16", got ${JSON.stringify(q.scale_dtype)}`);
  if (q.bits === 8) return { bits: 8, groupSize: null };
  const G = q.group_size;
  if (!Number.isInteger(G) || (G as number) < 2 || (G as number) % 2 !== 0)
    fail(`${label}: quantization_config.group_size must be an even number of at least 2 for int4, got ${JSON.stringify(G)}`);
  return { bits: 4, groupSize: G as number };
}

/** every parameter of `params` (HF names, float32), the quantized ones as values + scales */
export function quantizedTensors(
  params: Iterable<[string, { shape: readonly number[]; data: Float32Array }]>,
  q: QuantizationConfig,
): TensorToWrite[] {
  const out: TensorToWrite[] = [];
  for (const [name, t] of params) {
    if (!isQuantizedName(name)) {
      out.push({ name, dtype: "F32", shape: [...t.shape], data: t.data });
      continue;
    }
    const { inFeatures, outFeatures, layout } = matrixShape(name, t.shape);
    const m = quantizeMatrix(t.data, inFeatures, outFeatures, layout, q.bits, q.groupSize ?? inFeatures);
    const shapes = storedShapes(m);
    out.push({ name, dtype: q.bits === 8 ? "I8" : "U8", shape: shapes.q, data: m.q });
    out.push({ name: scaleName(name), dtype: "F16", shape: shapes.scales, data: m.scales });
  }
  return out;
}

/**
 * The quantized matrices of a model's file, by parameter name, each checked: dtype, shapes from the
 * config, its scales present and finite. A missing scale or a float matrix where a quantized one
 * belongs is one line naming the tensor.
 */
export function quantizedMatricesFromSafetensors(
  file: SafetensorsFile,
  q: QuantizationConfig,
  model: GPTConfig,
  label: string,
): Map<string, QuantizedMatrix> {
  const out = new Map<string, QuantizedMatrix>();
  for (const [name, shape] of parameterShapes(model)) {
    if (!isQuantizedName(name)) continue;
    const raw = name.startsWith("transformer.") && !file.tensors.has(name) ? name.slice("transformer.".length) : name;
    const t = file.tensors.get(raw);
    if (!t) fail(`${label}: missing tensor ${name}`);
    const { inFeatures, outFeatures, layout } = matrixShape(name, shape);
    const groupSize = q.groupSize ?? inFeatures;
    const want = storedShapes({ bits: q.bits, groupSize, layout, inFeatures, outFeatures });
    const dtype = q.bits === 8 ? "I8" : "U8";
    if (t.dtype !== dtype)
      fail(
        `${label}: tensor ${name} has dtype ${t.dtype} but config.json says int${q.bits} weights (${dtype}); the file and config.json disagree`,
      );
    if (t.shape.join() !== want.q.join())
      fail(
        `${label}: tensor ${name} has shape [${t.shape.join(", ")}] but int${q.bits} of [${shape.join(", ")}] is stored as [${want.q.join(", ")}]`,
      );
    const s = file.tensors.get(scaleName(raw));
    if (!s)
      fail(
        `${label}: missing tensor ${scaleName(name)}, the scales of the int${q.bits} weight ${name}; the file is damaged: quantize the model again`,
      );
    if (!(s.data instanceof Float32Array) || s.shape.join() !== want.scales.join())
      fail(
        `${label}: tensor ${scaleName(name)} has shape [${s.shape.join(", ")}] ${s.dtype} but [${want.scales.join(", ")}] F16 is needed`,
      );
    checkFinite(s.data, label, scaleName(name));
    out.set(name, { bits: q.bits, groupSize, layout, inFeatures, outFeatures, q: t.data as Int8Array | Uint8Array, scales: s.data });
  }
  return out;
}

/**
 * A quantized model file's weights by our names, dequantized to float32 (what the float kernels
 * run on): the float tensors as weightsFromSafetensors reads them, each matrix as q·s.
 */
export function weightsFromQuantizedSafetensors(
  file: SafetensorsFile,
  q: QuantizationConfig,
  model: GPTConfig,
  label: string,
): Map<string, { shape: number[]; data: Float32Array }> {
  const { matrices, floats } = quantizedFile(file, q, model, label);
  const shapes = new Map(parameterShapes(model));
  for (const [name, m] of matrices) floats.set(name, { shape: shapes.get(name)!, data: dequantizeMatrix(m) });
  return floats;
}

/**
 * A quantized model file as it is held: its quantized matrices (checked, as
 * quantizedMatricesFromSafetensors) and its float tensors by our names, nothing dequantized.
 */
export function quantizedFile(
  file: SafetensorsFile,
  q: QuantizationConfig,
  model: GPTConfig,
  label: string,
): { matrices: Map<string, QuantizedMatrix>; floats: Map<string, { shape: number[]; data: Float32Array }> } {
  const matrices = quantizedMatricesFromSafetensors(file, q, model, label);
  const prefixed = (n: string) => (n.startsWith("transformer.") ? n : `transformer.${n}`);
  const floats = new Map(
    [...file.tensors].filter(([n]) => !matrices.has(prefixed(n)) && !matrices.has(prefixed(n).replace(/_scale$/, ""))),
  );
  return { matrices, floats: weightsFromSafetensors({ tensors: floats, metadata: file.metadata }, label) };
}

/** A model file's weights by our names: float32 as stored, or dequantized when `q` says the file is quantized. */
export function modelWeights(
  file: SafetensorsFile,
  q: QuantizationConfig | undefined,
  model: GPTConfig,
  label: string,
): Map<string, { shape: number[]; data: Float32Array }> {
  return q ? weightsFromQuantizedSafetensors(file, q, model, label) : weightsFromSafetensors(file, label);
}
