// The training run saved in the browser (IndexedDB, one record): what it trains on and how, the
// tokenizer, the step, the batch sampler's random state, the chart's history and every tensor with
// its AdamW moments. Enough to go on after a reload exactly where the last save left it.
import type { Metric, TrainRequest } from "./protocol.js";

export interface SavedRun {
  request: TrainRequest;
  /** the tokenizer as tokenizer.json holds it */
  tokenizer: object;
  step: number;
  batchRng: number[];
  metrics: Metric[];
  samples: { step: number; text: string }[];
  /** by parameter name: the weights and AdamW's two moments */
  tensors: Record<string, { w: Float32Array; m: Float32Array; v: Float32Array }>;
  savedAt: number;
}

const DB = "minigpt";
const STORE = "runs";
const KEY = "current";

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new Error(`IndexedDB: ${req.error?.message ?? "cannot open the database"}`));
  });
}

async function transact<T>(mode: IDBTransactionMode, body: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = body(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(new Error(`IndexedDB: ${tx.error?.message ?? "the transaction failed"}`));
      tx.onabort = () => reject(new Error(`IndexedDB: ${tx.error?.message ?? "the transaction was aborted (is the disk full?)"}`));
    });
  } finally {
    db.close();
  }
}

export const saveRun = (run: SavedRun): Promise<unknown> => transact("readwrite", (s) => s.put(run, KEY));
export const loadRun = async (): Promise<SavedRun | null> =>
  ((await transact("readonly", (s) => s.get(KEY))) as SavedRun | undefined) ?? null;
export const clearRun = (): Promise<unknown> => transact("readwrite", (s) => s.delete(KEY));
