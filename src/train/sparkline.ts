/**
 * One-line terminal chart of a series: sparkline([3, 2, 1.5, 1.2]) -> "█▄▂▁".
 * Longer series are averaged into `width` buckets; non-finite values print as a space.
 */
const BARS = "▁▂▃▄▅▆▇█";

export function sparkline(values: number[], width = 40): string {
  if (!Number.isInteger(width) || width < 1) throw new RangeError(`sparkline width must be a positive integer, got ${width}`);
  const series = values.length > width ? bucketMeans(values, width) : values;
  const finite = series.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return " ".repeat(series.length);
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of finite) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const levels = BARS.length;
  let out = "";
  for (const v of series) {
    if (!Number.isFinite(v)) out += " ";
    else if (hi === lo) out += BARS[Math.floor(levels / 2) - 1];
    else out += BARS[Math.min(levels - 1, Math.floor(((v - lo) / (hi - lo)) * levels))];
  }
  return out;
}

/** Split values into `width` contiguous, near-equal buckets and average the finite values of each. */
function bucketMeans(values: number[], width: number): number[] {
  const out: number[] = [];
  for (let b = 0; b < width; b++) {
    const from = Math.floor((b * values.length) / width);
    const to = Math.floor(((b + 1) * values.length) / width);
    let sum = 0;
    let count = 0;
    for (let i = from; i < to; i++) {
      const v = values[i] as number;
      if (Number.isFinite(v)) {
        sum += v;
        count++;
      }
    }
    out.push(count > 0 ? sum / count : Number.NaN);
  }
  return out;
}
