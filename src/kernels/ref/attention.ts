import type { FloatArray } from "../backend.js";

// Causal self-attention, fused. For one (batch b, head h, query t):
//   s_j = q_t·k_j / √hs  for j ≤ t        (the causal mask: later keys are never looked at)
//   p_j = exp(s_j - lse_t),  lse_t = log Σ_j exp(s_j)
//   o_t = Σ_j p_j v_j
// lse (B,nh,T) is kept for backward, and p is recomputed there from q, k and lse, which costs one
// more q·k pass but saves the (B,nh,T,T) probability tensor per layer; or, given probs (B,nh,T,T),
// the forward keeps each p_j there (row t's entries 0..t) and the backward uses those.

/**
 * One query's attention over keys 0..last (the formulas above), shared by the forward pass and
 * generation: acc (hs) = o = Σ_j p_j·v_j; returns lse. The query is q[qo..qo+hs); key j's k is
 * keys[ko + j·stride ..] and its v values[vo + j·stride ..]; s (last+1) is scratch.
 */
function attendQuery(
  q: FloatArray,
  qo: number,
  keys: FloatArray,
  ko: number,
  values: FloatArray,
  vo: number,
  stride: number,
  last: number,
  hs: number,
  scale: number,
  s: Float64Array,
  acc: Float64Array,
  /** where p_0..p_last go, or null */
  probs: FloatArray | null = null,
  po = 0,
): number {
  let max = -Infinity;
  for (let j = 0; j <= last; j++) {
    const kj = ko + j * stride;
    let dot = 0;
    for (let d = 0; d < hs; d++) dot += q[qo + d]! * keys[kj + d]!;
    dot *= scale;
    s[j] = dot;
    if (dot > max) max = dot;
  }
  let sum = 0;
  for (let j = 0; j <= last; j++) {
    const e = Math.exp(s[j]! - max);
    s[j] = e;
    sum += e;
  }
  acc.fill(0);
  for (let j = 0; j <= last; j++) {
    const p = s[j]! / sum;
    if (probs) probs[po + j] = p;
    const vj = vo + j * stride;
    for (let d = 0; d < hs; d++) acc[d]! += p * values[vj + d]!;
  }
  return max + Math.log(sum);
}

/** qkv (B,T,3C) -> out (B,T,C), lse (B,nh,T) [, probs (B,nh,T,T)] */
export function attentionForward(
  out: FloatArray,
  lse: FloatArray,
  qkv: FloatArray,
  B: number,
  T: number,
  C: number,
  nh: number,
  probs: FloatArray | null = null,
): void {
  const hs = C / nh;
  const C3 = 3 * C;
  const scale = 1 / Math.sqrt(hs);
  const s = new Float64Array(T);
  const acc = new Float64Array(hs);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nh; h++) {
      for (let t = 0; t < T; t++) {
        const row0 = b * T * C3 + h * hs; // this (b, h)'s q at position 0; its k and v follow at +C, +2C
        const po = ((b * nh + h) * T + t) * T;
        const l = attendQuery(qkv, row0 + t * C3, qkv, row0 + C, qkv, row0 + 2 * C, C3, t, hs, scale, s, acc, probs, po);
        const oo = (b * T + t) * C + h * hs;
        for (let d = 0; d < hs; d++) out[oo + d] = acc[d]!;
        lse[(b * nh + h) * T + t] = l;
      }
    }
  }
}

/**
 * (dqkv = instead of += with overwrite) With D_t = do_t·o_t (p_j from probs when the forward kept them there):  dv_j += p_j·do_t,  ds_j = p_j·(do_t·v_j - D_t),
 *                       dq_t += ds_j·k_j/√hs,  dk_j += ds_j·q_t/√hs
 */
export function attentionBackward(
  dqkv: FloatArray,
  dout: FloatArray,
  qkv: FloatArray,
  out: FloatArray,
  lse: FloatArray,
  B: number,
  T: number,
  C: number,
  nh: number,
  probs: FloatArray | null = null,
  overwrite = false,
): void {
  const hs = C / nh;
  const C3 = 3 * C;
  const scale = 1 / Math.sqrt(hs);
  if (overwrite) dqkv.fill(0, 0, B * T * C3);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nh; h++) {
      for (let t = 0; t < T; t++) {
        const qo = (b * T + t) * C3 + h * hs;
        const oo = (b * T + t) * C + h * hs;
        const l = lse[(b * nh + h) * T + t]!;
        let D = 0;
        for (let d = 0; d < hs; d++) D += dout[oo + d]! * out[oo + d]!;
        for (let j = 0; j <= t; j++) {
          const ko = (b * T + j) * C3 + C + h * hs;
          const vo = ko + C;
          let dot = 0;
          let dp = 0;
          for (let d = 0; d < hs; d++) {
            dot += qkv[qo + d]! * qkv[ko + d]!;
            dp += dout[oo + d]! * qkv[vo + d]!;
          }
          const p = probs ? probs[((b * nh + h) * T + t) * T + j]! : Math.exp(dot * scale - l);
          const ds = p * (dp - D) * scale;
          for (let d = 0; d < hs; d++) {
            dqkv[vo + d]! += p * dout[oo + d]!;
            dqkv[qo + d]! += ds * qkv[ko + d]!;
            dqkv[ko + d]! += ds * qkv[qo + d]!;
          }
        }
      }
    }
  }
}

/**
 * Generation with a KV cache. qkv (Tn,3C) are the new positions pos0.., whose k, v rows are already
 * in kCache, vCache (Tmax,C). Query at absolute position p attends to cache rows 0..p. -> out (Tn,C)
 */
export function attentionCached(
  out: FloatArray,
  qkv: FloatArray,
  kCache: FloatArray,
  vCache: FloatArray,
  Tn: number,
  pos0: number,
  C: number,
  nh: number,
): void {
  const hs = C / nh;
  const scale = 1 / Math.sqrt(hs);
  const s = new Float64Array(pos0 + Tn);
  const acc = new Float64Array(hs);
  for (let i = 0; i < Tn; i++) {
    const p = pos0 + i;
    for (let h = 0; h < nh; h++) {
      attendQuery(qkv, i * 3 * C + h * hs, kCache, h * hs, vCache, h * hs, C, p, hs, scale, s, acc);
      const oo = i * C + h * hs;
      for (let d = 0; d < hs; d++) out[oo + d] = acc[d]!;
    }
  }
}
