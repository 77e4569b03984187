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
    checkFinite(t.data, label, rawName);
    out.set(name, { shape: t.shape, data: t.data });
  }
  return out;
}

/**
 * Fail, naming the tensor, when `data` holds NaN or ±Infinity: such weights only generate nonsense
 * (newlines, a null loss). Training never saves them (a non-finite loss stops it first), so the file
 * was damaged after it was written.
 */
export function checkFinite(data: Float32Array, label: string, tensor: string): void {
  // x·0 is 0 for every finite x and NaN otherwise: one multiply-add per value, no branch
  let probe = 0;
  for (let i = 0; i < data.length; i++) probe += (data[i] as number) * 0;
  if (probe === 0) return;
  const at = data.findIndex((v) => !Number.isFinite(v));
  fail(
    `${label}: tensor ${tensor} holds ${data[at]} (at element ${at}); the file is damaged: restore it from a copy, or train the model again`,
  );
}
