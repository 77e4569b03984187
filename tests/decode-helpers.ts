// A decode step built as the server's engine builds one, for tests that hold two ways of running it
// to the same bits (packed vs row-major weights, Backend.trunkRows vs block by block).
import { AttentionCache } from "../src/nn/attention-cache.js";
import type { GPTConfig } from "../src/nn/config.js";
import type { DecodeRow } from "../src/nn/decode-step.js";

/** one sequence's rows in a step: n tokens from position pos; only its last row may want logits */
export interface StepSequence {
  pos: number;
  n: number;
  logits: boolean;
}

/**
 * The step's rows over fresh caches whose earlier positions hold the same made-up k and v each time
 * (so two runs compare bit for bit), token ids from id(sequence, row). Dispose the caches after.
 */
export function madeUpStep(
  config: GPTConfig,
  sequences: readonly StepSequence[],
  id: (s: number, i: number) => number,
): { rows: DecodeRow[]; caches: AttentionCache[][] } {
  const { nLayer, blockSize, nEmbd: C } = config;
  const caches = sequences.map(() => Array.from({ length: nLayer }, () => new AttentionCache(blockSize, C)));
  for (const layers of caches)
    for (const l of layers)
      for (const t of [l.keys.data, l.values.data]) for (let i = 0; i < t.length; i++) t[i] = ((i * 37) % 101) / 200 - 0.25;
  const rows: DecodeRow[] = sequences.flatMap((q, s) =>
    Array.from({ length: q.n }, (_, i) => ({
      id: id(s, i),
      pos: q.pos + i,
      cache: caches[s] as AttentionCache[],
      logits: q.logits && i === q.n - 1,
    })),
  );
  return { rows, caches };
}
