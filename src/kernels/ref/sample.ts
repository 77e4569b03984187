/**
 * One draw from softmax(logits / temperature) over logits (V), in float64 and read where they are:
 * scaled = logit / temperature, e = exp(scaled - max), the first id where u minus the probabilities
 * e / Σe up to it is below 0 (the last id with any probability if rounding leaves a sliver). Three
 * passes (max, sum, the walk recomputing each exp: the same bits), no buffer. The plain twin of the
 * wasm kernel (assembly/sample.as) and the arithmetic sampleToken always used in JS.
 */
export function sampleTemperature(logits: ArrayLike<number>, V: number, temperature: number, u: number): number {
  const t = temperature;
  let max = -Infinity;
  for (let i = 0; i < V; i++) {
    const s = (logits[i] as number) / t;
    if (s > max) max = s;
  }
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp((logits[i] as number) / t - max);
  let r = u;
  for (let i = 0; i < V; i++) {
    r -= Math.exp((logits[i] as number) / t - max) / sum;
    if (r < 0) return i;
  }
  for (let i = V - 1; i >= 0; i--) if (Math.exp((logits[i] as number) / t - max) > 0) return i;
  return 0;
}
