import { backend } from "../kernels/index.js";
import { isGradEnabled, Tensor } from "../tensor/tensor.js";
import { record, shapeStr } from "./record.js";

/** Whether a recorded forward keeps the (B,nh,T,T) probabilities: when they are no bigger than qkv. */
export function keepsAttentionProbs(T: number, headSize: number): boolean {
  return T <= 3 * headSize;
}

/**
 * Causal multi-head self-attention, fused: qkv (B,T,3C) -> (B,T,C).
 * Heads are split inside the kernel (q, k, v each (B,T,nh,hs)). For backward the forward keeps each
 * score row's log-sum-exp (B,nh,T), and, when a graph is recorded and they take no more memory than
 * qkv itself (T <= 3·hs: nanoGPT's CPU recipe, not a long context), the softmax probabilities
 * (B,nh,T,T): the backward then reads them instead of recomputing q·kᵀ and its exp (~20% of its
 * time on the CPU). Otherwise the (B,nh,T,T) matrix is never stored and backward recomputes it.
 */
export function causalSelfAttention(qkv: Tensor, nHead: number): Tensor {
  if (qkv.shape.length !== 3) throw new Error(`attention: qkv must be (B,T,3C), got ${shapeStr(qkv.shape)}`);
  const [B, T, C3] = qkv.shape as [number, number, number];
  const C = C3 / 3;
  if (!Number.isInteger(C) || C % nHead !== 0) throw new Error(`attention: ${C3} is not 3 × a multiple of ${nHead} heads`);
  const out = new Tensor([B, T, C]);
  const lse = new Tensor([B, nHead, T]);
  // (a device backend recomputes: it keeps no probabilities)
  const keep = isGradEnabled() && qkv.requiresGrad && qkv.device === null && keepsAttentionProbs(T, C / nHead);
  const probs = keep ? new Tensor([B, nHead, T, T]) : null;
  backend().attentionForward(out.storage, lse.storage, qkv.storage, B, T, C, nHead, probs?.storage);
  return record(out, [qkv], () => {
    // qkv's one consumer is usually this op: then its gradient is written, not zeroed and added into
    const fresh = qkv.freshGrad();
    backend().attentionBackward(
      (fresh ?? (qkv.grad as Tensor)).storage,
      (out.grad as Tensor).storage,
      qkv.storage,
      out.storage,
      lse.storage,
      B,
      T,
      C,
      nHead,
      probs?.storage,
      fresh !== null,
    );
  });
}
