/**
 * A model whose matrices came from an int8 / int4 file (src/io/quantize.ts) holds them only in the
 * integer kernels' packed form (kernels/quant-packed.ts: 1/4 or ~1/7 of float32's bytes), in the
 * tensor heap, and computes with them:
 *   - everything without a tape (the one-token decode, the KV-cache prefill, evaluation), which
 *     reads every weight once per token and is bound by memory bandwidth, runs the integer kernels
 *     (src/kernels/quant.ts's quantRows, each row of activations rounded to int8), in the block's
 *     four linear layers and in the tied LM head;
 *   - the token embedding dequantizes the rows it looks up, and only those;
 *   - everything with a tape (a LoRA adapter's backward pass, QLoRA; explain-step's training step)
 *     runs on the dequantized float32 weights, q·s, exactly the values of the file: each matrix is
 *     dequantized into one scratch buffer of the model's (TapeScratch) for its product, and again
 *     before that product's backward, so no float copy of the model's weights is ever kept.
 * Where a caller needs a matrix's float values for good (an adapter merged into it, the gradient of
 * every weight), GPT.floatWeight makes a float copy of that one matrix.
 */
import type { QuantizedMatrix } from "../io/quantize.js";
import type { KernelArray } from "../kernels/index.js";
import { dequantize, type PackedWeights, quantRows } from "../kernels/quant.js";
import { type PackedShape, packedShape, packQuantized } from "../kernels/quant-packed.js";
import { embedding, gelu, matmulTransposed } from "../ops/index.js";
import { heap } from "../tensor/memory.js";
import { isGradEnabled, Tensor } from "../tensor/tensor.js";
import { Embedding } from "./embedding.js";
import { Linear } from "./linear.js";

/**
 * One parameter held as int8 / int4 in the packed form: its float shape is (K,N) for a Conv1D
 * weight ("in-out") or (V,C) for wte ("out-in"), as the float parameter's would be.
 */
export class QuantizedWeight {
  /** a float copy, once a caller asked for one (GPT.floatWeight); the products then read it */
  float: Tensor | null = null;

  constructor(
    readonly shape: readonly [number, number],
    readonly layout: "in-out" | "out-in",
    readonly packed: PackedWeights,
    /** the heap tensors holding `packed` when this weight owns them (a replica's views do not) */
    private readonly owned: readonly Tensor[],
  ) {}

  get size(): number {
    return this.shape[0] * this.shape[1];
  }

  /** the heap bytes it holds: packed weights, scales, int8's sums */
  get bytes(): number {
    return this.owned.reduce((n, t) => n + t.size * 4, 0);
  }

  /** the float values (q·s), in the float parameter's layout, written into `out` (a new array by default) */
  values(out: Float32Array = new Float32Array(this.size)): Float32Array {
    const { K, N } = this.packed.shape;
    if (this.layout === "in-out") dequantize(this.packed, out, 0, N, 1, N);
    else dequantize(this.packed, out, 0, N, K, 1);
    return out;
  }

  /** row `o` of an "out-in" matrix (wte's row of token o) into out[0..C) */
  row(o: number, out: Float32Array): void {
    dequantize(this.packed, out, o, o + 1, 0, 1);
  }

  /** its packed arrays as heap addresses, for a replica on another thread (fromShared) */
  shared(): SharedQuantizedWeight {
    const { shape, bytes, scales, sums } = this.packed;
    return { shape: [...this.shape], layout: this.layout, packed: shape, at: [bytes.byteOffset, scales.byteOffset, sums.byteOffset] };
  }

  /** a weight over another thread's packed arrays (shared memory), owning nothing */
  static fromShared(w: SharedQuantizedWeight): QuantizedWeight {
    const buffer = heap().memory.buffer;
    const s = w.packed;
    const [bytes, scales, sums] = w.at;
    const packed = {
      shape: s,
      bytes: new Uint8Array(buffer, bytes, s.bytes),
      scales: new Float32Array(buffer, scales, s.scaleCount),
      sums: new Int32Array(buffer, sums, s.sumCount),
    };
    return new QuantizedWeight(w.shape as [number, number], w.layout, packed, []);
  }

  dispose(): void {
    for (const t of this.owned) t.dispose();
    this.float?.dispose();
    this.float = null;
  }
}

/** a QuantizedWeight as a replica thread rebuilds it: shapes and the heap addresses of bytes, scales, sums */
export interface SharedQuantizedWeight {
  shape: number[];
  layout: "in-out" | "out-in";
  packed: PackedShape;
  at: [number, number, number];
}

/** m repacked for the integer kernels into the tensor heap, its only copy in the model */
export function quantizedWeight(m: QuantizedMatrix): QuantizedWeight {
  const shape = packedShape(m.bits, m.inFeatures, m.outFeatures, m.groupSize);
  const bytes = new Tensor([Math.ceil(shape.bytes / 4)], "f32", false, false);
  const scales = new Tensor([shape.scaleCount], "f32", false, false);
  const sums = new Tensor([Math.max(shape.sumCount, 1)], "i32", false, false);
  const buffer = heap().memory.buffer;
  const packed = {
    shape,
    bytes: new Uint8Array(buffer, bytes.ptr, shape.bytes),
    scales: scales.data,
    sums: new Int32Array(buffer, sums.ptr, shape.sumCount),
  };
  packQuantized(m, shape, packed.bytes, packed.scales, packed.sums);
  const floatShape: [number, number] = m.layout === "in-out" ? [m.inFeatures, m.outFeatures] : [m.outFeatures, m.inFeatures];
  return new QuantizedWeight(floatShape, m.layout, packed, [bytes, scales, sums]);
}

/**
 * The one float buffer a quantized model's tape products read their weight from, as large as its
 * largest quantized matrix, made on first use (a model that only decodes never makes it) and freed
 * with the model. A product's recorded backward dequantizes its weight into it again first (another
 * product has used it since); a walk of the tape is one product at a time, so one buffer serves all.
 * The dequantizing is the wasm kernel's where there is one (kernels/quant.ts's dequantize: at GPT-2's
 * size ~0.3 s a step, where the JS loop took seconds).
 */
export class TapeScratch {
  private buffer: Tensor | null = null;
  /**
   * the weight the buffer holds now: the LM head is the forward's last product and the backward's
   * first, so its backward finds wte (the largest matrix, ~40 ms to dequantize at GPT-2's size) still
   * there. Nothing else writes the buffer (the products only read their weight).
   */
  private holding: QuantizedWeight | null = null;

  constructor(private readonly floats: number) {}

  /** `op` on w's float values (its float copy when it has one), the recorded backward kept right */
  apply(w: QuantizedWeight, op: (weight: Tensor) => Tensor): Tensor {
    if (w.float) return op(w.float);
    const weight = this.fill(w);
    const out = op(weight);
    const backward = out.backwardFn;
    if (backward)
      out.backwardFn = () => {
        this.fill(w);
        backward();
      };
    return out;
  }

  /** w dequantized into the buffer: a view of it in w's shape */
  private fill(w: QuantizedWeight): Tensor {
    this.buffer ??= new Tensor([this.floats], "f32", false, false);
    if (this.holding !== w) w.values(this.buffer.data.subarray(0, w.size));
    this.holding = w;
    return Tensor.view(this.buffer.ptr, w.shape);
  }

  dispose(): void {
    this.buffer?.dispose();
    this.buffer = null;
    this.holding = null;
  }
}

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

/** A linear layer with int8 / int4 weights: the integer kernels without a tape, the dequantized float weight on it. */
export class QuantizedLinear extends Linear {
  constructor(
    readonly quant: QuantizedWeight,
    bias: Tensor,
    private readonly scratch: TapeScratch,
  ) {
    super(null, bias, quant.shape);
  }

  override withWeight(op: (w: Tensor) => Tensor): Tensor {
    return this.scratch.apply(this.quant, op);
  }

  override forward(x: Tensor): Tensor {
    return isGradEnabled() ? super.forward(x) : rowsForward(x, this.quant.packed, this.bias);
  }

  override forwardGelu(x: Tensor): Tensor {
    return isGradEnabled() ? super.forwardGelu(x) : gelu(rowsForward(x, this.quant.packed, this.bias));
  }

  override rows(out: Tensor, x: Tensor, M: number): void {
    quantRows(out.data, x.data, this.quant.packed, this.bias.data, M);
  }

  override plain(): null {
    return null;
  }
}

/**
 * The token embedding and tied LM head with an int8 / int4 table: a lookup dequantizes the rows it
 * reads; the head runs the integer kernels without a tape, the dequantized table on it. The table is
 * frozen (a quantized model's table does not train), so a lookup records nothing.
 */
export class QuantizedEmbedding extends Embedding {
  /** the decode's one row (C floats), reused by each row() */
  private readonly one: Tensor;

  constructor(
    readonly quant: QuantizedWeight,
    private readonly scratch: TapeScratch,
  ) {
    super(null, quant.shape);
    this.one = new Tensor([quant.shape[1]], "f32", false, false);
  }

  override forward(ids: Tensor): Tensor {
    // with a float copy (GPT.floatWeight: the learning mode's step), the lookup its gradient flows to
    if (this.quant.float) return embedding(this.quant.float, ids);
    const [V, C] = this.quant.shape;
    const out = new Tensor([...ids.shape, C]);
    const idv = ids.ints;
    for (let i = 0; i < ids.size; i++) {
      const id = idv[i] as number;
      if (id < 0 || id >= V) throw new RangeError(`embedding: id ${id} out of range for a table of ${V} rows`);
      this.quant.row(id, out.data.subarray(i * C, (i + 1) * C));
    }
    return out;
  }

  override head(x: Tensor): Tensor {
    return isGradEnabled() ? this.scratch.apply(this.quant, (w) => matmulTransposed(x, w)) : rowsForward(x, this.quant.packed, null);
  }

  override headRows(logits: Tensor, a: Tensor, R: number): void {
    quantRows(logits.data, a.data, this.quant.packed, null, R);
  }

  override row(id: number): KernelArray {
    this.quant.row(id, this.one.data);
    return this.one.data;
  }

  dispose(): void {
    this.one.dispose();
  }
}
