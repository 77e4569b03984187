// Activations, elementwise over n floats: GELU (tanh form, as GPT-2) and ReLU, forward and backward;
// geluForwardGrad also stores gelu'(x) for a backward that no longer has x.
// gelu(x) = 0.5·x·(1 + tanh(u)), u = √(2/π)(x + 0.044715x³), written as x·σ(2u) so that no 1 + tanh
// cancellation happens for negative x.

const GELU_K: f32 = 0.7978845608028654;
const GELU_A: f32 = 0.044715;

/** e = exp(-2u) for v and v2 = v²: then gelu(v) = v / (1 + e) and 0.5(1 + tanh u) = 1 / (1 + e) */
@inline function geluExp(v: v128, v2: v128): v128 {
  const u = f32x4.mul(f32x4.mul(splat(GELU_K), v), madd(splat(GELU_A), v2, splat(1)));
  return vexpIn(f32x4.pmin(f32x4.pmax(f32x4.mul(u, splat(-2)), splat(-80)), splat(80)));
}

@inline function geluOf(v: v128, e: v128): v128 {
  return f32x4.div(v, f32x4.add(splat(1), e));
}

@inline function geluGradOf(v: v128, v2: v128, e: v128): v128 {
  const sig = f32x4.div(splat(1), f32x4.add(splat(1), e)); // 0.5(1+t)
  const omt2 = f32x4.mul(f32x4.mul(splat(4), f32x4.mul(sig, sig)), e); // 1 - t²
  const dt = f32x4.mul(f32x4.mul(omt2, splat(GELU_K)), madd(splat(3 * GELU_A), v2, splat(1)));
  return madd(f32x4.mul(splat(0.5), v), dt, sig);
}

@inline function geluVec(v: v128): v128 {
  return geluOf(v, geluExp(v, f32x4.mul(v, v)));
}

@inline function geluGradVec(v: v128): v128 {
  const v2 = f32x4.mul(v, v);
  return geluGradOf(v, v2, geluExp(v, v2));
}

// The exp-based loops below take four vectors per iteration: with one, V8's code for the ~30-operation
// chain ran ~1.5x slower (gelu forward, bench/kernel-ab.ts: 2.4 ns/element with one vector, 2.0 with
// two, 1.6 with four): the CPU overlaps the chains of neighbouring iterations poorly, and it
// overlaps independent chains within one iteration well.

export function geluForward(out: usize, x: usize, n: i32): void {
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const o = <usize>i << 2;
    const y0 = geluVec(v128.load(x + o));
    const y1 = geluVec(v128.load(x + o, 16));
    const y2 = geluVec(v128.load(x + o, 32));
    const y3 = geluVec(v128.load(x + o, 48));
    v128.store(out + o, y0);
    v128.store(out + o, y1, 16);
    v128.store(out + o, y2, 32);
    v128.store(out + o, y3, 48);
  }
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, geluVec(v128.load(x + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, f32x4.extract_lane(geluVec(splat(load<f32>(x + o))), 0));
  }
}

/** gelu and gelu' of v, from one exp */
@inline function geluBoth(v: v128, out: usize, dgelu: usize): void {
  const v2 = f32x4.mul(v, v);
  const e = geluExp(v, v2);
  v128.store(out, geluOf(v, e));
  v128.store(dgelu, geluGradOf(v, v2, e));
}

/**
 * out (n) = gelu(x), dgelu (n) = gelu'(x), both from one exp; dgelu may be x itself (written in place
 * after it is read). Each is computed exactly as geluForward and geluBackward compute it, so
 * dgelu·dout equals what geluBackward adds into a zeroed dx (tests/kernel-cases.ts checks it).
 */
export function geluForwardGrad(out: usize, dgelu: usize, x: usize, n: i32): void {
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const o = <usize>i << 2;
    // all four loaded before any store: dgelu may be x
    const v0 = v128.load(x + o);
    const v1 = v128.load(x + o, 16);
    const v2 = v128.load(x + o, 32);
    const v3 = v128.load(x + o, 48);
    geluBoth(v0, out + o, dgelu + o);
    geluBoth(v1, out + o + 16, dgelu + o + 16);
    geluBoth(v2, out + o + 32, dgelu + o + 32);
    geluBoth(v3, out + o + 48, dgelu + o + 48);
  }
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    geluBoth(v128.load(x + o), out + o, dgelu + o);
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const v = splat(load<f32>(x + o));
    store<f32>(out + o, f32x4.extract_lane(geluVec(v), 0));
    store<f32>(dgelu + o, f32x4.extract_lane(geluGradVec(v), 0));
  }
}

export function geluBackward(dx: usize, x: usize, dout: usize, n: i32): void {
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const o = <usize>i << 2;
    const g0 = geluGradVec(v128.load(x + o));
    const g1 = geluGradVec(v128.load(x + o, 16));
    const g2 = geluGradVec(v128.load(x + o, 32));
    const g3 = geluGradVec(v128.load(x + o, 48));
    v128.store(dx + o, madd(g0, v128.load(dout + o), v128.load(dx + o)));
    v128.store(dx + o, madd(g1, v128.load(dout + o, 16), v128.load(dx + o, 16)), 16);
    v128.store(dx + o, madd(g2, v128.load(dout + o, 32), v128.load(dx + o, 32)), 32);
    v128.store(dx + o, madd(g3, v128.load(dout + o, 48), v128.load(dx + o, 48)), 48);
  }
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(dx + o, madd(geluGradVec(v128.load(x + o)), v128.load(dout + o), v128.load(dx + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const g = f32x4.extract_lane(geluGradVec(splat(load<f32>(x + o))), 0);
    store<f32>(dx + o, load<f32>(dx + o) + g * load<f32>(dout + o));
  }
}

export function reluForward(out: usize, x: usize, n: i32): void {
  const z = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    v128.store(out + o, v128.and(v, f32x4.gt(v, z)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const v = load<f32>(x + o);
    store<f32>(out + o, v > 0 ? v : 0);
  }
}

export function reluBackward(dx: usize, x: usize, dout: usize, n: i32): void {
  const z = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const mask = f32x4.gt(v128.load(x + o), z);
    v128.store(dx + o, f32x4.add(v128.load(dx + o), v128.and(v128.load(dout + o), mask)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    if (load<f32>(x + o) > 0) store<f32>(dx + o, load<f32>(dx + o) + load<f32>(dout + o));
  }
}

