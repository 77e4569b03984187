// Plain temperature sampling of one row of logits where they are (the logits are not copied):
//   sampleTemperature: logits (n), invT = 1/T, u in [0, 1), sums (a scratch of ceil(n / 256) f64)
//     -> the drawn id
// softmax(x·invT) as softmax's row has it (the max, exp in f32), the sum in f64 block by block
// (256 logits a block, each block's sum kept in sums), then the draw: the block where the running
// sum of the blocks passes u·Σ, and in it the id where the running sum of its exps does. Two passes
// over the logits and 256 exps, where a walk from the first id (what JS did on softmax's output)
// takes half a pass of dependent f64 subtractions on average: the same distribution to fp32 rounding.

const SAMPLE_BLOCK: i32 = 256;

export function sampleTemperature(x: usize, n: i32, invT: f32, u: f64, sums: usize): i32 {
  const tv = splat(invT);
  let mv = splat(-Infinity);
  let i = 0;
  for (; i + 4 <= n; i += 4) mv = f32x4.max(mv, f32x4.mul(v128.load(x + (<usize>i << 2)), tv));
  let m = hmax(mv);
  for (; i < n; i++) m = max(m, load<f32>(x + (<usize>i << 2)) * invT);
  mv = splat(m);
  // each block's Σ exp(x·invT - m), in f64
  let total: f64 = 0;
  let b = 0;
  for (let b0 = 0; b0 < n; b0 += SAMPLE_BLOCK, b++) {
    const b1 = min(b0 + SAMPLE_BLOCK, n);
    let acc = f64x2.splat(0);
    let j = b0;
    for (; j + 16 <= b1; j += 16) {
      const o = <usize>j << 2;
      const e0 = vexp(f32x4.sub(f32x4.mul(v128.load(x + o), tv), mv));
      const e1 = vexp(f32x4.sub(f32x4.mul(v128.load(x + o, 16), tv), mv));
      const e2 = vexp(f32x4.sub(f32x4.mul(v128.load(x + o, 32), tv), mv));
      const e3 = vexp(f32x4.sub(f32x4.mul(v128.load(x + o, 48), tv), mv));
      acc = addWide(addWide(addWide(addWide(acc, e0), e1), e2), e3);
    }
    for (; j + 4 <= b1; j += 4) acc = addWide(acc, vexp(f32x4.sub(f32x4.mul(v128.load(x + (<usize>j << 2)), tv), mv)));
    let s = hsum64(acc);
    for (; j < b1; j++) s += <f64>sexp(load<f32>(x + (<usize>j << 2)) * invT - m);
    store<f64>(sums + (<usize>b << 3), s);
    total += s;
  }
  // the block where the running sum passes the target (the last block with any mass if rounding
  // leaves a sliver), then the id in it
  const target = u * total;
  let c: f64 = 0;
  let last = -1;
  for (let k = 0; k < b; k++) {
    const s = load<f64>(sums + (<usize>k << 3));
    if (s > 0) last = k;
    if (c + s > target) {
      last = k;
      break;
    }
    c += s;
  }
  if (last < 0) return 0;
  const b0 = last * SAMPLE_BLOCK;
  const b1 = min(b0 + SAMPLE_BLOCK, n);
  let at = -1;
  for (let j = b0; j < b1; j++) {
    const e = <f64>sexp(load<f32>(x + (<usize>j << 2)) * invT - m);
    if (e > 0) at = j;
    c += e;
    if (c > target && e > 0) return j;
  }
  return at < 0 ? b0 : at;
}
