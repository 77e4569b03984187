// Elementwise comparison of results against a reference, with no Node API (the browser page uses it too).

/** Largest |a - b| and where; lengths must agree. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; index: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let diff = 0;
  let index = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] as number) - (b[i] as number));
    if (!(d <= diff)) {
      diff = d;
      index = i;
    }
  }
  return { diff, index };
}

/** Element i passes when |a - e| <= atol + rtol·|e|; returns the worst excess and a summary. */
export function closeReport(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number) {
  let worst = 0;
  let bad = -1;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i] as number;
    const d = Math.abs((actual[i] as number) - e);
    const excess = d - (atol + rtol * Math.abs(e));
    if (!(excess <= worst)) {
      worst = excess;
      bad = i;
    }
  }
  const { diff } = maxAbsDiff(actual, expected);
  return { ok: bad < 0, maxAbsDiff: diff, index: bad };
}
