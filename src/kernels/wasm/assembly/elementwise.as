// Elementwise kernels and reductions over flat float arrays (n floats, or rows x cols row-major):
//   addBias (rows,cols) += bias (cols); sumRows out (cols) += Σ_r x (rows,cols); add, mul, scale,
//   accumulate (dst += src), zero, copy; sumSquares Σ x² in f64 (the gradient norm).

export function addBias(out: usize, bias: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const o = out + ((<usize>r * <usize>cols) << 2);
    let c = 0;
    for (; c + 4 <= cols; c += 4) {
      const p = o + (<usize>c << 2);
      v128.store(p, f32x4.add(v128.load(p), v128.load(bias + (<usize>c << 2))));
    }
    for (; c < cols; c++) {
      const p = o + (<usize>c << 2);
      store<f32>(p, load<f32>(p) + load<f32>(bias + (<usize>c << 2)));
    }
  }
}

/**
 * out (cols) += column sums of x (rows, cols), summed in f64 in scratch (cols f64). x is walked row
 * by row, in memory order: walking it down a strip of columns strides by a whole row per load, which
 * defeats the prefetcher once a row is longer than a page (~4x slower on the bigger recipe's dy).
 */
export function sumRows(out: usize, x: usize, rows: i32, cols: i32, scratch: usize): void {
  memory.fill(scratch, 0, <usize>cols << 3);
  const c4 = cols & ~3;
  const stride = <usize>cols << 2;
  let p = x;
  let r = 0;
  // four rows per pass over the f64 sums: each sum is loaded and stored once per four rows (not once
  // per row), and still gets the rows added one at a time in order, so the result is the same
  for (; r + 4 <= rows; r += 4) {
    let a = scratch;
    let q = p;
    const e = p + (<usize>c4 << 2);
    while (q < e) {
      const v0 = v128.load(q);
      const v1 = v128.load(q + stride);
      const v2 = v128.load(q + 2 * stride);
      const v3 = v128.load(q + 3 * stride);
      let lo = v128.load(a);
      let hi = v128.load(a, 16);
      lo = f64x2.add(lo, f64x2.promote_low_f32x4(v0));
      hi = f64x2.add(hi, f64x2.promote_low_f32x4(v128.shuffle<f32>(v0, v0, 2, 3, 2, 3)));
      lo = f64x2.add(lo, f64x2.promote_low_f32x4(v1));
      hi = f64x2.add(hi, f64x2.promote_low_f32x4(v128.shuffle<f32>(v1, v1, 2, 3, 2, 3)));
      lo = f64x2.add(lo, f64x2.promote_low_f32x4(v2));
      hi = f64x2.add(hi, f64x2.promote_low_f32x4(v128.shuffle<f32>(v2, v2, 2, 3, 2, 3)));
      lo = f64x2.add(lo, f64x2.promote_low_f32x4(v3));
      hi = f64x2.add(hi, f64x2.promote_low_f32x4(v128.shuffle<f32>(v3, v3, 2, 3, 2, 3)));
      v128.store(a, lo);
      v128.store(a, hi, 16);
      q += 16;
      a += 32;
    }
    for (let c = c4; c < cols; c++) {
      const o = <usize>c << 2;
      let s = load<f64>(a);
      s += <f64>load<f32>(p + o);
      s += <f64>load<f32>(p + stride + o);
      s += <f64>load<f32>(p + 2 * stride + o);
      s += <f64>load<f32>(p + 3 * stride + o);
      store<f64>(a, s);
      a += 8;
    }
    p += 4 * stride;
  }
  for (; r < rows; r++) {
    let a = scratch;
    const e = p + (<usize>c4 << 2);
    while (p < e) {
      const v = v128.load(p);
      v128.store(a, f64x2.add(v128.load(a), f64x2.promote_low_f32x4(v)));
      v128.store(a, f64x2.add(v128.load(a, 16), f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3))), 16);
      p += 16;
      a += 32;
    }
    for (let c = c4; c < cols; c++) {
      store<f64>(a, load<f64>(a) + <f64>load<f32>(p));
      p += 4;
      a += 8;
    }
  }
  for (let c = 0; c < cols; c++) {
    const o = out + (<usize>c << 2);
    store<f32>(o, <f32>(<f64>load<f32>(o) + load<f64>(scratch + (<usize>c << 3))));
  }
}

export function add(out: usize, a: usize, b: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.add(v128.load(a + o), v128.load(b + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, load<f32>(a + o) + load<f32>(b + o));
  }
}

// Zeroing and copying go through wasm's bulk memory ops: a typed array's fill/set on the shared
// WebAssembly.Memory takes V8's slow path for shared buffers (~4x slower than on a plain buffer).
export function zero(x: usize, n: i32): void {
  memory.fill(x, 0, <usize>n << 2);
}

export function copy(dst: usize, src: usize, n: i32): void {
  memory.copy(dst, src, <usize>n << 2);
}

export function accumulate(dst: usize, src: usize, n: i32): void {
  add(dst, dst, src, n);
}

export function scale(x: usize, n: i32, s: f32): void {
  const sv = splat(s);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = x + (<usize>i << 2);
    v128.store(o, f32x4.mul(v128.load(o), sv));
  }
  for (; i < n; i++) {
    const o = x + (<usize>i << 2);
    store<f32>(o, load<f32>(o) * s);
  }
}

export function sumSquares(x: usize, n: i32): f64 {
  let s0 = f64x2.splat(0), s1 = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const v = v128.load(x + (<usize>i << 2));
    const lo = f64x2.promote_low_f32x4(v);
    const hi = f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3));
    s0 = f64x2.add(s0, f64x2.mul(lo, lo));
    s1 = f64x2.add(s1, f64x2.mul(hi, hi));
  }
  let s = hsum64(f64x2.add(s0, s1));
  for (; i < n; i++) {
    const v = <f64>load<f32>(x + (<usize>i << 2));
    s += v * v;
  }
  return s;
}

export function mul(out: usize, x: usize, m: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.mul(v128.load(x + o), v128.load(m + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, load<f32>(x + o) * load<f32>(m + o));
  }
}

