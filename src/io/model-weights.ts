/**
 * A GPT from a model file's weights (Node and browser alike): float32 tensors loaded as they are; a
 * quantized file's int8 / int4 matrices held only in the integer kernels' packed form
 * (nn/quantized.ts), never as floats, on the CPU backends. A device backend (WebGPU) has no integer
 * kernels: there they are dequantized to float32, as an unquantized model's.
 */
import { deviceMemory } from "../kernels/index.js";
import type { GPTConfig } from "../nn/config.js";
import { GPT } from "../nn/gpt.js";
import { quantizedWeight } from "../nn/quantized.js";
import { modelWeights, type QuantizationConfig, quantizedFile } from "./quantize.js";
import type { SafetensorsFile } from "./safetensors.js";

export function modelFromSafetensors(file: SafetensorsFile, q: QuantizationConfig | undefined, config: GPTConfig, label: string): GPT {
  if (!q || deviceMemory()) return loaded(GPT.forLoading(config), modelWeights(file, q, config, label), label);
  const { matrices, floats } = quantizedFile(file, q, config, label);
  return loaded(GPT.forLoading(config, new Map([...matrices].map(([name, m]) => [name, quantizedWeight(m)]))), floats, label);
}

/** `model` with `weights` copied in, or disposed when they do not fit it */
function loaded(model: GPT, weights: Map<string, { shape: readonly number[]; data: Float32Array }>, label: string): GPT {
  try {
    model.loadWeights(weights, label);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}
