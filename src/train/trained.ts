/**
 * What a run trains, and how its weights go to disk: the whole model, or a LoRA adapter on a frozen
 * base model (`train --lora-rank`). The trainer, its checkpoints and the model folder see only this:
 *
 *                   trains (optimizer, clip)         a model folder / checkpoint holds
 *   whole model     every parameter                  config.json + model.safetensors
 *   LoRA adapter    lora_A, lora_B of the targets,   config.json (the model's shape, the run's record)
 *                   and wte's added rows (trainable  + adapter_config.json + adapter_model.safetensors
 *                   tokens); the base has no         (PEFT's format, io/lora.ts): the base model is named
 *                   gradient buffers, no moments     by base_model_name_or_path, relative to the folder
 */
import { existsSync } from "node:fs";
import { join, relative } from "node:path";
import { fail } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { saveModel } from "../io/hf.js";
import type { LoraConfig } from "../io/lora.js";
import { ADAPTER_WEIGHTS, loraAdapterFileBytes, writeLoraAdapter } from "../io/lora-folder.js";
import { modelSafetensorsBytes, modelSafetensorsFileBytes } from "../io/model-zip.js";
import { configToHuggingFace } from "../nn/config.js";
import type { GPT } from "../nn/gpt.js";
import { type LoraAttachment, loraAdapterOf } from "../nn/lora.js";
import type { Tensor } from "../tensor/tensor.js";

export interface Trained {
  readonly model: GPT;
  /** the tensors that train (what the optimizer and the gradient clip take), by the names their file and moments use */
  readonly params: Map<string, Tensor>;
  /** the adapter, when the run trains one */
  readonly lora: LoraAttachment | null;
  /** the weights' file(s) in the folder `dir` (the best model so far, a checkpoint's) */
  saveWeights(dir: string): void;
  /** a new model folder's files: config.json (with the run's record `info`) and the weights */
  saveModelFolder(dir: string, info: Record<string, unknown>): void;
  /** the file a checkpoint holds the weights in */
  readonly weightsFile: string;
  /** the size that file will have (its header included) */
  weightsFileBytes(): number;
  zeroGrad(): void;
}

/** the whole model trains */
export function wholeModel(model: GPT): Trained {
  return {
    model,
    params: model.params,
    lora: null,
    weightsFile: "model.safetensors",
    weightsFileBytes: () => modelSafetensorsFileBytes(model.config),
    saveWeights: (dir) => writeFileAtomic(join(dir, "model.safetensors"), modelSafetensorsBytes(model)),
    saveModelFolder: (dir, info) => saveModel(model, dir, info),
    zeroGrad: () => model.zeroGrad(),
  };
}

/**
 * a LoRA adapter trains on `model` (attached: its base frozen); `base` is the base model's folder,
 * absolute: each folder written names it relative to itself
 */
export function loraAdapter(model: GPT, attachment: LoraAttachment, base: string): Trained {
  const saveWeights = (dir: string) => {
    const adapter = loraAdapterOf(attachment);
    const config: LoraConfig = { ...attachment.config, base: relative(dir, base) || "." };
    writeLoraAdapter(dir, { ...adapter, config });
  };
  return {
    model,
    params: attachment.params,
    lora: attachment,
    weightsFile: ADAPTER_WEIGHTS,
    weightsFileBytes: () => loraAdapterFileBytes(loraAdapterOf(attachment)),
    saveWeights,
    saveModelFolder: (dir, info) => {
      // the model's shape and the run's record, as a model folder's config.json has them (no weights:
      // they are the base's and the adapter's)
      writeFileAtomic(join(dir, "config.json"), `${JSON.stringify(configToHuggingFace(model.config, info), null, 2)}\n`);
      saveWeights(dir);
    },
    zeroGrad: () => {
      for (const t of attachment.params.values()) t.zeroGrad();
    },
  };
}

/** copy `weights` (a checkpoint's, by name) into `params`; every one present with its shape */
export function loadTrainedWeights(
  params: Map<string, Tensor>,
  weights: Map<string, { shape: readonly number[]; data: Float32Array }>,
  source: string,
): void {
  for (const [name, t] of params) {
    const w = weights.get(name);
    if (!w) fail(`${source}: missing tensor ${name}`);
    if (w.shape.length !== t.shape.length || w.shape.some((d, i) => d !== t.shape[i]))
      fail(`${source}: tensor ${name} has shape [${w.shape.join(", ")}] but the run needs [${t.shape.join(", ")}]`);
    t.data.set(w.data);
  }
}

/** does a checkpoint folder hold an adapter's weights (a LoRA run's) rather than a model's? */
export function holdsAdapter(dir: string): boolean {
  return existsSync(join(dir, ADAPTER_WEIGHTS)) && !existsSync(join(dir, "model.safetensors"));
}
