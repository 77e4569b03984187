/**
 * The order in which the token cache's threads write their pieces' ids into one file
 * (tokenize-pool.ts, tokenize-worker.ts): each piece's ids go right after the previous piece's,
 * although each piece is tokenized on its own thread and the number of its ids is known only then.
 */

import { Waiter } from "../threads/control.js";

/**
 * Where each piece's ids go in the token file, shared by the pool's threads: the piece whose turn
 * it is and the file offset its ids start at. A worker that has its piece's ids waits for its turn,
 * takes the offset, moves it on by the ids' length and passes the turn; then it writes, while the
 * next piece's worker takes its place. Every piece takes its turn, a failed one with no ids, so that
 * the pieces after it never wait for it.
 */
export class WriteOrder {
  readonly memory: SharedArrayBuffer;
  private readonly turn: Int32Array;
  /** written only by the thread whose turn it is; the turn's atomic store publishes it to the next */
  private readonly offset: Float64Array;
  private readonly waiter = new Waiter();

  constructor(memory = new SharedArrayBuffer(16)) {
    this.memory = memory;
    this.turn = new Int32Array(memory, 0, 1);
    this.offset = new Float64Array(memory, 8, 1);
  }

  /** start over: piece 0's ids go at `offset` */
  reset(offset: number): void {
    this.offset[0] = offset;
    Atomics.store(this.turn, 0, 0);
  }

  /** waits for piece `piece`'s turn; returns where its `bytes` go and passes the turn on */
  place(piece: number, bytes: number): number {
    this.waiter.untilValue(this.turn, 0, piece);
    const at = this.offset[0] as number;
    this.offset[0] = at + bytes;
    Atomics.store(this.turn, 0, piece + 1);
    Atomics.notify(this.turn, 0);
    return at;
  }
}
