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
 * offered (PEER_KERNELS in calls.ts: a matmul's rows are computed independently of how the rows are
 * split, each output element summing its products in the same order in the same 4x8 tiles, when
 * split points are multiples of 4 and every part has >= 4 rows; attention's (batch, head) pairs,
 * elementwise and row-wise kernels), so a step is bit-identical with or without help, and a given
 * thread count stays deterministic.
 *
 * The link is a control buffer of two blocks (src/threads/control.ts), block s for side s (0: the
 * main thread, 1: the replica): its idle flag, its bell, the state of the work it offers (Offer),
 * which kernel (op: an index the backend knows) and the kernel's arguments.
 */
import { ControlBlock, controlBytes, Field, Offer, type Shape, Waiter } from "../../threads/control.js";

/** a side's block: an offered kernel call's arguments */
const peerShape: Shape = { args: 48, text: 0 };
/** bytes of a link's buffer */
export const PEER_BYTES = controlBytes(peerShape, 2);

/**
 * How long an idle side keeps looking before it sleeps, since it became idle or last helped (and the
 * offering side for a taken half to be done). Measured (scratch A/B, nanoGPT's CPU recipe, blocks of
 * 8 steps alternated with sharing off, 16-20 blocks each): step time with sharing / without, median
 * per block: 1.00 sleeping at once, 0.92 looking for 1 ms, 0.94 for 5 ms; with another process busy
 * on one of the two cores: 0.96 sleeping at once, 1.08 looking for 1 ms (the looking thread takes
 * turns from the one doing the work). Hence the Waiter's calm rule (src/threads/control.ts); with
 * it: 0.91 alone, 1.02 with the busy process.
 */
const SPIN_MS = 1;

export class PeerLink {
  private readonly mine: ControlBlock;
  private readonly theirs: ControlBlock;
  /** kernel calls this side did for the other (for tests and benchmarks) */
  helped = 0;
  /** offers this side made, and how many of them the other side took */
  offered = 0;
  taken = 0;
  private readonly waiter = new Waiter({ spinMs: SPIN_MS });

  /** side 0 or 1 of the link over `buffer` (PEER_BYTES, zeroed; the two sides share it) */
  constructor(buffer: SharedArrayBuffer, side: 0 | 1) {
    this.mine = new ControlBlock(buffer, side, 2, peerShape);
    this.theirs = new ControlBlock(buffer, 1 - side, 2, peerShape);
  }

  /** is the other side waiting (and so ready to take work)? */
  otherIdle(): boolean {
    return this.theirs.field(Field.idle) === 1;
  }

  /** wake the other side (its wait may be over: call after posting it a task or finishing one) */
  ringOther(): void {
    this.theirs.ring(Field.bell);
  }

  /**
   * Run kernel `kernel` on `mine` here and offer it on `theirs` to the other side; `run` executes a
   * call on this thread (used for `theirs` as well when the other side does not take it in time).
   */
  share(kernel: number, mine: number[], theirs: number[], run: (args: number[]) => void): void {
    const block = this.mine;
    this.offered++;
    block.args.set(theirs);
    block.set(Field.op, kernel);
    block.set(Field.offer, Offer.offered);
    this.ringOther();
    let failed = true;
    try {
      run(mine);
      failed = false;
    } finally {
      // withdrawn if not taken yet; when taken, wait for it (even when this half failed: the
      // other thread is still writing into memory the caller is about to give up)
      if (block.swap(Field.offer, Offer.offered, Offer.none) === Offer.offered) {
        if (!failed) run(theirs);
      } else {
        this.taken++;
        // the other half was started about when this one was: the waiter looks before it sleeps
        const state = block.awaitChange(Field.offer, Offer.taken, this.waiter);
        block.set(Field.offer, Offer.none);
        if (state === Offer.failed && !failed) run(theirs);
      }
    }
  }

  /**
   * Wait until `over()` is true, doing the kernel calls the other side offers meanwhile with
   * `exec(kernel, args)`. `over` must turn true only together with a ring of this side's bell.
   */
  helpWhile(over: () => boolean, exec: (kernel: number, args: Float64Array) => void): void {
    const offers = this.theirs;
    this.mine.set(Field.idle, 1);
    let look = this.waiter.looking();
    try {
      for (;;) {
        const rung = this.mine.field(Field.bell);
        if (over()) return;
        if (offers.field(Field.offer) === Offer.offered && offers.swap(Field.offer, Offer.offered, Offer.taken) === Offer.offered) {
          let state: number = Offer.done;
          try {
            exec(offers.field(Field.op), offers.args);
            this.helped++;
          } catch {
            state = Offer.failed;
          }
          offers.setAndWake(Field.offer, state);
          look.end();
          look = this.waiter.looking();
          continue;
        }
        // a sleeping thread takes ~100-300 µs to wake here, a large part of an offered half: look
        // again at once for a while (this thread has nothing else to do), then sleep
        if (look.again()) continue;
        this.mine.sleep(Field.bell, rung, this.waiter);
      }
    } finally {
      look.end();
      this.mine.set(Field.idle, 0);
    }
  }
}
