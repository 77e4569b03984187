// AdamW, one update of n parameters in place: p, g (gradient), m, v (moments), all n floats.
//   g' = gs·g;  m = β1·m + (1-β1)·g';  v = β2·v + (1-β2)·g'²;  p = p·(1 - lr·wd) - (lr/bc1)·m / (√v/√bc2 + eps)
// bc1, bc2 are the bias corrections 1 - β1^t, 1 - β2^t, computed by the caller; gs (gradScale) is a
// global-norm clip's factor or 1, g·gs the f32 product the elementwise scale kernel would have left
// in g (g is not written). adamwMany: the same over a table of tensors, for the whole model in one call.

/** one vector of AdamW's update (see adamw) */
@inline function adamwVec(p: usize, g: usize, m: usize, v: usize, gsv: v128, b1v: v128, b2v: v128, ob1v: v128, ob2v: v128, decv: v128, stv: v128, ibv: v128, epv: v128): void {
  const gi = f32x4.mul(v128.load(g), gsv);
  const mi = madd(b1v, v128.load(m), f32x4.mul(ob1v, gi));
  const vi = madd(b2v, v128.load(v), f32x4.mul(ob2v, f32x4.mul(gi, gi)));
  v128.store(m, mi);
  v128.store(v, vi);
  const den = madd(f32x4.sqrt(vi), ibv, epv);
  v128.store(p, f32x4.sub(f32x4.mul(v128.load(p), decv), f32x4.div(f32x4.mul(stv, mi), den)));
}

export function adamw(p: usize, g: usize, m: usize, v: usize, n: i32, lr: f64, beta1: f64, beta2: f64, eps: f64, wd: f64, bc1: f64, bc2: f64, gradScale: f64): void {
  const decay = <f32>(1 - lr * wd);
  const stepSize = <f32>(lr / bc1);
  const invSqrtBc2 = <f32>(1 / Math.sqrt(bc2));
  const b1 = <f32>beta1;
  const b2 = <f32>beta2;
  const ob1 = <f32>(1 - beta1);
  const ob2 = <f32>(1 - beta2);
  const epsf = <f32>eps;
  const gs = <f32>gradScale;
  const gsv = splat(gs);
  const b1v = splat(b1), b2v = splat(b2), ob1v = splat(ob1), ob2v = splat(ob2);
  const decv = splat(decay), stv = splat(stepSize), ibv = splat(invSqrtBc2), epv = splat(epsf);
  let i = 0;
  // two vectors an iteration: their sqrt and divide chains overlap (see geluForward; 1.3x, and four
  // were no faster: from there the update is bound by memory, 28 bytes an element)
  for (; i + 8 <= n; i += 8) {
    const o = <usize>i << 2;
    adamwVec(p + o, g + o, m + o, v + o, gsv, b1v, b2v, ob1v, ob2v, decv, stv, ibv, epv);
    adamwVec(p + o + 16, g + o + 16, m + o + 16, v + o + 16, gsv, b1v, b2v, ob1v, ob2v, decv, stv, ibv, epv);
  }
  if (i + 4 <= n) {
    const o = <usize>i << 2;
    adamwVec(p + o, g + o, m + o, v + o, gsv, b1v, b2v, ob1v, ob2v, decv, stv, ibv, epv);
    i += 4;
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const gi = load<f32>(g + o) * gs;
    const mi = b1 * load<f32>(m + o) + ob1 * gi;
    const vi = b2 * load<f32>(v + o) + ob2 * gi * gi;
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    store<f32>(p + o, load<f32>(p + o) * decay - (stepSize * mi) / (Mathf.sqrt(vi) * invSqrtBc2 + epsf));
  }
}


/** i32 words of one tensor's record in adamwMany's table: p, g, m, v (byte offsets), n, decays (0 or 1) */
const ADAMW_RECORD: i32 = 6;

/**
 * AdamW over several tensors in one call (the whole model's update: one call, one split over the
 * threads, instead of a call and a hand-off per tensor). table: count records of ADAMW_RECORD i32
 * (see above); a tensor that decays gets weight decay wd, the others none. Updates elements
 * [e0, e1) of the tensors' concatenation, each tensor's part exactly as adamw on that part: a cut
 * inside a tensor must fall at a multiple of 4 of its elements, where a whole-tensor call's vector
 * loop also passes (its scalar tail, which rounds differently, then covers the same elements).
 */
export function adamwMany(table: usize, count: i32, e0: i32, e1: i32, lr: f64, beta1: f64, beta2: f64, eps: f64, wd: f64, bc1: f64, bc2: f64, gradScale: f64): void {
  let start = 0;
  for (let t = 0; t < count && start < e1; t++) {
    const r = table + (<usize>(t * ADAMW_RECORD) << 2);
    const n = load<i32>(r, 16);
    const a = max(e0 - start, 0);
    const b = min(e1 - start, n);
    if (a < b) {
      const o = <usize>a << 2;
      const decay = load<i32>(r, 20) != 0 ? wd : 0;
      adamw(load<u32>(r) + o, load<u32>(r, 4) + o, load<u32>(r, 8) + o, load<u32>(r, 12) + o, b - a, lr, beta1, beta2, eps, decay, bc1, bc2, gradScale);
    }
    start += n;
  }
}
