/**
 * The one shared-memory protocol between minigpt's threads: control blocks in a SharedArrayBuffer,
 * and one policy for how a thread waits on them. Three users, one layout:
 *   - the kernel pool (src/kernels/wasm/pool.ts): one block per helper thread; a task is one kernel
 *     call (op = the kernel's index, args = its arguments);
 *   - the data-parallel replicas (src/train/parallel.ts): one block per replica; a task is a
 *     micro-batch's shards (op = a command, args = one record per shard);
 *   - the peer link between the two data-parallel threads (src/kernels/wasm/peer.ts): one block per
 *     side; a side offers half a kernel call in its block and the other side may take it.
 *
 * A buffer holds `count` blocks of one Shape: first every block's header (HEADER_BYTES: the i32
 * fields of Field), then every block's arguments (shape.args f64 each), then every block's text
 * (shape.text bytes each: a failed task's message). So block b's field f is i32[b·8 + f]: side 1 of a
 * peer link says it is idle at i32[8].
 *
 * The task handshake (pool and replicas): the caller writes the task (op, count, args), bumps seq and
 * notifies; the worker, waiting on seq, does it, writes error (and the text), sets done = seq and
 * notifies; the caller, waiting on done, reads the result. How a thread waits is a Waiter's job.
 */

/** the i32 fields of a block's header */
export const Field = {
  /** peer link: 1 while this side waits and takes the other side's offers */
  idle: 0,
  /** peer link: bumped and notified to wake this side */
  bell: 1,
  /** peer link: the state of the work this side offers (Offer) */
  offer: 2,
  /** what the task is: a kernel's index, a command (EXIT: stop) */
  op: 3,
  /** bumped by the caller to post a task (the worker waits on it); never 0 after the first */
  seq: 4,
  /** set to seq by the worker when that task is finished (the caller waits on it) */
  done: 5,
  /** how many arguments (or records) the task has */
  count: 6,
  /** 0, or 1 when the task failed: its message is in the block's text */
  error: 7,
} as const;
export type Field = (typeof Field)[keyof typeof Field];

const FIELDS = 8;
export const HEADER_BYTES = FIELDS * 4;

/** the op that tells a worker to stop */
export const EXIT = -1;

/** the states of Field.offer (peer link) */
export const Offer = {
  none: 0,
  /** posted; the other side may take it (compare-exchange to taken) */
  offered: 1,
  taken: 2,
  done: 3,
  /** the taker failed: the offering side then does the work itself, and meets the error itself */
  failed: 4,
} as const;

/** what each block of a buffer holds besides its header */
export interface Shape {
  /** f64 arguments */
  readonly args: number;
  /** bytes of text (a failed task's message; 0: none) */
  readonly text: number;
}

/** bytes of a buffer of `count` blocks of `shape` */
export function controlBytes(shape: Shape, count = 1): number {
  return count * (HEADER_BYTES + shape.args * 8 + Math.ceil(shape.text / 8) * 8);
}

/** One block of a control buffer, seen from one thread (each thread makes its own ControlBlock over the buffer). */
export class ControlBlock {
  /** the whole header area of the buffer: block b's field f is i32[b·8 + f] (use field()/set()) */
  private readonly i32: Int32Array;
  private readonly at: number;
  /** the block's f64 arguments (or records) */
  readonly args: Float64Array;
  private readonly text: Uint8Array;
  /** caller: the task last posted; worker: the task last taken */
  private seq = 0;

  /** block `index` of `buffer` (controlBytes(shape, count) bytes, zeroed when made) */
  constructor(buffer: SharedArrayBuffer, index: number, count: number, shape: Shape) {
    const textBytes = Math.ceil(shape.text / 8) * 8;
    this.i32 = new Int32Array(buffer, 0, count * FIELDS);
    this.at = index * FIELDS;
    this.args = new Float64Array(buffer, count * HEADER_BYTES + index * shape.args * 8, shape.args);
    this.text = new Uint8Array(buffer, count * (HEADER_BYTES + shape.args * 8) + index * textBytes, shape.text);
  }

  /** a new zeroed buffer and its `count` blocks, seen from this thread */
  static create(shape: Shape, count = 1): { buffer: SharedArrayBuffer; blocks: ControlBlock[] } {
    const buffer = new SharedArrayBuffer(controlBytes(shape, count));
    return { buffer, blocks: Array.from({ length: count }, (_, i) => new ControlBlock(buffer, i, count, shape)) };
  }

  field(f: Field): number {
    return Atomics.load(this.i32, this.at + f);
  }
  set(f: Field, v: number): void {
    Atomics.store(this.i32, this.at + f, v);
  }
  /** store v in f only if f holds `expected`; returns what f held */
  swap(f: Field, expected: number, v: number): number {
    return Atomics.compareExchange(this.i32, this.at + f, expected, v);
  }
  /** bump f and wake a thread waiting on it */
  ring(f: Field): void {
    Atomics.add(this.i32, this.at + f, 1);
    Atomics.notify(this.i32, this.at + f);
  }
  /** set f to v and wake a thread waiting on it */
  setAndWake(f: Field, v: number): void {
    Atomics.store(this.i32, this.at + f, v);
    Atomics.notify(this.i32, this.at + f);
  }
  /** sleep (as `waiter` does) while f holds v, for a while at most: the caller looks again after */
  sleep(f: Field, v: number, waiter: Waiter): void {
    waiter.sleep(this.i32, this.at + f, v);
  }
  /** wait (as `waiter` does) until f holds something other than v; returns it */
  awaitChange(f: Field, v: number, waiter: Waiter): number {
    return waiter.whileValue(this.i32, this.at + f, v);
  }

  // ---- the task handshake: caller side ----

  /** Start a task: op and count (its args already written). */
  post(op: number, count = 0): void {
    this.set(Field.op, op);
    this.set(Field.count, count);
    // the next seq: never 0, the value a fresh block holds
    this.seq = (this.seq + 1) | 0 || 1;
    this.setAndWake(Field.seq, this.seq);
  }

  /** Has the posted task finished? */
  finished(): boolean {
    return Atomics.load(this.i32, this.at + Field.done) === this.seq;
  }

  /** Wait until the posted task has finished; its failure's message, or null. */
  await(waiter: Waiter): string | null {
    waiter.untilValue(this.i32, this.at + Field.done, this.seq);
    return this.field(Field.error) === 0 ? null : this.message();
  }

  // ---- the task handshake: worker side ----

  /** Wait for the next task; returns its op (Field.count and args describe it). */
  next(waiter: Waiter): number {
    this.seq = waiter.whileValue(this.i32, this.at + Field.seq, this.seq);
    return this.field(Field.op);
  }

  /** Is a task after the one last taken posted? */
  posted(): boolean {
    return this.field(Field.seq) !== this.seq;
  }

  /** The task taken by next() is finished (failed with `error` when given): wake the caller. */
  finish(error?: unknown): void {
    if (error === undefined) {
      this.set(Field.error, 0);
    } else {
      this.text.fill(0);
      const message = error instanceof Error ? error.message : String(error);
      // whole characters only: at most text bytes of UTF-8, the rest cut. Through a copy: a browser's
      // encodeInto refuses a view of shared memory (a TypeError that lost the failure, and the caller
      // waited for an answer that never came)
      const bytes = new Uint8Array(this.text.length);
      new TextEncoder().encodeInto(message.slice(0, this.text.length), bytes);
      this.text.set(bytes);
      this.set(Field.error, 1);
    }
    this.setAndWake(Field.done, this.seq);
  }

  private message(): string {
    const end = this.text.indexOf(0);
    // decode() does not take a view of shared memory: copy
    return new TextDecoder().decode(this.text.slice(0, end < 0 ? this.text.length : end)) || "(no message)";
  }
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
const PREEMPT_MS = 1;
const PREEMPT_SCORE = 0.15;
const CALM_MS = 200;
/** a sleeping thread wakes this often to look again (a lost wake-up costs at most this) */
const SLEEP_MS = 1000;

/** One looking episode: again() = look once more without sleeping?; end() scores the episode. */
interface Looking {
  again(): boolean;
  end(): void;
}

interface WaiterOptions {
  /** look without sleeping for up to this long first (0: sleep at once) */
  spinMs?: number;
  /**
   * Where the thread may not block (a browser page's main thread: Atomics.wait throws there) it
   * spins, and gives up after this long with `stalled(ms)`'s message. Absent: the thread blocks.
   */
  noBlock?: { stallMs: number; stalled: (ms: number) => string };
}

/**
 * How one thread waits for a value in shared memory to change: look for up to spinMs (with the calm
 * rule above), then sleep in Atomics.wait; on a thread that may not block, spin until a stall limit.
 * One per thread and purpose (its calm rule learns from its own episodes).
 */
export class Waiter {
  private readonly spinMs: number;
  private readonly noBlock: WaiterOptions["noBlock"];
  /** no looking, only sleeping, until this time (performance.now()) */
  private calmUntil = 0;
  private score = 0;
  /** where the thread may not block: the stall limit of the next wait (null: noBlock's stallMs) */
  stallMs: number | null = null;

  constructor(options: WaiterOptions = {}) {
    this.spinMs = options.spinMs ?? 0;
    this.noBlock = options.noBlock;
  }

  /** whether this thread sleeps in Atomics.wait (false: it spins, bounded by the stall limit) */
  get blocks(): boolean {
    return this.noBlock === undefined;
  }

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

  /** sleep while i32[i] holds v (or until woken, or `ms`); a thread that may not block returns at once */
  sleep(i32: Int32Array, i: number, v: number, ms = SLEEP_MS): void {
    if (this.noBlock === undefined) Atomics.wait(i32, i, v, ms);
  }

  /** wait until i32[i] === target */
  untilValue(i32: Int32Array, i: number, target: number): void {
    const v = Atomics.load(i32, i);
    if (v !== target) this.wait(i32, i, v, target);
  }

  /** wait while i32[i] === v; returns the new value */
  whileValue(i32: Int32Array, i: number, v: number): number {
    const now = Atomics.load(i32, i);
    return now !== v ? now : this.wait(i32, i, v, null);
  }

  /** look, then sleep, until i32[i] is `target` (null: anything but `seen`); i32[i] held `seen` */
  private wait(i32: Int32Array, i: number, seen: number, target: number | null): number {
    const look = this.spinMs > 0 ? this.looking() : null;
    const t0 = this.noBlock ? performance.now() : 0;
    let v = seen;
    for (let n = 1; target === null ? v === seen : v !== target; n++) {
      if (!look?.again()) {
        if (this.noBlock === undefined) Atomics.wait(i32, i, v, SLEEP_MS);
        else if ((n & 4095) === 0) this.checkStall(t0);
      }
      v = Atomics.load(i32, i);
    }
    look?.end();
    return v;
  }

  private checkStall(t0: number): void {
    const nb = this.noBlock as NonNullable<WaiterOptions["noBlock"]>;
    const limit = this.stallMs ?? nb.stallMs;
    const waited = performance.now() - t0;
    if (waited > limit) throw new Error(nb.stalled(waited));
  }
}
