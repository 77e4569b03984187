/**
 * The handshake between a thread that hands out work and the worker that does it, on an Int32Array
 * control block in a SharedArrayBuffer:
 *   i32[0] seq   bumped by the caller to start a task (the worker sleeps in Atomics.wait on it)
 *   i32[1] done  set to seq by the worker when the task is finished (the caller waits on it)
 * The kernel pool (pool.ts; its worker loop is eval'd source and spells out the worker side) and the
 * data-parallel replicas (src/train/parallel.ts, replica.ts) both use it; what a task is (a kernel
 * call, a micro-batch) lives in the rest of each control block.
 */

/** The sequence number after s: never 0, the value a fresh control block holds. */
export function nextSeq(s: number): number {
  return (s + 1) | 0 || 1;
}

/** Caller: start task seq (its description already written to the control block). */
export function post(i32: Int32Array, seq: number): void {
  Atomics.store(i32, 0, seq);
  Atomics.notify(i32, 0);
}

/** Caller: block until the worker has finished task seq (not on a browser page's main thread). */
export function waitDone(i32: Int32Array, seq: number): void {
  for (;;) {
    const d = Atomics.load(i32, 1);
    if (d === seq) return;
    Atomics.wait(i32, 1, d, 1000);
  }
}

/** Worker: block until a task after `seen` is posted; returns its seq. */
export function waitTask(i32: Int32Array, seen: number): number {
  for (;;) {
    const seq = Atomics.load(i32, 0);
    if (seq !== seen) return seq;
    Atomics.wait(i32, 0, seen);
  }
}

/** Worker: task seq is finished; wake the caller. */
export function finish(i32: Int32Array, seq: number): void {
  Atomics.store(i32, 1, seq);
  Atomics.notify(i32, 1);
}
