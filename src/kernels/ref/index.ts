import type { Backend } from "../backend.js";
import { geluBackward, geluForward, geluForwardGrad, reluBackward, reluForward } from "./activations.js";
import { adamw, adamwMany } from "./adamw.js";
import { attentionBackward, attentionCached, attentionForward } from "./attention.js";
import { crossEntropyBackward, crossEntropyForward } from "./crossentropy.js";
import { attentionRows, linearRows, matmulBTRows, mlpRows } from "./decode.js";
import { accumulate, add, addBias, copy, mul, scale, sumRows, sumSquares, zero } from "./elementwise.js";
import { embeddingBackward, embeddingForward } from "./embedding.js";
import { layernormBackward, layernormForward } from "./layernorm.js";
import { linearBackward, linearForward, matmul, matmulAT, matmulBT } from "./matmul.js";
import { sampleTemperature } from "./sample.js";
import { softmax } from "./softmax.js";

/**
 * The reference backend: plain loops, the living definition of every kernel. An element is read as
 * `x[i]!`: the compiler's noUncheckedIndexedAccess types every indexed read as possibly undefined, and
 * these loops stay inside their arrays by their shapes.
 */
export const refBackend: Backend = {
  name: "ref",
  matmul,
  matmulBT,
  matmulAT,
  linearForward,
  linearBackward,
  addBias,
  sumRows,
  zero,
  copy,
  add,
  accumulate,
  scale,
  sumSquares,
  mul,
  layernormForward,
  layernormBackward,
  geluForward,
  geluBackward,
  geluForwardGrad,
  reluForward,
  reluBackward,
  attentionForward,
  attentionBackward,
  attentionCached,
  linearRows,
  matmulBTRows,
  mlpRows,
  attentionRows,
  softmax,
  sampleTemperature,
  crossEntropyForward,
  crossEntropyBackward,
  embeddingForward,
  embeddingBackward,
  adamw,
  adamwMany,
};
