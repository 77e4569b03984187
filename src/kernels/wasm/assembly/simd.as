// The wasm kernels, SIMD twins of src/kernels/ref/*.ts, are the files of this folder concatenated in
// the order of scripts/wasm-sources.mjs into one AssemblyScript program (built by
// scripts/build-wasm.mjs; the ".as" extension keeps the project's tsc away). Rules for every file:
// - The program imports the tensor heap's shared WebAssembly.Memory; all pointers are byte offsets.
// - No allocation and no shadow stack (runtime "stub", only scalars and v128 locals), so several
//   threads can run the same module on the same memory at once. Scratch space comes from the caller.
// - Exports take scalars only (i32, f32, f64, usize); their TypeScript types are generated from the
//   signatures (src/kernels/wasm/build/exports.ts).
//
// SIMD helpers shared by every kernel file: fused multiply-add, splats, horizontal sums and maxima,
// widening f32 -> f64 sums, a vector e^x, and stores of a partial vector (the ragged right edge of a
// tile or row). v128 holds four f32 lanes (or two f64 lanes where named "wide").
//
// ASC_FEATURE_RELAXED_SIMD selects f32x4.relaxed_madd (FMA) for the relaxed build, mul+add otherwise:
// madd is the one place the two builds differ.

@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

@inline function splat(x: f32): v128 {
  return f32x4.splat(x);
}

@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

@inline function hmax(v: v128): f32 {
  return max(max(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), max(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
}

/** f64x2 sum of the four f32 lanes of v added into acc */
@inline function addWide(acc: v128, v: v128): v128 {
  acc = f64x2.add(acc, f64x2.promote_low_f32x4(v));
  return f64x2.add(acc, f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3)));
}

/** the f64x2 sum lo + hi of the four f32 lanes of v (lanes 0+2, 1+3) */
@inline function wide(v: v128): v128 {
  return f64x2.add(f64x2.promote_low_f32x4(v), f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3)));
}

@inline function hsum64(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}

/** e^x on four lanes for x already in [-87.33654, 88] (see vexp) */
@inline function vexpIn(x: v128): v128 {
  // round to nearest with the 1.5·2^23 trick: j's low mantissa bits hold the integer n (|n| <= 127),
  // so no f32x4.nearest / i32x4.trunc_sat (a long sequence in V8) is needed
  const j = f32x4.add(f32x4.mul(x, splat(1.44269504088896341)), splat(12582912.0));
  const n = f32x4.sub(j, splat(12582912.0));
  let r = f32x4.sub(x, f32x4.mul(n, splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, splat(-2.12194440e-4)));
  let p = splat(1.9875691500e-4);
  p = madd(p, r, splat(1.3981999507e-3));
  p = madd(p, r, splat(8.3334519073e-3));
  p = madd(p, r, splat(4.1665795894e-2));
  p = madd(p, r, splat(1.6666665459e-1));
  p = madd(p, r, splat(5.0000001201e-1));
  const y = madd(p, f32x4.mul(r, r), f32x4.add(r, splat(1.0)));
  const e = i32x4.shl(i32x4.add(j, i32x4.splat(127 - 0x4b400000)), 23);
  return f32x4.mul(y, e);
}

/** e^x on four lanes, ~1-2 ulp (Cephes expf: Cody-Waite reduction + degree-6 polynomial). */
@inline function vexp(xIn: v128): v128 {
  // pmin/pmax are single minps/maxps (min/max with NaN and ±0 rules cost ~7 instructions each in V8);
  // x as the first operand keeps a NaN input NaN.
  const res = vexpIn(f32x4.pmin(f32x4.pmax(xIn, splat(-87.33654)), splat(88.0)));
  // below the smallest normal result: 0 (as exp underflows)
  return v128.andnot(res, f32x4.lt(xIn, splat(-87.33654)));
}

@inline function sexp(x: f32): f32 {
  return f32x4.extract_lane(vexp(splat(x)), 0);
}

/** store the first n (0..4) lanes of v at p (p += v when add) */
@inline function storePartial(p: usize, v: v128, n: i32, add: bool): void {
  if (n <= 0) return;
  let x = f32x4.extract_lane(v, 0);
  store<f32>(p, add ? load<f32>(p) + x : x);
  if (n <= 1) return;
  x = f32x4.extract_lane(v, 1);
  store<f32>(p, add ? load<f32>(p, 4) + x : x, 4);
  if (n <= 2) return;
  x = f32x4.extract_lane(v, 2);
  store<f32>(p, add ? load<f32>(p, 8) + x : x, 8);
  if (n <= 3) return;
  x = f32x4.extract_lane(v, 3);
  store<f32>(p, add ? load<f32>(p, 12) + x : x, 12);
}

@inline function storeVec(p: usize, v: v128, add: bool): void {
  v128.store(p, add ? f32x4.add(v128.load(p), v) : v);
}

@inline function store8(p: usize, v0: v128, v1: v128, nr: i32, add: bool): void {
  if (nr == 8) {
    storeVec(p, v0, add);
    storeVec(p + 16, v1, add);
  } else if (nr >= 4) {
    storeVec(p, v0, add);
    storePartial(p + 16, v1, nr - 4, add);
  } else {
    storePartial(p, v0, nr, add);
  }
}

