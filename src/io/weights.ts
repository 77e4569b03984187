/**
 * Hugging Face GPT-2 weight names to ours, without the file system (the browser uses it as it is):
 * keys with or without the "transformer." prefix, the attn.bias / attn.masked_bias buffers older
 * checkpoints carry skipped, lm_head skipped (tied to wte).
 */
import { fail } from "../errors.js";
import type { SafetensorsFile } from "./safetensors.js";

/** Weights by our (prefixed) names from a safetensors file in HF GPT-2 layout. */
export function weightsFromSafetensors(file: SafetensorsFile, label: string): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [rawName, t] of file.tensors) {
    if (rawName.endsWith(".attn.bias") || rawName.endsWith(".attn.masked_bias")) continue; // causal-mask buffers
    if (rawName === "lm_head.weight") continue; // tied to wte
    const name = rawName.startsWith("transformer.") ? rawName : `transformer.${rawName}`;
    if (!(t.data instanceof Float32Array)) fail(`${label}: tensor ${rawName} has dtype ${t.dtype}, expected a float type`);
    out.set(name, { shape: t.shape, data: t.data });
  }
  return out;
}
