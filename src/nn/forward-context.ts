/** What a forward pass over tensors (training, or the KV-cache prefill) hands every layer. */
import type { Rng } from "../random.js";
import type { Tensor } from "../tensor/tensor.js";
import type { AttentionCache } from "./attention-cache.js";

export interface ForwardContext {
  /** dropout, or the identity (inference, or dropout 0) */
  drop: (t: Tensor) => Tensor;
  /** the forward pass's dropout PRNG, for layers with a dropout of their own (a LoRA adapter's); absent in inference */
  dropoutRng?: Rng;
  /** learning mode's hook (GPT.forward's `capture`), names already prefixed by the caller's layer */
  capture?: (name: string, t: Tensor) => void;
  /**
   * prefill: the sequence's KV cache (one per layer) and the position of the first new token; the
   * attention layers write the new k and v rows there and attend over rows 0.. of it. B must be 1.
   */
  cache?: { layers: readonly AttentionCache[]; pos0: number };
}
