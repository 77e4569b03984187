/**
 * A model whose matrices came from an int8 / int4 file (src/io/quantize.ts) generating from them:
 * the one-token decode, which reads every weight once per token and is bound by memory bandwidth,
 * runs the quantized kernels (src/kernels/quant.ts: 1/4 or ~1/7 of float32's bytes), in the block's
 * four linear layers and in the tied LM head. Everything with a tape (training, the KV-cache
 * prefill) runs on the dequantized float32 weights the model holds as well: the same values, q·s.
 */
import type { QuantizedMatrix } from "../io/quantize.js";
import { type QuantWeights, quantMatmul, quantMatmulBT } from "../kernels/quant.js";
import { heap } from "../tensor/memory.js";
import { Tensor } from "../tensor/tensor.js";
import type { GPT } from "./gpt.js";
import { Linear } from "./linear.js";

/** A linear layer whose decode reads int8 / int4 weights; its float weight is their dequantized copy. */
export class QuantizedLinear extends Linear {
  constructor(
    base: Linear,
    readonly quant: QuantWeights,
  ) {
    super(base.weight, base.bias);
  }

  override rows(out: Tensor, x: Tensor, M: number): void {
    quantMatmul(out.data, x.data, this.quant, this.bias.data, M, this.inFeatures, this.outFeatures);
  }

  override plain(): null {
    return null;
  }
}

/** a matrix's bytes and scales copied into the tensor heap (the wasm kernels read them there) */
function inHeap(m: QuantizedMatrix, owned: Tensor[]): QuantWeights {
  const bytes = new Tensor([Math.ceil(m.q.length / 4)], "i32", false, false);
  const scales = new Tensor([m.scales.length], "f32", false, false);
  owned.push(bytes, scales);
  scales.data.set(m.scales);
  const buffer = heap().memory.buffer;
  const q = m.bits === 8 ? new Int8Array(buffer, bytes.ptr, m.q.length) : new Uint8Array(buffer, bytes.ptr, m.q.length);
  q.set(m.q as never);
  return { bits: m.bits, groupSize: m.groupSize, q, scales: scales.data };
}

/**
 * Let `model` (holding the dequantized weights of `matrices`) decode with the quantized matrices.
 * Returns what frees their heap copies.
 */
export function useQuantizedWeights(model: GPT, matrices: Map<string, QuantizedMatrix>): () => void {
  const owned: Tensor[] = [];
  for (const block of model.h) {
    const layer = (l: Linear, name: string) => {
      const m = matrices.get(`${name}.weight`);
      return m ? new QuantizedLinear(l, inHeap(m, owned)) : l;
    };
    const h = `transformer.h.${block.index}`;
    block.attn.c_attn = layer(block.attn.c_attn, `${h}.attn.c_attn`);
    block.attn.c_proj = layer(block.attn.c_proj, `${h}.attn.c_proj`);
    block.mlp.c_fc = layer(block.mlp.c_fc, `${h}.mlp.c_fc`);
    block.mlp.c_proj = layer(block.mlp.c_proj, `${h}.mlp.c_proj`);
  }
  const wte = matrices.get("transformer.wte.weight");
  if (wte) {
    const head = inHeap(wte, owned);
    const { nEmbd: C, vocabSize: V } = model.config;
    model.headRows = (logits, a, R) => quantMatmulBT(logits.data, a.data, head, R, C, V);
  }
  return () => {
    for (const t of owned) t.dispose();
  };
}
