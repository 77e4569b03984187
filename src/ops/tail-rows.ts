/**
 * The tied token embedding with only its last rows training (PEFT's trainable tokens: the rows of
 * tokens a fine-tune added, under a LoRA adapter that freezes the rest). `tail` is a view of the
 * table's last n rows (table.slice storage), so the forward passes read the rows' current values from
 * the table itself and nothing is copied; the table stays frozen (no gradient buffer, no moments),
 * and the backward passes give `tail` its gradient: what the table's last n rows would have got.
 */
import { backend } from "../kernels/index.js";
import { Tensor } from "../tensor/tensor.js";
import { lookupRows } from "./embedding.js";
import { record, shapeStr } from "./record.js";

/** table (V,C) and `tail` (n,C), a view of its last n rows; the first row `tail` holds */
function tailStart(table: Tensor, tail: Tensor, op: string): number {
  const [V, C] = table.shape as [number, number];
  const [n, tc] = tail.shape as [number, number];
  if (tail.shape.length !== 2 || tc !== C || n > V || tail.ptr !== table.ptr + (V - n) * C * 4)
    throw new Error(`${op}: tail ${shapeStr(tail.shape)} is not a view of the last rows of the table ${shapeStr(table.shape)}`);
  return V - n;
}

/** ids (...) -> rows of table (...,C), as embedding(); backward: tail.grad[id - (V-n)] += dy for the ids in the tail */
export function embeddingTail(table: Tensor, ids: Tensor, tail: Tensor): Tensor {
  const first = tailStart(table, tail, "embeddingTail");
  const C = table.shape[1] as number;
  const N = ids.size;
  const out = lookupRows(table, ids);
  const idv = ids.ints;
  return record(out, [tail], () => {
    const k = backend();
    const g = tail.ensureGrad().data;
    const dy = (out.grad as Tensor).data;
    for (let i = 0; i < N; i++) {
      const row = (idv[i] as number) - first;
      if (row >= 0) k.accumulate(g.subarray(row * C, (row + 1) * C), dy.subarray(i * C, (i + 1) * C), C);
    }
  });
}

/**
 * x (...,C) -> logits (...,V) = x·tableᵀ, the tied LM head, as matmulTransposed():
 *   dx += dy·table,  tail.grad += dy[:, V-n..V)ᵀ·x
 */
export function matmulTransposedTail(x: Tensor, table: Tensor, tail: Tensor): Tensor {
  const first = tailStart(table, tail, "matmulTransposedTail");
  const [V, C] = table.shape as [number, number];
  const n = V - first;
  if (x.shape[x.shape.length - 1] !== C)
    throw new Error(`matmulTransposedTail: x ${shapeStr(x.shape)} does not match the table ${shapeStr(table.shape)}`);
  const M = x.size / C;
  const out = new Tensor([...x.shape.slice(0, -1), V]);
  backend().matmulBT(out.storage, x.storage, table.storage, M, C, V, false);
  return record(out, [x, tail], () => {
    const k = backend();
    const dy = (out.grad as Tensor).data;
    if (x.requiresGrad) {
      const fresh = x.freshGrad();
      k.matmul((fresh ?? (x.grad as Tensor)).storage, dy, table.storage, M, V, C, fresh === null);
    }
    // the tail's columns of dy, gathered (M,n), then tail.grad (n,C) += theirᵀ·x
    const cols = new Tensor([M, n], "f32", false, false);
    const c = cols.data;
    for (let m = 0; m < M; m++) c.set(dy.subarray(m * V + first, (m + 1) * V), m * n);
    k.matmulAT(tail.ensureGrad().storage, cols.storage, x.storage, n, M, C, true);
    cols.dispose();
  });
}
