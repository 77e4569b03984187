/**
 * Work sharing between the two threads of data-parallel training (src/train/parallel.ts).
 *
 * Each thread runs the model on its half of the batch; whichever finishes first used to wait for the
 * other, and on a shared VM that wait is the largest loss of a data-parallel step (for seconds at a
 * time the host slows one vCPU: one thread waits 0-24 ms a step). Through a PeerLink the waiting
 * thread helps instead: while the other thread's `helpWhile` loop runs, a bigger kernel call on this
 * thread is cut in two, the second half offered to the other thread, which takes it if it is still
 * idle; if it has not taken it by the time this thread is done with the first, this thread does both.
 *
 * Results do not depend on who does what: only calls whose result does not depend on the cut are
 * offered (WasmBackend's PEER_KERNELS: a matmul's rows are computed independently of how the rows are
 * split, each output element summing its products in the same order in the same 4x8 tiles, when
 * split points are multiples of 4 and every part has >= 4 rows; attention's (batch, head) pairs,
 * elementwise and row-wise kernels), so a step is bit-identical with or without help, and a given
 * thread count stays deterministic.
 *
 * Layout of the SharedArrayBuffer, for side s (0: the main thread, 1: the replica):
 *   i32[s·8 + 0] idle   1 while side s is in helpWhile (it will take work)
 *   i32[s·8 + 1] bell   bumped and notified to wake side s (work offered, or its wait is over)
 *   i32[s·8 + 2] offer  state of the work side s offers: 0 none, 1 offered, 2 taken, 3 done,
 *                       4 failed (the offering side then does it, and meets the error itself)
 *   i32[s·8 + 3] kernel which kernel (an index the backend knows), then
 *   f64 from byte ARGS + s·ARGS_BYTES: its arguments
 */
import { SpinPolicy } from "./handshake.js";

export const PEER_BYTES = 1024;
const ARGS = 128;
const ARGS_BYTES = 384;
/** most arguments an offered kernel call has */
export const PEER_MAX_ARGS = ARGS_BYTES / 8;

/**
 * How long an idle side keeps looking before it sleeps, since it became idle or last helped (and the
 * offering side for a taken half to be done). Measured (scratch A/B, nanoGPT's CPU recipe, blocks of
 * 8 steps alternated with sharing off, 16-20 blocks each): step time with sharing / without, median
 * per block: 1.00 sleeping at once, 0.92 looking for 1 ms, 0.94 for 5 ms; with another process busy
 * on one of the two cores: 0.96 sleeping at once, 1.08 looking for 1 ms (the looking thread takes
 * turns from the one doing the work). Hence SpinPolicy's calm rule (handshake.ts); with it: 0.91
 * alone, 1.02 with the busy process.
 */
const SPIN_MS = 1;

const IDLE = 0;
const BELL = 1;
const OFFER = 2;
const KERNEL = 3;

const NONE = 0;
const OFFERED = 1;
const TAKEN = 2;
const DONE = 3;
const FAILED = 4;

export class PeerLink {
  private readonly i32: Int32Array;
  private readonly me: number;
  private readonly other: number;
  private readonly myArgs: Float64Array;
  private readonly theirArgs: Float64Array;
  /** kernel calls this side did for the other (for tests and benchmarks) */
  helped = 0;
  /** offers this side made, and how many of them the other side took */
  offered = 0;
  taken = 0;
  private readonly spin = new SpinPolicy(SPIN_MS);

  /** side 0 or 1 of the link over `buffer` (PEER_BYTES, zeroed; the two sides share it) */
  constructor(buffer: SharedArrayBuffer, side: 0 | 1) {
    this.i32 = new Int32Array(buffer, 0, 16);
    this.me = side * 8;
    this.other = (1 - side) * 8;
    this.myArgs = new Float64Array(buffer, ARGS + side * ARGS_BYTES, PEER_MAX_ARGS);
    this.theirArgs = new Float64Array(buffer, ARGS + (1 - side) * ARGS_BYTES, PEER_MAX_ARGS);
  }

  /** is the other side waiting (and so ready to take work)? */
  otherIdle(): boolean {
    return Atomics.load(this.i32, this.other + IDLE) === 1;
  }

  /** wake the other side (its wait may be over: call after posting it a task or finishing one) */
  ringOther(): void {
    Atomics.add(this.i32, this.other + BELL, 1);
    Atomics.notify(this.i32, this.other + BELL);
  }

  /**
   * Run kernel `kernel` on `mine` here and offer it on `theirs` to the other side; `run` executes a
   * call on this thread (used for `theirs` as well when the other side does not take it in time).
   */
  share(kernel: number, mine: number[], theirs: number[], run: (args: number[]) => void): void {
    const i32 = this.i32;
    const offer = this.me + OFFER;
    this.offered++;
    this.myArgs.set(theirs);
    Atomics.store(i32, this.me + KERNEL, kernel);
    Atomics.store(i32, offer, OFFERED);
    this.ringOther();
    let failed = true;
    try {
      run(mine);
      failed = false;
    } finally {
      // withdrawn if not taken yet; when taken, wait for it (even when this half failed: the
      // other thread is still writing into memory the caller is about to give up)
      if (Atomics.compareExchange(i32, offer, OFFERED, NONE) === OFFERED) {
        if (!failed) run(theirs);
      } else {
        this.awaitTaken(run, theirs, failed);
      }
    }
  }

  /** the offering side: wait until the other side has done the half it took */
  private awaitTaken(run: (args: number[]) => void, theirs: number[], failed: boolean): void {
    const i32 = this.i32;
    const offer = this.me + OFFER;
    this.taken++;
    // the other half was started about when this one was: look without sleeping for a while
    const look = this.spin.looking();
    let s = Atomics.load(i32, offer);
    while (s !== DONE && s !== FAILED) {
      if (!look.again()) Atomics.wait(i32, offer, s, 1000);
      s = Atomics.load(i32, offer);
    }
    look.end();
    Atomics.store(i32, offer, NONE);
    if (s === FAILED && !failed) run(theirs);
  }

  /**
   * Wait until `over()` is true, doing the kernel calls the other side offers meanwhile with
   * `exec(kernel, args)`. `over` must turn true only together with a ring of this side's bell.
   */
  helpWhile(over: () => boolean, exec: (kernel: number, args: Float64Array) => void): void {
    const i32 = this.i32;
    const bell = this.me + BELL;
    const offer = this.other + OFFER;
    Atomics.store(i32, this.me + IDLE, 1);
    let look = this.spin.looking();
    try {
      for (;;) {
        const rung = Atomics.load(i32, bell);
        if (over()) return;
        if (Atomics.load(i32, offer) === OFFERED && Atomics.compareExchange(i32, offer, OFFERED, TAKEN) === OFFERED) {
          let state = DONE;
          try {
            exec(Atomics.load(i32, this.other + KERNEL), this.theirArgs);
            this.helped++;
          } catch {
            state = FAILED;
          }
          Atomics.store(i32, offer, state);
          Atomics.notify(i32, offer);
          look.end();
          look = this.spin.looking();
          continue;
        }
        // a sleeping thread takes ~100-300 µs to wake here, a large part of an offered half: look
        // again at once for a while (this thread has nothing else to do), then sleep
        if (look.again()) continue;
        Atomics.wait(i32, bell, rung, 1000);
      }
    } finally {
      look.end();
      Atomics.store(i32, this.me + IDLE, 0);
    }
  }
}
