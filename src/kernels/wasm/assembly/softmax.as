// Softmax and cross-entropy over rows (exp in f32, sums in f64):
//   softmax:            x (rows,cols) -> out (rows,cols)
//   crossEntropyForward logits (N,V), targets (N, i32; < 0 = ignored) -> losses (N), lse (N)
//   crossEntropyBackward dlogits (N,V) += (softmax(logits) - onehot(target))·sc, from lse

/** out[i] = exp(x[i] - m) for i < n; returns Σ in f64 */
function expShift(out: usize, x: usize, n: i32, m: f32): f64 {
  const mv = splat(m);
  let acc = f64x2.splat(0);
  let i = 0;
  // four exps an iteration (see geluForward), added into acc one after another as with one
  for (; i + 16 <= n; i += 16) {
    const o = <usize>i << 2;
    const e0 = vexp(f32x4.sub(v128.load(x + o), mv));
    const e1 = vexp(f32x4.sub(v128.load(x + o, 16), mv));
    const e2 = vexp(f32x4.sub(v128.load(x + o, 32), mv));
    const e3 = vexp(f32x4.sub(v128.load(x + o, 48), mv));
    v128.store(out + o, e0);
    v128.store(out + o, e1, 16);
    v128.store(out + o, e2, 32);
    v128.store(out + o, e3, 48);
    acc = addWide(addWide(addWide(addWide(acc, e0), e1), e2), e3);
  }
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const e = vexp(f32x4.sub(v128.load(x + o), mv));
    v128.store(out + o, e);
    acc = addWide(acc, e);
  }
  let s = hsum64(acc);
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const e = sexp(load<f32>(x + o) - m);
    store<f32>(out + o, e);
    s += <f64>e;
  }
  return s;
}

function rowMax(x: usize, n: i32): f32 {
  let mv = splat(-Infinity);
  let i = 0;
  for (; i + 4 <= n; i += 4) mv = f32x4.max(mv, v128.load(x + (<usize>i << 2)));
  let m = hmax(mv);
  for (; i < n; i++) m = max(m, load<f32>(x + (<usize>i << 2)));
  return m;
}

/** Σ exp(x[i] - m) in f64, nothing stored */
function sumExpShift(x: usize, n: i32, m: f32): f64 {
  const mv = splat(m);
  let acc = f64x2.splat(0);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const o = <usize>i << 2;
    const e0 = vexp(f32x4.sub(v128.load(x + o), mv));
    const e1 = vexp(f32x4.sub(v128.load(x + o, 16), mv));
    const e2 = vexp(f32x4.sub(v128.load(x + o, 32), mv));
    const e3 = vexp(f32x4.sub(v128.load(x + o, 48), mv));
    acc = addWide(addWide(addWide(addWide(acc, e0), e1), e2), e3);
  }
  for (; i + 4 <= n; i += 4) acc = addWide(acc, vexp(f32x4.sub(v128.load(x + (<usize>i << 2)), mv)));
  let s = hsum64(acc);
  for (; i < n; i++) s += <f64>sexp(load<f32>(x + (<usize>i << 2)) - m);
  return s;
}

export function softmax(out: usize, x: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const ro = (<usize>r * <usize>cols) << 2;
    const m = rowMax(x + ro, cols);
    const s = expShift(out + ro, x + ro, cols, m);
    scale(out + ro, cols, <f32>(1 / s));
  }
}

export function crossEntropyForward(losses: usize, lse: usize, logits: usize, targets: usize, N: i32, V: i32): void {
  for (let n = 0; n < N; n++) {
    const row = logits + ((<usize>n * <usize>V) << 2);
    const m = rowMax(row, V);
    const s = sumExpShift(row, V, m);
    const l = <f64>m + Math.log(s);
    store<f32>(lse + (<usize>n << 2), <f32>l);
    const t = load<i32>(targets + (<usize>n << 2));
    store<f32>(losses + (<usize>n << 2), t < 0 ? 0 : <f32>(l - <f64>load<f32>(row + (<usize>t << 2))));
  }
}

export function crossEntropyBackward(dlogits: usize, logits: usize, lse: usize, targets: usize, N: i32, V: i32, sc: f32): void {
  const sv = splat(sc);
  for (let n = 0; n < N; n++) {
    const t = load<i32>(targets + (<usize>n << 2));
    if (t < 0) continue;
    const ro = (<usize>n * <usize>V) << 2;
    const row = logits + ro;
    const drow = dlogits + ro;
    const l = load<f32>(lse + (<usize>n << 2));
    const lv = splat(l);
    let i = 0;
    for (; i + 16 <= V; i += 16) {
      const o = <usize>i << 2;
      const p0 = vexp(f32x4.sub(v128.load(row + o), lv));
      const p1 = vexp(f32x4.sub(v128.load(row + o, 16), lv));
      const p2 = vexp(f32x4.sub(v128.load(row + o, 32), lv));
      const p3 = vexp(f32x4.sub(v128.load(row + o, 48), lv));
      v128.store(drow + o, madd(sv, p0, v128.load(drow + o)));
      v128.store(drow + o, madd(sv, p1, v128.load(drow + o, 16)), 16);
      v128.store(drow + o, madd(sv, p2, v128.load(drow + o, 32)), 32);
      v128.store(drow + o, madd(sv, p3, v128.load(drow + o, 48)), 48);
    }
    for (; i + 4 <= V; i += 4) {
      const o = <usize>i << 2;
      const p = vexp(f32x4.sub(v128.load(row + o), lv));
      v128.store(drow + o, madd(sv, p, v128.load(drow + o)));
    }
    for (; i < V; i++) {
      const o = <usize>i << 2;
      store<f32>(drow + o, load<f32>(drow + o) + sc * sexp(load<f32>(row + o) - l));
    }
    const o = <usize>t << 2;
    store<f32>(drow + o, load<f32>(drow + o) - sc);
  }
}

