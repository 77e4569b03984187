/**
 * The handshake between a thread that hands out work and the worker that does it, on an Int32Array
 * control block in a SharedArrayBuffer:
 *   i32[0] seq   bumped by the caller to start a task (the worker sleeps in Atomics.wait on it)
 *   i32[1] done  set to seq by the worker when the task is finished (the caller waits on it)
 * The kernel pool (pool.ts; its worker loop is eval'd source and spells out the worker side) and the
 * data-parallel replicas (src/train/parallel.ts, replica.ts) both use it; what a task is (a kernel
 * call, a micro-batch) lives in the rest of each control block. SpinPolicy, below, is how a thread
 * that expects an answer soon looks for it before it sleeps (the pool when spinning is on, and the
 * data-parallel threads' PeerLink, peer.ts).
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

/**
 * A thread that takes ~100-300 µs to wake on a virtualised 2-core machine (measured) can look for its
 * answer without sleeping for a while first. That only pays while each thread has a core to itself:
 * a look at the clock more than PREEMPT_MS after the previous one means the thread was descheduled
 * while looking (another process wants the cores). When that keeps happening (a moving average over
 * looking episodes above PREEMPT_SCORE; a lone gap is host noise: an idle 2-vCPU VM here shows a few
 * gaps > 1 ms a second) the thread sleeps at once for CALM_MS. Unbounded spinning collapsed when
 * another process shared the cores; with this rule it falls back to plain waiting there.
 */
export const PREEMPT_MS = 1;
export const PREEMPT_SCORE = 0.15;
export const CALM_MS = 200;

/** One looking episode: again() = look once more without sleeping?; end() scores the episode. */
export interface Looking {
  again(): boolean;
  end(): void;
}

/** Looking for up to spinMs before sleeping, with the calm rule above; one per thread and purpose. */
export class SpinPolicy {
  /** no looking, only sleeping, until this time (performance.now()) */
  private calmUntil = 0;
  private score = 0;

  constructor(private readonly spinMs: number) {}

  /** start an episode (call end() when it is over: answered, or given up for sleep) */
  looking(): Looking {
    const t0 = performance.now();
    let last = t0;
    let hit = 0;
    let spinning = this.spinMs > 0 && t0 >= this.calmUntil;
    let scored = !spinning;
    return {
      again: () => {
        if (!spinning) return false;
        const now = performance.now();
        if (now - last > PREEMPT_MS) hit = 1;
        last = now;
        if (hit || now - t0 >= this.spinMs) spinning = false;
        return spinning;
      },
      end: () => {
        if (scored) return;
        scored = true;
        this.score = 0.9 * this.score + 0.1 * hit;
        if (this.score > PREEMPT_SCORE) {
          this.calmUntil = performance.now() + CALM_MS;
          this.score = 0;
        }
      },
    };
  }
}
