/**
 * Backend.adamwMany on the wasm heap, the parts loader.ts does not hold: the table of the tensors'
 * pointers that the kernel reads (adamw.as adamwMany, ADAMW_RECORD i32 a tensor: p, g, m, v, n,
 * decays), and where the threads' shares of the tensors' concatenated elements may be cut.
 */

/** i32 words of one tensor's record (adamw.as ADAMW_RECORD) */
export const ADAMW_RECORD = 6;

/** one tensor's record: the four arrays' heap byte offsets, its size, whether it decays */
export type AdamwRecord = [p: number, g: number, m: number, v: number, n: number, decays: 0 | 1];

/** the records written at words[0 ..] */
export function writeAdamwTable(words: Int32Array, records: readonly AdamwRecord[]): void {
  for (let t = 0; t < records.length; t++) words.set(records[t] as AdamwRecord, t * ADAMW_RECORD);
}

/**
 * Boundaries [0, c1, ..., total] of `parts` near-equal shares of the concatenated elements of
 * tensors of `sizes`, each cut that falls inside a tensor moved down to a multiple of 4 of its
 * elements: there a whole-tensor adamw call's vector loop passes too, so every element is updated
 * by the same path (vector or scalar tail) and gets the same bits however the update is split.
 */
export function adamwCuts(sizes: readonly number[], parts: number): number[] {
  const total = sizes.reduce((a, b) => a + b, 0);
  const cuts = [0];
  for (let i = 1; i < parts; i++) {
    const want = Math.round((total * i) / parts);
    let start = 0;
    for (const n of sizes) {
      if (want < start + n) break;
      start += n;
    }
    cuts.push(Math.max(cuts[cuts.length - 1] as number, start + ((want - start) & ~3)));
  }
  cuts.push(total);
  return cuts;
}
