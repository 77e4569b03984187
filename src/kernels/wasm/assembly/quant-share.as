// One quantized product (quant-int.as's qmatvecPacked) shared by the calling thread and a pool helper
// that stays in this module between calls, taking chunks of outputs as they come (src/kernels/quant.ts
// says when):
//   qmatvecShared  the calling thread: publishes a call in the control block, then takes chunks until
//                  none is left; returns the chunk count (the caller waits until DONE holds it)
//   qmatvecHelper  a pool helper: takes the chunks of each published call, then looks for the next
//                  one; returns when told to (QUIT) or after `idleLimit` looks without finding one
// A one-token decode calls ~50 products a token, each 25-1200 µs: a helper woken for each (~100 µs and
// more on this VM) made 2 threads slower than 1, so the helper keeps looking between them, and the
// calling thread never waits for it to arrive: whatever the helper has not taken, the caller does. Each
// output is computed by the same code on either thread, so the bits do not depend on who took what.
//
// The control block (CTRL_BYTES, 8-byte aligned, zeroed before first use):
//   CLAIM  i64: the call's number (high 32 bits) and its next untaken chunk (low 32). A thread owns
//          chunk c of call s only by moving CLAIM from (s, c) to (s, c + 1): the call's description,
//          read before that, is then that call's: the caller closes CLAIM (chunk CLOSED, past any
//          call's chunks) before it writes a new description, and opens it (s + 1, 0) after
//   DONE   chunks finished of the current call; HELPED: chunks the helper took, ever (tests)
//   QUIT   non-zero: the helper returns

const CLAIM = 0;
const DONE = 8;
const QUIT = 12;
const HELPED = 16;
// the call: qmatvecPacked's arguments, and the chunks it is cut into
const D_OUT = 20;
const D_XQ = 24;
const D_XSUM = 28;
const D_XSCALE = 32;
const D_W = 36;
const D_SCALES = 40;
const D_SUMS = 44;
const D_BIAS = 48;
const D_M = 52;
const D_N = 56;
const D_BITS = 60;
const D_GP = 64;
const D_GROUPS = 68;
const D_CHUNK = 72;
const D_CHUNKS = 76;
/** CLAIM's chunk while a call's description is being written: no call has that many */
const CLOSED: i64 = 0x7fffffff;

export function qmatvecSharedCtrlBytes(): i32 {
  return 80;
}

/** take and compute chunks of call `seq` until none is left (or a newer call replaced it) */
function takeChunks(ctrl: usize, seq: i64): i32 {
  let taken = 0;
  while (true) {
    const claim = atomic.load<i64>(ctrl + CLAIM);
    if (claim >>> 32 != seq) return taken;
    const c = <i32>(claim & 0xffffffff);
    const chunks = atomic.load<i32>(ctrl + D_CHUNKS);
    if (c >= chunks) return taken;
    const out = <usize>atomic.load<i32>(ctrl + D_OUT);
    const xq = <usize>atomic.load<i32>(ctrl + D_XQ);
    const xsum = <usize>atomic.load<i32>(ctrl + D_XSUM);
    const xscale = <usize>atomic.load<i32>(ctrl + D_XSCALE);
    const w = <usize>atomic.load<i32>(ctrl + D_W);
    const scales = <usize>atomic.load<i32>(ctrl + D_SCALES);
    const sums = <usize>atomic.load<i32>(ctrl + D_SUMS);
    const bias = <usize>atomic.load<i32>(ctrl + D_BIAS);
    const M = atomic.load<i32>(ctrl + D_M);
    const N = atomic.load<i32>(ctrl + D_N);
    const bits = atomic.load<i32>(ctrl + D_BITS);
    const Gp = atomic.load<i32>(ctrl + D_GP);
    const groups = atomic.load<i32>(ctrl + D_GROUPS);
    const chunk = atomic.load<i32>(ctrl + D_CHUNK);
    if (atomic.cmpxchg<i64>(ctrl + CLAIM, claim, claim + 1) != claim) continue;
    const j0 = c * chunk;
    qmatvecPacked(out, xq, xsum, xscale, w, scales, sums, bias, M, N, bits, Gp, groups, j0, min(N, j0 + chunk));
    atomic.add<i32>(ctrl + DONE, 1);
    taken++;
  }
  return taken;
}

/**
 * Publish qmatvecPacked(out, ..., 0, N) in chunks of `chunk` outputs (a multiple of 16) and take
 * chunks until none is left; returns how many chunks the call has. The caller then waits until DONE
 * holds that many (the helper may still be finishing one).
 */
export function qmatvecShared(ctrl: usize, out: usize, xq: usize, xsum: usize, xscale: usize, w: usize, scales: usize, sums: usize, bias: usize, M: i32, N: i32, bits: i32, Gp: i32, groups: i32, chunk: i32): i32 {
  const chunks = (N + chunk - 1) / chunk;
  const seq = (atomic.load<i64>(ctrl + CLAIM) >>> 32) + 1;
  atomic.store<i64>(ctrl + CLAIM, ((seq - 1) << 32) | CLOSED);
  atomic.store<i32>(ctrl + D_OUT, <i32>out);
  atomic.store<i32>(ctrl + D_XQ, <i32>xq);
  atomic.store<i32>(ctrl + D_XSUM, <i32>xsum);
  atomic.store<i32>(ctrl + D_XSCALE, <i32>xscale);
  atomic.store<i32>(ctrl + D_W, <i32>w);
  atomic.store<i32>(ctrl + D_SCALES, <i32>scales);
  atomic.store<i32>(ctrl + D_SUMS, <i32>sums);
  atomic.store<i32>(ctrl + D_BIAS, <i32>bias);
  atomic.store<i32>(ctrl + D_M, M);
  atomic.store<i32>(ctrl + D_N, N);
  atomic.store<i32>(ctrl + D_BITS, bits);
  atomic.store<i32>(ctrl + D_GP, Gp);
  atomic.store<i32>(ctrl + D_GROUPS, groups);
  atomic.store<i32>(ctrl + D_CHUNK, chunk);
  atomic.store<i32>(ctrl + D_CHUNKS, chunks);
  atomic.store<i32>(ctrl + DONE, 0);
  atomic.store<i64>(ctrl + CLAIM, seq << 32);
  takeChunks(ctrl, seq);
  return chunks;
}

/** the helper's side: take each published call's chunks; return on QUIT or after idleLimit empty looks */
export function qmatvecHelper(ctrl: usize, idleLimit: i32): void {
  let idle = 0;
  while (idle < idleLimit && atomic.load<i32>(ctrl + QUIT) == 0) {
    const claim = atomic.load<i64>(ctrl + CLAIM);
    if (<i32>(claim & 0xffffffff) < atomic.load<i32>(ctrl + D_CHUNKS)) {
      const taken = takeChunks(ctrl, claim >>> 32);
      if (taken > 0) atomic.add<i32>(ctrl + HELPED, taken);
      idle = 0;
    } else idle++;
  }
}
