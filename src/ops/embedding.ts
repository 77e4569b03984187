import { backend } from "../kernels/index.js";
import { Tensor } from "../tensor/tensor.js";
import { record, shapeStr } from "./record.js";

/** table (V,C), ids (...) int32 -> (..., C): the rows, ids checked against V; no tape (the ops below record) */
export function lookupRows(table: Tensor, ids: Tensor): Tensor {
  const [V, C] = table.shape as [number, number];
  if (table.shape.length !== 2) throw new Error(`embedding: table must be 2-D, got ${shapeStr(table.shape)}`);
  const N = ids.size;
  const idv = ids.ints;
  for (let i = 0; i < N; i++) {
    const id = idv[i] as number;
    if (id < 0 || id >= V) throw new RangeError(`embedding: id ${id} out of range for a table of ${V} rows`);
  }
  const out = new Tensor([...ids.shape, C]);
  backend().embeddingForward(out.storage, ids.intStorage, table.storage, N, C);
  return out;
}

/** table (V,C), ids (...) int32 -> (..., C): row lookup; backward scatter-adds into the table */
export function embedding(table: Tensor, ids: Tensor): Tensor {
  const C = table.shape[1] as number;
  const N = ids.size;
  const out = lookupRows(table, ids);
  return record(out, [table], () => {
    backend().embeddingBackward(table.ensureGrad().storage, (out.grad as Tensor).storage, ids.intStorage, N, C);
  });
}
