/**
 * A model whose matrices came from an int8 / int4 file (src/io/quantize.ts) computing with them:
 * everything without a tape (the one-token decode, the KV-cache prefill, evaluation), which reads
 * every weight once per token and is bound by memory bandwidth, runs the integer kernels
 * (src/kernels/quant.ts's quantRows: 1/4 or ~1/7 of float32's bytes, each row of activations rounded
 * to int8), in the block's four linear layers and in the tied LM head. Everything with a tape
 * (training, a LoRA adapter's backward pass) runs on the dequantized float32 weights the model holds
 * as well: the same values, q·s.
 */
import type { QuantizedMatrix } from "../io/quantize.js";
import { type PackedWeights, quantRows } from "../kernels/quant.js";
import { packedShape, packQuantized } from "../kernels/quant-packed.js";
import { gelu } from "../ops/index.js";
import { heap } from "../tensor/memory.js";
import { isGradEnabled, Tensor } from "../tensor/tensor.js";
import type { GPT } from "./gpt.js";
import { Linear } from "./linear.js";

/**
 * x (...,K) -> (...,N) through quantRows: every row of x on its own, no tape. The tape's form of the
 * layer (for gradients) is the float product with the dequantized weight.
 */
function rowsForward(x: Tensor, w: PackedWeights, bias: Tensor | null): Tensor {
  const { K, N } = w.shape;
  const out = new Tensor([...x.shape.slice(0, -1), N]);
  quantRows(out.data, x.data, w, bias ? bias.data : null, x.size / K);
  return out;
}

/** A linear layer that reads int8 / int4 weights without a tape; its float weight is their dequantized copy. */
export class QuantizedLinear extends Linear {
  constructor(
    base: Linear,
    readonly quant: PackedWeights,
  ) {
    super(base.weight, base.bias);
  }

  override forward(x: Tensor): Tensor {
    return isGradEnabled() ? super.forward(x) : rowsForward(x, this.quant, this.bias);
  }

  override forwardGelu(x: Tensor): Tensor {
    return isGradEnabled() ? super.forwardGelu(x) : gelu(rowsForward(x, this.quant, this.bias));
  }

  override rows(out: Tensor, x: Tensor, M: number): void {
    quantRows(out.data, x.data, this.quant, this.bias.data, M);
  }

  override plain(): null {
    return null;
  }
}

/** a matrix repacked for the integer kernels (kernels/quant-packed.ts) into the tensor heap */
function inHeap(m: QuantizedMatrix, owned: Tensor[]): PackedWeights {
  const shape = packedShape(m.bits, m.inFeatures, m.outFeatures, m.groupSize);
  const bytes = new Tensor([Math.ceil(shape.bytes / 4)], "f32", false, false);
  const scales = new Tensor([shape.scaleCount], "f32", false, false);
  const sums = new Tensor([Math.max(shape.sumCount, 1)], "i32", false, false);
  owned.push(bytes, scales, sums);
  const buffer = heap().memory.buffer;
  const packed = {
    shape,
    bytes: new Uint8Array(buffer, bytes.ptr, shape.bytes),
    scales: scales.data,
    sums: new Int32Array(buffer, sums.ptr, shape.sumCount),
  };
  packQuantized(m, shape, packed.bytes, packed.scales, packed.sums);
  return packed;
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
    model.headRows = (logits, a, R) => quantRows(logits.data, a.data, head, null, R);
    model.headForward = (x) => rowsForward(x, head, null);
  }
  return () => {
    for (const t of owned) t.dispose();
  };
}
