import { backend } from "../kernels/index.js";
import { Tensor } from "../tensor/tensor.js";
import { record, shapeStr } from "./record.js";

/**
 * Causal multi-head self-attention, fused: qkv (B,T,3C) -> (B,T,C).
 * Heads are split inside the kernel (q, k, v each (B,T,nh,hs)); the (B,nh,T,T) attention matrix is
 * never stored, only its row log-sum-exp (B,nh,T), and backward recomputes it.
 */
export function causalSelfAttention(qkv: Tensor, nHead: number): Tensor {
  if (qkv.shape.length !== 3) throw new Error(`attention: qkv must be (B,T,3C), got ${shapeStr(qkv.shape)}`);
  const [B, T, C3] = qkv.shape as [number, number, number];
  const C = C3 / 3;
  if (!Number.isInteger(C) || C % nHead !== 0) throw new Error(`attention: ${C3} is not 3 × a multiple of ${nHead} heads`);
  const out = new Tensor([B, T, C]);
  const lse = new Tensor([B, nHead, T]);
  backend().attentionForward(out.storage, lse.storage, qkv.storage, B, T, C, nHead);
  return record(out, [qkv], () => {
    backend().attentionBackward(
      qkv.ensureGrad().storage,
      (out.grad as Tensor).storage,
      qkv.storage,
      out.storage,
      lse.storage,
      B,
      T,
      C,
      nHead,
    );
  });
}
