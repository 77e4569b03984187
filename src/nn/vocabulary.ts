/**
 * A model's vocabulary grown by tokens added at its end (chat special tokens, characters a
 * fine-tune's data needs): the embedding table gets new rows, every other tensor stays as it is.
 */
import { backend } from "../kernels/index.js";
import type { Tensor } from "../tensor/tensor.js";
import { GPT } from "./gpt.js";

/**
 * `t` (V,C) = `old` (Vold,C) with rows Vold.. added: the old rows copied and every new row the mean
 * of the old ones, so a new token begins as an "average" token rather than noise.
 */
export function initNewEmbeddingRows(t: Tensor, old: Tensor): void {
  const [Vold, C] = old.shape as [number, number];
  if (t.device) {
    // on a GPU with its kernels: the mean of the old rows in float32 (on the CPU, float64)
    const be = backend();
    be.copy(t.slice(0, Vold * C), old.storage, Vold * C);
    const mean = t.slice(Vold * C, C);
    be.zero(mean, C);
    be.sumRows(mean, old.storage, Vold, C);
    be.scale(mean, C, 1 / Vold);
    for (let v = Vold + 1; v < t.shape[0]!; v++) be.copy(t.slice(v * C, C), mean, C);
    return;
  }
  const d = t.data;
  d.set(old.data);
  const mean = new Float64Array(C);
  const o = old.data;
  for (let v = 0; v < Vold; v++) for (let c = 0; c < C; c++) mean[c] = (mean[c] as number) + (o[v * C + c] as number) / Vold;
  for (let v = Vold; v < t.shape[0]!; v++) for (let c = 0; c < C; c++) d[v * C + c] = mean[c] as number;
}

/** `model` with `vocabSize` tokens (a new model; the old one is disposed), or itself when it has them */
export function withVocabulary(model: GPT, vocabSize: number): GPT {
  if (vocabSize === model.config.vocabSize) return model;
  if (vocabSize < model.config.vocabSize)
    throw new Error(`withVocabulary: ${vocabSize} tokens is fewer than the model's ${model.config.vocabSize}`);
  const grown = new GPT({ ...model.config, vocabSize }, 0);
  for (const [name, t] of grown.params) {
    const s = model.param(name);
    if (s.size === t.size) backend().copy(t.storage, s.storage, t.size);
    else initNewEmbeddingRows(t, s);
  }
  model.dispose();
  return grown;
}
