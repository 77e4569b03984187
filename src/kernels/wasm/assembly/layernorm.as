// Layer norm over the last dimension, row statistics in f64:
//   forward:  x (N,C) -> out (N,C) = (x - mean)·rstd·w + b, w, b (C); keeps mean, rstd (N) for backward
//   backward: dout (N,C), x, w, mean, rstd -> dx (N,C), dw, db (C), all +=

/** Σ (v - m)² over the four f32 lanes of v, in f64 (as an f64x2 of two partial sums) */
@inline function squaredDev(v: v128, md: v128): v128 {
  const lo = f64x2.sub(f64x2.promote_low_f32x4(v), md);
  const hi = f64x2.sub(f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3)), md);
  return f64x2.add(f64x2.mul(lo, lo), f64x2.mul(hi, hi));
}

export function layernormForward(out: usize, mean: usize, rstd: usize, x: usize, w: usize, b: usize, N: i32, C: i32, eps: f64): void {
  for (let n = 0; n < N; n++) {
    const xr = x + ((<usize>n * <usize>C) << 2);
    const or = out + ((<usize>n * <usize>C) << 2);
    // two f64 sums, over alternate vectors: one sum is a chain of dependent adds (~4 cycles each)
    let acc = f64x2.splat(0);
    let acc1 = f64x2.splat(0);
    let c = 0;
    for (; c + 8 <= C; c += 8) {
      const o = <usize>c << 2;
      acc = f64x2.add(acc, wide(v128.load(xr + o)));
      acc1 = f64x2.add(acc1, wide(v128.load(xr + o, 16)));
    }
    for (; c + 4 <= C; c += 4) acc = f64x2.add(acc, wide(v128.load(xr + (<usize>c << 2))));
    let sum = hsum64(f64x2.add(acc, acc1));
    for (; c < C; c++) sum += <f64>load<f32>(xr + (<usize>c << 2));
    const m = sum / <f64>C;
    const mv = f32x4.splat(<f32>m);
    const md = f64x2.splat(m);
    acc = f64x2.splat(0);
    acc1 = f64x2.splat(0);
    c = 0;
    for (; c + 8 <= C; c += 8) {
      const o = <usize>c << 2;
      acc = f64x2.add(acc, squaredDev(v128.load(xr + o), md));
      acc1 = f64x2.add(acc1, squaredDev(v128.load(xr + o, 16), md));
    }
    for (; c + 4 <= C; c += 4) acc = f64x2.add(acc, squaredDev(v128.load(xr + (<usize>c << 2)), md));
    let vs = hsum64(f64x2.add(acc, acc1));
    for (; c < C; c++) {
      const d = <f64>load<f32>(xr + (<usize>c << 2)) - m;
      vs += d * d;
    }
    const s = 1 / Math.sqrt(vs / <f64>C + eps);
    const sv = f32x4.splat(<f32>s);
    c = 0;
    for (; c + 4 <= C; c += 4) {
      const o = <usize>c << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(xr + o), mv), sv);
      v128.store(or + o, madd(xh, v128.load(w + o), v128.load(b + o)));
    }
    for (; c < C; c++) {
      const o = <usize>c << 2;
      store<f32>(or + o, (load<f32>(xr + o) - <f32>m) * <f32>s * load<f32>(w + o) + load<f32>(b + o));
    }
    store<f32>(mean + (<usize>n << 2), <f32>m);
    store<f32>(rstd + (<usize>n << 2), <f32>s);
  }
}

export function layernormBackward(dx: usize, dw: usize, db: usize, dout: usize, x: usize, w: usize, mean: usize, rstd: usize, N: i32, C: i32): void {
  for (let n = 0; n < N; n++) {
    const ro = (<usize>n * <usize>C) << 2;
    const xr = x + ro;
    const dr = dout + ro;
    const dxr = dx + ro;
    const m = load<f32>(mean + (<usize>n << 2));
    const s = load<f32>(rstd + (<usize>n << 2));
    const mv = splat(m);
    const sv = splat(s);
    // two f64 sums of each, over alternate vectors (see layernormForward)
    let ga = f64x2.splat(0), gxa = f64x2.splat(0);
    let ga1 = f64x2.splat(0), gxa1 = f64x2.splat(0);
    let c = 0;
    for (; c + 8 <= C; c += 8) {
      const o = <usize>c << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(xr + o), mv), sv);
      const g = f32x4.mul(v128.load(dr + o), v128.load(w + o));
      ga = f64x2.add(ga, wide(g));
      gxa = f64x2.add(gxa, wide(f32x4.mul(g, xh)));
      const xh1 = f32x4.mul(f32x4.sub(v128.load(xr + o, 16), mv), sv);
      const g1 = f32x4.mul(v128.load(dr + o, 16), v128.load(w + o, 16));
      ga1 = f64x2.add(ga1, wide(g1));
      gxa1 = f64x2.add(gxa1, wide(f32x4.mul(g1, xh1)));
    }
    for (; c + 4 <= C; c += 4) {
      const o = <usize>c << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(xr + o), mv), sv);
      const g = f32x4.mul(v128.load(dr + o), v128.load(w + o));
      ga = f64x2.add(ga, wide(g));
      gxa = f64x2.add(gxa, wide(f32x4.mul(g, xh)));
    }
    let gs = hsum64(f64x2.add(ga, ga1));
    let gxs = hsum64(f64x2.add(gxa, gxa1));
    for (; c < C; c++) {
      const o = <usize>c << 2;
      const xh = (load<f32>(xr + o) - m) * s;
      const g = load<f32>(dr + o) * load<f32>(w + o);
      gs += <f64>g;
      gxs += <f64>(g * xh);
    }
    const gMean = <f32>(gs / <f64>C);
    const gxMean = <f32>(gxs / <f64>C);
    const gmv = splat(gMean);
    const gxv = splat(gxMean);
    c = 0;
    for (; c + 4 <= C; c += 4) {
      const o = <usize>c << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(xr + o), mv), sv);
      const d = v128.load(dr + o);
      const g = f32x4.mul(d, v128.load(w + o));
      const t = f32x4.sub(f32x4.sub(g, gmv), f32x4.mul(xh, gxv));
      v128.store(dxr + o, madd(sv, t, v128.load(dxr + o)));
      v128.store(dw + o, madd(d, xh, v128.load(dw + o)));
      v128.store(db + o, f32x4.add(v128.load(db + o), d));
    }
    for (; c < C; c++) {
      const o = <usize>c << 2;
      const xh = (load<f32>(xr + o) - m) * s;
      const d = load<f32>(dr + o);
      const g = d * load<f32>(w + o);
      store<f32>(dxr + o, load<f32>(dxr + o) + s * (g - gMean - xh * gxMean));
      store<f32>(dw + o, load<f32>(dw + o) + d * xh);
      store<f32>(db + o, load<f32>(db + o) + d);
    }
  }
}

