// Where the threads of one pool call meet between the phases of a longer kernel (trunk-split.as: a
// decode step's products split over the threads, with row-wise work between them that needs every
// thread's share), instead of returning to the caller and being woken for the next phase: a helper
// woken from Atomics.wait takes ~100-300 µs on this 2-vCPU VM, and a GPT-2 step has ~50 such phases.
//   meet  wait until `parts` threads have arrived at the barrier, then go on together
//
// The barrier block (BARRIER_BYTES, 4-byte aligned, zeroed before its first meeting):
//   ARRIVED  how many threads are at the barrier now
//   ROUND    how many meetings are over: an arrived thread waits for it to move

const ARRIVED: usize = 0;
const ROUND: usize = 4;

/**
 * How often a waiting thread looks at ROUND before it sleeps (Atomics.wait): a look took ~3.3 ns
 * (measured on this VM), so ~200 µs of looking, about what a wake-up from sleep costs; looking
 * longer would only pay when the other thread is late by more than that, and a thread that keeps
 * looking takes a core that another process (or our own other thread, descheduled) may need.
 */
const LOOKS = 1 << 16;
/** a sleep's length (ns), after which the sleeper checks for a partner that will never come */
const SLEEP_NS: i64 = 100_000_000;
/**
 * After this many sleeps with no meeting (30 s) the other thread is taken to have failed (a trap
 * leaves it out of every later meeting) and this one traps too, so the call fails instead of hanging.
 * A thread that may not sleep (a browser page's main thread) counts its looks instead (~4 minutes).
 */
const SLEEPS_TO_GIVE_UP = 300;
const LOOKS_TO_GIVE_UP: i64 = 1 << 36;

/** bytes of a barrier block */
const BARRIER_BYTES = 8;

/**
 * Wait at barrier b until `parts` threads have called meet on it (each the same number of times).
 * mayWait: 0 on a thread that may not block (a browser page's main thread): it only looks.
 */
function meet(b: usize, parts: i32, mayWait: i32): void {
  const round = atomic.load<i32>(b + ROUND);
  if (atomic.add<i32>(b + ARRIVED, 1) == parts - 1) {
    // the last to arrive: reset the count for the next meeting before letting the others go
    atomic.store<i32>(b + ARRIVED, 0);
    atomic.store<i32>(b + ROUND, round + 1);
    atomic.notify(b + ROUND, parts - 1);
    return;
  }
  let looks: i64 = 0;
  let sleeps = 0;
  while (atomic.load<i32>(b + ROUND) == round) {
    looks++;
    if (mayWait == 0) {
      if (looks > LOOKS_TO_GIVE_UP) unreachable();
    } else if (looks > LOOKS) {
      if (atomic.wait<i32>(b + ROUND, round, SLEEP_NS) == 2 && ++sleeps > SLEEPS_TO_GIVE_UP) unreachable();
    }
  }
}
