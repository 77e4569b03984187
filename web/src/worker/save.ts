// The run kept in IndexedDB (store.ts): saved while it trains and when it stops, restored on the next
// page load. Writes go in the order they were asked for, so pause, discard and a new run wait for a
// save that is being written.
import type { RngState, Tensor } from "minigpt-ts/browser";
import { clearRun, type SavedRun, saveRun } from "../store.js";
import { post } from "./page.js";
import type { Run } from "./run.js";

/** IndexedDB's writes in the order they were asked for: a save goes on while training does */
let storeQueue: Promise<unknown> = Promise.resolve();
function queued<T>(op: () => Promise<T>): Promise<T> {
  const done = storeQueue.then(op);
  storeQueue = done.catch(() => undefined);
  return done;
}

/** remove the saved run (after the writes before) */
export const clearSaved = (): Promise<unknown> => queued(clearRun);

/**
 * Save the run as it is now: its tensors, moments and history are copied at once (every read starts
 * here: on the GPU it is recorded before any later step's kernels), so training may go on while the
 * values come back and IndexedDB writes them (the promise settles when they are written).
 */
export function save(r: Run): Promise<void> {
  const reads = [...r.model.params].map(([name, p]) =>
    Promise.all([p, r.optimizer.m.get(name) as Tensor, r.optimizer.v.get(name) as Tensor].map((t) => t.read())).then(
      ([w, m, v]) => [name, { w, m, v }] as [string, SavedRun["tensors"][string]],
    ),
  );
  const at = Date.now();
  const saved: Omit<SavedRun, "tensors"> = {
    request: r.request,
    tokenizer: r.tokenizer.toHuggingFaceJson(),
    step: r.step,
    batchRng: r.batchRng.getState(),
    metrics: r.metrics.slice(),
    samples: r.samples.slice(),
    savedAt: at,
  };
  return queued(async () => saveRun({ ...saved, tensors: Object.fromEntries(await Promise.all(reads)) })).then(() => {
    r.savedAt = at;
    post({ type: "saved", at });
  });
}

/** a freshly made run set back to where `saved` was: weights, AdamW moments, step, sampler and history; paused */
export function restoreState(r: Run, saved: SavedRun): void {
  for (const [name, p] of r.model.params) {
    const t = saved.tensors[name];
    if (!t) throw new Error(`the saved run has no tensor ${name}`);
    p.write(t.w);
    (r.optimizer.m.get(name) as Tensor).write(t.m);
    (r.optimizer.v.get(name) as Tensor).write(t.v);
  }
  r.optimizer.step = saved.step;
  r.step = saved.step;
  r.batchRng.setState(saved.batchRng as RngState);
  r.metrics = saved.metrics;
  r.samples = saved.samples;
  r.status = "paused";
  r.savedAt = saved.savedAt;
}
