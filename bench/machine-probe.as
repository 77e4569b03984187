// Two probes of what a CPU core gives this process right now (compiled by bench/machine.ts with asc).
// Not kernels: they compute nothing useful, each is built to be limited by one thing only.

/**
 * A dependent integer chain (x = x·a + c, n times): each step waits for the previous one, so its
 * speed is the core's clock (imul 3 cycles + add 1 on x86) and the share of time the process runs.
 * Another hyperthread on the same core barely slows it (it uses one port every 4 cycles).
 */
export function latencyChain(n: i32, seed: i32): i32 {
  let x = seed;
  for (let i = 0; i < n; i++) x = x * 1664525 + 1013904223;
  return x;
}

/**
 * Ten independent f32x4 FMA chains, no memory access: the core's SIMD FMA throughput (2 per cycle on
 * the x86 cores here, 10 chains cover their 4-cycle latency). A busy hyperthread sibling shares the
 * FMA ports and the front end with it, so this drops while latencyChain does not.
 */
export function fmaChains(n: i32, s: f32): f32 {
  let c0 = f32x4.splat(s), c1 = f32x4.splat(s + 1), c2 = f32x4.splat(s + 2), c3 = f32x4.splat(s + 3);
  let c4 = f32x4.splat(s + 4), c5 = f32x4.splat(s + 5), c6 = f32x4.splat(s + 6), c7 = f32x4.splat(s + 7);
  let c8 = f32x4.splat(s + 8), c9 = f32x4.splat(s + 9);
  const a = f32x4.splat(0.999);
  const b = f32x4.splat(0.0001);
  for (let i = 0; i < n; i++) {
    c0 = f32x4.relaxed_madd(c0, a, b);
    c1 = f32x4.relaxed_madd(c1, a, b);
    c2 = f32x4.relaxed_madd(c2, a, b);
    c3 = f32x4.relaxed_madd(c3, a, b);
    c4 = f32x4.relaxed_madd(c4, a, b);
    c5 = f32x4.relaxed_madd(c5, a, b);
    c6 = f32x4.relaxed_madd(c6, a, b);
    c7 = f32x4.relaxed_madd(c7, a, b);
    c8 = f32x4.relaxed_madd(c8, a, b);
    c9 = f32x4.relaxed_madd(c9, a, b);
  }
  const t = f32x4.add(f32x4.add(f32x4.add(c0, c1), f32x4.add(c2, c3)), f32x4.add(f32x4.add(c4, c5), f32x4.add(f32x4.add(c6, c7), f32x4.add(c8, c9))));
  return f32x4.extract_lane(t, 0);
}
